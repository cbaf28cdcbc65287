import { createHash } from "node:crypto";

/**
 * The `ssh` options the Docker provider runs its local `ssh` with. The pinned host key
 * travels inside them (OpenSSH's KnownHostsCommand, 8.5 or newer): nothing is read from or
 * written to the machine that runs `pulumi up`. A later `up` on another machine (a fresh
 * CI runner, a laptop) deletes an old host's objects with the options the state recorded,
 * so they must hold no file path; the key itself comes from the operator's ssh-agent
 * (SSH_AUTH_SOCK), as it does for the remote commands.
 */
export function dockerSshOptions(hostKey: string): string[] {
  return [
    "-o", "StrictHostKeyChecking=yes",
    // No known_hosts file is read or written: the only key accepted is the one printed here.
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", `KnownHostsCommand=/bin/echo %H ${hostKey}`,
    "-o", `HostKeyAlgorithms=${hostKey.split(" ")[0]}`,
    "-o", "ServerAliveInterval=30",
  ];
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

/** One host key as Lightsail reports it (GetInstanceAccessDetails `hostKeys`). */
export interface ReportedHostKey {
  algorithm?: string;
  /** The key material, with or without its algorithm in front. */
  publicKey?: string;
  /** `SHA256:<base64>` (or without the prefix), as `ssh-keygen -l` prints it. */
  fingerprintSHA256?: string;
}

/** OpenSSH's SHA256 fingerprint of a public key blob: base64 without padding. */
export function sha256Fingerprint(keyLine: string): string {
  const blob = Buffer.from(keyLine.split(" ")[1] ?? "", "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

const sameKey = (seen: string, reported: ReportedHostKey): boolean => {
  const [algorithm, material] = seen.split(" ");
  if (reported.algorithm && reported.algorithm !== algorithm) return false;
  const publicKey = reported.publicKey?.trim();
  if (publicKey) return publicKey === material || publicKey.split(/\s+/).slice(0, 2).join(" ") === seen;
  const fingerprint = reported.fingerprintSHA256?.trim();
  return !!fingerprint && fingerprint.replace(/^SHA256:/, "") === sha256Fingerprint(seen).slice("SHA256:".length);
};

/**
 * The key the first contact saw, once Lightsail (out of band, through its API) reports the
 * same key for the instance: the pin is never a key that only the network vouched for.
 * A mismatch is refused before anything is sent to the host but the ready check.
 */
export function verifiedHostKey(seen: string, reported: readonly ReportedHostKey[], instanceName: string): string {
  if (reported.some((key) => sameKey(seen, key))) return seen;
  const listed = reported.map((k) => `${k.algorithm ?? "?"} ${k.fingerprintSHA256 ?? k.publicKey ?? "?"}`).join(", ") || "none";
  throw new Error(
    `host key verification failed for ${instanceName}: the first SSH contact was answered with ${sha256Fingerprint(seen)}, ` +
      `but Lightsail reports ${listed} for the instance. Nothing was sent to it. Another machine may be answering at its address: ` +
      `check the static IP's attachment, then run \`pulumi up\` again.`,
  );
}
