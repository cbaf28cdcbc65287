import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { execOk, exec } from "../../tools/process.js";
import { freshOperator, leftInHome } from "../../tools/rehearsal/fresh-operator.js";
import { removeTree } from "../scratch.js";

describe("a fresh operator for each rehearsal command (real ssh-agent)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fresh-operator-"));
  afterAll(() => removeTree(dir));

  it("has an empty HOME, the keys at a new path each time, loaded into its own agent, and leaves nothing behind", async () => {
    const keys = ["a", "b"].map((n) => join(dir, n));
    for (const key of keys) await execOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", key]);
    const first = await freshOperator(keys);
    const second = await freshOperator(keys.slice(0, 1));
    try {
      expect(first.home).not.toBe(second.home);
      expect(first.keyPaths[0]).not.toBe(second.keyPaths[0]);
      expect(leftInHome(first)).toEqual([]);
      expect(existsSync(`${first.keyPaths[0]}.pub`)).toBe(true);
      const listed = await exec("ssh-add", ["-l"], { env: first.env });
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout.trim().split("\n")).toHaveLength(2);
      expect((await exec("ssh-add", ["-l"], { env: second.env })).stdout.trim().split("\n")).toHaveLength(1);
      expect(first.env.SSH_AUTH_SOCK).not.toBe(second.env.SSH_AUTH_SOCK);
    } finally {
      await first.close();
      await second.close();
    }
    expect(existsSync(first.home)).toBe(false);
    expect((await exec("ssh-add", ["-l"], { env: first.env })).code).not.toBe(0);
  });
});
