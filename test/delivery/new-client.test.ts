import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { validateCatalog } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { removeTree } from "../scratch.js";
import { tsxCommand, tsxEval } from "../tsx-command.js";
import { commitAll, copyRepo, lowestFreePair, removeCopies, REPO, secretKeyOf, treeHash } from "./repo-copy.js";
import { standInCurl } from "./stand-in-curl.js";

/**
 * `npm run new-client` on throw-away copies of this repository: what it writes when it
 * succeeds, and that it writes nothing (byte for byte) when it refuses or fails. The
 * clients it adds are named zz-test-…, which no real client takes, and every expectation
 * about the stacks already there is read from the copy's own catalog: the tests hold
 * whatever clients stacks/catalog.ts lists.
 */

const STACK_TRACE = /^\s+at .+:\d+:\d+\)?$/m;

/** The stacks of the copy's catalog, loaded in a child process (this one has the repository's loaded already). */
function catalogOf(root: string): { names: string[]; plans: Plan[] } {
  const script = `import { catalog } from "./stacks/catalog.ts"; console.log(JSON.stringify(catalog));`;
  const result = spawnSync(...tsxEval(script), { cwd: root, encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`cannot load the catalog of ${root}:\n${result.stderr}`);
  const validated = validateCatalog(JSON.parse(result.stdout) as unknown[]);
  if (!validated.ok) throw new Error(`the catalog of ${root} is invalid: ${JSON.stringify(validated.problems)}`);
  return { names: validated.plans.map((p) => p.stack), plans: validated.plans };
}

/** Runs the repository's scaffolder against `root` (through --root, as a user's checkout would). */
function scaffold(root: string, args: string[]) {
  const result = spawnSync(...tsxCommand(join(REPO, "infra/cli/new-client.ts"), ...args, "--root", root), {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The lines printed after "Next", blank lines dropped, spaces squeezed. */
function printedSteps(stdout: string): string[] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((line) => line.startsWith("Next"));
  expect(start, `no "Next" in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  return lines.slice(start + 1).map(squeeze).filter((line) => line !== "");
}
const squeeze = (line: string) => line.trim().replace(/\s+/g, " ");

afterAll(removeCopies);

describe("new-client: success", () => {
  const NAME = "zz-test-client-a";
  const DOMAIN = "timetracker.zz-test-client-a.example";
  let root: string;
  let before: { names: string[]; plans: Plan[]; catalogSource: string };
  let run: { status: number | null; stdout: string; stderr: string };

  beforeAll(() => {
    root = copyRepo("new-client");
    before = { ...catalogOf(root), catalogSource: readFileSync(join(root, "stacks/catalog.ts"), "utf8") };
    // Through the npm script, in the copy itself: the way the runbook says to call it.
    const result = spawnSync(
      "npm",
      ["run", "--silent", "new-client", "--", NAME, "--domain", DOMAIN, "--admin-cidr", "198.51.100.7/32", "--email", "ops@zz-test-client-a.example"],
      { cwd: root, encoding: "utf8", timeout: 120_000 },
    );
    run = { status: result.status, stdout: result.stdout, stderr: result.stderr };
  });

  it("exits 0 and prints the next commands", () => {
    expect(run.stderr).not.toMatch(STACK_TRACE);
    expect(run.status, run.stderr).toBe(0);
    const steps = printedSteps(run.stdout);
    for (const next of [`pulumi stack init ${NAME}`, `gh secret set SSH_PUBLIC_KEY_${secretKeyOf(NAME)} --env preview <`, `gh workflow run deploy-client.yml -f stack=${NAME}`]) {
      expect(steps.some((line) => line.startsWith(next)), `${next} in:\n${steps.join("\n")}`).toBe(true);
    }
  });

  it("writes the definition with the lowest free ports beside every stack already in the catalog", () => {
    const { frontend, backend } = lowestFreePair(before.plans);
    const source = readFileSync(join(root, `stacks/clients/${NAME}.ts`), "utf8");
    expect(source).toContain("export const zzTestClientA = {");
    expect(source).toContain("} satisfies EnvironmentDefinition;");
    expect(source).toContain(`containerPrefix: "timetracker-${NAME}"`);
    expect(source).toContain(`ports: { frontend: ${frontend}, backend: ${backend} }`);
    expect(source).toContain('app: { environment: "production", debug: false }');
    expect(source).toContain('adminCidrs: ["198.51.100.7/32"]');
    expect(source).toContain('tls: { mode: "acme", email: "ops@zz-test-client-a.example" }');
    expect(run.stdout).toContain(`ports ${frontend}/${backend}`);
  });

  it("registers the stack in stacks/catalog.ts after every stack already there, one entry per line", () => {
    const catalog = readFileSync(join(root, "stacks/catalog.ts"), "utf8");
    const lines = catalog.split("\n");
    const importLine = `import { zzTestClientA } from "./clients/${NAME}.js";`;
    // The new import after the last stack import; the entry last in the list; nothing else changed.
    const lastImport = before.catalogSource.split("\n").reduce((last, line, i) => (/^import .* from "\.\/.+\.js";$/.test(line) ? i : last), -1);
    expect(lines[lastImport + 1]).toBe(importLine);
    const end = lines.findIndex((line) => /^\];?$/.test(line));
    expect(lines[end - 1]).toBe("  zzTestClientA,");
    expect(lines.filter((line) => line !== importLine && line !== "  zzTestClientA,")).toEqual(before.catalogSource.split("\n"));
    expect(catalogOf(root).names).toEqual([...before.names, NAME]);
  });

  it(`writes Pulumi.${NAME}.yaml with only the region and the SSH key paths`, () => {
    const config = parseYaml(readFileSync(join(root, `Pulumi.${NAME}.yaml`), "utf8")) as { config: Record<string, string> };
    expect(config).toEqual({
      config: {
        "aws:region": "us-east-1",
        "timetracker:sshPublicKeyPath": `~/.ssh/timetracker-${NAME}.pub`,
        "timetracker:sshPrivateKeyPath": `~/.ssh/timetracker-${NAME}`,
      },
    });
  });

  it(`regenerates rendered/${NAME}/ from the new definition`, () => {
    const { frontend, backend } = lowestFreePair(before.plans);
    const plan = JSON.parse(readFileSync(join(root, `rendered/${NAME}/plan.json`), "utf8")) as {
      stack: string;
      domains: string[];
      containers: Record<string, { name: string; ports: { external: number }[] }>;
    };
    expect(plan.stack).toBe(NAME);
    expect(plan.domains).toEqual([DOMAIN]);
    expect(plan.containers.backend?.name).toBe(`timetracker-${NAME}-backend`);
    expect(readFileSync(join(root, `rendered/${NAME}/release.sh`), "utf8")).toContain(`Release tool for stack "${NAME}"`);
    // Each app service on its port and the standby twin 10000 above it, where a new version starts.
    expect(plan.containers.frontend?.ports.map((p) => p.external)).toEqual([frontend, frontend + 10000]);
    expect(plan.containers.backend?.ports.map((p) => p.external)).toEqual([backend, backend + 10000]);
    for (const file of ["Caddyfile", "nginx.conf", "launch.sh", "host-setup.sh", "release.sh", "topology.md"]) {
      expect(existsSync(join(root, `rendered/${NAME}`, file)), file).toBe(true);
    }
    // The stacks already there keep their rendered files' names (the rendered/ listing grows by one).
    for (const stack of before.names) expect(existsSync(join(root, "rendered", stack, "plan.json")), stack).toBe(true);
  });

  it(`regenerates resources/${NAME}.md when the repository has the resources script`, () => {
    const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.resources ?? scripts.generate, "package.json has no resources or generate script").toBeDefined();
    expect(readFileSync(join(root, `resources/${NAME}.md`), "utf8")).toContain(`timetracker-${NAME}`);
  });

  it("leaves a catalog that the validate command accepts (its example domain and documentation address aside)", () => {
    // validate reads the deployed identity from git: the copy becomes a repository of its own.
    commitAll(root, "catalog with a client");
    const result = spawnSync(...tsxCommand("infra/cli/validate.ts", "--base", "HEAD", "--allow-placeholders"), { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`valid: ${[...before.names, NAME].join(", ")}`);
  });

  // The next client in the same copy, added by the runbook's step 1 as written (one scaffold
  // serves both: each regenerates every stack's files, about 8 s of CPU).
  describe("new-client prints docs/add-a-client.md's next steps", () => {
    // The runbook is written for acme; the test runs it for a name no client takes, with acme's
    // name (and its secrets' suffix) replaced in the runbook's own text.
    const NEXT = "zz-test-client-doc";
    const DOC = readFileSync(join(REPO, "docs/add-a-client.md"), "utf8");
    const forName = (text: string) => text.replaceAll("ACME", secretKeyOf(NEXT)).replaceAll("acme", NEXT);
    const BEGIN = "<!-- new-client prints the commands of every sh block from here to the end marker -->";
    const END = "<!-- end of what new-client prints -->";
    const shBlocks = (text: string) => [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);

    let curlBin: string;
    let run: { status: number | null; stdout: string; stderr: string };
    /** The lowest free ports once the first client is in the catalog: the next client's. */
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
        timeout: 120_000,
        env: { ...process.env, PATH: `${curlBin}:${process.env.PATH}` },
      });
      run = { status: result.status, stdout: result.stdout, stderr: result.stderr };
    });
    afterAll(() => removeTree(curlBin));

    it("step 1 of the runbook scaffolds the client", () => {
      expect(run.stderr).not.toMatch(STACK_TRACE);
      expect(run.status, run.stderr).toBe(0);
      expect(existsSync(join(root, `stacks/clients/${NEXT}.ts`))).toBe(true);
    });

    it("prints the commands of steps 2 to 4, the same ones in the same order (GitHub secrets and environment included)", () => {
      expect(DOC).toContain(BEGIN);
      expect(DOC).toContain(END);
      const documented = shBlocks(forName(DOC.slice(DOC.indexOf(BEGIN), DOC.indexOf(END))))
        .flatMap((block) => block.split("\n"))
        .map(squeeze)
        .filter((line) => line !== "");
      expect(documented.length).toBeGreaterThan(10);
      for (const expected of [
        `gh secret set SSH_PUBLIC_KEY_${secretKeyOf(NEXT)} --env preview < ~/.ssh/timetracker-${NEXT}.pub`,
        `gh api -X PUT "repos/{owner}/{repo}/environments/client-${NEXT}"`,
        `gh secret set SSH_PUBLIC_KEY --env client-${NEXT} < ~/.ssh/timetracker-${NEXT}.pub`,
      ]) {
        expect(documented).toContain(expected);
      }
      expect(printedSteps(run.stdout)).toEqual(documented);
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
      expect(run.status, run.stderr).toBe(0);
      expect(readFileSync(join(root, `stacks/clients/${NEXT}.ts`), "utf8")).toContain(`ports: { frontend: ${expected.frontend}, backend: ${expected.backend} }`);
      const before = treeHash(root);
      const again = scaffold(root, [NAME, "--domain", "other.zz-test-client-a.example", "--admin-cidr", "198.51.100.7/32"]);
      expect(again.status).toBe(1);
      expect(again.stderr).toContain(`a stack named "${NAME}" already exists`);
      expect(treeHash(root)).toEqual(before);
    });
  });
});

describe("new-client: refusals write nothing", () => {
  const NAME = "zz-test-client-r";
  const CIDR = ["--admin-cidr", "198.51.100.9/32"];
  const prodDomain = () => {
    const prod = catalogOf(root).plans.find((p) => p.stack === "prod");
    if (!prod) throw new Error("no stack named prod in the catalog");
    return prod.domains[0] as string;
  };
  let root: string;
  let pristine: Map<string, string>;

  beforeAll(() => {
    root = copyRepo("new-client-refusals");
    pristine = treeHash(root);
  });

  const expectRefused = (result: ReturnType<typeof scaffold>, says: RegExp[]) => {
    expect(result.status, result.stdout + result.stderr).toBe(1);
    for (const pattern of says) expect(result.stderr).toMatch(pattern);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.stdout).toBe("");
    expect(treeHash(root)).toEqual(pristine);
  };

  it.each([
    { why: "a name that is not a stack name", args: ["Acme!", "--domain", "timetracker.acme.example", ...CIDR], says: [/name "Acme!"/, /a-z, 0-9 and '-'/] },
    { why: "a name already used (staging)", args: ["staging", "--domain", "timetracker.zz-other.example", ...CIDR], says: [/name "staging"/, /already exists/] },
    {
      why: "a bad CIDR",
      args: [NAME, "--domain", "timetracker.zz-test-client-r.example", "--admin-cidr", "10.0.0.300/33"],
      says: [/--admin-cidr 10\.0\.0\.300\/33/, /IPv4 CIDR/],
    },
    { why: "no --domain", args: [NAME, ...CIDR], says: [/--domain is required/, /Run `npm run new-client -- --help`/] },
    { why: "no name", args: ["--domain", "timetracker.zz-test-client-r.example", ...CIDR], says: [/name is required/] },
    {
      why: "an unknown region",
      args: [NAME, "--domain", "timetracker.zz-test-client-r.example", "--region", "moon", ...CIDR],
      says: [/--region moon/, /AWS region/],
    },
    { why: "an unknown flag", args: [NAME, "--domain", "timetracker.zz-test-client-r.example", "--colour", "red", ...CIDR], says: [/--colour/] },
  ])("refuses $why: exit 1, a clear message, an unchanged tree", ({ args, says }) => {
    expectRefused(scaffold(root, args), says);
  });

  it("refuses prod's domain (read from the catalog by name), naming --domain and prod", () => {
    const domain = prodDomain();
    expectRefused(scaffold(root, [NAME, "--domain", domain, ...CIDR]), [new RegExp(`--domain ${domain.replace(/\./g, "\\.")}`), /already used by prod/]);
  });

  it("never leaves SSH closed to every deploy in silence: without --admin-cidr it is refused or warned about, naming the flag", () => {
    const result = scaffold(root, [NAME, "--domain", "timetracker.zz-test-client-r.example"]);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    if (result.status === 0) {
      expect(result.stdout).toContain("no --admin-cidr");
    } else {
      expectRefused(result, [/--admin-cidr/]);
    }
  });
});

describe("new-client: a failure after writing rolls every change back", () => {
  it("restores the tree when regenerating fails half way", () => {
    const NAME = "zz-test-client-f";
    const root = copyRepo("new-client-rollback");
    // A renderer that breaks after it has already changed generated files.
    writeFileSync(
      join(root, "infra/cli/render.ts"),
      `import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
mkdirSync("rendered/${NAME}/deep", { recursive: true });
writeFileSync("rendered/${NAME}/deep/partial.txt", "half");
appendFileSync("rendered/prod/Caddyfile", "# clobbered");
console.error("renderer exploded");
process.exit(3);
`,
    );
    const before = treeHash(root);
    const result = scaffold(root, [NAME, "--domain", "timetracker.zz-test-client-f.example", "--admin-cidr", "198.51.100.10/32"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("renderer exploded");
    expect(result.stderr).toMatch(/Rolled back every change/);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(treeHash(root)).toEqual(before);
  });
});
