import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import { checkPostgresUpgrade, databaseOf, deployedDatabase, type PostgresUpgrade } from "../../infra/model/postgres-upgrade.js";
import { EnvironmentSchema, type EnvironmentDefinition } from "../../infra/model/schema.js";
import { renderAll } from "../../infra/render/index.js";
import { POSTGRES_UPGRADE_TOOL, renderPostgresUpgradeTool } from "../../infra/render/postgres-upgrade.js";
import { catalog } from "../../stacks/catalog.js";
import { prod } from "../../stacks/prod.js";
import { planOf, problemAt, problemsOf, run, tempDir } from "./helpers.js";

/**
 * Postgres major upgrades: the schema takes the majors whose image keeps its data where the
 * Plan mounts it; `validate --base` refuses another major than the deployed one unless
 * postgresUpgrade names the deployed database exactly; the Plan names the new volume after the
 * major and carries the upgrade; the host's tool for it is sound shell.
 */

const PROD_VOLUME = "timetracker_postgres_data";
const FROM_15 = { major: 15, volume: PROD_VOLUME };
const upgradeFrom = (from: PostgresUpgrade["from"] = FROM_15): PostgresUpgrade => ({ from, how: "dump-and-restore", reason: "postgres 15 ends in November 2027" });

/** prod's definition on postgres 17, with or without an upgrade. */
const prodOn17 = (upgrade?: PostgresUpgrade): EnvironmentDefinition => ({
  ...prod,
  images: { postgres: "postgres:17.6-bookworm" },
  ...(upgrade ? { postgresUpgrade: upgrade } : {}),
});
const planWith = (definition: EnvironmentDefinition): Plan => planOf(definition.name, catalog.map((d) => (d.name === definition.name ? definition : d)));

describe("the schema: which majors, and an upgrade's own shape", () => {
  it.each(["postgres:15.10-bookworm", "postgres:16.4", "postgres:17.6-bookworm", `postgres:17.6@sha256:${"a".repeat(64)}`])("accepts %s", (image) => {
    expect(EnvironmentSchema.safeParse({ ...prod, images: { postgres: image } }).success).toBe(true);
  });

  it.each([
    ["postgres:14.12", "must be postgres 15.x, 16.x or 17.x"],
    ["postgres:18.1", "postgres 18's image keeps its data elsewhere"],
    [`postgres@sha256:${"a".repeat(64)}`, "its major named by its tag"],
    ["mysql:15", "must be postgres 15.x"],
  ])("refuses %s at images.postgres", (image, reason) => {
    expect(problemsOf([{ ...prod, images: { postgres: image } }])).toContainEqual(problemAt("prod.images.postgres", reason));
  });

  it("refuses an upgrade whose from is not older than images.postgres, at postgresUpgrade.from.major", () => {
    expect(problemsOf([{ ...prod, postgresUpgrade: upgradeFrom() }])).toContainEqual(problemAt("prod.postgresUpgrade.from.major", "must be older than the major of images.postgres (15)"));
    expect(problemsOf([prodOn17(upgradeFrom({ major: 17, volume: PROD_VOLUME }))])).toContainEqual(problemAt("prod.postgresUpgrade.from.major", "(17)"));
  });

  it("refuses another how and an empty reason, with their paths", () => {
    const problems = problemsOf([prodOn17({ ...upgradeFrom(), how: "start-empty" as "dump-and-restore", reason: " " })]);
    expect(problems).toContainEqual(problemAt("prod.postgresUpgrade.how"));
    expect(problems).toContainEqual(problemAt("prod.postgresUpgrade.reason", "must say why the major changes"));
  });
});

