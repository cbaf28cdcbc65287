import { describe, expect, it } from "vitest";
import { parseCommandLine, withHelp, type Options } from "../../infra/cli/args.js";
import { loadFailure } from "../../infra/cli/load-catalog.js";
import { UsageError, withHelpHint } from "../../infra/cli/run.js";
import { editDistance, nearest } from "../../infra/model/nearest.js";

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
      'stacks/staging.ts:15:4: Expected "}" but found "blueprint" (a syntax error: the stack files must compile before any command can read them)',
    );
    const thrown = new ReferenceError("usEast is not defined");
    thrown.stack = "ReferenceError: usEast is not defined\n    at <anonymous> (/repo/stacks/staging.ts:12:13)\n    at ModuleJob.run (node:internal/modules/esm/module_job:325:25)";
    expect(loadFailure(thrown, root)).toBe("stacks/staging.ts:12:13: usEast is not defined (ReferenceError)");
    const missing = new Error("Cannot find module '/repo/stacks/nope.js' imported from /repo/stacks/staging.ts");
    missing.stack = `Error: ${missing.message}\n    at finalizeResolution (node:internal/modules/esm/resolve:283:11)`;
    expect(loadFailure(missing, root)).toBe("stacks/catalog.ts cannot be loaded: Cannot find module './stacks/nope.js' imported from ./stacks/staging.ts");
  });
});
