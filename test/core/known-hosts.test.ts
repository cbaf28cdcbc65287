import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hostKeyIn, knownHostsPath, writeKnownHosts } from "../../infra/components/known-hosts.js";
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

  it("is written beside the stack's private key as one known_hosts line, replacing the old instance's", () => {
    const path = knownHostsPath(join(dir, "id_ed25519"));
    writeKnownHosts(path, "198.51.100.7", "ssh-ed25519 AAAAold");
    writeKnownHosts(path, "198.51.100.7", "ssh-ed25519 AAAAnew");
    expect(readFileSync(path, "utf8")).toBe("198.51.100.7 ssh-ed25519 AAAAnew\n");
  });
});
