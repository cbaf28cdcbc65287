import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkIdentity, deployedIdentity, identityOf, identityProblems, type DataMove, type StackIdentity } from "../../infra/model/identity.js";
import { EnvironmentSchema, type EnvironmentDefinition } from "../../infra/model/schema.js";
import { renderAll } from "../../infra/render/index.js";
import { catalog } from "../../stacks/catalog.js";
import { prod } from "../../stacks/prod.js";
import { staging } from "../../stacks/staging.js";
import { planOf, problemAt, run, tempDir } from "./helpers.js";
import { tsxCommand } from "../tsx-command.js";

/**
 * The identity lock: once a stack is deployed, what names its data cannot change unless
 * the definition declares a data move whose `from` is the deployed identity.
 */

/** The plan of prod after an edit, validated with the rest of the catalog. */
const prodWith = (edit: (definition: EnvironmentDefinition) => EnvironmentDefinition) =>
  planOf("prod", catalog.map((d) => (d.name === "prod" ? edit(structuredClone(d)) : d)));

const deployed = identityOf(planOf("prod"));
const nextOf = (edit: (definition: EnvironmentDefinition) => EnvironmentDefinition) => identityOf(prodWith(edit));

const PROD_IDENTITY: StackIdentity = {
  containerPrefix: "timetracker",
  database: { name: "time_tracker", user: "postgres", password: { adoptFrom: "adoptedDbPassword" } },
  volumes: {
    database: "timetracker_postgres_data",
    redis: "timetracker_redis_data",
    caddyData: "timetracker-caddy-data",
    caddyConfig: "timetracker-caddy-config",
  },
};

describe("identityOf", () => {
  it("reads prod's names from its Plan: prefix, database, adopted key, resolved volumes", () => {
    expect(deployed).toEqual(PROD_IDENTITY);
  });

  it("has no adopted key for a stack with a generated password", () => {
    expect(identityOf(planOf("staging")).database.password).toEqual({});
  });

  it("reads the same identity from the committed rendered/prod/plan.json", () => {
    const read = deployedIdentity(readFileSync("rendered/prod/plan.json", "utf8"));
    expect(read).toEqual({ ok: true, identity: PROD_IDENTITY });
  });

  it("says why a committed plan cannot be read, instead of throwing", () => {
    expect(deployedIdentity("{ nope")).toEqual({ ok: false, message: expect.stringContaining("is not valid JSON") });
    const plan = JSON.parse(readFileSync("rendered/prod/plan.json", "utf8"));
    delete plan.volumes;
    expect(deployedIdentity(JSON.stringify(plan))).toEqual({ ok: false, message: expect.stringContaining("has no volumes") });
  });
});

describe("a deployed stack's identity is locked: each field is refused with its path", () => {
  const cases: [string, (d: EnvironmentDefinition) => EnvironmentDefinition, string][] = [
    ["prod.database.user", (d) => ({ ...d, database: { ...d.database, user: "app" } }), "timetracker_postgres_data was initialised"],
    ["prod.database.name", (d) => ({ ...d, database: { ...d.database, name: "tt" } }), "POSTGRES_* apply only to an empty data directory"],
    ["prod.database.password.adoptFrom", (d) => ({ ...d, database: { ...d.database, password: { adoptFrom: "otherKey" } } }), "bump database.password.rotation"],
    ["prod.database.password.adoptFrom", (d) => ({ ...d, database: { ...d.database, password: {} } }), 'but the deployed stack has "adoptedDbPassword"'],
    ["prod.containerPrefix", (d) => ({ ...d, containerPrefix: "tt" }), "names the running containers"],
    ["prod.volumes.database", (d) => ({ ...d, volumes: { ...d.volumes, database: "pg-new" } }), "leaves timetracker_postgres_data behind"],
    ["prod.volumes.redis", (d) => ({ ...d, volumes: { ...d.volumes, redis: undefined } }), '"timetracker-redis-data", but the deployed stack has "timetracker_redis_data"'],
    ["prod.volumes.caddyData", (d) => ({ ...d, volumes: { ...d.volumes, caddyData: "certs" } }), "Caddy's certificates"],
    ["prod.volumes.caddyConfig", (d) => ({ ...d, volumes: { ...d.volumes, caddyConfig: "caddy-conf" } }), "Caddy's configuration"],
  ];

  it.each(cases)("%s (%#)", (path, edit, why) => {
    const problems = identityProblems("prod", deployed, nextOf(edit));
    expect(problems).toContainEqual(problemAt(path, why));
    expect(problems).toContainEqual(problemAt(path, "dataMove (docs/move-data.md)"));
  });

  it("a new container prefix also names each derived volume it would abandon", () => {
    const paths = identityProblems("prod", deployed, nextOf((d) => ({ ...d, containerPrefix: "tt" }))).map((p) => p.path);
    // prod names its database and Redis volumes itself: those keep their data.
    expect(paths).toEqual(["prod.containerPrefix", "prod.volumes.caddyData", "prod.volumes.caddyConfig"]);
  });

  it("accepts edits that do not name data: a password rotation (key kept), the bundle, the ports, the domain", () => {
    const next = nextOf((d) => ({
      ...d,
      domain: "tt.shaemarcus.com",
      ports: { frontend: 3010, backend: 8090 },
      host: { ...d.host, bundle: "medium_3_0" },
      database: { ...d.database, password: { adoptFrom: "adoptedDbPassword", rotation: 1 } },
    }));
    expect(checkIdentity("prod", deployed, next)).toEqual({ problems: [], notes: [] });
  });

  it("does not lock a new stack (nothing deployed): any identity is accepted", () => {
    const next = nextOf((d) => ({ ...d, database: { ...d.database, user: "app" }, containerPrefix: "tt" }));
    expect(checkIdentity("prod", undefined, next)).toEqual({ problems: [], notes: [] });
  });
});

