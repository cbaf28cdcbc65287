import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dockerSshOptions, hostKeyIn } from "../../infra/components/known-hosts.js";
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
