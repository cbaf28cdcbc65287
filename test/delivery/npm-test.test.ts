import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "../core/helpers.js";
import { REPO } from "./repo-copy.js";

/**
 * tools/test.sh, what `npm test` runs: the type check beside the tests, and the run fails when
 * either does. Stand-in `tsc` and `vitest` executables first on PATH say pass or fail (the real
 * tools check still runs first); the real ones are what every other file of the suite is.
 */

const SCRIPT = join(REPO, "tools", "test.sh");
const { dir, cleanup } = tempDir("npm-test");
afterAll(cleanup);

/** A PATH whose `tsc` and `vitest` print their name and exit with the given codes. */
function standIns(name: string, codes: { tsc: number; vitest: number }): string {
  const bin = join(dir, name);
  mkdirSync(bin, { recursive: true });
  for (const [tool, code] of Object.entries(codes)) {
    writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} stand-in: $*"\nexit ${code}\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  return `${bin}:${process.env.PATH ?? ""}`;
}

function npmTest(codes: { tsc: number; vitest: number }) {
  const path = standIns(`tsc-${codes.tsc}-vitest-${codes.vitest}`, codes);
  return spawnSync("bash", [SCRIPT, "test/core/schema.test.ts"], { cwd: REPO, encoding: "utf8", env: { ...process.env, PATH: path } });
}

describe("npm test (tools/test.sh): the type check beside the tests, both must pass (stand-in tsc and vitest)", () => {
  it("passes when both pass, and hands its arguments to vitest", () => {
    const result = npmTest({ tsc: 0, vitest: 0 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain("vitest stand-in: run test/core/schema.test.ts");
    expect(result.stdout).not.toContain("tsc stand-in");
  });

  it("fails on a type error though every test passes, and shows tsc's output", () => {
    const result = npmTest({ tsc: 2, vitest: 0 });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toContain("tsc stand-in: --noEmit");
    expect(result.stderr).toContain("the type check (tsc --noEmit) failed");
  });

  it("fails on a failed test though the types are right", () => {
    const result = npmTest({ tsc: 0, vitest: 1 });
    expect(result.status).not.toBe(0);
    expect(result.stderr).not.toContain("type check");
  });

  it("passes shellcheck", () => {
    const result = spawnSync("shellcheck", ["--norc", SCRIPT], { encoding: "utf8" });
    expect(result.status, result.stdout).toBe(0);
  });
});
