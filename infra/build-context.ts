import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";

/** Never part of an image: VCS data, dependency folders and caches. */
const SKIPPED = new Set([".git", "node_modules", "__pycache__", ".venv", ".pytest_cache", ".mypy_cache", "dist"]);

function files(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => !SKIPPED.has(entry.name))
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return files(path, root);
      return entry.isFile() ? [relative(root, path)] : [];
    })
    .sort();
}

export interface BuildContext {
  /** Folder to build from, relative to the project root (deterministic across machines). */
  context: string;
  /** sha256 over every file's path and content: changes exactly when the image would. */
  hash: string;
}

/**
 * Assembles a build context: the app's source folder with the package's Dockerfile at
 * its root (Docker needs the Dockerfile inside the context). Throws a plain message
 * when the source is missing, since that is a checkout mistake, not a bug. The folder is
 * assembled beside `out` and moved into place whole, so two programs of one checkout run at
 * once (two previews of a stack) never delete files under each other.
 */
export function prepareBuildContext(source: string, dockerfile: string, out: string): BuildContext {
  if (!existsSync(source) || !statSync(source).isDirectory()) {
    throw new Error(`app source folder ${source} does not exist: check out the app there, or set timetracker:appSource`);
  }
  if (!existsSync(dockerfile)) throw new Error(`Dockerfile ${dockerfile} does not exist`);
  mkdirSync(dirname(out), { recursive: true });
  const assembling = mkdtempSync(`${out}.assembling-`);
  const hash = createHash("sha256");
  for (const file of files(source)) {
    if (file === "Dockerfile") continue;
    mkdirSync(join(assembling, file, ".."), { recursive: true });
    copyFileSync(join(source, file), join(assembling, file));
    hash.update(`${file}\0`).update(readFileSync(join(source, file))).update("\0");
  }
  copyFileSync(dockerfile, join(assembling, "Dockerfile"));
  hash.update("Dockerfile\0").update(readFileSync(dockerfile));
  moveIntoPlace(assembling, out);
  return { context: out, hash: hash.digest("hex") };
}

/** Replaces `out` with `assembled`: a rename never leaves a half-copied folder at `out`. */
function moveIntoPlace(assembled: string, out: string): void {
  for (let attempt = 0; ; attempt++) {
    const old = `${assembled}.old`;
    try {
      rmSync(old, { recursive: true, force: true });
      if (existsSync(out)) renameSync(out, old);
      renameSync(assembled, out);
      rmSync(old, { recursive: true, force: true });
      return;
    } catch (error) {
      // Another program moved its folder in between: this one's is the same source, try again.
      const code = (error as NodeJS.ErrnoException).code;
      if (attempt >= 20 || (code !== "ENOENT" && code !== "ENOTEMPTY" && code !== "EEXIST")) throw error;
    }
  }
}

const sorted = (record: Record<string, string>) => Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * A hash over every input of an image build: the context (files and Dockerfile), the build
 * args and the labels. The image's tag is cut from it, so a changed build arg or label is a
 * new tag, which the host's release tool deploys (the same tag would be "already live").
 */
export function buildInputsHash(context: BuildContext, args: Record<string, string>, labels: Record<string, string>): string {
  return createHash("sha256")
    .update(JSON.stringify({ context: context.hash, args: sorted(args), labels: sorted(labels) }))
    .digest("hex");
}
