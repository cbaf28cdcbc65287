import { existsSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { EnvironmentDefinition } from "../model/schema.js";
import { InputError } from "./errors.js";

/** This package's repository: stacks/ is read from here, whatever the caller's folder. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** `/abs/stacks/staging.ts:15:4` (or a file: URL) as `stacks/staging.ts:15:4`, relative to `root`. */
function where(location: string, root: string): string {
  const path = location.replace(/^file:\/\//, "");
  return isAbsolute(path) ? relative(root, path) : path;
}

/**
 * Why the stack files under `root` did not load, on one line that names the file and line:
 * esbuild's syntax error (`Transform failed with 1 error: <file>:<line>:<col>: ERROR: <why>`),
 * an error thrown while a stack file runs (its first frame in the repository), or a missing import.
 */
export function loadFailure(error: unknown, root: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const syntax = /^(.+?):(\d+):(\d+): ERROR: (.+)$/m.exec(message);
  // esbuild counts columns from 0 (its Location.column); editors, tsc and V8's frames from 1.
  if (syntax) return `${where(syntax[1]!, root)}:${syntax[2]}:${Number(syntax[3]) + 1}: ${syntax[4]} (a syntax error: the stack files must compile before any command can read them)`;
  const frame = (error instanceof Error ? (error.stack ?? "") : "")
    .split("\n")
    .map((line) => /\((.+:\d+:\d+)\)$/.exec(line.trim())?.[1] ?? /^at (\S+:\d+:\d+)$/.exec(line.trim())?.[1])
    .find((location): location is string => location !== undefined && !location.includes("node_modules") && !location.startsWith("node:") && where(location, root).startsWith("stacks/"));
  const what = error instanceof Error && error.name !== "Error" ? ` (${error.name})` : "";
  const first = message.split("\n")[0]!.replaceAll(root.replace(/\/$/, ""), ".");
  return frame ? `${where(frame, root)}: ${first}${what}` : `stacks/catalog.ts cannot be loaded: ${first}${what}`;
}

/** stacks/catalog.ts of `root` (this repository by default), loaded now: a broken stack file is a plain one-line error. */
export async function loadCatalog(root: string = REPO_ROOT): Promise<EnvironmentDefinition[]> {
  const path = join(root, "stacks", "catalog.ts");
  if (!existsSync(path)) throw new InputError(`${root} has no stacks/catalog.ts: it is not this repository`);
  let module: { catalog?: unknown };
  // Node's own stack formatter reads the source maps tsx keeps in memory; one a host installed
  // (Pulumi's program runner uses source-map-support, which cannot see them) would place a
  // stack file's error at a line of the compiled code. Node's is used while the files load.
  const errors = Error as { prepareStackTrace?: ErrorConstructor["prepareStackTrace"] };
  const hostFormatter = errors.prepareStackTrace;
  errors.prepareStackTrace = undefined;
  try {
    module = (await import(pathToFileURL(path).href)) as { catalog?: unknown };
  } catch (error) {
    throw new InputError(loadFailure(error, root));
  } finally {
    errors.prepareStackTrace = hostFormatter;
  }
  if (!Array.isArray(module.catalog)) throw new InputError("stacks/catalog.ts does not export a `catalog` array");
  return module.catalog as EnvironmentDefinition[];
}
