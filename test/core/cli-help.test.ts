import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseCommandLine, withHelp, type Options } from "../../infra/cli/args.js";
import { loadFailure } from "../../infra/cli/load-catalog.js";
import { knownStack, meantFlag, unexpectedArguments, UsageError, withHelpHint } from "../../infra/cli/run.js";
import { editDistance, nearest } from "../../infra/model/nearest.js";
import { catalog } from "../../stacks/catalog.js";
import { tsxCommand } from "../tsx-command.js";
import { planOf, REPO_ROOT, run, tempDir, type RunResult } from "./helpers.js";

/**
 * The command line of every entry point: `--help` everywhere, the same flags for the same
 * things, and nothing on the line silently ignored. Each case runs a command through tsx's
 * loader (about half a second of CPU), so the cases of a block run concurrently, and each
 * command's --help runs once for every block that reads it.
 */

const STACKS = catalog.map((env) => env.name);
/** The stack the cases use, and another one of the catalog. */
const STACK = STACKS.includes("staging") ? "staging" : STACKS[0]!;
const OTHER = STACKS.find((name) => name !== STACK)!;

const { dir, cleanup } = tempDir("cli-help");
afterAll(cleanup);

/** Runs `tsx <script> <args>` from the repository root. */
async function tsx(script: string, ...args: string[]) {
  const result = await run(...tsxCommand(script, ...args), { timeoutMs: 45_000 });
  expect(result.spawnError).toBeUndefined();
  return result;
}

/** A user's mistake is reported as a message, never as a stack trace. */
function expectNoStackTrace(output: string) {
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toMatch(/\b\w*Error:/);
  expect(output).not.toContain("node:internal");
}

interface Command {
  script: string;
  /** How package.json calls it: the script's name, and which of its commands this is. */
  label: string;
  args: string[];
}

/**
 * Every distinct `tsx <file> [args]` command of package.json's scripts, labelled with the
 * scripts that run it.
 */
function npmScriptCommands(): Command[] {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  const commands = new Map<string, Command>();
  for (const [name, line] of Object.entries(scripts)) {
    for (const words of line.split("&&").map((c) => c.trim().split(/\s+/))) {
      const [program, script, ...args] = words;
      if (program !== "tsx" || !script) continue;
      const key = words.join(" ");
      const known = commands.get(key);
      commands.set(key, known ? { ...known, label: `${known.label}, ${name}` } : { script, args, label: name });
    }
  }
  return [...commands.values()];
}

const COMMANDS = npmScriptCommands();

/** This change's entry points and every option each must list in its usage. */
const OURS: { name: string; script: string; args: string[]; options: string[] }[] = [
  { name: "validate", script: "infra/cli/validate.ts", args: [], options: ["--stack <name>", "--file <path>", "--base <git-ref>", "--allow-placeholders", "-h, --help"] },
  { name: "render", script: "infra/cli/render.ts", args: [], options: ["--stack <name>", "--file <path>", "--out <dir>", "--all", "-h, --help"] },
  { name: "render:all", script: "infra/cli/render.ts", args: ["--all"], options: ["--all", "-h, --help"] },
  { name: "resources", script: "tools/resources.ts", args: [], options: ["--stack <name>", "-h, --help"] },
  { name: "preview", script: "tools/changes/preview.ts", args: [], options: ["--stack <name>", "--base <git-ref>", "--fail-on-flags", "-h, --help"] },
];
/** Each command's `--help`, run once: the same line gives the same answer, whichever block reads it. */
const helps = new Map<string, Promise<RunResult>>();
function help(command: Command): Promise<RunResult> {
  const key = [command.script, ...command.args].join(" ");
  if (!helps.has(key)) helps.set(key, tsx(command.script, ...command.args, "--help"));
  return helps.get(key)!;
}
const ownOptions = (command: Command) => OURS.find((o) => o.script === command.script && o.args.join(" ") === command.args.join(" "))?.options ?? [];

