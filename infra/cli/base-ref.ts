import { spawnSync } from "node:child_process";
import { nearest } from "../model/nearest.js";
import { UsageError } from "./errors.js";

const git = (root: string, ...args: string[]) => spawnSync("git", args, { cwd: root, encoding: "utf8" });

/** Whether `ref` names a commit of the checkout at `root` (false when git or the checkout is missing). */
export const isCommit = (root: string, ref: string) => git(root, "rev-parse", "--verify", "--quiet", `${ref}^{commit}`).status === 0;

/** Branches, remote branches and tags: what a mistyped ref most likely meant. */
const refNames = (root: string) =>
  git(root, "for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes", "refs/tags")
    .stdout.split("\n")
    .filter(Boolean);

/**
 * `--base <git-ref>` as every command that takes it checks it: a commit of the repository at
 * `root`, else a one-line UsageError (the command stops: a comparison with nothing must never
 * pass for one with what is deployed). `isDefault` says the command chose the ref, not the user.
 */
export function checkedBase(ref: string, root: string, isDefault = false): string {
  // The ref is passed to git as an argument: one that starts with '-' would be read as an option.
  if (ref === "" || ref.startsWith("-")) throw new UsageError(`--base: "${ref}" is not a git ref`);
  if (git(root, "rev-parse", "--git-dir").status !== 0) {
    throw new UsageError(`--base ${ref}: ${root} is not a git checkout, so nothing committed can be read: run the command in a clone of the repository`);
  }
  if (isCommit(root, ref)) return ref;
  const meant = nearest(ref, refNames(root));
  throw new UsageError(
    `--base: "${ref}"${isDefault ? " (the default)" : ""} is not a commit of this repository${meant ? ` (did you mean ${meant}?)` : ""}: name a branch, tag or commit (one only on the remote: git fetch origin <branch> first)`,
  );
}
