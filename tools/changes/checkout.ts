import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/** The top of the git checkout that holds `dir`. */
export const checkoutRoot = (dir: string) => git(dir, "rev-parse", "--show-toplevel");

/**
 * Runs `use` on a temporary detached worktree of `ref` (this checkout's node_modules linked
 * in, so both programs load the same Pulumi SDK), and removes the worktree afterwards.
 */
export function withCheckoutOf<T>(root: string, ref: string, use: (dir: string) => T): T {
  const commit = git(root, "rev-parse", "--verify", `${ref}^{commit}`);
  const dir = join(mkdtempSync(join(tmpdir(), "tt-preview-base-")), "checkout");
  git(root, "worktree", "add", "--detach", dir, commit);
  try {
    symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
    return use(dir);
  } finally {
    git(root, "worktree", "remove", "--force", dir);
    rmSync(join(dir, ".."), { recursive: true, force: true });
  }
}
