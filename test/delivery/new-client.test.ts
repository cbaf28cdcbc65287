import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

/**
 * `npm run new-client` on throw-away copies of this repository: what it writes when it
 * succeeds, and that it writes nothing (byte for byte) when it refuses or fails.
 */

const REPO = resolve(import.meta.dirname, "../..");
const SKIP_AT_TOP = new Set(["node_modules", ".git", ".build", ".rehearsal", "tmp"]);
const copies: string[] = [];

function copyRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), "new-client-"));
  copies.push(dir);
  for (const entry of readdirSync(REPO)) {
    if (SKIP_AT_TOP.has(entry)) continue;
    cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
  return dir;
}

/** Every file of the copy (node_modules aside) and its sha256. */
function treeHash(root: string): Map<string, string> {
  const hashes = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name === "node_modules" && dir === root) continue;
      if (entry.isDirectory()) {
        hashes.set(`${relative(root, path)}/`, "dir");
        walk(path);
      } else {
        hashes.set(relative(root, path), createHash("sha256").update(readFileSync(path)).digest("hex"));
      }
    }
  };
  walk(root);
  return hashes;
}

const TSX = join(REPO, "node_modules", ".bin", "tsx");

/** Runs the repository's scaffolder against `root` (through --root, as a user's checkout would). */
function scaffold(root: string, args: string[]) {
  const result = spawnSync(TSX, [join(REPO, "infra/cli/new-client.ts"), ...args, "--root", root], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const STACK_TRACE = /^\s+at .+:\d+:\d+\)?$/m;

afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

describe("new-client: success", () => {
  let root: string;
  let run: { status: number | null; stdout: string; stderr: string };

  beforeAll(() => {
    root = copyRepo();
    // Through the npm script, in the copy itself: the way the runbook says to call it.
    const result = spawnSync(
      "npm",
      ["run", "--silent", "new-client", "--", "acme", "--domain", "timetracker.acme.example", "--admin-cidr", "198.51.100.7/32", "--email", "ops@acme.example"],
      { cwd: root, encoding: "utf8", timeout: 60_000 },
    );
    run = { status: result.status, stdout: result.stdout, stderr: result.stderr };
  });

  it("exits 0 and prints the next commands", () => {
    expect(run.stderr).not.toMatch(STACK_TRACE);
    expect(run.status, run.stderr).toBe(0);
    for (const next of ["pulumi stack init acme", "pulumi config set", "pulumi preview", "pulumi up"]) {
      expect(run.stdout).toContain(next);
    }
  });

  it("writes the definition with the next free ports after prod (3000/8080) and staging (3001/8081)", () => {
    const source = readFileSync(join(root, "stacks/clients/acme.ts"), "utf8");
    expect(source).toContain("export const acme = {");
    expect(source).toContain("} satisfies EnvironmentDefinition;");
    expect(source).toContain('containerPrefix: "timetracker-acme"');
    expect(source).toContain("ports: { frontend: 3002, backend: 8082 }");
    expect(source).toContain('app: { environment: "production", debug: false }');
    expect(source).toContain('adminCidrs: ["198.51.100.7/32"]');
    expect(source).toContain('tls: { mode: "acme", email: "ops@acme.example" }');
  });

  it("registers the stack in stacks/catalog.ts, one entry per line", () => {
    const catalog = readFileSync(join(root, "stacks/catalog.ts"), "utf8");
    expect(catalog).toContain('import { acme } from "./clients/acme.js";\n');
    expect(catalog).toMatch(/^ {2}prod,\n {2}staging,\n {2}acme,\n\];$/m);
  });

  it("writes Pulumi.acme.yaml with only the region and the SSH key paths", () => {
    const config = parseYaml(readFileSync(join(root, "Pulumi.acme.yaml"), "utf8")) as { config: Record<string, string> };
    expect(config).toEqual({
      config: {
        "aws:region": "us-east-1",
        "timetracker:sshPublicKeyPath": "~/.ssh/timetracker-acme.pub",
        "timetracker:sshPrivateKeyPath": "~/.ssh/timetracker-acme",
      },
    });
  });

  it("regenerates rendered/acme/ from the new definition", () => {
    const plan = JSON.parse(readFileSync(join(root, "rendered/acme/plan.json"), "utf8")) as {
      stack: string;
      domains: string[];
      containers: Record<string, { name: string; ports: { external: number }[] }>;
    };
    expect(plan.stack).toBe("acme");
    expect(plan.domains).toEqual(["timetracker.acme.example"]);
    expect(plan.containers.backend?.name).toBe("timetracker-acme-backend");
    expect(readFileSync(join(root, "rendered/acme/release.sh"), "utf8")).toContain('Release tool for stack "acme"');
    // Each app service on its port and the standby twin 10000 above it, where a new version starts.
    expect(plan.containers.frontend?.ports.map((p) => p.external)).toEqual([3002, 13002]);
    expect(plan.containers.backend?.ports.map((p) => p.external)).toEqual([8082, 18082]);
    for (const file of ["Caddyfile", "nginx.conf", "launch.sh", "host-setup.sh", "release.sh", "topology.md"]) {
      expect(existsSync(join(root, "rendered/acme", file)), file).toBe(true);
    }
  });

  it("regenerates resources/acme.md when the repository has the resources script", () => {
    const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.resources ?? scripts.generate, "package.json has no resources or generate script").toBeDefined();
    expect(readFileSync(join(root, "resources/acme.md"), "utf8")).toContain("timetracker-acme");
  });

  it("leaves a catalog that the validate command accepts", () => {
    const result = spawnSync(TSX, ["infra/cli/validate.ts"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain("valid: prod, staging, acme");
  });

  it("gives the next client the next ports and refuses the same name twice", () => {
    const second = scaffold(root, ["globex", "--domain", "timetracker.globex.example"]);
    expect(second.status, second.stderr).toBe(0);
    expect(readFileSync(join(root, "stacks/clients/globex.ts"), "utf8")).toContain("ports: { frontend: 3003, backend: 8083 }");
    const before = treeHash(root);
    const again = scaffold(root, ["acme", "--domain", "other.acme.example"]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('a stack named "acme" already exists');
    expect(treeHash(root)).toEqual(before);
  });
});

describe("new-client: refusals write nothing", () => {
  let root: string;
  let pristine: Map<string, string>;

  beforeAll(() => {
    root = copyRepo();
    pristine = treeHash(root);
  });

  it.each([
    { why: "a name that is not a stack name", args: ["Acme!", "--domain", "timetracker.acme.example"], says: [/name "Acme!"/, /a-z, 0-9 and '-'/] },
    { why: "a name already used", args: ["staging", "--domain", "timetracker.other.example"], says: [/name "staging"/, /already exists/] },
    { why: "prod's domain", args: ["acme", "--domain", "timetracker.shaemarcus.com"], says: [/--domain timetracker\.shaemarcus\.com/, /already used by prod/] },
    { why: "a bad CIDR", args: ["acme", "--domain", "timetracker.acme.example", "--admin-cidr", "10.0.0.300/33"], says: [/--admin-cidr 10\.0\.0\.300\/33/, /IPv4 CIDR/] },
    { why: "no --domain", args: ["acme"], says: [/--domain is required/, /usage: npm run new-client/] },
    { why: "no name", args: ["--domain", "timetracker.acme.example"], says: [/name is required/] },
    { why: "an unknown region", args: ["acme", "--domain", "timetracker.acme.example", "--region", "moon"], says: [/--region moon/, /AWS region/] },
    { why: "an unknown flag", args: ["acme", "--domain", "timetracker.acme.example", "--colour", "red"], says: [/--colour/] },
  ])("refuses $why: exit 1, a clear message, an unchanged tree", ({ args, says }) => {
    const result = scaffold(root, args);
    expect(result.status).toBe(1);
    for (const pattern of says) expect(result.stderr).toMatch(pattern);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.stdout).toBe("");
    expect(treeHash(root)).toEqual(pristine);
  });
});

describe("new-client: a failure after writing rolls every change back", () => {
  it("restores the tree when regenerating fails half way", () => {
    const root = copyRepo();
    // A renderer that breaks after it has already changed generated files.
    writeFileSync(
      join(root, "infra/cli/render.ts"),
      `import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
mkdirSync("rendered/acme/deep", { recursive: true });
writeFileSync("rendered/acme/deep/partial.txt", "half");
appendFileSync("rendered/prod/Caddyfile", "# clobbered");
console.error("renderer exploded");
process.exit(3);
`,
    );
    const before = treeHash(root);
    const result = scaffold(root, ["acme", "--domain", "timetracker.acme.example"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("renderer exploded");
    expect(result.stderr).toMatch(/Rolled back every change/);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(treeHash(root)).toEqual(before);
  });
});
