import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { expect } from "vitest";
import { validateCatalog } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { tsxCommand } from "../tsx-command.js";
import { definitionsOf, REPO } from "./repo-copy.js";

/** What new-client's tests read of its runs in a copy of this repository. */

/** A stack trace's frame line: a user's mistake is a message, never one of these. */
export const STACK_TRACE = /^\s+at .+:\d+:\d+\)?$/m;

/** The stacks of a copy's catalog, which must be valid (loaded in a child process: this one has the repository's loaded already). */
export function catalogOf(root: string): { names: string[]; plans: Plan[] } {
  const validated = validateCatalog(definitionsOf(root));
  if (!validated.ok) throw new Error(`the catalog of ${root} is invalid: ${JSON.stringify(validated.problems)}`);
  return { names: validated.plans.map((p) => p.stack), plans: validated.plans };
}

/** Runs the repository's scaffolder against `root` (through --root, as a user's checkout would). */
export function scaffold(root: string, args: string[]) {
  const result = spawnSync(...tsxCommand(join(REPO, "infra/cli/new-client.ts"), ...args, "--root", root), {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export const squeeze = (line: string) => line.trim().replace(/\s+/g, " ");

/** The lines printed after "Next", blank lines dropped, spaces squeezed. */
export function printedSteps(stdout: string): string[] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((line) => line.startsWith("Next"));
  expect(start, `no "Next" in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  return lines.slice(start + 1).map(squeeze).filter((line) => line !== "");
}
