import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exec } from "../../tools/process.js";
import { InputError } from "./errors.js";

/** How to reach a stack's instance: its address, the blueprint's user, the key, and the host key pinned in the stack. */
export interface HostConnection {
  host: string;
  user: string;
  /** Path of the SSH private key (a leading `~/` is the home folder). */
  key: string;
  /** The instance's public host key, `ssh-ed25519 AAAA…` (the stack output `hostKey`). */
  hostKey: string;
}

/** An exit code of 255 from ssh: it could not connect, authenticate or verify the host. */
export const SSH_CONNECTION_FAILED = 255;

export const expandHome = (path: string) => (path === "~" ? homedir() : path.startsWith("~/") ? join(homedir(), path.slice(2)) : path);

/** What is wrong with a connection's fields, as `--flag: reason` sentences (empty when none). */
export function connectionProblems(c: HostConnection): string[] {
  const problems: string[] = [];
  // Each value lands in ssh's argument list or in the known_hosts file: nothing may start
  // with '-' (an ssh option) or hold white space or a line break (another known_hosts line).
  if (!/^[A-Za-z0-9][A-Za-z0-9.:-]*$/.test(c.host)) problems.push(`--host: "${c.host}" is not an IP address or host name`);
  if (!/^[a-z_][a-z0-9_-]*$/.test(c.user)) problems.push(`--user: "${c.user}" is not a Unix user name`);
  if (c.key === "" || c.key.startsWith("-") || /[\r\n]/.test(c.key)) problems.push(`--key: "${c.key}" is not a file path`);
  if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}$/.test(c.hostKey)) {
    problems.push(`--host-key: expected the instance's public host key as "ssh-ed25519 AAAA…" (the stack output hostKey), got "${c.hostKey}"`);
  }
  return problems;
}

/** How ssh treats the session's terminal and input; the defaults are ssh's own (no terminal, input forwarded). */
export interface SessionOptions {
  /** `-t`: a terminal on the host (only when ours is one: `docker exec -t`, psql's prompt). */
  tty?: boolean;
  /** `-n`: the remote command reads nothing (ps, logs, health), so a caller's input is left alone. */
  noStdin?: boolean;
}

/** ssh's arguments: the key, only the pinned host key accepted, never a prompt. */
export function sshArgs(c: HostConnection, knownHostsFile: string, remote: string[], session: SessionOptions = {}): string[] {
  return [
    "-i",
    expandHome(c.key),
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${knownHostsFile}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=15",
    ...(session.tty ? ["-t"] : []),
    ...(session.noStdin ? ["-n"] : []),
    `${c.user}@${c.host}`,
    ...remote,
  ];
}

/**
 * Runs ssh with a temporary known_hosts file holding the one line `<host> <hostKey>`
 * (removed afterwards), and resolves to ssh's exit code and, when captured, its output.
 */
async function withPinnedHost(
  c: HostConnection,
  remote: string[],
  session: SessionOptions,
  output: "stream" | "keep" | "stream-and-keep",
): Promise<{ code: number; stdout: string }> {
  const dir = mkdtempSync(join(tmpdir(), "timetracker-ssh-"));
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `${c.host} ${c.hostKey}\n`, { mode: 0o600 });
  // Ctrl-C reaches ssh too (same process group); wait for it to end, then clean up.
  const ignore = () => {};
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  try {
    return await new Promise<{ code: number; stdout: string }>((resolve, reject) => {
      const input = session.noStdin ? "ignore" : "inherit";
      const child = spawn("ssh", sshArgs(c, knownHosts, remote, session), { stdio: [input, output === "stream" ? "inherit" : "pipe", "inherit"] });
      const chunks: Buffer[] = [];
      child.stdout?.on("data", (chunk: Buffer) => {
        if (output === "stream-and-keep") process.stdout.write(chunk);
        chunks.push(chunk);
      });
      child.on("error", (error: NodeJS.ErrnoException) => reject(error));
      child.on("close", (code, signal) =>
        resolve({ code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout: Buffer.concat(chunks).toString("utf8") }),
      );
    });
  } finally {
    process.off("SIGINT", ignore);
    process.off("SIGTERM", ignore);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `remote` on the host with the local `ssh`, its output streamed to ours, and
 * resolves to ssh's exit code (the remote command's, or 255 when ssh itself failed).
 * The host key is accepted only as pinned.
 */
export async function runOnHost(c: HostConnection, remote: string[], session: SessionOptions = {}): Promise<number> {
  return (await withPinnedHost(c, remote, session, "stream")).code;
}

/**
 * Like runOnHost, but keeps the remote command's standard output (its errors and ssh's
 * own still reach ours) to be read by the caller; the remote command reads no input.
 */
export async function readFromHost(c: HostConnection, remote: string[]): Promise<{ code: number; stdout: string }> {
  return withPinnedHost(c, remote, { noStdin: true }, "keep");
}

/**
 * Both: the remote command's output streamed to ours as it comes (a long restore's
 * progress) and kept for the caller to read (its row counts); it reads no input.
 */
