import { parseArgs, type ParseArgsConfig } from "node:util";
import { CatalogError } from "../model/catalog.js";
import { formatProblem } from "../model/problems.js";

/** A mistake in how the command was called or in the user's input: printed, never a stack trace. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;
export type CliValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CliSettings {
  /**
   * Whether the command takes positional arguments (they are passed to `main`). Left out:
   * true, for the commands that read them themselves. false: any positional argument is
   * refused with the usage (exit 1), naming it and, when it can, what was meant.
   */
  positionals?: boolean;
  /** The catalog's stack names: a stray positional that is one is answered with `--stack <name>`. */
  stacks?: readonly string[];
}

/** `--help` and `-h`, added to every command's options (a command's own `help` option wins). */
function withHelp(options: Options): Options {
  const shortTaken = Object.values(options).some((o) => o.short === "h");
  return { help: { type: "boolean", ...(shortTaken ? {} : { short: "h" }) }, ...options };
}

/** Whether the arguments ask for help, read leniently: a mistake elsewhere on the line does not hide the usage. */
function asksForHelp(args: string[], options: Options): boolean {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: false }).values.help === true;
  } catch {
    return false;
  }
}

const quoted = (values: string[]) => values.map((v) => `'${v}'`).join(", ");

/** What a stray positional most likely meant, as the flag that says it, or undefined. */
export function meantFlag(positional: string, options: Options, stacks: readonly string[] = []): string | undefined {
  if (options.stack && stacks.includes(positional)) return `--stack ${positional}`;
  if (options.file && /\.(json|ya?ml)$/i.test(positional)) return `--file ${positional}`;
  const bare = positional.replace(/^-+/, "");
  const option = options[bare];
  if (option) return option.type === "boolean" ? `--${bare}` : `--${bare} <${bare === "stack" ? "name" : "value"}>`;
  return undefined;
}

/** The refusal of positionals a command does not take: `unexpected argument 'staging'; did you mean --stack staging?` */
export function unexpectedArguments(positionals: string[], options: Options, stacks?: readonly string[]): UsageError {
  const hint = positionals.map((p) => meantFlag(p, options, stacks)).find((h) => h !== undefined);
  const what = `unexpected argument${positionals.length > 1 ? "s" : ""} ${quoted(positionals)}`;
  return new UsageError(hint ? `${what}; did you mean ${hint}?` : what);
}

/**
 * The stack a `--stack` value names, refused (exit 1) when the catalog has no such stack,
 * with the catalog's stacks in the message.
 */
export function knownStack(value: unknown, stacks: readonly string[]): string {
  if (typeof value !== "string" || value === "") throw new UsageError(`--stack needs a stack name: one of ${stacks.join(", ")}`);
  if (!stacks.includes(value)) throw new UsageError(`--stack: no environment is named "${value}"; the catalog has: ${stacks.join(", ")}`);
  return value;
}

/**
 * Runs a command-line entry point: parses its flags, answers `--help` / `-h` with the
 * usage on stdout (exit 0, `main` is not run), refuses what it does not take with the
 * usage (exit 1), prints a user's mistake as a plain message (exit 1), and keeps stack
 * traces for the package's own bugs.
 */
export async function runCli(
  usage: string,
  options: ParseArgsConfig["options"],
  main: (values: CliValues, positionals: string[]) => Promise<number> | number,
  settings: CliSettings = {},
): Promise<void> {
  const args = process.argv.slice(2);
  const all = withHelp(options ?? {});
  let code: number;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, options: all, allowPositionals: true, strict: true });
    } catch (error) {
      if (asksForHelp(args, all)) {
        console.log(usage);
        process.exitCode = 0;
        return;
      }
      throw error;
    }
    const { values, positionals } = parsed;
    if (values.help === true) {
      console.log(usage);
      process.exitCode = 0;
      return;
    }
    if (settings.positionals === false && positionals.length > 0) throw unexpectedArguments(positionals, all, settings.stacks);
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
