import { parseArgs, type ParseArgsConfig } from "node:util";
import { CatalogError } from "../model/catalog.js";
import { formatProblem } from "../model/problems.js";

/** A mistake in how the command was called or in the user's input: printed, never a stack trace. */
export class UsageError extends Error {}

/**
 * Runs a command-line entry point: parses its flags, prints a user's mistake as a
 * plain message (exit 1), and keeps stack traces for the package's own bugs.
 */
export async function runCli(
  usage: string,
  options: ParseArgsConfig["options"],
  main: (values: Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: string[]) => Promise<number> | number,
): Promise<void> {
  let code: number;
  try {
    const { values, positionals } = parseArgs({ options, allowPositionals: true, strict: true });
    code = await main(values, positionals);
  } catch (error) {
    if (error instanceof CatalogError) {
      for (const problem of error.problems) console.error(formatProblem(problem));
    } else if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`${(error as Error).message}\n\n${usage}`);
    } else {
      throw error;
    }
    code = 1;
  }
  process.exitCode = code;
}
