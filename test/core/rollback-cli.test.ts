import { catalog } from "../../stacks/catalog.js";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RELEASE_TOOL } from "../../infra/render/release.js";
import { shellWord } from "../../infra/render/shell.js";
import { sentBy } from "../../infra/cli/deploy-lock.js";
import { REPO_ROOT } from "./helpers.js";
import { tsxCommand } from "../tsx-command.js";
import { removeTree } from "../scratch.js";

/**
 * `npm run rollback` as a user runs it, against a fake `ssh` (and, where the stack is
 * read, a fake `pulumi`) placed first on PATH: each records its arguments, the fake ssh
 * copies the known_hosts file it was given, prints a line and exits with a chosen code.
 */

const scratch = mkdtempSync(join(tmpdir(), "tt-rollback-cli-"));
afterAll(() => removeTree(scratch));

const HOST = "198.51.100.7";
/** The words that say who sends a rollback, as this machine (the CLI's) words them. */
const SENT_BY = sentBy().map(shellWord);
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPinnedForTheRollbackCliTest0123456789";
const KEY = join(scratch, "id_ed25519");
writeFileSync(KEY, "not a real key\n", { mode: 0o600 });

function script(dir: string, name: string, text: string) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), text);
  chmodSync(join(dir, name), 0o755);
}

const FAKE_SSH = `#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_OUT/ssh-argv"
for arg in "$@"; do
  case "$arg" in
    UserKnownHostsFile=*)
      printf '%s\\n' "\${arg#UserKnownHostsFile=}" > "$FAKE_OUT/known-hosts-path"
      cp "\${arg#UserKnownHostsFile=}" "$FAKE_OUT/known-hosts" ;;
  esac
done
echo "fake ssh: remote output"
exit "\${FAKE_SSH_EXIT:-0}"
`;

const FAKE_PULUMI = `#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_OUT/pulumi-calls"
case "$1 $2" in
  "stack output") printf '%s\\n' "$FAKE_PULUMI_OUTPUTS" ;;
  "config get") printf '%s\\n' "$FAKE_PULUMI_KEY" ;;
  *) echo "unexpected pulumi call: $*" >&2; exit 2 ;;
esac
`;

/** ssh only: the Pulumi CLI is not on PATH at all (node's own folder holds node and npx). */
const sshOnly = join(scratch, "bin-ssh");
script(sshOnly, "ssh", FAKE_SSH);
const withPulumi = join(scratch, "bin-pulumi");
script(withPulumi, "ssh", FAKE_SSH);
script(withPulumi, "pulumi", FAKE_PULUMI);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ssh's arguments, one per element, or undefined when ssh never ran. */
  sshArgv?: string[];
  knownHosts?: string;
  knownHostsPath?: string;
  pulumiCalls: string[];
}

