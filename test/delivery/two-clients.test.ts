import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateCatalog } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { catalog } from "../../stacks/catalog.js";
import { tsxCommand } from "../tsx-command.js";
import { CATALOG_WIDE } from "./catalog-wide.js";
import { commitAll, copyRepo, definitionsOf, git, removeCopies, REPO } from "./repo-copy.js";

/**
 * The first clients must not stop every deploy: both deploy workflows gate on `npm test`.
 * In a copy of the repository, two clients are added with `new-client`, one after the other,
 * under names drawn at random each run (TT_TWO_CLIENTS=a,b picks them, to repeat a run). Then:
 * - the copy differs from this checkout only by stacks/catalog.ts and the clients' own new
 *   files: every existing stack's rendered files and resource list are byte for byte the same;
 * - every existing stack's plan, derived from the larger catalog, is the plan it has now;
 * - the catalog-wide checks run once, over the larger catalog: the test files of test/core and
 *   test/program whose checks run for each stack of the catalog (CATALOG_WIDE, catalog-wide.ts:
 *   rendered/ and its freshness, caddy validate, nginx -t, shellcheck, invariants, the program
 *   under mocks) run in the copy, and each one's failures are this file's. A whole run leaves
 *   them out of its own files (vitest.config.ts): the stacks already there are checked here,
 *   their files and plans byte for byte the same. TT_NESTED=1 marks that run. When a client
 *   cannot be added, the checks still run, over the catalog the copy has.
 */

/** Names a client could have: the README's and the docs' example first, hyphens included (the file's identifier is camel case). */
const NAMES = ["acme", "globex", "initech", "umbrella", "hooli", "soylent", "acme-corp", "blue-sky", "north-wind", "tyrell"];
/**
 * Every test file of test/core and test/program, in one list or the other: those whose checks
 * run for each stack of the catalog (CATALOG_WIDE) run in the copy, over the larger catalog;
 * the others take one named stack, definitions of their own or none, and gain nothing from
 * more clients.
 */
const NOT_CATALOG_WIDE: Record<string, string> = {
  "test/core/kept-assets.test.ts": "the kept-assets tool and nginx on one plan",
  "test/core/release-candidate.test.ts": "staging's release tool, rule by rule",
  "test/core/backup-tool.test.ts": "the tool run on staging's plan (every stack's copy goes through shellcheck in tools.test)",
  "test/core/bad-definitions.test.ts": "definitions of its own beside the catalog (new-client validates the larger catalog itself)",
  "test/core/bucket-lock.test.ts": "prod's bucket",
  "test/core/build-inputs.test.ts": "image tags, no stack",
  "test/core/cli-help.test.ts": "each entry point's --help, and one stack's --stack",
  "test/core/cli.test.ts": "validate and render on staging and on definition files",
  "test/core/data-disk.test.ts": "the data-disk script on staging's plan",
  "test/core/db-credentials.test.ts": "the credentials check on one plan",
  "test/core/postgres-upgrade.test.ts": "prod moved to postgres 17 against its committed plan, and staging's upgrade tool",
  "test/core/definition-doc.test.ts": "docs/definition.md from the schema",
  "test/core/identity.test.ts": "prod's identity against edited copies of it",
  "test/core/invariants.property.test.ts": "random catalogs of its own",
  "test/core/known-hosts.test.ts": "host keys, no stack",
  "test/core/launch-script.test.ts": "the launch script on one plan",
  "test/core/ops-cli.test.ts": "staging and prod against a stand-in ssh",
  "test/core/release-crash.test.ts": "staging's plan, killed at each step",
  "test/core/restore-cli.test.ts": "staging against a stand-in ssh",
  "test/core/rollback-cli.test.ts": "staging against a stand-in ssh",
  "test/core/schema.test.ts": "the schema's defaults, no stack",
  "test/program/changes.test.ts": "edits walked on prod and a client-shaped stack of its own",
  "test/program/entry-point.test.ts": "staging's outputs",
  "test/program/host-key.test.ts": "staging's first contact",
  "test/program/preview-deployed.test.ts": "the offline preview's deployed commit, no stack's plan",
};
const TIERS = ["test/core", "test/program"];
const INNER_TIMEOUT_MS = 6 * 60_000;

