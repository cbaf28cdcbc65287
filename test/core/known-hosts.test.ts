import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dockerSshOptions, hostKeyIn, sha256Fingerprint, verifiedHostKey } from "../../infra/components/known-hosts.js";
import { run } from "./helpers.js";
import { removeTree } from "../scratch.js";

describe("the pinned host key", () => {
  const dir = mkdtempSync(join(tmpdir(), "known-hosts-"));
  afterAll(() => removeTree(dir));

  it("is the last ssh-ed25519 line the ready check printed, without its comment", () => {
    const stdout = "some notice\nssh-ed25519 AAAAold root@a\nssh-ed25519 AAAAnew root@b\n";
    expect(hostKeyIn(stdout)).toBe("ssh-ed25519 AAAAnew");
  });

  it("refuses a ready check that printed no host key", () => {
    expect(() => hostKeyIn("ssh-rsa AAAA root@a\n")).toThrow(/no ssh-ed25519 host key/);
  });

  it("travels inside the Docker provider's ssh options, which this machine's ssh accepts, with no file of the machine that ran up", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKeyForTheTestXXXXXXXXXXXXXXXXXXXX";
    const options = dockerSshOptions(key);
    // `ssh -G` parses the options as the provider's ssh would and prints the configuration it ends with.
    const parsed = await run("ssh", ["-G", "-F", "/dev/null", ...options, "ubuntu@198.51.100.7"]);
    expect(parsed.spawnError?.code, "ssh is not installed: apt-get install openssh-client").toBeUndefined();
    expect(parsed.code, parsed.stderr).toBe(0);
    expect(parsed.stdout).toMatch(new RegExp(`^knownhostscommand /bin/echo %H ${key}$`, "m"));
    expect(parsed.stdout).toMatch(/^stricthostkeychecking (yes|true)$/m);
    expect(parsed.stdout).toMatch(/^userknownhostsfile \/dev\/null$/m);
    const paths = options.join(" ").match(/\/[\w./-]+/g) ?? [];
    expect([...new Set(paths)].sort()).toEqual(["/bin/echo", "/dev/null"]);
    expect(options.join(" ")).not.toMatch(/(^| )-i( |$)|IdentityFile/);
  });
});

describe("the first contact's host key is pinned only when Lightsail reports it", () => {
  const dir = mkdtempSync(join(tmpdir(), "host-key-"));
  afterAll(() => removeTree(dir));
  const seen = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKeyForTheTestXXXXXXXXXXXXXXXXXXXX";
  const other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnotherHostKeyForTheTestXXXXXXXXXXXXXXXXXXXX";
  const material = (line: string) => line.split(" ")[1];

  it("matches the key material, given alone or with its algorithm, or the SHA256 fingerprint", () => {
    expect(verifiedHostKey(seen, [{ algorithm: "ssh-ed25519", publicKey: material(seen) }], "i")).toBe(seen);
    expect(verifiedHostKey(seen, [{ publicKey: `${seen} root@host` }], "i")).toBe(seen);
    expect(verifiedHostKey(seen, [{ algorithm: "ssh-rsa", publicKey: "AAAArsa" }, { algorithm: "ssh-ed25519", fingerprintSHA256: sha256Fingerprint(seen) }], "i")).toBe(seen);
    expect(verifiedHostKey(seen, [{ algorithm: "ssh-ed25519", fingerprintSHA256: sha256Fingerprint(seen).slice("SHA256:".length) }], "i")).toBe(seen);
  });

  it("computes the fingerprint ssh-keygen prints", async () => {
    const key = join(dir, "key");
    const made = await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    expect(made.code, made.stderr).toBe(0);
    const listed = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${key}.pub`]);
    expect(listed.stdout.split(" ")[1]).toBe(sha256Fingerprint(readFileSync(`${key}.pub`, "utf8").trim()));
  });

  it("refuses another key, a key of another algorithm, or no key at all, naming the instance and what was seen", () => {
    const refusal = new RegExp(`^host key verification failed for timetracker-staging: the first SSH contact was answered with ${sha256Fingerprint(seen).replace(/[+/]/g, "\\$&")}`);
    expect(() => verifiedHostKey(seen, [{ algorithm: "ssh-ed25519", publicKey: material(other) }], "timetracker-staging")).toThrow(refusal);
    expect(() => verifiedHostKey(seen, [{ algorithm: "ecdsa-sha2-nistp256", publicKey: material(seen) }], "timetracker-staging")).toThrow(refusal);
    expect(() => verifiedHostKey(seen, [{ algorithm: "ssh-ed25519", fingerprintSHA256: sha256Fingerprint(other) }], "timetracker-staging")).toThrow(refusal);
    expect(() => verifiedHostKey(seen, [], "timetracker-staging")).toThrow(/Lightsail reports none for the instance\. Nothing was sent to it/);
  });
});

