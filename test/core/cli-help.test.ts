import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { knownStack, meantFlag, unexpectedArguments, UsageError } from "../../infra/cli/run.js";
import { catalog } from "../../stacks/catalog.js";
import { planOf, REPO_ROOT, run, tempDir } from "./helpers.js";

/**
 * The command line of every entry point: `--help` everywhere, the same flags for the same
 * things, and nothing on the line silently ignored. Each case spawns tsx (about a second),
 * so the cases of a block run concurrently.
 */

const TSX = join(REPO_ROOT, "node_modules", ".bin", "tsx");
const STACKS = catalog.map((env) => env.name);
/** The stack the cases use, and another one of the catalog. */
const STACK = STACKS.includes("staging") ? "staging" : STACKS[0]!;
const OTHER = STACKS.find((name) => name !== STACK)!;

const { dir, cleanup } = tempDir("cli-help");
afterAll(cleanup);

/** Runs `tsx <script> <args>` from the repository root. */
async function tsx(script: string, ...args: string[]) {
  const result = await run(TSX, [script, ...args], { timeoutMs: 45_000 });
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
 * scripts that run it (`generate` runs `render:all`'s and `resources`' commands).
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
const ownOptions = (command: Command) => OURS.find((o) => o.script === command.script && o.args.join(" ") === command.args.join(" "))?.options ?? [];

describe("every npm script's entry point answers --help", () => {
  it("package.json's scripts include every entry point of this change", () => {
    const listed = COMMANDS.map((c) => `${c.script} ${c.args.join(" ")}`.trim());
    for (const own of OURS) expect(listed).toContain(`${own.script} ${own.args.join(" ")}`.trim());
  });

  it.concurrent.each(COMMANDS.map((c) => [c.label, c] as const))("npm run %s -- --help: exit 0, the usage with every option on stdout", async (_, command) => {
    const result = await tsx(command.script, ...command.args, "--help");
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
const scriptNamed = async (command: Command) => /^usage: npm run ([\w:-]+)/.exec((await tsx(command.script, ...command.args, "--help")).stdout)?.[1];

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
    const [script, usage] = await Promise.all([scriptNamed(command), tsx(command.script, ...command.args, "--help")]);
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
