import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { validateCatalog } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { catalog } from "../../stacks/catalog.js";
import { removeTree } from "../scratch.js";
import { tsxCommand } from "../tsx-command.js";
import { CATALOG_WIDE } from "./catalog-wide.js";
import { catalogOf, printedSteps, scaffold, squeeze, STACK_TRACE } from "./new-client-runs.js";
import { commitAll, copyRepo, definitionsOf, git, lowestFreePair, removeCopies, REPO, secretKeyOf, treeHash } from "./repo-copy.js";
import { standInCurl } from "./stand-in-curl.js";

/**
 * The first clients must not stop every deploy: both deploy workflows gate on `npm test`.
 * In a copy of the repository, two clients are added with `new-client`, one after the other,
 * under names drawn at random each run (TT_TWO_CLIENTS=a,b picks them, to repeat a run): the
 * first through the npm script, the second by docs/add-a-client.md's step 1 as written (each
 * run regenerates every stack's files: one copy serves every check). Then:
 * - what new-client writes for each, and what it prints (the runbook's next steps);
 * - the copy differs from this checkout only by stacks/catalog.ts, the roles' index and the
 *   clients' own new files: every existing stack's rendered files and resource list are byte
 *   for byte the same;
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
/** The identifier new-client gives a client's definition: its name in camel case (none of NAMES clashes with another). */
const identifierOf = (name: string) => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

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

