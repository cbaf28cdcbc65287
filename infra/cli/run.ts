import { CatalogError } from "../model/catalog.js";
import { nearest } from "../model/nearest.js";
import { formatProblem } from "../model/problems.js";
import { parseCommandLine, unexpectedArguments, withHelp, type CliValues, type Options } from "./args.js";
import { InputError, UsageError } from "./errors.js";

export { InputError, UsageError } from "./errors.js";
export { meantFlag, unexpectedArguments, type CliValues } from "./args.js";

export interface CliSettings {
  /**
   * Whether the command takes positional arguments (they are passed to `main`). Left out:
   * true, for the commands that read them themselves. false: any positional argument (or
   * anything after `--`) is refused in one line, naming it and, when it can, what was meant.
   */
  positionals?: boolean;
  /** The catalog's stack names, read only when needed: a stray positional that is (nearly) one is answered with `--stack <name>`. */
  stacks?: readonly string[] | (() => Promise<readonly string[]>);
}

/**
 * The stack a `--stack` value names, refused (exit 1) when the catalog has no such stack,
 * with the likeliest one and the catalog's stacks in the message.
 */
export function knownStack(value: unknown, stacks: readonly string[]): string {
  if (typeof value !== "string" || value === "") throw new UsageError(`--stack needs a stack name: one of ${stacks.join(", ")}`);
  if (stacks.includes(value)) return value;
  const meant = nearest(value, stacks);
  throw new UsageError(`--stack: no environment is named "${value}"${meant ? ` (did you mean ${meant}?)` : ""}; the catalog has: ${stacks.join(", ")}`);
}

/** The npm script a usage text documents (`usage: npm run validate -- …` -> validate). */
const scriptOf = (usage: string) => /npm run ([\w:-]+)/.exec(usage)?.[1];

/** A command-line mistake, with where the usage is: `… Run \`npm run validate -- --help\``. */
export function withHelpHint(message: string, usage: string): string {
  const script = scriptOf(usage);
  if (!script) return message;
  return `${message}${/[.?!]$/.test(message) ? "" : "."} Run \`npm run ${script} -- --help\``;
}

/** How a user's mistake is printed; undefined for anything else (a bug of the package: its stack trace is kept). */
export function mistakeText(error: unknown, usage: string): string | undefined {
  if (error instanceof CatalogError) return error.problems.map(formatProblem).join("\n");
  if (error instanceof UsageError) return withHelpHint(error.message, usage);
  if (error instanceof InputError) return error.message;
  return undefined;
}

/**
 * Runs a command-line entry point: reads its flags (args.ts), answers `--help` / `-h` with
 * the usage on stdout (exit 0, `main` is not run), prints a user's mistake as a plain
 * message (exit 1: one line for the command line, with the pointer to --help), and keeps
 * stack traces for the package's own bugs. `main` gets the values, the positionals and what
 * follows a `--` (undefined without one).
 */
export async function runCli(
  usage: string,
  options: Options | undefined,
  main: (values: CliValues, positionals: string[], afterMarker: string[] | undefined) => Promise<number> | number,
  settings: CliSettings = {},
): Promise<void> {
  const all = withHelp(options ?? {});
  let code: number;
  try {
    const line = parseCommandLine(process.argv.slice(2), all);
    if (line.help) {
      console.log(usage);
      process.exitCode = 0;
      return;
    }
    if (settings.positionals === false) {
      const stray = [...line.positionals, ...(line.afterMarker ?? [])];
      if (stray.length > 0) {
        const stacks = typeof settings.stacks === "function" ? await settings.stacks() : settings.stacks;
        throw unexpectedArguments(stray, all, stacks);
      }
    }
    code = await main(line.values, line.positionals, line.afterMarker);
  } catch (error) {
    const text = mistakeText(error, usage);
    if (text === undefined) throw error;
    console.error(text);
    code = 1;
  }
  process.exitCode = code;
}

/**
 * The flags of a script that runs at top level rather than through runCli (the rehearsal),
 * read the same way: `--help` prints the usage and exits 0, a mistake is one line and exit 1.
 */
export function flagsOrExit(usage: string, options: Options): CliValues {
  try {
    const line = parseCommandLine(process.argv.slice(2), withHelp(options));
    if (line.help) {
      console.log(usage);
      process.exit(0);
    }
    const stray = [...line.positionals, ...(line.afterMarker ?? [])];
    if (stray.length > 0) throw unexpectedArguments(stray, options);
    return line.values;
  } catch (error) {
    const text = mistakeText(error, usage);
    if (text === undefined) throw error;
    console.error(text);
    process.exit(1);
  }
}