describe("dataMove: the only way to change a deployed identity", () => {
  const move = (how: DataMove["how"], from: StackIdentity = PROD_IDENTITY): DataMove => ({ from, how, reason: "the app must not run as the superuser" });
  const newUser = (d: EnvironmentDefinition): EnvironmentDefinition => ({
    ...d,
    database: { ...d.database, user: "app" },
    volumes: { ...d.volumes, database: "timetracker_app_pg" },
  });

  it("is accepted when from is the deployed identity exactly, and prints the operator's steps", () => {
    const result = checkIdentity("prod", deployed, nextOf(newUser), move("dump-and-restore"));
    expect(result.problems).toEqual([]);
    const text = result.notes.join("\n");
    expect(text).toContain("prod: data move accepted (dump-and-restore): the app must not run as the superuser");
    expect(text).toContain('database.user: "postgres" -> "app"');
    expect(text).toContain('volumes.database: "timetracker_postgres_data" -> "timetracker_app_pg"');
    expect(text).toContain("docs/restore-database.md");
    expect(text).toContain("pg_restore --no-owner --role=app");
    expect(text).toContain("docs/move-data.md");
    expect(text).toContain("timetracker_postgres_data) are kept untouched");
  });

  it("start-empty says the new volume starts empty and the old one is kept", () => {
    const { problems, notes } = checkIdentity("prod", deployed, nextOf(newUser), move("start-empty"));
    expect(problems).toEqual([]);
    expect(notes.join("\n")).toMatch(/timetracker_app_pg starts empty; the old volumes \(timetracker_postgres_data\) are kept untouched/);
  });

  it("is refused when from differs from the deployed identity in any field, naming each one", () => {
    const stale = { ...PROD_IDENTITY, database: { ...PROD_IDENTITY.database, user: "timetracker" } };
    const problems = identityProblems("prod", deployed, nextOf(newUser), move("dump-and-restore", stale));
    expect(problems).toContainEqual(problemAt("prod.dataMove.from.database.user", 'is "timetracker", but the deployed stack has "postgres"'));
    expect(problems).toContainEqual(problemAt("prod.database.user", "the dataMove does not apply"));
    expect(problems).toContainEqual(problemAt("prod.volumes.database", "the dataMove does not apply"));
  });

  it("is refused when from leaves out the adopted key the deployed stack has", () => {
    const noKey = { ...PROD_IDENTITY, database: { ...PROD_IDENTITY.database, password: {} } };
    const problems = identityProblems("prod", deployed, nextOf(newUser), move("start-empty", noKey));
    expect(problems).toContainEqual(problemAt("prod.dataMove.from.database.password.adoptFrom", 'is (none), but the deployed stack has "adoptedDbPassword"'));
  });

  it("is refused when the role changes inside the same database volume (POSTGRES_* would never apply)", () => {
    const next = nextOf((d) => ({ ...d, database: { ...d.database, user: "app" } }));
    for (const how of ["start-empty", "dump-and-restore"] as const) {
      expect(identityProblems("prod", deployed, next, move(how))).toEqual([problemAt("prod.volumes.database", "must name a new volume")]);
    }
  });

  it("left in place after the move (nothing changes any more) is not a problem, only a reminder", () => {
    const moved = nextOf(newUser);
    const result = checkIdentity("prod", moved, moved, move("dump-and-restore"));
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([expect.stringContaining("prod: dataMove describes a move that is not pending")]);
  });

  it("on a new stack is ignored, with a note", () => {
    expect(checkIdentity("prod", undefined, nextOf(newUser), move("start-empty"))).toEqual({
      problems: [],
      notes: ["prod: dataMove is ignored: the stack has no deployed identity yet"],
    });
  });
});

