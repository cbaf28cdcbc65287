import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isPlaceholderRepository } from "./policies.js";
import { repository } from "./generate.js";

/** Where the roles' files are written, from the repository's root. */
export const IAM_DIR = "iam";

/**
 * Writes iam/ from its files (paths relative to iam/): a role folder no stack needs any more
 * (a removed client) goes with the stack. Prints what it wrote, and a note while package.json's
 * repository is the template's placeholder (the trust policies name it).
 */
export function writeIamFolder(files: Map<string, string>): void {
  const folders = new Set([...files.keys()].map((path) => dirname(path)).filter((dir) => dir !== "."));
  if (existsSync(IAM_DIR)) {
    for (const entry of readdirSync(IAM_DIR, { withFileTypes: true })) {
      if (entry.isDirectory() && !folders.has(entry.name)) rmSync(join(IAM_DIR, entry.name), { recursive: true });
    }
  }
  for (const [path, content] of files) {
    mkdirSync(dirname(join(IAM_DIR, path)), { recursive: true });
    writeFileSync(join(IAM_DIR, path), content);
  }
  console.log(`wrote ${IAM_DIR}/ (${folders.size} roles, ${files.size} files)`);
  if (isPlaceholderRepository(repository())) {
    console.log('note: package.json "repository" is the placeholder github:OWNER/REPO: set it to this repository on GitHub and run npm run iam again (the trust policies name it)');
  }
}
