import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderAll } from "../../infra/render/index.js";
import { catalog } from "../../stacks/catalog.js";
import { planOf, run, tempDir } from "./helpers.js";

const { dir, cleanup } = tempDir("cli");
afterAll(cleanup);

/** Runs a CLI entry point as a user would, from the repository root. */
async function cli(script: "validate" | "render", ...args: string[]) {
  const result = await run("npx", ["tsx", `infra/cli/${script}.ts`, ...args], { timeoutMs: 45_000 });
  expect(result.spawnError).toBeUndefined();
  // npm itself may warn about the machine's npmrc; that is not the CLI's output.
  const stderr = result.stderr
    .split("\n")
    .filter((line) => !line.startsWith("npm warn"))
    .join("\n");
  return { code: result.code, stdout: result.stdout, stderr };
}

/** A user's mistake is reported as a message, never as a stack trace. */
function expectNoStackTrace(output: string) {
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toMatch(/\b\w*Error:/);
  expect(output).not.toContain("node:internal");
}

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe("validate CLI", () => {
  it("accepts the committed catalog: exit 0 and prints valid with every stack", async () => {
    const result = await cli("validate");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`valid: ${catalog.map((d) => d.name).join(", ")}`);
  });

  it("rejects a YAML definition that takes prod's backend port, naming the field, without a stack trace", async () => {
    const path = file(
      "zz-test-client-a.yaml",
      ["name: zz-test-client-a", "domain: zz-test-client-a.example.com", "ports:", "  frontend: 3005", "  backend: 8080", ""].join("\n"),
    );
    const result = await cli("validate", "--file", path);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("zz-test-client-a.ports.backend: 8080 is already used by prod");
    expect(result.stdout).not.toContain("valid");
    expectNoStackTrace(result.stderr);
  });

  it("accepts a valid YAML definition that joins the catalog", async () => {
    const path = file("zz-test-client-b.yml", "name: zz-test-client-b\ndomain: zz-test-client-b.example.com\n");
    const result = await cli("validate", "--file", path);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("valid: zz-test-client-b");
  });

  it("reports a JSON syntax error as a clean message", async () => {
    const path = file("broken.json", '{ "name": "zz-test-client-c", "domain": }');
    const result = await cli("validate", "--file", path);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${path}: is not valid JSON`);
    expectNoStackTrace(result.stderr);
  });

  it("refuses a --base that git would read as an option, with the usage", async () => {
    const result = await cli("validate", "--base=--output=/tmp/x");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--base: "--output=/tmp/x" is not a git ref');
    expect(result.stderr).toContain("usage:");
    expectNoStackTrace(result.stderr);
  });

  it("reports a missing file as a clean message", async () => {
    const path = join(dir, "does-not-exist.yaml");
    const result = await cli("validate", "--file", path);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${path}: cannot be read (ENOENT)`);
    expectNoStackTrace(result.stderr);
  });
});

describe("render CLI", () => {
  it("--stack staging --out <dir> writes the eight files, equal to renderAll", async () => {
    const out = join(dir, "staging-out");
    const result = await cli("render", "--stack", "staging", "--out", out);
    expect(result.code, result.stderr).toBe(0);
    const expected = renderAll(planOf("staging"));
    expect(readdirSync(out).sort()).toEqual(Object.keys(expected).sort());
    expect(Object.keys(expected).sort()).toEqual(["Caddyfile", "backup.sh", "host-setup.sh", "launch.sh", "nginx.conf", "plan.json", "release.sh", "topology.md"]);
    for (const [name, content] of Object.entries(expected)) expect(readFileSync(join(out, name), "utf8"), name).toBe(content);
  });

  it("an unknown stack exits 1 listing the known stacks, without a stack trace", async () => {
    const out = join(dir, "nope-out");
    const result = await cli("render", "--stack", "nope", "--out", out);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no environment is named "nope"');
    expect(result.stderr).toContain(catalog.map((d) => d.name).join(", "));
    expect(existsSync(out)).toBe(false);
    expectNoStackTrace(result.stderr);
  });

  it("a missing --out exits 1 with the usage, without a stack trace", async () => {
    const result = await cli("render", "--stack", "staging");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("both --stack and --out are required");
    expect(result.stderr).toContain("usage:");
    expectNoStackTrace(result.stderr);
  });
});

describe("render CLI with a definition file", () => {
  it("--file <definition> --out <dir> writes the files of the file's stack, validated with the catalog", async () => {
    const path = file("zz-test-client-r.yaml", "name: zz-test-client-r\ndomain: zz-test-client-r.example.com\n");
    const out = join(dir, "zz-test-client-r-out");
    const result = await cli("render", "--file", path, "--out", out);
    expect(result.code, result.stderr).toBe(0);
    const expected = renderAll(planOf("zz-test-client-r", [...catalog, { name: "zz-test-client-r", domain: "zz-test-client-r.example.com" }]));
    expect(readdirSync(out).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, content] of Object.entries(expected)) expect(readFileSync(join(out, name), "utf8"), name).toBe(content);
  });
});