let runs = 0;
/** Runs the CLI as `npx tsx` does (node with tsx's loader, one process), from the repository root with the fakes first on PATH. */
function rollback(args: string[], env: Record<string, string> = {}, bin = sshOnly): Promise<Run> {
  const out = join(scratch, `run-${++runs}`);
  mkdirSync(out);
  const read = (name: string) => (existsSync(join(out, name)) ? readFileSync(join(out, name), "utf8") : undefined);
  return new Promise((resolve, reject) => {
    const child = spawn(...tsxCommand("infra/cli/rollback.ts", ...args), {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`, FAKE_OUT: out, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code,
        stdout,
        // npm may warn about the machine's npmrc; that is not the CLI's output.
        stderr: stderr
          .split("\n")
          .filter((line) => !line.startsWith("npm warn"))
          .join("\n"),
        sshArgv: read("ssh-argv")?.replace(/\n$/, "").split("\n"),
        knownHosts: read("known-hosts"),
        knownHostsPath: read("known-hosts-path")?.trim(),
        pulumiCalls: (read("pulumi-calls") ?? "").split("\n").filter(Boolean),
      }),
    );
  });
}

const explicit = ["--host", HOST, "--user", "ubuntu", "--key", KEY, "--host-key", HOST_KEY];

/** A user's mistake is reported as a message with the usage, never as a stack trace. */
function expectRefusal(run: Run, message: string | RegExp) {
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(typeof message === "string" ? new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : message);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).not.toContain("node:internal");
  expect(run.sshArgv, "ssh must not run").toBeUndefined();
}

describe.concurrent("rollback CLI", () => {
  it("runs the release tool's rollback of the backend by default, accepting only the pinned host key", async () => {
    const run = await rollback(["--stack", "staging", ...explicit]);
    expect(run.code, run.stderr).toBe(0);
    const argv = run.sshArgv ?? [];
    // Sent as its sender's (`env TIMETRACKER_LOCK_BY=<user>@<machine>`): the sender's own hold lets it run.
    expect(argv.slice(-8)).toEqual([`ubuntu@${HOST}`, "sudo", "-n", ...SENT_BY, RELEASE_TOOL, "rollback", "backend"]);
    // The README names the tool the CLI runs.
    expect(readFileSync(join(REPO_ROOT, "README.md"), "utf8")).toContain(`\`${RELEASE_TOOL}\``);
    const opt = (value: string) => argv.some((arg, i) => arg === value && argv[i - 1] === "-o");
    expect(opt("StrictHostKeyChecking=yes")).toBe(true);
    expect(opt("BatchMode=yes")).toBe(true);
    expect(opt("ConnectTimeout=15")).toBe(true);
    expect(argv[argv.indexOf("-i") + 1]).toBe(KEY);
    expect(opt(`UserKnownHostsFile=${run.knownHostsPath}`)).toBe(true);
    expect(run.knownHosts).toBe(`${HOST} ${HOST_KEY}\n`);
    expect(existsSync(run.knownHostsPath as string), "the temporary known_hosts file is removed").toBe(false);
    expect(run.stdout).toContain("fake ssh: remote output");
    expect(run.stdout).toMatch(/rollback of backend on staging: exit 0 after \d+\.\d s/);
  });

  it("rolls back the frontend with --service frontend", async () => {
    const run = await rollback(["--stack", "prod", "--service", "frontend", ...explicit]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.sshArgv?.slice(-8)).toEqual([`ubuntu@${HOST}`, "sudo", "-n", ...SENT_BY, RELEASE_TOOL, "rollback", "frontend"]);
  });

  it("asks the release tool for its status with --status", async () => {
    const run = await rollback(["--stack", "prod", "--status", ...explicit]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.sshArgv?.slice(-5)).toEqual([`ubuntu@${HOST}`, "sudo", "-n", RELEASE_TOOL, "status"]);
  });

  it("exits with ssh's exit code (the remote command's)", async () => {
    const run = await rollback(["--stack", "staging", ...explicit], { FAKE_SSH_EXIT: "3" });
    expect(run.code).toBe(3);
    expect(run.sshArgv).toBeDefined();
    expect(run.stderr).toMatch(/rollback of backend on staging: exit 3 after \d+\.\d s/);
    expect(run.stderr).not.toContain("could not reach");
  });

  it("explains an unreachable host (ssh exit 255): the address and port 22 open only to host.adminCidrs", async () => {
    const run = await rollback(["--stack", "staging", ...explicit], { FAKE_SSH_EXIT: "255" });
    expect(run.code).toBe(255);
    expect(run.stderr).toContain(`could not reach ubuntu@${HOST} on port 22`);
    expect(run.stderr).toContain("open only to host.adminCidrs (203.0.113.10/32)");
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it("prints the usage with --help and exits 0", async () => {
    const run = await rollback(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("usage: npm run rollback -- --stack <name> [--service backend|frontend]");
    expect(run.stdout).toContain("--status");
    expect(run.sshArgv).toBeUndefined();
  });

  it("refuses an unknown service, naming --service", async () => {
    expectRefusal(await rollback(["--stack", "prod", "--service", "db", ...explicit]), '--service: "db" is not one of backend, frontend');
  });

  it("refuses a stack that is not in the catalog", async () => {
    expectRefusal(await rollback(["--stack", "nope", ...explicit]), `--stack: no environment is named "nope"; the catalog has: ${catalog.map((d) => d.name).join(", ")}`);
  });

  it("refuses a stray positional argument", async () => {
    expectRefusal(await rollback(["--stack", "prod", "backend", ...explicit]), "unexpected argument 'backend'");
  });

  it("refuses a host key that is not one key line, before writing known_hosts", async () => {
    const run = await rollback(["--stack", "prod", ...explicit.slice(0, -1), `${HOST_KEY}\n* ssh-ed25519 AAAAother`]);
    expectRefusal(run, "--host-key: expected the instance's public host key");
  });

  it("reads the address, user, host key and key path from the stack when they are not given", async () => {
    const outputs = JSON.stringify({ staticIp: "192.0.2.44", sshUser: "ubuntu", hostKey: HOST_KEY, url: "https://x.example" });
    const run = await rollback(["--stack", "prod", "--service", "frontend"], { FAKE_PULUMI_OUTPUTS: outputs, FAKE_PULUMI_KEY: KEY }, withPulumi);
    expect(run.code, run.stderr).toBe(0);
    expect(run.pulumiCalls).toEqual(["stack output --json --show-secrets=false --stack prod", "config get --stack prod timetracker:sshPrivateKeyPath"]);
    expect(run.sshArgv?.slice(-8)).toEqual(["ubuntu@192.0.2.44", "sudo", "-n", ...SENT_BY, RELEASE_TOOL, "rollback", "frontend"]);
    expect(run.knownHosts).toBe(`192.0.2.44 ${HOST_KEY}\n`);
  });

  it("says what to pass when the Pulumi CLI is missing or the stack has no outputs", async () => {
    expectRefusal(await rollback(["--stack", "prod"]), /Pulumi CLI is not installed.*pass --host <ip>.*--user <name>.*--host-key.*--key <path>/);
    const empty = await rollback(["--stack", "prod"], { FAKE_PULUMI_OUTPUTS: "{}", FAKE_PULUMI_KEY: KEY }, withPulumi);
    expectRefusal(empty, /stack prod has no outputs to reach its host.*pass --host <ip>.*--user <name>.*--host-key/);
  });
});