export async function streamFromHost(c: HostConnection, remote: string[]): Promise<{ code: number; stdout: string }> {
  return withPinnedHost(c, remote, { noStdin: true }, "stream-and-keep");
}

/** The sentence for ssh's exit 255: the address, and that port 22 is open only to `host.adminCidrs`. */
export function unreachableMessage(c: HostConnection, stack: string, adminCidrs: readonly string[]): string {
  return (
    `could not reach ${c.user}@${c.host} on port 22 (ssh exited 255, see its message above).\n` +
    `Port 22 of stack ${stack} is open only to host.adminCidrs (${adminCidrs.length > 0 ? adminCidrs.join(", ") : "none: add one in stacks/"}): ` +
    `run this from an address listed there. If ssh refused the host key or the SSH key, check --host-key and --key.`
  );
}

/** Pulumi.yaml lives at the repository root, whatever the caller's folder. */
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The flags that stand in for what the stack would give, with where the stack keeps each. */
export const FROM_STACK = {
  host: "--host <ip> (output staticIp)",
  user: "--user <name> (output sshUser)",
  hostKey: "--host-key '<ssh-ed25519 AAAA…>' (output hostKey)",
  key: "--key <path> (config timetracker:sshPrivateKeyPath)",
} as const;

/** The connection flags' usage lines, the same for every command that reaches the host. */
export const CONNECTION_USAGE = `  --host <ip> --user <name> --key <path> --host-key '<ssh-ed25519 AAAA…>'
           how to reach the host; each one left out is read from the stack with the Pulumi CLI
           (outputs staticIp, sshUser, hostKey; config timetracker:sshPrivateKeyPath)`;

/** Runs the Pulumi CLI; a missing CLI or a failure is the user's to fix, with what to pass instead. */
async function pulumi(args: string[], instead: string): Promise<string> {
  let result;
  try {
    result = await exec("pulumi", args, { cwd: REPO_ROOT });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError(`the Pulumi CLI is not installed (or not on PATH), so the stack cannot be read: pass ${instead}`);
    }
    throw error;
  }
  if (result.code !== 0) {
    const reason = result.stderr.trim().split("\n").filter(Boolean).at(-1) ?? `exit ${result.code}`;
    throw new InputError(`\`pulumi ${args.join(" ")}\` failed: ${reason}\nLog in to the stack's state backend (pulumi login), or pass ${instead}`);
  }
  return result.stdout.trim();
}

/** The connection: each value given on the command line, the rest from the stack's outputs and config. */
export async function connectionFor(stack: string, given: Partial<HostConnection>): Promise<HostConnection> {
  const c = { ...given };
  const fields = Object.keys(FROM_STACK) as (keyof HostConnection)[];
  const missing = () => fields.filter((f) => c[f] === undefined);
  const instead = () => missing().map((f) => FROM_STACK[f]).join(", ");
  if (c.host === undefined || c.user === undefined || c.hostKey === undefined) {
    const text = await pulumi(["stack", "output", "--json", "--show-secrets=false", "--stack", stack], instead());
    let outputs: Record<string, unknown>;
    try {
      outputs = JSON.parse(text || "{}") as Record<string, unknown>;
    } catch {
      throw new InputError(`\`pulumi stack output --json\` did not print JSON: pass ${instead()}`);
    }
    const read = (name: string) => (typeof outputs[name] === "string" && outputs[name] !== "" ? (outputs[name] as string) : undefined);
    c.host ??= read("staticIp");
    c.user ??= read("sshUser");
    c.hostKey ??= read("hostKey");
    const lacking = missing().filter((f) => f !== "key");
    if (lacking.length > 0) {
      throw new InputError(
        `stack ${stack} has no outputs to reach its host (not deployed yet, or deployed before this version): run pulumi up, or pass ${lacking.map((f) => FROM_STACK[f]).join(", ")}`,
      );
    }
  }
  if (c.key === undefined) {
    c.key = await pulumi(["config", "get", "--stack", stack, "timetracker:sshPrivateKeyPath"], FROM_STACK.key);
    if (c.key === "") throw new InputError(`stack ${stack} has no timetracker:sshPrivateKeyPath: pass ${FROM_STACK.key}`);
  }
  return c as HostConnection;
}

/**
 * The connection from the command line's `--host --user --key --host-key` (strings or
 * undefined) and the stack, checked: a bad value or a missing key file is an InputError.
 */
export async function checkedConnection(stack: string, values: Record<string, unknown>): Promise<HostConnection> {
  const given = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  const connection = await connectionFor(stack, {
    host: given("host"),
    user: given("user"),
    key: given("key"),
    hostKey: given("host-key")?.trim(),
  });
  const problems = connectionProblems(connection);
  if (problems.length > 0) throw new InputError(problems.join("\n"));
  if (!existsSync(expandHome(connection.key))) throw new InputError(`--key: ${connection.key} does not exist (the stack's SSH private key)`);
  return connection;
}
