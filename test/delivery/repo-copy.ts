import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import type { Plan } from "../../infra/model/plan.js";
import { STANDBY_PORT_OFFSET } from "../../infra/model/schema.js";
import { removeTree } from "../scratch.js";
import { tsxEval } from "../tsx-command.js";

/**
 * Throw-away copies of this repository for the tests that change it (the scaffolder, a
 * catalog with clients). A test adds clients under names no stack of stacks/catalog.ts has
 * (`zz-…`, or drawn from the names no stack takes), so the tests hold whatever it lists.
 */

export const REPO = resolve(import.meta.dirname, "../..");

/** Linked, not copied: installed packages and fetched tools. */
const LINKED = ["node_modules", ".cache"];
/** Not copied: what is linked, git's own data, local build and rehearsal caches. */
const SKIP_AT_TOP = new Set([...LINKED, ".git", ".build", ".rehearsal", "tmp"]);

const copies: string[] = [];

/** Copies the working tree (what `npm test` sees, uncommitted edits included) and links node_modules. */
export function copyRepo(prefix = "repo-copy"): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  copies.push(dir);
  for (const entry of readdirSync(REPO)) {
    if (SKIP_AT_TOP.has(entry)) continue;
    cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
  }
  for (const entry of LINKED.filter((e) => existsSync(join(REPO, e)))) symlinkSync(join(REPO, entry), join(dir, entry), "dir");
  return dir;
}

/** The definitions of a copy's stacks/catalog.ts, loaded in a child process (this one has the repository's own loaded). */
export function definitionsOf(root: string): unknown[] {
  const script = `import { catalog } from "./stacks/catalog.ts"; console.log(JSON.stringify(catalog));`;
  const result = spawnSync(...tsxEval(script), { cwd: root, encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`cannot load the catalog of ${root}:\n${result.stderr}`);
  return JSON.parse(result.stdout) as unknown[];
}

/** Removes every copy this process made. */
export function removeCopies(): void {
  for (const dir of copies.splice(0)) removeTree(dir);
}

/** Runs git in `root` with a fixed identity; throws with its output when it fails. */
export function git(root: string, args: string[]): string {
  const result = spawnSync("git", ["-c", "user.name=tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false", ...args], {
    cwd: root,
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`git ${args.join(" ")} in ${root} failed:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** Makes the copy a repository of its own with everything committed, as a CI checkout is (node_modules ignored). */
export function commitAll(root: string, message: string): void {
  if (!existsSync(join(root, ".git"))) {
    git(root, ["init", "--quiet", "--initial-branch=main"]);
    // The linked node_modules is a symlink, which .gitignore's `node_modules/` (a folder) does not match.
    appendFileSync(join(root, ".git", "info", "exclude"), "/node_modules\n");
  }
  git(root, ["add", "--all"]);
  git(root, ["commit", "--quiet", "--allow-empty", "-m", message]);
}

/** Every file of the copy (node_modules and .git aside) and its sha256. */
export function treeHash(root: string): Map<string, string> {
  const hashes = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if ((LINKED.includes(entry.name) || entry.name === ".git") && dir === root) continue;
      if (entry.isDirectory()) {
        hashes.set(`${relative(root, path)}/`, "dir");
        walk(path);
      } else {
        hashes.set(relative(root, path), createHash("sha256").update(readFileSync(path)).digest("hex"));
      }
    }
  };
  walk(root);
  return hashes;
}

/**
 * The ports a stack appended without ports should get, worked out from what the plans
 * publish rather than by the allocator under test: the lowest frontend port from 3000 and
 * backend port from 8080 whose two slots (the port and its standby twin) no plan publishes.
 */
export function lowestFreePair(plans: readonly Plan[]): { frontend: number; backend: number } {
  const used = new Set(plans.flatMap((plan) => Object.values(plan.containers).flatMap((c) => c.ports.map((p) => p.external))));
  const take = (from: number) => {
    let port = from;
    while (used.has(port) || used.has(port + STANDBY_PORT_OFFSET)) port += 1;
    used.add(port).add(port + STANDBY_PORT_OFFSET);
    return port;
  };
  const frontend = take(3000);
  return { frontend, backend: take(8080) };
}

/** The GitHub secrets' suffix of a stack, as .github/workflows/pull-request.yml writes it. */
export const secretKeyOf = (stack: string) => stack.toUpperCase().replace(/-/g, "_");
