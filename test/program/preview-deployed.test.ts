import { spawn } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deployedFrom, readDeployed } from "../../infra/cli/deployed.js";
import { REPO_ROOT, tempDir } from "../core/helpers.js";
import { tsxCommand } from "../tsx-command.js";

/**
 * The offline preview compares with what is deployed: the commit of the stack's last
 * successful `pulumi up`, as `pulumi stack history --json` records it. There is no Pulumi CLI
 * or account here, so a stand-in `pulumi` on PATH answers as the real one does (its JSON
 * shape: pulumi/pulumi pkg/cmd/pulumi/stack/stack_history.go; its error for a missing stack:
 * "no stack named '<name>' found").
 */

const { dir, cleanup } = tempDir("preview-deployed");
afterAll(cleanup);

const git = (...args: string[]) => new Promise<string>((resolve) => {
  const child = spawn("git", args, { cwd: REPO_ROOT });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.on("close", () => resolve(out.trim()));
});

const shellQuoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** A PATH of this machine's node and git only, plus a stand-in `pulumi` that prints `stdout`, `stderr` and exits `code`; or none. */
function pathWith(name: string, pulumi?: { stdout?: string; stderr?: string; code?: number }): string {
  const bin = join(dir, name);
  mkdirSync(bin, { recursive: true });
  for (const tool of ["node", "git"]) {
    const found = (process.env.PATH ?? "").split(":").map((p) => join(p, tool)).find((p) => existsSync(p));
    if (found) symlinkSync(found, join(bin, tool));
  }
  if (pulumi) {
    // Shell builtins only: nothing else is on this PATH.
    writeFileSync(
      join(bin, "pulumi"),
      `#!/bin/sh\nprintf '%s' ${shellQuoted(pulumi.stdout ?? "")}\nprintf '%s\\n' ${shellQuoted(pulumi.stderr ?? "")} >&2\nexit ${pulumi.code ?? 0}\n`,
      { mode: 0o755 },
    );
  }
  return bin;
}

