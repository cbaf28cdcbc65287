import { parseArgs, type ParseArgsConfig } from "node:util";
import { nearest } from "../model/nearest.js";
import { UsageError } from "./errors.js";

/**
 * The command line of every command, read one way: Node's tokenizer (parseArgs, lenient),
 * then this module's own checks, so that every mistake is one line that says what was meant
 * (`unknown flag --stak: did you mean --stack?`) instead of Node's message, whose advice
 * (`'-- "--stak"'`) is wrong under npm.
 */

export type Options = NonNullable<ParseArgsConfig["options"]>;
export type CliValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandLine {
  /** `--help` or `-h` anywhere on the line: the rest is not checked, so a mistake never hides the usage. */
  help: boolean;
  values: CliValues;
  /** The positional arguments before a `--`. */
  positionals: string[];
  /** Everything after a `--`, passed on untouched; undefined when the line has no `--`. */
  afterMarker: string[] | undefined;
}

/** `--help` and `-h`, added to every command's options (a command's own `-h` wins). */
export function withHelp(options: Options): Options {
  const shortTaken = Object.entries(options).some(([name, o]) => name !== "help" && o.short === "h");
  return { ...options, help: { type: "boolean", ...(shortTaken ? {} : { short: "h" }) } };
}

const flag = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);
const shown = (options: Options, name: string) => `--${name}${options[name]?.type === "string" ? ` <${name === "stack" ? "name" : "value"}>` : ""}`;

/** The one-line refusal of an option the command does not have: the likeliest one, or the list of those it has. */
function unknownFlag(raw: string, options: Options): UsageError {
  const names = Object.keys(options);
  const meant = nearest(raw.replace(/^-+/, "").split("=")[0] ?? "", names);
  if (meant) return new UsageError(`unknown flag ${raw}: did you mean ${flag(meant)}?`);
  return new UsageError(`unknown flag ${raw}: the flags are ${names.map(flag).join(", ")}`);
}

/** What a stray positional most likely meant, as the flag that says it, or undefined. */
export function meantFlag(positional: string, options: Options, stacks: readonly string[] = []): string | undefined {
  if (options.stack) {
    const stack = stacks.includes(positional) ? positional : nearest(positional, stacks);
    if (stack) return `--stack ${stack}`;
  }
  if (options.file && /\.(json|ya?ml)$/i.test(positional)) return `--file ${positional}`;
  const name = nearest(positional.replace(/^-+/, ""), Object.keys(options));
  return name ? (options[name]?.type === "boolean" ? `--${name}` : shown(options, name)) : undefined;
}

const quoted = (values: string[]) => values.map((v) => `'${v}'`).join(", ");

/** The refusal of positionals a command does not take: `unexpected argument 'staging'; did you mean --stack staging?` */
export function unexpectedArguments(positionals: string[], options: Options, stacks?: readonly string[]): UsageError {
  const hint = positionals.map((p) => meantFlag(p, options, stacks)).find((h) => h !== undefined);
  const what = `unexpected argument${positionals.length > 1 ? "s" : ""} ${quoted(positionals)}`;
  return new UsageError(hint ? `${what}; did you mean ${hint}?` : what);
}

/**
 * Reads `args` against `options` (help included: see withHelp). Throws a UsageError for an
 * unknown flag, a value missing or given to a flag that takes none, or a value that is
 * itself a flag (`--stack --all`); never Node's own error.
 */
export function parseCommandLine(args: string[], options: Options): CommandLine {
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const help = tokens.some((t) => t.kind === "option" && t.name === "help");
  const values: CliValues = {};
  const positionals: string[] = [];
  let afterMarker: string[] | undefined;
  for (const token of tokens) {
    if (token.kind === "option-terminator") {
      afterMarker = [];
      continue;
    }
    if (token.kind === "positional") {
      (afterMarker ?? positionals).push(token.value);
      continue;
    }
    const option = options[token.name];
    if (help) continue;
    if (!option) throw unknownFlag(token.rawName, options);
    let value: string | boolean;
    if (option.type === "boolean") {
      if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value (got "${token.value}")`);
      value = true;
    } else {
      if (token.value === undefined) throw new UsageError(`${token.rawName} needs a value: ${shown(options, token.name)}`);
      // A separate argument that starts with '-' is a flag the user meant as one, not a value.
      if (!token.inlineValue && token.value.startsWith("-")) {
        throw new UsageError(`${token.rawName} needs a value, and ${token.value} is a flag (a value starting with '-' is written ${token.rawName}=${token.value})`);
      }
      value = token.value;
    }
    const earlier = values[token.name];
    if (option.multiple) values[token.name] = [...((earlier as (string | boolean)[] | undefined) ?? []), value];
    else if (earlier !== undefined && earlier !== value) throw new UsageError(`${token.rawName} is given twice ("${String(earlier)}" and "${String(value)}"): give it once`);
    else values[token.name] = value;
  }
  for (const [name, option] of Object.entries(options)) if (values[name] === undefined && option.default !== undefined) values[name] = option.default;
  return { help, values, positionals, afterMarker };
}
