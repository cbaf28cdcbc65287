import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, homedir, tmpdir } from "node:os";
import { join } from "node:path";

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

/** ssh's arguments: the key, only the pinned host key accepted, never a prompt. */
export function sshArgs(c: HostConnection, knownHostsFile: string, remote: string[]): string[] {
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
    `${c.user}@${c.host}`,
    ...remote,
  ];
}

/**
 * Runs `remote` on the host with the local `ssh`, its output streamed to ours, and
 * resolves to ssh's exit code (the remote command's, or 255 when ssh itself failed).
 * The host key is accepted only as pinned: a temporary known_hosts file holds the one
 * line `<host> <hostKey>`, and is removed afterwards.
 */
export async function runOnHost(c: HostConnection, remote: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "timetracker-ssh-"));
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `${c.host} ${c.hostKey}\n`, { mode: 0o600 });
  // Ctrl-C reaches ssh too (same process group); wait for it to end, then clean up.
  const ignore = () => {};
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn("ssh", sshArgs(c, knownHosts, remote), { stdio: "inherit" });
      child.on("error", (error: NodeJS.ErrnoException) => reject(error));
      child.on("close", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    });
  } finally {
    process.off("SIGINT", ignore);
    process.off("SIGTERM", ignore);
    rmSync(dir, { recursive: true, force: true });
  }
}
