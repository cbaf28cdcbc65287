import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogOf, scaffold, STACK_TRACE } from "./new-client-runs.js";
import { copyRepo, removeCopies, treeHash } from "./repo-copy.js";

/**
 * `npm run new-client` on throw-away copies of this repository: it writes nothing (byte for
 * byte) when it refuses or fails. What it writes when it succeeds, and what it prints, is
 * checked on the two clients two-clients.test.ts adds (each successful run regenerates every
 * stack's files: one copy serves both). The clients these tests try to add are named
 * zz-test-…, which no real client takes, and every expectation about the stacks already there
 * is read from the copy's own catalog: the tests hold whatever clients stacks/catalog.ts lists.
 */

afterAll(removeCopies);

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
    // A regenerate step (npm run generate) that breaks after it has already changed generated files.
    writeFileSync(
      join(root, "tools/generate.ts"),
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