describe.skipIf(NESTED)("two clients added by new-client", () => {
  const names = drawNames();
  const [FIRST, SECOND] = names;
  const DOMAIN = `timetracker.${FIRST}.com`;
  const CIDR = adminCidr();
  const EMAIL = `ops@${FIRST}.com`;
  let root: string;
  let before: { names: string[]; plans: Plan[]; catalogSource: string };
  /** new-client's runs, in order: the first client's, then the second's. */
  const scaffolds: { name: string; status: number | null; stdout: string; stderr: string }[] = [];

  beforeAll(() => {
    console.log(`two-clients: adding ${names.join(" and ")} (TT_TWO_CLIENTS=${names.join(",")} repeats this run)`);
    root = copyRepo("two-clients");
    // A git repository of its own, as a CI checkout is (new-client validates against main's plans).
    commitAll(root, "the repository as it is");
    before = { ...catalogOf(root), catalogSource: readFileSync(join(root, "stacks/catalog.ts"), "utf8") };
    // Through the npm script, in the copy itself: the way the runbook says to call it.
    const result = spawnSync("npm", ["run", "--silent", "new-client", "--", FIRST, "--domain", DOMAIN, "--admin-cidr", CIDR, "--email", EMAIL], {
      cwd: root,
      encoding: "utf8",
      timeout: 180_000,
    });
    scaffolds.push({ name: FIRST, status: result.status, stdout: result.stdout, stderr: result.stderr });
  }, 200_000);

  describe("the first, through `npm run new-client`", () => {
    const first = () => scaffolds[0]!;
    const identifier = identifierOf(FIRST);

    it("exits 0 and prints the next commands", () => {
      expect(first().stderr).not.toMatch(STACK_TRACE);
      expect(first().status, first().stderr).toBe(0);
      const steps = printedSteps(first().stdout);
      for (const next of [`pulumi stack init ${FIRST}`, `gh secret set SSH_PUBLIC_KEY_${secretKeyOf(FIRST)} --env preview <`, `gh workflow run deploy-client.yml -f stack=${FIRST}`]) {
        expect(steps.some((line) => line.startsWith(next)), `${next} in:\n${steps.join("\n")}`).toBe(true);
      }
    });

    it("writes the definition with the lowest free ports beside every stack already in the catalog", () => {
      const { frontend, backend } = lowestFreePair(before.plans);
      const source = readFileSync(join(root, `stacks/clients/${FIRST}.ts`), "utf8");
      expect(source).toContain(`export const ${identifier} = {`);
      expect(source).toContain("} satisfies EnvironmentDefinition;");
      expect(source).toContain(`containerPrefix: "timetracker-${FIRST}"`);
      expect(source).toContain(`ports: { frontend: ${frontend}, backend: ${backend} }`);
      expect(source).toContain('app: { environment: "production", debug: false }');
      expect(source).toContain(`adminCidrs: ["${CIDR}"]`);
      expect(source).toContain(`tls: { mode: "acme", email: "${EMAIL}" }`);
      expect(first().stdout).toContain(`ports ${frontend}/${backend}`);
    });

    it("registers the stack in stacks/catalog.ts after every stack already there, one entry per line", () => {
      const lines = readFileSync(join(root, "stacks/catalog.ts"), "utf8").split("\n");
      const importLine = `import { ${identifier} } from "./clients/${FIRST}.js";`;
      const entry = `  ${identifier},`;
      // The new import after the last stack import; the entry last in the list; nothing else changed.
      const lastImport = before.catalogSource.split("\n").reduce((last, line, i) => (/^import .* from "\.\/.+\.js";$/.test(line) ? i : last), -1);
      expect(lines[lastImport + 1]).toBe(importLine);
      const end = lines.findIndex((line) => /^\];?$/.test(line));
      expect(lines[end - 1]).toBe(entry);
      expect(lines.filter((line) => line !== importLine && line !== entry)).toEqual(before.catalogSource.split("\n"));
      expect(catalogOf(root).names).toEqual([...before.names, FIRST]);
    });

    it("writes Pulumi.<name>.yaml with only the region and the SSH key paths", () => {
      const config = parseYaml(readFileSync(join(root, `Pulumi.${FIRST}.yaml`), "utf8")) as { config: Record<string, string> };
      expect(config).toEqual({
        config: {
          "aws:region": "us-east-1",
          "timetracker:sshPublicKeyPath": `~/.ssh/timetracker-${FIRST}.pub`,
          "timetracker:sshPrivateKeyPath": `~/.ssh/timetracker-${FIRST}`,
        },
      });
    });

    it("regenerates rendered/<name>/ from the new definition", () => {
      const { frontend, backend } = lowestFreePair(before.plans);
      const plan = JSON.parse(readFileSync(join(root, `rendered/${FIRST}/plan.json`), "utf8")) as {
        stack: string;
        domains: string[];
        containers: Record<string, { name: string; ports: { external: number }[] }>;
      };
      expect(plan.stack).toBe(FIRST);
      expect(plan.domains).toEqual([DOMAIN]);
      expect(plan.containers.backend?.name).toBe(`timetracker-${FIRST}-backend`);
      expect(readFileSync(join(root, `rendered/${FIRST}/release.sh`), "utf8")).toContain(`Release tool for stack "${FIRST}"`);
      // Each app service on its port and the standby twin 10000 above it, where a new version starts.
      expect(plan.containers.frontend?.ports.map((p) => p.external)).toEqual([frontend, frontend + 10000]);
      expect(plan.containers.backend?.ports.map((p) => p.external)).toEqual([backend, backend + 10000]);
      for (const file of ["Caddyfile", "nginx.conf", "launch.sh", "host-setup.sh", "release.sh", "topology.md"]) {
        expect(existsSync(join(root, `rendered/${FIRST}`, file)), file).toBe(true);
      }
      // The stacks already there keep their rendered files' names (the rendered/ listing grows by one).
      for (const stack of before.names) expect(existsSync(join(root, "rendered", stack, "plan.json")), stack).toBe(true);
    });

    it("regenerates resources/<name>.md when the repository has the resources script", () => {
      const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
      expect(scripts.resources ?? scripts.generate, "package.json has no resources or generate script").toBeDefined();
      expect(readFileSync(join(root, `resources/${FIRST}.md`), "utf8")).toContain(`timetracker-${FIRST}`);
    });
  });

  describe("the second, by docs/add-a-client.md's step 1 as written: new-client prints the runbook's next steps", () => {
    // The runbook is written for acme; the test runs it for the second name, with acme's name
    // (and its secrets' suffix) replaced in the runbook's own text.
    const DOC = readFileSync(join(REPO, "docs/add-a-client.md"), "utf8");
    const forName = (text: string) => text.replaceAll("ACME", secretKeyOf(SECOND)).replaceAll("acme", SECOND);
    const BEGIN = "<!-- new-client prints the commands of every sh block from here to the end marker -->";
    const END = "<!-- end of what new-client prints -->";
    const shBlocks = (text: string) => [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
    const second = () => scaffolds[1]!;
    let curlBin: string;
    /** The lowest free ports once the first client is in the catalog: the second's. */
    let expected: { frontend: number; backend: number };

    beforeAll(() => {
      expected = lowestFreePair(catalogOf(root).plans);
      // Step 1's command, exactly as the runbook writes it (line continuation, comment and all).
      const scaffoldSection = DOC.slice(DOC.indexOf("## 1. Scaffold"), DOC.indexOf(BEGIN));
      const [command] = shBlocks(scaffoldSection);
      expect(command, "docs/add-a-client.md step 1 has a ```sh block").toMatch(/^npm run new-client -- acme /);
      // Its --admin-cidr asks checkip.amazonaws.com, out of reach here: a stand-in curl answers.
      curlBin = standInCurl();
      const result = spawnSync("bash", ["-c", forName(command as string)], {
        cwd: root,
        encoding: "utf8",
        timeout: 180_000,
        env: { ...process.env, PATH: `${curlBin}:${process.env.PATH}` },
      });
      scaffolds.push({ name: SECOND, status: result.status, stdout: result.stdout, stderr: result.stderr });
    }, 200_000);
    afterAll(() => removeTree(curlBin));

    it("step 1 of the runbook scaffolds the client", () => {
      expect(second().stderr).not.toMatch(STACK_TRACE);
      expect(second().status, second().stderr).toBe(0);
      expect(existsSync(join(root, `stacks/clients/${SECOND}.ts`))).toBe(true);
    });

    it("prints the commands of steps 2 to 4, the same ones in the same order (GitHub secrets and environment included)", () => {
      expect(DOC).toContain(BEGIN);
      expect(DOC).toContain(END);
      const documented = shBlocks(forName(DOC.slice(DOC.indexOf(BEGIN), DOC.indexOf(END))))
        .flatMap((block) => block.split("\n"))
        .map(squeeze)
        .filter((line) => line !== "");
      expect(documented.length).toBeGreaterThan(10);
      for (const line of [
        `gh secret set SSH_PUBLIC_KEY_${secretKeyOf(SECOND)} --env preview < ~/.ssh/timetracker-${SECOND}.pub`,
        `gh api -X PUT "repos/{owner}/{repo}/environments/client-${SECOND}"`,
        `gh secret set SSH_PUBLIC_KEY --env client-${SECOND} < ~/.ssh/timetracker-${SECOND}.pub`,
      ]) {
        expect(documented).toContain(line);
      }
      expect(printedSteps(second().stdout)).toEqual(documented);
    });

    it("names the preview secrets the pull-request workflow reads and the environment the client deploy uses", () => {
      const pullRequest = readFileSync(join(REPO, ".github/workflows/pull-request.yml"), "utf8");
      expect(pullRequest).not.toContain("SSH_PRIVATE_KEY");
      expect(pullRequest).toContain("secrets[format('SSH_PUBLIC_KEY_{0}', matrix.key)]");
      expect(pullRequest).toContain(`ascii_upcase | gsub("-"; "_")`);
      const deployClient = readFileSync(join(REPO, ".github/workflows/deploy-client.yml"), "utf8");
      expect(deployClient).toContain("name: client-${{ inputs.stack }}");
      expect(deployClient).toMatch(/SSH_PRIVATE_KEY: \$\{\{ secrets\.SSH_PRIVATE_KEY \}\}/);
    });

    it("gives the next client the next ports and refuses the same name twice", () => {
      expect(second().status, second().stderr).toBe(0);
      expect(readFileSync(join(root, `stacks/clients/${SECOND}.ts`), "utf8")).toContain(`ports: { frontend: ${expected.frontend}, backend: ${expected.backend} }`);
      const unchanged = treeHash(root);
      const again = scaffold(root, [FIRST, "--domain", `other.${FIRST}.com`, "--admin-cidr", CIDR]);
      expect(again.status).toBe(1);
      expect(again.stderr).toContain(`a stack named "${FIRST}" already exists`);
      expect(treeHash(root)).toEqual(unchanged);
    });
  });

  describe("the catalog with both: the other stacks unchanged, the catalog-wide checks pass", () => {
    /** What git sees in the copy after the clients were added: files changed and files new (ignored ones, such as .build/, left out). */
    let changes: { modified: string[]; added: string[] } | undefined;
    let plans: Plan[] | undefined;
    let inner: { code: number | null; output: string; seconds: number; report?: JsonReport } | undefined;

    beforeAll(async () => {
      const lines = (args: string[]) => git(root, args).split("\n").filter(Boolean).sort();
      changes = { modified: lines(["diff", "--name-only", "HEAD"]), added: lines(["ls-files", "--others", "--exclude-standard"]) };
      const validated = validateCatalog(definitionsOf(root));
      if (validated.ok) plans = validated.plans;

      // The inner run gets this process's environment minus vitest's and npm's markers, so it
      // starts as a vitest of its own would from a shell (its global setup checks the tools).
      // When a client could not be added (new-client rolls back what it wrote), it runs over the catalog the copy has.
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
    }, INNER_TIMEOUT_MS + 60_000);

    it("new-client adds both, one after the other, at the end of the catalog, with ports of their own", () => {
      for (const run of scaffolds) expect(run.status, `${run.name}:\n${run.stdout}${run.stderr}`).toBe(0);
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

    // Last: it commits the copy, which the checks above compare with the repository as it was.
    it("leaves a catalog that the validate command accepts (its example domain and documentation address aside)", () => {
      // validate reads the deployed identity from git: the clients' files are committed in the copy first.
      commitAll(root, "catalog with the clients");
      const result = spawnSync(...tsxCommand("infra/cli/validate.ts", "--base", "HEAD", "--allow-placeholders"), { cwd: root, encoding: "utf8", timeout: 60_000 });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain(`valid: ${[...before.names, ...names].join(", ")}`);
    });
  });
});
