import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deployProblems } from "../../infra/model/deployable.js";
import { formatProblem } from "../../infra/model/problems.js";
import { EnvironmentSchema } from "../../infra/model/schema.js";
import { renderAll } from "../../infra/render/index.js";
import { catalog } from "../../stacks/catalog.js";
import { planOf, REPO_ROOT, run, tempDir } from "./helpers.js";
import { tsxCommand } from "../tsx-command.js";

const { dir, cleanup } = tempDir("cli");
afterAll(cleanup);

/** Runs a CLI entry point as a user would, from `cwd` (the repository root by default). */
async function cli(script: string, args: string[], cwd = REPO_ROOT) {
  const result = await run(...tsxCommand(script, ...args), { cwd, timeoutMs: 45_000 });
  expect(result.spawnError).toBeUndefined();
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}
const validate = (...args: string[]) => cli("infra/cli/validate.ts", args);
const render = (...args: string[]) => cli("infra/cli/render.ts", args);

/** A user's mistake is reported as a message, never as a stack trace. */
function expectNoStackTrace(output: string) {
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toMatch(/\b\w*Error:/);
  expect(output).not.toContain("node:internal");
}

/** A mistake in the command line: exit 1, one line, the pointer to --help, no usage dump and no stack trace. */
function expectOneLine(result: { code: number | null; stdout: string; stderr: string }, line: string, script: string) {
  expect(result.code).toBe(1);
  expect(result.stderr).toBe(`${line} Run \`npm run ${script} -- --help\`\n`);
  expect(result.stdout).toBe("");
}

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

/** What the committed stacks still hold that a deploy refuses, as validate prints it (none once the user set them). */
const committedPlaceholders = catalog.flatMap((definition) => deployProblems(EnvironmentSchema.parse(definition))).map(formatProblem);

// --base HEAD: every clone has it (main may be absent from a pull request's checkout).
describe("validate CLI", () => {
  it("checks the committed catalog for a deploy: each placeholder left is a line naming its field and what to put there", async () => {
    const result = await validate("--base", "HEAD");
    if (committedPlaceholders.length === 0) {
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`valid: ${catalog.map((d) => d.name).join(", ")}`);
    } else {
      expect(result.code).toBe(1);
      for (const line of committedPlaceholders) expect(result.stderr).toContain(`${line}\n`);
      expect(result.stderr).toContain(`${committedPlaceholders.length} problem`);
      expect(result.stdout).not.toContain("valid:");
    }
    expectNoStackTrace(result.stderr);
  });

  it("--allow-placeholders checks everything else: the committed catalog is valid", async () => {
    const result = await validate("--base", "HEAD", "--allow-placeholders");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`valid: ${catalog.map((d) => d.name).join(", ")}`);
  });

  it("rejects a YAML definition that takes prod's backend port, naming the field, without a stack trace", async () => {
    const path = file("fixture-a.yaml", ["name: fixture-a", "domain: fixture-a.example.com", "ports:", "  frontend: 3005", "  backend: 8080", ""].join("\n"));
    const result = await validate("--file", path, "--base", "HEAD");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("fixture-a.ports.backend: 8080 is already used by prod");
    expect(result.stdout).not.toContain("valid");
    expectNoStackTrace(result.stderr);
  });

  it("refuses a file's placeholders for a deploy (example domain, unset adminCidrs, a fixture's name), and accepts it with --allow-placeholders", async () => {
    const path = file("fixture-b.yml", "name: fixture-b\ndomain: fixture-b.example.com\n");
    const refused = await validate("--file", path, "--base", "HEAD");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('fixture-b.name: names starting "fixture-" are reserved for the package\'s test fixtures');
    expect(refused.stderr).toContain("fixture-b.domain: fixture-b.example.com is an example domain (RFC 2606 reserves example.com for documentation), a placeholder: put the site's own domain");
    expect(refused.stderr).toContain("fixture-b.host.adminCidrs: is not set, so port 22 is closed to every deploy");
    expectNoStackTrace(refused.stderr);

    const allowed = await validate("--file", path, "--base", "HEAD", "--allow-placeholders");
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toContain("valid: fixture-b");
  });

  it("reports a JSON syntax error as a clean message", async () => {
    const path = file("broken.json", '{ "name": "fixture-c", "domain": }');
    const result = await validate("--file", path, "--base", "HEAD");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${path}: is not valid JSON`);
    expectNoStackTrace(result.stderr);
  });

  it("refuses a --base that git would read as an option, in one line", async () => {
    expectOneLine(await validate("--base=--output=/tmp/x"), '--base: "--output=/tmp/x" is not a git ref.', "validate");
  });

  it("reports a missing file as a clean message", async () => {
    const path = join(dir, "does-not-exist.yaml");
    const result = await validate("--file", path, "--base", "HEAD");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${path}: cannot be read (ENOENT)`);
    expectNoStackTrace(result.stderr);
  });
});