describe("every npm script's entry point answers --help", () => {
  it("package.json's scripts include every entry point of this change", () => {
    const listed = COMMANDS.map((c) => `${c.script} ${c.args.join(" ")}`.trim());
    for (const own of OURS) expect(listed).toContain(`${own.script} ${own.args.join(" ")}`.trim());
  });

  it.concurrent.each(COMMANDS.map((c) => [c.label, c] as const))("npm run %s -- --help: exit 0, the usage with every option on stdout", async (_, command) => {
    const result = await help(command);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^usage: /);
    expect(result.stderr).not.toMatch(/unknown option/i);
    for (const option of ownOptions(command)) expect(result.stdout).toContain(option);
  });

  it.concurrent("-h is --help, and wins over a mistake elsewhere on the line", async () => {
    const result = await tsx("infra/cli/validate.ts", "--no-such-option", STACK, "-h");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^usage: npm run validate/);
  });
});

/** The npm script a command's usage names (`usage: npm run validate -- …`): where its --help hint points. */
const scriptNamed = async (command: Command) => /^usage: npm run ([\w:-]+)/.exec((await help(command)).stdout)?.[1];

describe("a positional argument no command takes is refused in one line, naming it", () => {
  const cases = OURS.filter((c) => c.name !== "render:all").map((c) => [c.name, c] as const);

  it.concurrent.each(cases)("npm run %s -- <stack>: exit 1, 'did you mean --stack <stack>?' and where the usage is, not the usage", async (name, command) => {
    const result = await tsx(command.script, ...command.args, STACK);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`unexpected argument '${STACK}'; did you mean --stack ${STACK}? Run \`npm run ${name} -- --help\`\n`);
    expect(result.stdout).toBe("");
  });
});

describe("a misspelled or unknown flag is refused the same way by every npm script", () => {
  it.concurrent.each(COMMANDS.map((c) => [c.label, c] as const))("npm run %s -- --stak x: one line with the likeliest flag (or the list) and where the usage is", async (_, command) => {
    const [script, usage] = await Promise.all([scriptNamed(command), help(command)]);
    const result = await tsx(command.script, ...command.args, "--stak", "x");
    expect(result.code).toBe(1);
    const takesStack = usage.stdout.includes("--stack <name>");
    expect(result.stderr).toMatch(
      new RegExp(`^unknown flag --stak: ${takesStack ? "did you mean --stack\\?" : "the flags are --[^\\n]+\\."} Run \`npm run ${script} -- --help\`\n$`),
    );
    expect(result.stdout).toBe("");
  });

  it.concurrent.each([
    [["--stack"], "--stack needs a value: --stack <name>."],
    [["--stack", "--file", "x.yaml"], "--stack needs a value, and --file is a flag (a value starting with '-' is written --stack=--file)."],
    [["--allow-placeholders=yes"], '--allow-placeholders takes no value (got "yes").'],
    [["--stack", "prod", "--stack", "staging"], '--stack is given twice ("prod" and "staging"): give it once.'],
    [["--adminCidr", "x"], "unknown flag --adminCidr: the flags are --stack, --file, --base, --allow-placeholders, --help."],
  ])("validate %j: one line, never Node's own message", async (args, line) => {
    const result = await tsx("infra/cli/validate.ts", ...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`${line} Run \`npm run validate -- --help\`\n`);
  });
});

