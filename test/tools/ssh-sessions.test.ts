import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { execOk } from "../../tools/process.js";
import { keyFingerprint, sessionsOf } from "../../tools/rehearsal/ssh-sessions.js";
import { tempDir } from "../core/helpers.js";

/**
 * The rehearsal's "every remote command ran over SSH" counts the deploy's own sessions in the
 * host's sshd journal: the rehearsal's administrator uses the same user and key, before and
 * after the deploy, and must not be counted.
 */

const { dir, cleanup } = tempDir("ssh-sessions");
afterAll(cleanup);

const DEPLOY_KEY = "SHA256:2q0Lk3ynWYzCg0nbjPDbM6XqkNgmnBD0m5Ckh3YqUhs";
const OTHER_KEY = "SHA256:Nw8e1mAyW1cWcCqB2+H8o1dU1Wq0/5QUvq9i5Xk7bYc";
const accepted = (seconds: string, user: string, key: string) =>
  `${seconds} tt-machine-1 sshd[${Math.floor(Number(seconds)) % 10000}]: Accepted publickey for ${user} from 172.31.0.1 port 40122 ssh2: ED25519 ${key}`;

// The deploy ran from 1763600000.000 to 1763600100.000 (ms: 1763600000000 .. 1763600100000).
const window = { user: "ubuntu", fingerprint: DEPLOY_KEY, from: 1763600000000, until: 1763600100000 };
const JOURNAL = [
  "1763599990.000001 tt-machine-1 sshd[101]: Server listening on 0.0.0.0 port 22.",
  accepted("1763600000.000000", "ubuntu", DEPLOY_KEY), // the ready check, at the very start
  "1763600000.500000 tt-machine-1 sshd[102]: pam_unix(sshd:session): session opened for user ubuntu(uid=1000) by (uid=0)",
  accepted("1763600042.250000", "ubuntu", DEPLOY_KEY), // host setup
  accepted("1763600050.000000", "ubuntu", OTHER_KEY), // someone else's key
  accepted("1763600051.000000", "root", DEPLOY_KEY), // another user
  "1763600060.000000 tt-machine-1 sshd[103]: Failed publickey for ubuntu from 172.31.0.1 port 40200 ssh2: ED25519 " + DEPLOY_KEY,
  accepted("1763600100.000000", "ubuntu", DEPLOY_KEY), // the Docker provider's tunnel, at the very end
  accepted("1763600100.400000", "ubuntu", DEPLOY_KEY), // the rehearsal's own tunnel, after the deploy
  accepted("1763600130.000000", "ubuntu", DEPLOY_KEY), // the rehearsal reading this journal
].join("\n");

describe("the deploy's own SSH sessions in sshd's journal", () => {
  it("counts the accepted sessions of the deploy's user and key within its window, and nothing else", () => {
    expect(sessionsOf(JOURNAL, window)).toBe(3);
  });

  it("counts none of the rehearsal's own sessions (same user and key, after the deploy)", () => {
    const afterwards = { ...window, from: window.until + 1, until: Date.UTC(2100, 0) };
    expect(sessionsOf(JOURNAL, afterwards)).toBe(2);
    expect(sessionsOf(JOURNAL, { ...window, fingerprint: OTHER_KEY })).toBe(1);
    expect(sessionsOf(JOURNAL, { ...window, user: "root" })).toBe(1);
    expect(sessionsOf("", window)).toBe(0);
  });

  it("reads a key's fingerprint as sshd logs it: SHA256 of the key blob, unpadded base64", async () => {
    const key = join(dir, "id_ed25519");
    await execOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", key]);
    const blob = Buffer.from(readFileSync(`${key}.pub`, "utf8").split(" ")[1] ?? "", "base64");
    const expected = `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
    expect(await keyFingerprint(`${key}.pub`)).toBe(expected);
  });
});
