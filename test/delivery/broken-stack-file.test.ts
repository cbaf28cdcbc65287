import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog } from "../../stacks/catalog.js";
import { run } from "../core/helpers.js";
import { commitAll, copyRepo, removeCopies, treeHash } from "./repo-copy.js";

/**
 * A stack file with a mistake in it, under every command that reads the catalog, run as the
 * user runs it (`npm run <script>` in a copy of this repository): one line naming the file,
 * line and column and what is wrong (esbuild's message for a syntax error), exit 1, no stack
 * trace, nothing written. And under `pulumi up`: infra/index.ts run by the Pulumi SDK's own
 * program runner (node_modules/@pulumi/pulumi/cmd/run, with Pulumi.yaml's node arguments),
 * only the engine mocked (no Pulumi CLI here): the same line, reported as a RunError.
 */

const STACK = catalog.some((d) => d.name === "staging") ? "staging" : catalog[0]!.name;
const STACK_FILE = `stacks/${STACK}.ts`;
const SYNTAX = "a syntax error: the stack files must compile before any command can read them";
const FRAME = /^\s+at /m;

/** The commands that read the catalog, each with arguments it would otherwise accept. */
const COMMANDS: [string, string[]][] = [
  ["validate", []],
  ["render", ["--stack", STACK]],
  ["render:all", []],
  ["preview", ["--stack", STACK]],
  ["new-client", ["globex", "--domain", "timetracker.globex-check.com", "--admin-cidr", "100.64.0.7/32"]],
  ["remove-client", ["globex", "--taken-down"]],
  ["ops", ["--stack", STACK, "ps"]],
  ["rollback", ["--stack", STACK]],
  ["restore", ["--stack", STACK]],
  ["resources", []],
  ["iam", []],
  ["generate", []],
  ["rehearse", ["--stack", STACK]],
];

/** A copy of the repository whose stack file has `edit` applied, and where in it the mistake is (1-based line and column). */
function brokenCopy(label: string, edit: { after: RegExp; insert: string; at: string }) {
  const root = copyRepo(`broken-stack-${label}`);
  commitAll(root, "the repository as it is");
  const lines = readFileSync(join(root, STACK_FILE), "utf8").split("\n");
  const opening = lines.findIndex((line) => edit.after.test(line));
  if (opening < 0) throw new Error(`${STACK_FILE} has no line matching ${edit.after}`);
  lines.splice(opening + 1, 0, edit.insert);
  writeFileSync(join(root, STACK_FILE), lines.join("\n"));
  return { root, line: opening + 2, column: edit.insert.indexOf(edit.at) + 1 };
}

/** `npm run -s <script> -- <args>` in `root`: the command's own output, without npm's header. */
const npmRun = (root: string, script: string, args: string[]) => run("npm", ["run", "-s", script, ...(args.length > 0 ? ["--", ...args] : [])], { cwd: root, timeoutMs: 180_000 });

/** infra/index.ts as `pulumi up` runs it: the SDK's runner with Pulumi.yaml's node arguments, the engine mocked. */
function pulumiUp(root: string) {
  const nodeargs = (parse(readFileSync(join(root, "Pulumi.yaml"), "utf8")) as { runtime: { options: { nodeargs: string } } }).runtime.options.nodeargs;
  // The resource monitor is the one thing replaced: the SDK's mocks, set before its runner starts.
  const mocks = `import * as pulumi from "@pulumi/pulumi";
pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: (a) => a.inputs }, "timetracker", ${JSON.stringify(STACK)}, false);
`;
  writeFileSync(join(root, "engine-mock.mjs"), mocks);
  const runner = join(root, "node_modules", "@pulumi", "pulumi", "cmd", "run", "index.js");
  return run("node", [...nodeargs.split(" "), "--import", "./engine-mock.mjs", runner, "--monitor=mock", `--stack=${STACK}`, "--project=timetracker", "."], {
    cwd: root,
    timeoutMs: 120_000,
  });
}

afterAll(removeCopies);

describe(`a syntax error in ${STACK_FILE}`, () => {
  // `  fixtureTypo: ,` right after `export const <stack> = {`: esbuild stops at the comma.
  let broken: ReturnType<typeof brokenCopy>;
  let before: Map<string, string>;
  beforeAll(() => {
    broken = brokenCopy("syntax", { after: /^export const \w+ = \{$/, insert: "  fixtureTypo: ,", at: "," });
    before = treeHash(broken.root);
  });
  const expected = () => `${STACK_FILE}:${broken.line}:${broken.column}: Unexpected "," (${SYNTAX})\n`;

  it.concurrent.each(COMMANDS)("npm run %s: one line (file:line:column: esbuild's message), exit 1", async (script, args) => {
    const result = await npmRun(broken.root, script, args);
    expect(result.stderr).not.toMatch(FRAME);
    expect(result.stderr).toBe(expected());
    expect(result.stdout).toBe("");
    expect(result.code).toBe(1);
  });

  it("pulumi up (infra/index.ts under the SDK's runner; engine mocked, no Pulumi CLI here): the same line as a RunError, exit 32 (reported, the CLI adds nothing)", async () => {
    const result = await pulumiUp(broken.root);
    const output = `${result.stdout}${result.stderr}`;
    expect(output).not.toMatch(FRAME);
    expect(output).not.toContain("unhandled exception");
    // Without an engine the SDK prints its error log as `error: [runtime] <message>`; the CLI shows `error: <message>`.
    expect(output).toBe(`error: [runtime] ${expected()}`);
    expect(result.code).toBe(32);
  });

  it("no command wrote a file (new-client, render:all and generate among them)", () => {
    // Runs after the tests above: vitest awaits a describe's tests in order.
    const after = new Map([...treeHash(broken.root)].filter(([path]) => path !== "engine-mock.mjs"));
    expect(after).toEqual(before);
  });
});

describe(`an error while ${STACK_FILE} runs (a name it does not define)`, () => {
  let broken: ReturnType<typeof brokenCopy>;
  beforeAll(() => {
    broken = brokenCopy("throws", { after: /^export const \w+ = \{$/, insert: "  note: fixtureUndefinedName,", at: "fixtureUndefinedName" });
  });
  const expected = () => `${STACK_FILE}:${broken.line}:${broken.column}: fixtureUndefinedName is not defined (ReferenceError)\n`;

  it.concurrent.each(COMMANDS.filter(([script]) => ["validate", "new-client", "remove-client"].includes(script)))("npm run %s: one line naming the file, line and column", async (script, args) => {
    const result = await npmRun(broken.root, script, args);
    expect(result.stderr).not.toMatch(FRAME);
    expect(result.stderr).toBe(expected());
    expect(result.code).toBe(1);
  });

  it("pulumi up (engine mocked, no Pulumi CLI here): the same line as a RunError", async () => {
    const result = await pulumiUp(broken.root);
    expect(`${result.stdout}${result.stderr}`).toBe(`error: [runtime] ${expected()}`);
    expect(result.code).toBe(32);
  });
});