describe("--stack names a stack of the catalog, or is refused with the list", () => {
  it.concurrent.each(OURS.filter((c) => c.options.includes("--stack <name>")).map((c) => [c.name, c] as const))(
    "npm run %s -- --stack nope: exit 1, listing every stack",
    async (_, command) => {
      const result = await tsx(command.script, "--stack", "nope", ...(command.name === "render" ? ["--out", join(dir, "nope")] : []));
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`--stack: no environment is named "nope"; the catalog has: ${STACKS.join(", ")}`);
      expectNoStackTrace(result.stderr);
    },
  );

  it.concurrent("npm run validate -- --stack <stack>: validates the catalog and reports that stack only", async () => {
    const result = await tsx("infra/cli/validate.ts", "--stack", STACK, "--base", "HEAD", "--allow-placeholders");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^valid: ${STACK}$`, "m"));
    expect(result.stdout).toContain(`${STACK}: ${planOf(STACK).publicUrl}`);
    expect(result.stdout).not.toMatch(new RegExp(`^${OTHER}: `, "m"));
  });

  it.concurrent("a problem of the stack is reported; a problem only in another stack fails in one counted line", async () => {
    // A new client whose backend port is the one STACK uses: the problem is the client's, about STACK.
    const port = planOf(STACK).containers.backend.ports[0]!.external;
    const path = join(dir, "fixture-clash.yaml");
    writeFileSync(path, `name: fixture-clash\ndomain: fixture-clash.example.com\nports:\n  frontend: 3999\n  backend: ${port}\n`);
    const [own, other] = await Promise.all([
      tsx("infra/cli/validate.ts", "--file", path, "--stack", STACK, "--base", "HEAD"),
      tsx("infra/cli/validate.ts", "--file", path, "--stack", OTHER, "--base", "HEAD"),
    ]);
    expect(own.code).toBe(1);
    expect(own.stderr).toContain(`fixture-clash.ports.backend: ${port} is already used by ${STACK}`);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`${OTHER}: no problem of its own`);
    expect(other.stderr).toMatch(/the catalog also fails on \d+ problems? of other stacks \(fixture-clash\)/);
    expect(other.stderr).not.toContain("fixture-clash.ports.backend");
    expect(other.stdout).not.toContain("valid");
  });
});

describe("runCli's helpers", () => {
  const options = { stack: { type: "string" as const }, file: { type: "string" as const }, all: { type: "boolean" as const } };

  it("says what a stray positional meant", () => {
    expect(meantFlag("staging", options, ["prod", "staging"])).toBe("--stack staging");
    expect(meantFlag("env.YML", options)).toBe("--file env.YML");
    expect(meantFlag("all", options)).toBe("--all");
    expect(meantFlag("stack", options)).toBe("--stack <name>");
    expect(meantFlag("whatever", options, ["prod"])).toBeUndefined();
    // One edit away from a stack or a flag: that is what was meant.
    expect(meantFlag("stagin", options, ["prod", "staging"])).toBe("--stack staging");
    expect(meantFlag("xy", options)).toBeUndefined();
    expect(meantFlag("alll", options)).toBe("--all");
  });

  it("names every stray positional in one message", () => {
    expect(unexpectedArguments(["x", "prod"], options, ["prod"]).message).toBe("unexpected arguments 'x', 'prod'; did you mean --stack prod?");
    expect(unexpectedArguments(["x"], options).message).toBe("unexpected argument 'x'");
  });

  it("refuses a stack the catalog does not have, with the list", () => {
    expect(knownStack("prod", ["prod", "staging"])).toBe("prod");
    expect(() => knownStack("nope", ["prod", "staging"])).toThrow(UsageError);
    expect(() => knownStack("nope", ["prod", "staging"])).toThrow('--stack: no environment is named "nope"; the catalog has: prod, staging');
    expect(() => knownStack("", ["prod"])).toThrow("--stack needs a stack name: one of prod");
    expect(() => knownStack("staigng", ["prod", "staging"])).toThrow('--stack: no environment is named "staigng" (did you mean staging?); the catalog has: prod, staging');
  });
});

/** The one parser every command reads its line with (infra/cli/args.ts), without spawning one. */

const options: Options = withHelp({
  stack: { type: "string" },
  "admin-cidr": { type: "string", multiple: true },
  "dry-run": { type: "boolean", default: false },
  follow: { type: "boolean", short: "f" },
  base: { type: "string", default: "main" },
});
const parse = (...args: string[]) => parseCommandLine(args, options);
const refusal = (...args: string[]) => {
  try {
    parse(...args);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`${JSON.stringify(args)} was accepted`);
};

describe("nearest: what a mistyped word meant", () => {
  it("counts insertions, deletions, replacements and swapped neighbours as one edit each", () => {
    expect(editDistance("stak", "stack")).toBe(1);
    expect(editDistance("stakc", "stack")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });

  it("allows one edit per three letters of the candidate, ignores case, '-' and '_', and takes a unique prefix", () => {
    expect(nearest("stak", ["stack", "file"])).toBe("stack");
    expect(nearest("adminCidr", ["admin-cidr", "email"])).toBe("admin-cidr");
    expect(nearest("fiel", ["fail-on-flags", "file"])).toBe("file");
    expect(nearest("fail", ["fail-on-flags", "file"])).toBe("fail-on-flags");
    expect(nearest("fail-on", ["fail-on-flags", "file"])).toBe("fail-on-flags");
    expect(nearest("dryrun", ["dry-run"])).toBe("dry-run");
    expect(nearest("colour", ["domain", "region", "bundle", "admin-cidr", "email", "root"])).toBeUndefined();
    expect(nearest("", ["stack"])).toBeUndefined();
  });
});

describe("parseCommandLine", () => {
  it("reads flags, repeats, defaults, positionals and what follows --", () => {
    const line = parse("pos", "--stack=prod", "--admin-cidr", "a", "--admin-cidr", "b", "-f", "--", "--not-a-flag", "x");
    expect(line).toEqual({
      help: false,
      values: { stack: "prod", "admin-cidr": ["a", "b"], follow: true, "dry-run": false, base: "main" },
      positionals: ["pos"],
      afterMarker: ["--not-a-flag", "x"],
    });
    expect(parse().afterMarker).toBeUndefined();
  });

  it("answers --help or -h anywhere, whatever else is wrong on the line", () => {
    expect(parse("--stak", "x", "-h").help).toBe(true);
    expect(parse("--nope", "--help").help).toBe(true);
    // After -- it is an argument for the command run, not a request for help.
    expect(parse("--", "--help").help).toBe(false);
  });

  it.each([
    [["--stak", "x"], "unknown flag --stak: did you mean --stack?"],
    [["--admin-cidrs", "x"], "unknown flag --admin-cidrs: did you mean --admin-cidr?"],
    [["--dryrun"], "unknown flag --dryrun: did you mean --dry-run?"],
    [["-x"], "unknown flag -x: the flags are --stack, --admin-cidr, --dry-run, --follow, --base, --help"],
    [["--stack"], "--stack needs a value: --stack <name>"],
    [["--base", "--stack", "x"], "--base needs a value, and --stack is a flag (a value starting with '-' is written --base=--stack)"],
    [["--dry-run=no"], '--dry-run takes no value (got "no")'],
    [["--stack", "a", "--stack", "b"], '--stack is given twice ("a" and "b"): give it once'],
  ])("refuses %j in one line: %s", (args, message) => {
    expect(refusal(...args)).toBe(message);
  });

  it("takes a value that starts with '-' when it is written with =, and the same value twice", () => {
    expect(parse("--base=-x").values.base).toBe("-x");
    expect(parse("--stack", "a", "--stack", "a").values.stack).toBe("a");
  });
});

describe("how a mistake is printed", () => {
  it("points at the usage of the npm script the usage names", () => {
    expect(withHelpHint("unknown flag --stak: did you mean --stack?", "usage: npm run validate -- [--stack <name>]")).toBe(
      "unknown flag --stak: did you mean --stack? Run `npm run validate -- --help`",
    );
    expect(withHelpHint("--stack is required", "usage: npm run render:all")).toBe("--stack is required. Run `npm run render:all -- --help`");
  });

  it("turns a stack file's load failure into <file>:<line>:<column>: <why>", () => {
    const root = "/repo/";
    const syntax = new Error('Transform failed with 1 error:\n/repo/stacks/staging.ts:15:4: ERROR: Expected "}" but found "blueprint"');
    expect(loadFailure(syntax, root)).toBe(
      'stacks/staging.ts:15:5: Expected "}" but found "blueprint" (a syntax error: the stack files must compile before any command can read them)',
    );
    const thrown = new ReferenceError("usEast is not defined");
    thrown.stack = "ReferenceError: usEast is not defined\n    at <anonymous> (/repo/stacks/staging.ts:12:13)\n    at ModuleJob.run (node:internal/modules/esm/module_job:325:25)";
    expect(loadFailure(thrown, root)).toBe("stacks/staging.ts:12:13: usEast is not defined (ReferenceError)");
    const missing = new Error("Cannot find module '/repo/stacks/nope.js' imported from /repo/stacks/staging.ts");
    missing.stack = `Error: ${missing.message}\n    at finalizeResolution (node:internal/modules/esm/resolve:283:11)`;
    expect(loadFailure(missing, root)).toBe("stacks/catalog.ts cannot be loaded: Cannot find module './stacks/nope.js' imported from ./stacks/staging.ts");
  });
});