describe("--base is checked one way by every command that takes it", () => {
  const unknown = "--base: \"no-such-ref-anywhere\" is not a commit of this repository: name a branch, tag or commit (one only on the remote: git fetch origin <branch> first).";

  it.concurrent("validate --base <unknown ref>: exit 1, one line (the identity lock is never silently off)", async () => {
    expectOneLine(await validate("--base", "no-such-ref-anywhere"), unknown, "validate");
  });

  it.concurrent("preview --base <unknown ref>: the same line", async () => {
    const result = await cli("tools/changes/preview.ts", ["--stack", catalog[0]!.name, "--base", "no-such-ref-anywhere"]);
    expectOneLine(result, unknown, "preview");
  });

  it.concurrent("a ref one edit away from a branch is answered with the branch", async () => {
    const root = checkoutWith("base-typo", {});
    for (const args of [["init", "--quiet", "--initial-branch=main"], ["add", "--all"], ["-c", "user.name=tests", "-c", "user.email=tests@example.invalid", "commit", "--quiet", "-m", "x"]]) {
      expect((await run("git", args, { cwd: root })).code).toBe(0);
    }
    const result = await cli("infra/cli/validate.ts", ["--base", "mian"], root);
    expectOneLine(result, '--base: "mian" is not a commit of this repository (did you mean main?): name a branch, tag or commit (one only on the remote: git fetch origin <branch> first).', "validate");
  });
});

describe("render CLI", () => {
  it("--stack staging --out <dir> writes every file renderAll gives, byte for byte", async () => {
    const out = join(dir, "staging-out");
    const result = await render("--stack", "staging", "--out", out);
    expect(result.code, result.stderr).toBe(0);
    const expected = renderAll(planOf("staging"));
    expect(readdirSync(out).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, content] of Object.entries(expected)) expect(readFileSync(join(out, name), "utf8"), name).toBe(content);
  });

  it("an unknown stack exits 1 listing the known stacks, without a stack trace", async () => {
    const out = join(dir, "nope-out");
    const result = await render("--stack", "nope", "--out", out);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no environment is named "nope"');
    expect(result.stderr).toContain(catalog.map((d) => d.name).join(", "));
    expect(existsSync(out)).toBe(false);
    expectNoStackTrace(result.stderr);
  });

  it("a missing --out exits 1 in one line, without the usage", async () => {
    expectOneLine(await render("--stack", "staging"), "both --stack and --out are required (or --all).", "render");
  });

  it("--out naming a file (EEXIST) is one line naming it, and the file is left as it was", async () => {
    const path = file("not-a-folder", "mine\n");
    const result = await render("--stack", "staging", "--out", path);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`${path}: is a file, not a folder: name a folder (it is created if missing) (EEXIST)\n`);
    expect(readFileSync(path, "utf8")).toBe("mine\n");
  });
});

describe("render CLI with a definition file", () => {
  it("--file <definition> --out <dir> writes the files of the file's stack, validated with the catalog", async () => {
    const path = file("fixture-r.yaml", "name: fixture-r\ndomain: fixture-r.example.com\n");
    const out = join(dir, "fixture-r-out");
    const result = await render("--file", path, "--out", out);
    expect(result.code, result.stderr).toBe(0);
    const expected = renderAll(planOf("fixture-r", [...catalog, { name: "fixture-r", domain: "fixture-r.example.com" }]));
    expect(readdirSync(out).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, content] of Object.entries(expected)) expect(readFileSync(join(out, name), "utf8"), name).toBe(content);
  });
});

