import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commitAll, copyRepo, git, removeCopies, REPO, TSX } from "./repo-copy.js";
import { removeTree } from "../scratch.js";

/**
 * The first clients must not stop every deploy: both deploy workflows gate on `npm test`.
 * In a copy of the repository (a git repository of its own, as a CI checkout is), two
 * clients are added with `new-client`, committed, and the catalog-dependent tiers of the
 * suite (test/core and test/program: every test that reads stacks/catalog.ts, rendered/
 * or resources/) are run there. Each of their test files must pass with the clients in
 * the catalog. TT_NESTED=1 marks the inner run, so that this file never runs itself.
 */

const NESTED = process.env.TT_NESTED === "1";
const CLIENTS = [
  { name: "zz-alpha", domain: "timetracker.zz-alpha.example", adminCidr: "203.0.113.21/32" },
  { name: "zz-beta", domain: "timetracker.zz-beta.example", adminCidr: "198.51.100.22/32" },
];
const TIERS = ["test/core", "test/program"];
/** The files the inner run must report on, listed from this checkout (the copy holds the same). */
const FILES = TIERS.flatMap((dir) =>
  readdirSync(join(REPO, dir))
    .filter((f) => f.endsWith(".test.ts"))
    .sort()
    .map((f) => `${dir}/${f}`),
);
const INNER_TIMEOUT_MS = 12 * 60_000;

interface JsonReport {
  numTotalTests: number;
  numFailedTests: number;
  testResults: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { fullName: string; status: string; failureMessages: string[] }[];
  }[];
}

/** Runs a command to its end without blocking this worker (a minutes-long spawnSync would starve vitest's own messages). */
function runAsync(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGKILL" });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (error) => resolve({ code: null, output: `${output}\n${error.message}` }));
    child.on("close", (code) => resolve({ code, output }));
  });
}

let reportDir: string | undefined;
afterAll(() => {
  removeCopies();
  if (reportDir) removeTree(reportDir);
});

describe.skipIf(NESTED)("two clients added by new-client: the catalog-dependent tests still pass", () => {
  let root: string;
  const scaffolds: { name: string; status: number | null; stdout: string; stderr: string }[] = [];
  let statusAfterCommit: string | undefined;
  let inner: { code: number | null; output: string; seconds: number; report?: JsonReport };

  beforeAll(async () => {
    root = copyRepo("two-clients");
    commitAll(root, "the repository as it is");
    for (const client of CLIENTS) {
      const result = spawnSync(TSX, ["infra/cli/new-client.ts", client.name, "--domain", client.domain, "--admin-cidr", client.adminCidr], {
        cwd: root,
        encoding: "utf8",
        timeout: 180_000,
      });
      scaffolds.push({ name: client.name, status: result.status, stdout: result.stdout, stderr: result.stderr });
      if (result.status !== 0) return;
    }
    commitAll(root, `Add clients ${CLIENTS.map((c) => c.name).join(" and ")}`);
    statusAfterCommit = git(root, ["status", "--porcelain", "--ignored=no"]);

    // The inner run gets this process's environment minus vitest's own markers, so it starts
    // as a vitest of its own would from a shell.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("VITEST") && key !== "TEST")) as NodeJS.ProcessEnv;
    reportDir = mkdtempSync(join(tmpdir(), "two-clients-report-"));
    const reportFile = join(reportDir, "report.json");
    const started = Date.now();
    const result = await runAsync(
      join(root, "node_modules", ".bin", "vitest"),
      ["run", ...TIERS, "--reporter=json", `--outputFile=${reportFile}`],
      root,
      { ...env, TT_NESTED: "1", NO_COLOR: "1", FORCE_COLOR: "0" },
      INNER_TIMEOUT_MS,
    );
    inner = { ...result, seconds: Math.round((Date.now() - started) / 1000) };
    if (existsSync(reportFile)) inner.report = JSON.parse(readFileSync(reportFile, "utf8")) as JsonReport;
    console.log(`two-clients: the inner run of ${TIERS.join(" ")} took ${inner.seconds} s (exit ${inner.code})`);
  }, INNER_TIMEOUT_MS + 5 * 60_000);

  it("new-client adds both, one after the other, with ports of their own", () => {
    for (const run of scaffolds) expect(run.status, `${run.name}:\n${run.stdout}${run.stderr}`).toBe(0);
    expect(scaffolds.map((s) => s.name)).toEqual(CLIENTS.map((c) => c.name));
    const catalog = readFileSync(join(root, "stacks/catalog.ts"), "utf8");
    for (const client of CLIENTS) expect(catalog).toContain(`from "./clients/${client.name}.js";`);
    const ports = CLIENTS.map((c) => readFileSync(join(root, "stacks/clients", `${c.name}.ts`), "utf8").match(/ports: \{ frontend: (\d+), backend: (\d+) \}/)?.slice(1));
    expect(ports.every((p) => p !== undefined)).toBe(true);
    expect(new Set(ports.flat()).size).toBe(4);
    // Committed like a pull request would be: nothing left out of the commit.
    expect(statusAfterCommit).toBe("");
  });

  it("the inner run reports every test file of the catalog-dependent tiers", () => {
    expect(inner, "the inner run did not start (a client could not be added)").toBeDefined();
    expect(inner.report, `no JSON report; the inner run said:\n${inner.output.slice(-4000)}`).toBeDefined();
    const reported = inner.report!.testResults.map((r) => relative(root, r.name)).sort();
    expect(reported).toEqual(FILES);
    expect(inner.report!.numTotalTests).toBeGreaterThan(100);
  });

  it.each(FILES)("%s passes with zz-alpha and zz-beta in the catalog", (file) => {
    const result = inner?.report?.testResults.find((r) => relative(root, r.name) === file);
    expect(result, `${file} is missing from the inner run's report`).toBeDefined();
    const failures = result!.assertionResults
      .filter((a) => a.status === "failed")
      .map((a) => `${a.fullName}\n    ${a.failureMessages.join("\n").split("\n").slice(0, 8).join("\n    ")}`);
    if (result!.status === "failed" && failures.length === 0) failures.push(`the file failed to run: ${result!.message ?? ""}`);
    expect(failures).toEqual([]);
  });
});
