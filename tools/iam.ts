import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadCatalog } from "../infra/cli/load-catalog.js";
import { runCli, UsageError } from "../infra/cli/run.js";
import { generateIam, repository } from "./iam/generate.js";
import { IamError, isPlaceholderRepository } from "./iam/policies.js";

const USAGE = `usage: npm run iam
Writes iam/: for each GitHub environment the workflows use (preview, staging, production,
client-<name>), the IAM role's trust policy (exactly that environment of this repository,
package.json "repository") and its permission policy (the preview role reads; a stack's deploy
role writes that stack's resources), from the catalog and the resources the program declares
under Pulumi mocks. npm run generate runs it (and npm run new-client, npm run remove-client);
commit the result; iam/README.md says how to create the roles.
options:
  -h, --help   print this and exit`;

const OUT = "iam";

await runCli(
  USAGE,
  {},
  async () => {
    let files: Map<string, string>;
    try {
      files = await generateIam(await loadCatalog());
    } catch (error) {
      if (error instanceof IamError) throw new UsageError(error.message);
      throw error;
    }
    // A role folder no stack needs any more (a removed client) goes with the stack.
    const folders = new Set([...files.keys()].map((path) => dirname(path)).filter((dir) => dir !== "."));
    if (existsSync(OUT)) {
      for (const entry of readdirSync(OUT, { withFileTypes: true })) {
        if (entry.isDirectory() && !folders.has(entry.name)) rmSync(join(OUT, entry.name), { recursive: true });
      }
    }
    for (const [path, content] of files) {
      mkdirSync(dirname(join(OUT, path)), { recursive: true });
      writeFileSync(join(OUT, path), content);
    }
    console.log(`wrote ${OUT}/ (${folders.size} roles, ${files.size} files)`);
    if (isPlaceholderRepository(repository())) {
      console.log('note: package.json "repository" is the placeholder github:OWNER/REPO: set it to this repository on GitHub and run npm run iam again (the trust policies name it)');
    }
    return 0;
  },
  { positionals: false },
);
