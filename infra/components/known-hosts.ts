import { writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** Where the pinned host key of a stack's instance is kept: beside the stack's private key. */
export const knownHostsPath = (privateKeyPath: string) => `${privateKeyPath}.known_hosts`;

/**
 * Writes the host key pinned for a stack's instance as a known_hosts file for the local
 * `ssh` that the Docker provider runs. Rewritten on every run from the stack's state, so
 * a new runner has it and a replaced instance's key takes the old one's place.
 */
export function writeKnownHosts(path: string, address: string, hostKey: string): void {
  const expanded = path.startsWith("~/") ? join(homedir(), path.slice(2)) : path;
  writeFileSync(expanded, `${address} ${hostKey}\n`, { mode: 0o600 });
}

/** The host key line a `host-ready` run printed last (`ssh-ed25519 AAAA…`). */
export function hostKeyIn(stdout: string): string {
  const line = stdout
    .split("\n")
    .map((l) => l.trim())
    .reverse()
    .find((l) => l.startsWith("ssh-ed25519 "));
  if (!line) throw new Error("the ready check printed no ssh-ed25519 host key");
  return line.split(" ").slice(0, 2).join(" ");
}