describe("the Plan: the new major's volume, and the upgrade", () => {
  it("keeps the deployed names on postgres 15 and records the major", () => {
    const plan = planOf("prod");
    expect(plan.database.major).toBe(15);
    expect(plan.volumes.database).toBe(PROD_VOLUME);
    expect(plan.postgresUpgrade).toBeUndefined();
    expect(planOf("staging").volumes.database).toBe("timetracker-staging-db-data");
  });

  it("names the volume after a later major, its folder with it, and carries the upgrade's names", () => {
    const plan = planWith(prodOn17(upgradeFrom()));
    expect(plan.database.major).toBe(17);
    expect(plan.volumes.database).toBe(`${PROD_VOLUME}-pg17`);
    expect(plan.volumePaths.database).toBe(`/mnt/timetracker-data/volumes/${PROD_VOLUME}-pg17`);
    expect(plan.containers.db.volumes).toEqual([{ volume: `${PROD_VOLUME}-pg17`, path: "/var/lib/postgresql/data" }]);
    expect(plan.postgresUpgrade).toEqual({
      fromMajor: 15,
      fromVolume: PROD_VOLUME,
      fromVolumePath: `/mnt/timetracker-data/volumes/${PROD_VOLUME}`,
      restoreContainer: "timetracker-db-upgrade",
      dumpFile: "/mnt/timetracker-data/dumps/upgrade/pg15.dump",
      reason: "postgres 15 ends in November 2027",
    });
  });

  it("reads the deployed major and volume from a committed plan, an older one without database.major by its image's tag", () => {
    const text = readFileSync("rendered/prod/plan.json", "utf8");
    expect(deployedDatabase(text)).toEqual(FROM_15);
    const older = JSON.parse(text) as { database: { major?: number }; containers: { db: { image: { ref: string } } } };
    delete older.database.major;
    older.containers.db.image.ref = "postgres:16.2-bookworm";
    expect(deployedDatabase(JSON.stringify(older))).toEqual({ major: 16, volume: PROD_VOLUME });
    expect(deployedDatabase("{ nope")).toBeUndefined();
  });
});

describe("validate --base: a deployed stack keeps its major unless postgresUpgrade says so", () => {
  const next = databaseOf(planWith(prodOn17(upgradeFrom())));

  it("refuses another major without an upgrade, at images.postgres, printing the upgrade to declare", () => {
    const result = checkPostgresUpgrade("prod", FROM_15, next, undefined, false);
    expect(result.problems).toEqual([problemAt("prod.images.postgres", `is postgres 17, but the deployed stack runs postgres 15 on volume ${PROD_VOLUME}`)]);
    expect(result.problems[0]?.message).toContain(`postgresUpgrade: { from: {"major":15,"volume":"${PROD_VOLUME}"}, how: "dump-and-restore"`);
    expect(result.problems[0]?.message).toContain("docs/postgres-upgrade.md");
  });

  it("refuses an upgrade whose from.major is not the deployed major, naming the field", () => {
    const result = checkPostgresUpgrade("prod", { major: 16, volume: PROD_VOLUME }, next, upgradeFrom(), false);
    expect(result.problems).toEqual([problemAt("prod.postgresUpgrade.from.major", 'is 15, but the deployed stack has 16: postgresUpgrade.from must repeat the deployed database exactly, i.e. {"major":16')]);
  });

  it("refuses an upgrade whose from.volume is not the deployed volume, naming the field", () => {
    const result = checkPostgresUpgrade("prod", FROM_15, next, upgradeFrom({ major: 15, volume: "timetracker_pg" }), false);
    expect(result.problems).toEqual([problemAt("prod.postgresUpgrade.from.volume", `is "timetracker_pg", but the deployed stack has "${PROD_VOLUME}"`)]);
  });

  it("accepts a matching upgrade and prints what the deploy does", () => {
    const result = checkPostgresUpgrade("prod", FROM_15, next, upgradeFrom(), false);
    expect(result.problems).toEqual([]);
    expect(result.majorChanges).toBe(true);
    const text = result.notes.join("\n");
    expect(text).toContain("prod: postgres upgrade accepted (dump-and-restore): postgres 15 ends in November 2027");
    expect(text).toContain(`volumes.database: "${PROD_VOLUME}" -> "${PROD_VOLUME}-pg17"`);
    expect(text).toContain("rows of every table compared");
  });

  it("refuses a downgrade, with or without an upgrade", () => {
    for (const upgrade of [undefined, upgradeFrom()]) {
      const result = checkPostgresUpgrade("prod", { major: 17, volume: `${PROD_VOLUME}-pg17` }, FROM_15, upgrade, false);
      expect(result.problems).toEqual([problemAt("prod.images.postgres", "cannot go back to an older one")]);
    }
  });

  it("refuses an upgrade and a dataMove in one deploy", () => {
    expect(checkPostgresUpgrade("prod", FROM_15, next, upgradeFrom(), true).problems).toEqual([problemAt("prod.postgresUpgrade", "move the data first")]);
  });

  it("says an upgrade is done, or has nothing to do, once the major is the deployed one", () => {
    const done = checkPostgresUpgrade("prod", next, next, upgradeFrom(), false);
    expect(done.problems).toEqual([]);
    expect(done.notes.join("\n")).toContain("the upgrade from 15 is done; remove postgresUpgrade");
    expect(checkPostgresUpgrade("prod", FROM_15, FROM_15, undefined, false)).toEqual({ problems: [], notes: [], majorChanges: false });
    expect(checkPostgresUpgrade("prod", undefined, next, upgradeFrom(), false).notes.join("\n")).toContain("no deployed database yet");
  });
});