/**
 * A throw-away checkout of the code the commands run and the stack files they read
 * (node_modules linked), committed so that --base HEAD exists in it.
 */
function checkoutWith(name: string, stacks: Record<string, (text: string) => string>): string {
  const root = join(dir, name);
  mkdirSync(root);
  for (const entry of ["infra", "stacks", "tools", "package.json", "tsconfig.json", "app-version.json"]) cpSync(join(REPO_ROOT, entry), join(root, entry), { recursive: true });
  symlinkSync(join(REPO_ROOT, "node_modules"), join(root, "node_modules"), "dir");
  for (const [stackFile, edit] of Object.entries(stacks)) writeFileSync(join(root, stackFile), edit(readFileSync(join(root, stackFile), "utf8")));
  return root;
}

describe("a stack file that does not load is one line: its file, line and what is wrong", () => {
  const stack = catalog.find((d) => existsSync(join(REPO_ROOT, "stacks", `${d.name}.ts`)))!.name;
  const stackFile = `stacks/${stack}.ts`;
  // The stack file's closing line `} satisfies EnvironmentDefinition;` loses its brace.
  const broken = checkoutWith("broken-stack", { [stackFile]: (text) => text.replace(/^\} satisfies/m, "satisfies") });
  const missing = checkoutWith("missing-name", { [stackFile]: (text) => text.replace(/^export const (\w+) = \{$/m, "export const $1 = {\n  note: undefinedName,") });

  it.concurrent.each([
    ["render", ["infra/cli/render.ts", "--stack", stack, "--out", join(dir, "never-written")]],
    ["ops", ["infra/cli/ops.ts", "--stack", stack, "ps"]],
    ["resources", ["tools/resources.ts"]],
  ])("npm run %s: esbuild's syntax error as <file>:<line>:<column>: <message>", async (_, [script, ...args]) => {
    const result = await cli(script!, args, broken);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^${stackFile.replace(/\./g, "\\.")}:\\d+:\\d+: Expected .+ \\(a syntax error: the stack files must compile before any command can read them\\)\\n$`));
    expect(result.stdout).toBe("");
  });

  it.concurrent("an error while a stack file runs names the file and line", async () => {
    const result = await cli("infra/cli/render.ts", ["--stack", stack, "--out", join(dir, "never-written-2")], missing);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^${stackFile.replace(/\./g, "\\.")}:\\d+:\\d+: undefinedName is not defined \\(ReferenceError\\)\\n$`));
  });

  it.concurrent("--help still answers while a stack file is broken", async () => {
    const result = await cli("infra/cli/validate.ts", ["--help"], broken);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: npm run validate/);
  });
});

describe("new-client refuses a bad --domain in one line naming the flag, and writes nothing", () => {
  const root = checkoutWith("new-client-domain", {});

  it.concurrent.each(["UPPER.example.com", "not_a_domain"])("--domain %s", async (domain) => {
    const result = await cli(join(REPO_ROOT, "infra/cli/new-client.ts"), ["fixture-never", "--domain", domain, "--admin-cidr", "198.51.100.7/32", "--root", root], root);
    // The name is refused first (a fixture's); a user's name reaches the domain check.
    const userName = await cli(join(REPO_ROOT, "infra/cli/new-client.ts"), ["never-added", "--domain", domain, "--admin-cidr", "198.51.100.7/32", "--root", root], root);
    for (const r of [result, userName]) {
      expect(r.code).toBe(1);
      expectNoStackTrace(r.stderr);
    }
    expect(result.stderr).toContain('name "fixture-never": names starting "fixture-" are reserved');
    expect(userName.stderr).toBe(`--domain ${domain}: must be a lower-case fully qualified domain name such as app.example.com\n\nNothing was written.\n`);
    // The user's catalog may already have clients (the two-client check adds some): neither file exists.
    for (const name of ["fixture-never", "never-added"]) expect(existsSync(join(root, "stacks", "clients", `${name}.ts`))).toBe(false);
  });
});