const NESTED = process.env.TT_NESTED === "1";
const EXISTING = catalog.map((d) => d.name);

/** Two names, drawn at random from those no stack has yet (or TT_TWO_CLIENTS's). */
function drawNames(): [string, string] {
  const chosen = process.env.TT_TWO_CLIENTS?.split(",");
  if (chosen?.length === 2) return [chosen[0]!, chosen[1]!];
  const free = NAMES.filter((n) => !EXISTING.includes(n));
  const first = free.splice(Math.floor(Math.random() * free.length), 1)[0]!;
  return [first, free[Math.floor(Math.random() * free.length)]!];
}
/** An admin address as a user gives one (not a documentation range, which validate refuses): one of 100.64.0.0/10. */
const adminCidr = () => `100.${64 + Math.floor(Math.random() * 64)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}/32`;

interface JsonReport {
  numTotalTests: number;
  testResults: { name: string; status: string; message?: string; assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
}

/** Runs a command to its end without blocking this worker. */
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

const testFiles = (root: string) =>
  TIERS.flatMap((dir) =>
    readdirSync(join(root, dir))
      .filter((f) => f.endsWith(".test.ts"))
      .map((f) => `${dir}/${f}`),
  ).sort();

afterAll(removeCopies);

describe.skipIf(NESTED)("two clients added by new-client: the other stacks unchanged, the catalog-wide checks pass", () => {
  const clients = drawNames().map((name) => ({ name, domain: `timetracker.${name}.com`, adminCidr: adminCidr() }));
  const names = clients.map((c) => c.name);
  let root: string;
  /** What git sees in the copy after the clients were added: files changed and files new (ignored ones, such as .build/, left out). */
  let changes: { modified: string[]; added: string[] } | undefined;
  const scaffolds: { name: string; code: number | null; output: string }[] = [];
  let plans: Plan[] | undefined;
  let inner: { code: number | null; output: string; seconds: number; report?: JsonReport } | undefined;

  beforeAll(async () => {
    console.log(`two-clients: adding ${names.join(" and ")} (TT_TWO_CLIENTS=${names.join(",")} repeats this run)`);
    root = copyRepo("two-clients");
    // A git repository of its own, as a CI checkout is (new-client validates against main's plans).
    commitAll(root, "the repository as it is");
    for (const client of clients) {
      const [command, args] = tsxCommand("infra/cli/new-client.ts", client.name, "--domain", client.domain, "--admin-cidr", client.adminCidr);
      const result = await runAsync(command, args, root, process.env, 180_000);
      scaffolds.push({ name: client.name, ...result });
      // new-client rolls back what it wrote: the checks below run over the catalog the copy has.
      if (result.code !== 0) break;
    }
    const lines = (args: string[]) => git(root, args).split("\n").filter(Boolean).sort();
    changes = { modified: lines(["diff", "--name-only", "HEAD"]), added: lines(["ls-files", "--others", "--exclude-standard"]) };
    const validated = validateCatalog(definitionsOf(root));
    if (validated.ok) plans = validated.plans;

    // The inner run gets this process's environment minus vitest's and npm's markers, so it
    // starts as a vitest of its own would from a shell (its global setup checks the tools).
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith("VITEST") && !key.startsWith("npm_") && key !== "TEST" && key !== "TT_TEST_REPORT"),
    ) as NodeJS.ProcessEnv;
    const reportFile = join(root, "tmp-two-clients-report.json");
    const started = Date.now();
    const result = await runAsync(
      join(root, "node_modules", ".bin", "vitest"),
      ["run", ...Object.keys(CATALOG_WIDE), "--reporter=json", `--outputFile=${reportFile}`],
      root,
      { ...env, TT_NESTED: "1", NO_COLOR: "1", FORCE_COLOR: "0" },
      INNER_TIMEOUT_MS,
    );
    inner = { ...result, seconds: Math.round((Date.now() - started) / 1000) };
    if (existsSync(reportFile)) inner.report = JSON.parse(readFileSync(reportFile, "utf8")) as JsonReport;
    console.log(`two-clients: the catalog-wide checks over ${plans?.map((p) => p.stack).join(", ") ?? "the copy's catalog (invalid)"} took ${inner.seconds} s (exit ${inner.code})`);
  }, INNER_TIMEOUT_MS + 5 * 60_000);

