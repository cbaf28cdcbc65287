import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/**
 * `tsx <script> <args>` as one process. The `tsx` command is a Node process that starts a
 * second one, `node --require tsx/preflight --import tsx <script>`, and relays its signals and
 * exit code; npx adds a third. The tests start the second one themselves: the same loader,
 * the same output and exit code, about half the CPU of each run (a test file that runs
 * dozens of commands saves tens of seconds). This module imports nothing of the package, so a
 * test that mocks a module of it can still use it.
 */

const resolve = createRequire(import.meta.url).resolve;
const PREFLIGHT = resolve("tsx/preflight");
const LOADER = pathToFileURL(resolve("tsx")).href;

/** Node's arguments that load TypeScript as the tsx command does, before the script and its arguments. */
export const TSX_NODE_ARGS: readonly string[] = ["--require", PREFLIGHT, "--import", LOADER];

/** The command and arguments that run `tsx <script> <args>` in one process. */
export function tsxCommand(script: string, ...args: string[]): [string, string[]] {
  return [process.execPath, [...TSX_NODE_ARGS, script, ...args]];
}

/** The command and arguments that run `tsx --eval <module source>` in one process (the source may import TypeScript files). */
export function tsxEval(source: string): [string, string[]] {
  return [process.execPath, [...TSX_NODE_ARGS, "--input-type=module", "--eval", source]];
}
