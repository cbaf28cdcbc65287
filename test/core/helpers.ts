import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { validateCatalog } from "../../infra/model/catalog.js";
import type { EnvValue, Plan, SecretName } from "../../infra/model/plan.js";
import { formatProblem, type Problem } from "../../infra/model/problems.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { removeTree } from "../scratch.js";

/** The repository root (where package.json lives). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export const SECRET_NAMES: readonly SecretName[] = ["dbPassword", "redisPassword", "appSecretKey", "hostStatusToken"];

/** The plans of a catalog that must be valid; throws with the problems otherwise. */
export function plansOf(definitions: readonly unknown[] = catalog): Plan[] {
  const result = validateCatalog(definitions);
  if (!result.ok) throw new Error(`expected a valid catalog, got:\n${result.problems.map(formatProblem).join("\n")}`);
  return result.plans;
}

/** The plan of one stack of a catalog that must be valid. */
export function planOf(stack: string, definitions: readonly unknown[] = catalog): Plan {
  const plan = plansOf(definitions).find((p) => p.stack === stack);
  if (!plan) throw new Error(`no stack ${stack} in the catalog`);
  return plan;
}

/** The plan of a single definition validated on its own. */
export function planFromDefinition(definition: EnvironmentDefinition): Plan {
  const [plan] = plansOf([definition]);
  if (!plan) throw new Error("validateCatalog returned no plan");
  return plan;
}

/** The problems of a catalog that must be invalid; throws when it is valid. */
export function problemsOf(definitions: readonly unknown[]): Problem[] {
  const result = validateCatalog(definitions);
  if (result.ok) throw new Error(`expected the catalog to be rejected, but it was valid: ${result.plans.map((p) => p.stack).join(", ")}`);
  return result.problems;
}

/** A matcher for a problem at exactly `path` whose message contains `fragment`. */
export const problemAt = (path: string, fragment: string | RegExp = "") =>
  expect.objectContaining({
    path,
    message: typeof fragment === "string" ? expect.stringContaining(fragment) : expect.stringMatching(fragment),
  });

/** A deep, independent copy of a plan for mutation tests. */
export const copyOf = <T>(value: T): T => structuredClone(value);

/** The backend's ALLOWED_HOSTS variable, parsed. */
export function allowedHostsEnv(plan: Plan): string[] {
  const value: EnvValue | undefined = plan.containers.backend.env.ALLOWED_HOSTS;
  if (typeof value !== "string") throw new Error(`ALLOWED_HOSTS is not a plain string: ${JSON.stringify(value)}`);
  return JSON.parse(value) as string[];
}

/** Every object with a `secret` key anywhere inside `value`. */
export function secretReferences(value: unknown): unknown[] {
  if (Array.isArray(value)) return value.flatMap(secretReferences);
  if (value !== null && typeof value === "object") {
    const own = "secret" in value ? [value] : [];
    return [...own, ...Object.values(value).flatMap(secretReferences)];
  }
  return [];
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tt-${prefix}-`));
  return { dir, cleanup: () => removeTree(dir) };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command could not be started at all (e.g. not installed). */
  spawnError?: NodeJS.ErrnoException;
}

/**
 * Runs a command to completion without a shell; never rejects. Output goes through
 * real files, not Node's socket pairs: a program that reopens /dev/stderr (nginx's
 * `error_log /dev/stderr`) cannot open a socket, but can open a file or a pipe.
 */
export function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const { dir, cleanup } = tempDir("run");
  const outPath = join(dir, "stdout");
  const errPath = join(dir, "stderr");
  const out = openSync(outPath, "w");
  const err = openSync(errPath, "w");
  return new Promise((resolve) => {
    let settled = false;
    const finish = (code: number | null, spawnError?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      closeSync(out);
      closeSync(err);
      const result = { code, stdout: readFileSync(outPath, "utf8"), stderr: readFileSync(errPath, "utf8") };
      cleanup();
      resolve(spawnError ? { ...result, spawnError } : result);
    };
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
      timeout: options.timeoutMs ?? 30_000,
      stdio: ["ignore", out, err],
    });
    child.on("error", (error) => finish(null, error));
    child.on("close", (code) => finish(code));
  });
}

/** The text of the `{ ... }` block opened by the first line equal to `header` (after trimming). */
export function block(text: string, header: string): string {
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.trim() === header);
  if (start < 0) throw new Error(`no line "${header}" in:\n${text}`);
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    depth += (lines[i]!.match(/\{/g) ?? []).length - (lines[i]!.match(/\}/g) ?? []).length;
    if (depth === 0) return lines.slice(start, i + 1).join("\n");
  }
  throw new Error(`block "${header}" is not closed`);
}