  it("new-client adds both, one after the other, at the end of the catalog, with ports of their own", () => {
    for (const run of scaffolds) expect(run.code, `${run.name}:\n${run.output}`).toBe(0);
    expect(scaffolds.map((s) => s.name)).toEqual(names);
    expect(plans, "the copy's catalog is not valid").toBeDefined();
    expect(plans!.map((p) => p.stack)).toEqual([...EXISTING, ...names]);
    const published = plans!.flatMap((p) => Object.values(p.containers).flatMap((c) => c.ports.map((port) => port.external)));
    expect(new Set(published).size).toBe(published.length);
  });

  it("only the catalog and the roles' index change; every other file stays byte for byte, the rest is the clients' own", () => {
    expect(changes, "a client could not be added").toBeDefined();
    expect(changes!.modified, "files new-client's `npm run generate` changed besides these: stale here (run it and commit), or moved by the clients").toEqual(["iam/README.md", "stacks/catalog.ts"]);
    const own = (path: string) =>
      names.some((n) => [`stacks/clients/${n}.ts`, `Pulumi.${n}.yaml`, `resources/${n}.md`].includes(path) || path.startsWith(`rendered/${n}/`) || path.startsWith(`iam/deploy-${n}/`));
    expect(changes!.added.filter((path) => !own(path))).toEqual([]);
    for (const name of names) {
      expect(changes!.added).toEqual(expect.arrayContaining([`stacks/clients/${name}.ts`, `Pulumi.${name}.yaml`, `resources/${name}.md`]));
      expect(changes!.added.filter((p) => p.startsWith(`rendered/${name}/`)).length).toBeGreaterThan(1);
      expect(changes!.added).toEqual(expect.arrayContaining([`iam/deploy-${name}/permissions.json`, `iam/deploy-${name}/trust.json`]));
    }
  });

  it("every existing stack's plan is the plan it has without the clients", () => {
    expect(plans, "the copy's catalog is not valid").toBeDefined();
    const without = validateCatalog(catalog);
    expect(without.ok).toBe(true);
    for (const plan of without.ok ? without.plans : []) expect(plans!.find((p) => p.stack === plan.stack), plan.stack).toEqual(plan);
  });

  it("every test file of test/core and test/program is in one list: CATALOG_WIDE or NOT_CATALOG_WIDE", () => {
    const listed = [...Object.keys(CATALOG_WIDE), ...Object.keys(NOT_CATALOG_WIDE)].sort();
    expect(Object.keys(CATALOG_WIDE).filter((f) => f in NOT_CATALOG_WIDE), "in both lists").toEqual([]);
    expect(listed, "a test file to place in CATALOG_WIDE (catalog-wide.ts: its checks run for each stack) or NOT_CATALOG_WIDE").toEqual(testFiles(REPO));
  });

  it("the run over the larger catalog reports every CATALOG_WIDE file", () => {
    expect(inner, "the run did not start").toBeDefined();
    expect(inner!.report, `no JSON report; the run said:\n${inner!.output.slice(-4000)}`).toBeDefined();
    expect(inner!.report!.testResults.map((r) => relative(root, r.name)).sort()).toEqual(Object.keys(CATALOG_WIDE).sort());
  });

  it.each(Object.keys(CATALOG_WIDE))("%s passes with the two clients in the catalog", (file) => {
    const result = inner?.report?.testResults.find((r) => relative(root, r.name) === file);
    expect(result, `${file} is missing from the run's report`).toBeDefined();
    const failures = result!.assertionResults
      .filter((a) => a.status === "failed")
      .map((a) => `${a.fullName}\n    ${a.failureMessages.join("\n").split("\n").slice(0, 8).join("\n    ")}`);
    if (result!.status === "failed" && failures.length === 0) failures.push(`the file failed to run: ${result!.message ?? ""}`);
    expect(failures, `with clients ${names.join(", ")} (TT_TWO_CLIENTS=${names.join(",")} repeats it)`).toEqual([]);
    expect(plans?.map((p) => p.stack), "the checks passed, but without both clients: new-client failed (see above)").toEqual([...EXISTING, ...names]);
  });
});