describe("npm run validate --base HEAD on prod moved to postgres 17", () => {
  const { dir, cleanup } = tempDir("postgres-upgrade");
  afterAll(cleanup);
  const validate = async (name: string, definition: EnvironmentDefinition) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(definition));
    const result = await run("npx", ["tsx", "infra/cli/validate.ts", "--file", path, "--base", "HEAD", "--allow-placeholders"], { timeoutMs: 45_000 });
    expect(result.spawnError).toBeUndefined();
    return result;
  };

  it("refuses it without an upgrade: one problem at images.postgres, not a dataMove for the volume it brings", async () => {
    const result = await validate("prod-17.json", prodOn17());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("prod.images.postgres: is postgres 17, but the deployed stack runs postgres 15");
    expect(result.stderr).not.toContain("prod.volumes.database");
    expect(result.stderr).toContain("1 problem found.");
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it("accepts it with a matching upgrade and prints the steps", async () => {
    const result = await validate("prod-17-upgrade.json", prodOn17(upgradeFrom()));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("prod: postgres upgrade accepted (dump-and-restore)");
    expect(result.stdout).toContain("valid: prod");
  });

  it("refuses it with a stale from, at the field", async () => {
    const result = await validate("prod-17-stale.json", prodOn17(upgradeFrom({ major: 15, volume: "old_pg" })));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('prod.postgresUpgrade.from.volume: is "old_pg", but the deployed stack has "timetracker_postgres_data"');
  });
});

describe("the host's upgrade tool", () => {
  const { dir, cleanup } = tempDir("postgres-upgrade-tool");
  afterAll(cleanup);

  it.each([
    ["without an upgrade (staging)", () => planOf("staging")],
    ["with an upgrade (prod to 17)", () => planWith(prodOn17(upgradeFrom()))],
  ])("passes shellcheck %s", (name, plan) => {
    const path = join(dir, `${name.replace(/\W+/g, "-")}.sh`);
    writeFileSync(path, renderPostgresUpgradeTool(plan()));
    const checked = spawnSync("shellcheck", ["-x", path], { encoding: "utf8" });
    expect(checked.stdout + checked.stderr).toBe("");
    expect(checked.status).toBe(0);
  });

  it("is installed by host setup and rendered with the stack's files", () => {
    const files = renderAll(planOf("prod"));
    expect(files["host-setup.sh"]).toContain(`put ${POSTGRES_UPGRADE_TOOL} 0755 <<'SH' || true\n${files["postgres-upgrade.sh"]}SH`);
  });

  it("refuses run without an upgrade in the definition, naming the field", () => {
    const path = join(dir, "staging.sh");
    writeFileSync(path, renderPostgresUpgradeTool(planOf("staging")));
    const result = spawnSync("bash", [path, "run"], { encoding: "utf8", input: "pw\n" });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe("no upgrade planned: the definition of stack staging has no postgresUpgrade (docs/postgres-upgrade.md)\n");
  });

  it("never carries a password: it is read on stdin, and the deploy sends it there", () => {
    const tool = renderPostgresUpgradeTool(planWith(prodOn17(upgradeFrom())));
    expect(tool).not.toMatch(/POSTGRES_PASSWORD=[^%]/);
    expect(tool).toContain('IFS= read -r password');
    expect(tool).toContain('--env-file "$env_file"');
  });
});
