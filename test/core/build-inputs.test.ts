import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildInputsHash, prepareBuildContext } from "../../infra/build-context.js";
import { REPO_ROOT } from "./helpers.js";
import { removeTree } from "../scratch.js";
import { tsxEval } from "../tsx-command.js";

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

describe("a build context is assembled whole", () => {
  const dir = mkdtempSync(join(tmpdir(), "build-context-"));
  afterAll(() => removeTree(dir));
  mkdirSync(join(dir, "src", "pkg"), { recursive: true });
  for (let i = 0; i < 200; i++) writeFileSync(join(dir, "src", "pkg", `m${i}.py`), `x = ${i}\n`);
  writeFileSync(join(dir, "Dockerfile"), "FROM scratch\n");

  it("by four programs of one checkout at once (two previews of a stack once raced to ENOENT)", async () => {
    const module = join(REPO_ROOT, "infra/build-context.ts");
    const script = `import(${JSON.stringify(module)}).then(({ prepareBuildContext }) => {
for (let i = 0; i < 15; i++) prepareBuildContext(${JSON.stringify(join(dir, "src"))}, ${JSON.stringify(join(dir, "Dockerfile"))}, ${JSON.stringify(join(dir, "out"))});
});`;
    const runs = Array.from({ length: 4 }, () => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(...tsxEval(script), { cwd: REPO_ROOT });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (code) => resolve({ code, stderr }));
    }));
    for (const result of await Promise.all(runs)) expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(join(dir, "out", "pkg"))).toHaveLength(200);
    expect(readdirSync(dir).sort()).toEqual(["Dockerfile", "out", "src"]);
  }, 60_000);
});