describe("dataMove in the schema", () => {
  const withMove = { ...prod, dataMove: { from: PROD_IDENTITY, how: "start-empty", reason: "fresh start" } } satisfies EnvironmentDefinition;

  it("is optional, and absent from the parsed definition when not written", () => {
    expect("dataMove" in EnvironmentSchema.parse(prod)).toBe(false);
  });

  it("never reaches the Plan: every rendered file is the same with and without it", () => {
    const plain = renderAll(planOf("prod"));
    const moved = renderAll(planOf("prod", [withMove, staging]));
    expect(moved).toEqual(plain);
    expect(plain["plan.json"]).not.toContain("dataMove");
  });

  it("rejects an unknown how and an empty reason, with their paths", () => {
    const result = EnvironmentSchema.safeParse({ ...withMove, dataMove: { ...withMove.dataMove, how: "copy", reason: " " } });
    expect(result.success).toBe(false);
    const paths = result.error?.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["dataMove.how", "dataMove.reason"]));
  });
});

describe("npm run validate applies the lock against the committed plan at --base", () => {
  const { dir, cleanup } = tempDir("identity");
  afterAll(cleanup);

  async function validate(...args: string[]) {
    const result = await run(...tsxCommand("infra/cli/validate.ts", ...args), { timeoutMs: 45_000 });
    expect(result.spawnError).toBeUndefined();
    return result;
  }
  const definitionFile = (name: string, definition: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(definition, null, 2));
    return path;
  };

  // HEAD exists in every clone (main may be the current branch, or absent in a PR checkout).
  it("refuses a prod definition file whose database.user changed: exit 1, the path and why, no stack trace", async () => {
    const path = definitionFile("prod-user.json", { ...prod, database: { ...prod.database, user: "app" } });
    const result = await validate("--file", path, "--base", "HEAD");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('prod.database.user: is "app", but the deployed stack has "postgres"');
    expect(result.stderr).toContain("docs/move-data.md");
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stdout).not.toContain("valid:");
  });

  it("refuses a prod definition file that names its bucket anew: the bucket lock, at backup.bucket.name", async () => {
    const path = definitionFile("prod-bucket.json", { ...prod, backup: { ...prod.backup, bucket: { name: "tt-prod-dumps" } } });
    const result = await validate("--file", path, "--base", "HEAD");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('prod.backup.bucket.name: gives the bucket the name "tt-prod-dumps"');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it("accepts the same change with a matching dataMove and prints the operator's steps", async () => {
    const path = definitionFile("prod-move.json", {
      ...prod,
      database: { ...prod.database, user: "app" },
      volumes: { ...prod.volumes, database: "timetracker_app_pg" },
      dataMove: { from: PROD_IDENTITY, how: "dump-and-restore", reason: "the app must not run as the superuser" },
    });
    // Whatever placeholders prod still holds (the lock is what this checks).
    const result = await validate("--file", path, "--base", "HEAD", "--allow-placeholders");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("prod: data move accepted (dump-and-restore)");
    expect(result.stdout).toContain("valid: prod");
  });

  it("refuses a base ref that does not exist, in one line: the lock is never silently off", async () => {
    const result = await validate("--base", "no-such-ref-for-the-lock");
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^--base: "no-such-ref-for-the-lock" is not a commit of this repository/)]);
    expect(result.stdout).not.toContain("valid:");
  });

  it("treats a stack with no committed plan at the base as new", async () => {
    const path = definitionFile("fixture-z.json", { name: "fixture-z", domain: "fixture-z.example.com" });
    const result = await validate("--file", path, "--base", "HEAD", "--allow-placeholders");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("fixture-z: new stack (no rendered/fixture-z/plan.json at HEAD)");
  });
});
