import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildInputsHash, prepareBuildContext } from "../../infra/build-context.js";
import { removeTree } from "../scratch.js";

describe("a built image's tag comes from every build input", () => {
  const dir = mkdtempSync(join(tmpdir(), "build-inputs-"));
  afterAll(() => removeTree(dir));
  mkdirSync(join(dir, "src"));
  writeFileSync(join(dir, "src", "app.py"), "print('hi')\n");
  writeFileSync(join(dir, "Dockerfile"), "FROM scratch\n");
  const context = prepareBuildContext(join(dir, "src"), join(dir, "Dockerfile"), join(dir, "out"));
  const labels = { "org.opencontainers.image.revision": "a".repeat(40) };

  it("is the same for the same inputs, whatever the order of the args", () => {
    expect(buildInputsHash(context, { A: "1", B: "2" }, labels)).toBe(buildInputsHash(context, { B: "2", A: "1" }, labels));
  });

  it("changes with a build arg, a label or the context (a changed arg was once built under the old tag and answered 'already live')", () => {
    const base = buildInputsHash(context, { A: "1" }, labels);
    expect(buildInputsHash(context, { A: "2" }, labels)).not.toBe(base);
    expect(buildInputsHash(context, { A: "1", B: "" }, labels)).not.toBe(base);
    expect(buildInputsHash(context, { A: "1" }, { "org.opencontainers.image.revision": "b".repeat(40) })).not.toBe(base);
    expect(buildInputsHash({ ...context, hash: "0".repeat(64) }, { A: "1" }, labels)).not.toBe(base);
  });
});