/** Runs `npm run preview -- <args>` (node with tsx's loader, as tsx runs it) with that PATH. */
function preview(path: string, ...args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(...tsxCommand("tools/changes/preview.ts", ...args), { cwd: REPO_ROOT, env: { ...process.env, PATH: path } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const update = (version: number, commit: string, extra: Record<string, unknown> = {}) => ({
  version,
  kind: "update",
  result: "succeeded",
  startTime: `2026-01-0${version}T10:00:00Z`,
  environment: { "git.head": commit, "git.dirty": "false", "exec.kind": "cli" },
  config: { "timetracker:adoptedDbPassword": { secret: true } },
  ...extra,
});
const A = "a".repeat(40);
const B = "b".repeat(40);
const SUMMARY = /^\*\*staging\*\*: (\d+) to create, (\d+) to update, (\d+) to replace, (\d+) to delete, (\d+) unchanged\./m;

describe("what is deployed, from Pulumi's update history", () => {
  it("is the commit of the last successful update, by version", () => {
    const deployed = deployedFrom("staging", [update(2, B, { result: "failed" }), update(1, A), update(3, B, { kind: "refresh" })]);
    expect(deployed).toMatchObject({ kind: "commit", commit: A, notes: [] });
    expect(deployed.kind === "commit" && deployed.source).toContain("update 1");
  });

  it("is nothing before the first update, and nothing after a destroy", () => {
    expect(deployedFrom("acme", [])).toMatchObject({ kind: "none" });
    expect(deployedFrom("acme", [update(1, A, { result: "failed" })])).toMatchObject({ kind: "none" });
    expect(deployedFrom("acme", [{ ...update(2, A), kind: "destroy" }, update(1, A)])).toMatchObject({ kind: "none", source: expect.stringContaining("destroyed") });
  });

  it("says when the deploy ran in a dirty checkout, and refuses an update that records no commit", () => {
    const dirty = deployedFrom("staging", [update(1, A, { environment: { "git.head": A, "git.dirty": "true" } })]);
    expect(dirty.kind === "commit" && dirty.notes.join(" ")).toContain("uncommitted changes");
    expect(() => deployedFrom("staging", [update(1, A, { environment: {} })])).toThrow(/records no git commit.*--base/);
  });

  it("asks `pulumi stack history --stack <s> --json` from the project, non-interactively (a stand-in pulumi on PATH)", () => {
    const calls: { command: string; args: readonly string[]; cwd: unknown }[] = [];
    const run = ((command: string, args: readonly string[], options: { cwd?: unknown }) => {
      calls.push({ command, args, cwd: options.cwd });
      return { status: 1, stdout: "", stderr: "error: no stack named 'acme' found\n", pid: 0, output: [], signal: null };
    }) as unknown as Parameters<typeof readDeployed>[2];
    expect(readDeployed("/repo", "acme", run)).toMatchObject({ kind: "none", source: expect.stringContaining("no stack acme") });
    expect(calls).toEqual([{ command: "pulumi", args: ["stack", "history", "--stack", "acme", "--json", "--page-size", "50", "--non-interactive"], cwd: "/repo" }]);
  });
});

describe("npm run preview compares with what is deployed (a stand-in pulumi CLI on PATH: no Pulumi here)", () => {
  it.concurrent("before a first deploy: says so and lists every resource as a create", async () => {
    const result = await preview(pathWith("no-stack", { stderr: "error: no stack named 'staging' found", code: 255 }), "--stack", "staging");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("### Changes to `staging` not deployed yet");
    expect(result.stdout).toContain("Not deployed: Pulumi has no stack staging");
    const [, create, updated, replaced, deleted, same] = SUMMARY.exec(result.stdout)?.map(Number) ?? [];
    expect(create).toBeGreaterThan(20);
    expect([updated, replaced, deleted, same]).toEqual([0, 0, 0, 0]);
  });

  it.concurrent("after a deploy: compares with the deployed commit, as --base with that commit does", async () => {
    const head = await git("rev-parse", "HEAD");
    const path = pathWith("deployed", { stdout: JSON.stringify([update(7, head), update(6, A)]) });
    const [deployed, based] = await Promise.all([preview(path, "--stack", "staging"), preview(path, "--stack", "staging", "--base", "HEAD")]);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain(`### Changes to \`staging\` against what is deployed, commit \`${head.slice(0, 12)}\``);
    expect(deployed.stdout).toContain("Pulumi update 7");
    expect(SUMMARY.exec(deployed.stdout)?.[0]).toBe(SUMMARY.exec(based.stdout)?.[0]);
    expect(Number(SUMMARY.exec(deployed.stdout)?.[5])).toBeGreaterThan(20);
    expect(deployed.stdout).not.toContain("adoptedDbPassword");
  });

  it.concurrent("a deployed commit this clone lacks: exit 2, saying how to fetch it", async () => {
    const result = await preview(pathWith("unknown-commit", { stdout: JSON.stringify([update(1, B)]) }), "--stack", "staging");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`staging is deployed at commit ${B.slice(0, 12)}`);
    expect(result.stderr).toContain("git fetch origin");
    expect(result.stdout).toBe("");
  });

  it.concurrent("without the Pulumi CLI, or not logged in: says nothing is known, lists every resource as a create", async () => {
    const [none, loggedOut] = await Promise.all([
      preview(pathWith("no-pulumi"), "--stack", "staging"),
      preview(pathWith("logged-out", { stderr: "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions", code: 255 }), "--stack", "staging"),
    ]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toContain("What is deployed is unknown here: the Pulumi CLI is not installed");
    expect(loggedOut.stdout).toContain("`pulumi stack history` failed: PULUMI_ACCESS_TOKEN must be set");
    expect(Number(SUMMARY.exec(none.stdout)?.[5])).toBe(0);
  });
});
