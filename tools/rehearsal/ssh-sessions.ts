import { execOk } from "../process.js";

/**
 * The SSH sessions a host's sshd accepted, read from `journalctl -u ssh -o short-unix`:
 * `<epoch seconds>.<micro> <host> sshd[<pid>]: Accepted publickey for <user> from <addr> port
 * <port> ssh2: <KEYTYPE> SHA256:<fingerprint>` (OpenSSH auth.c, auth_log; the key from
 * auth2-pubkey.c).
 */
const ACCEPTED = /^(\d+(?:\.\d+)?) \S+ sshd\[\d+\]: Accepted publickey for (\S+) from \S+ port \d+ ssh2: \S+ (SHA256:[A-Za-z0-9+/]+)/;

/** Whose sessions to count: a user, a key and the time the client was connecting (ms since the epoch, inclusive). */
export interface SessionClient {
  user: string;
  /** The key's `SHA256:…` fingerprint, as `ssh-keygen -l -E sha256` prints it. */
  fingerprint: string;
  from: number;
  until: number;
}

/**
 * How many sessions `client` opened. The rehearsal reaches the host as its administrator with
 * the same user and key as the deploy, but only before or after it: the deploy's window, with
 * the user and key, sets the deploy's own sessions apart from the rehearsal's.
 */
export function sessionsOf(journal: string, client: SessionClient): number {
  return journal.split("\n").filter((line) => {
    const accepted = ACCEPTED.exec(line);
    if (!accepted) return false;
    const at = Number(accepted[1]) * 1000;
    return accepted[2] === client.user && accepted[3] === client.fingerprint && at >= client.from && at <= client.until;
  }).length;
}

/** A public key's `SHA256:…` fingerprint, as sshd logs it. */
export async function keyFingerprint(publicKeyPath: string): Promise<string> {
  const printed = (await execOk("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyPath])).stdout;
  const fingerprint = printed.split(" ")[1] ?? "";
  if (!fingerprint.startsWith("SHA256:")) throw new Error(`ssh-keygen -l printed no fingerprint for ${publicKeyPath}: ${printed}`);
  return fingerprint;
}
