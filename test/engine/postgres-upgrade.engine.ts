import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { renderPostgresUpgradeTool } from "../../infra/render/postgres-upgrade.js";
import { planFromDefinition, REPO_ROOT, tempDir } from "../core/helpers.js";

/**
 * The rendered Postgres upgrade tool against the machine's own Docker engine (default socket)
 * and the two stand-in images (app-images/standins/build.sh, cached): postgres 15 serving a
 * few tables, a forced difference in the rows that leaves 15 serving and writable, a refused
 * `from`, then the upgrade, postgres 17 started on the new volume as the deploy does, every
 * table's rows the same, the old volume kept until remove-old. Needs root and a Docker engine:
 * run by `npx vitest run --config test/engine/vitest.config.ts`, not by `npm test`.
 */

const PASSWORD = "S3cretEnginePassw0rd";
const prefix = `ttpgu${process.pid}`;
const OLD_VOLUME = `${prefix}_pg`;

const definition = (from: { major: number; volume: string } = { major: 15, volume: OLD_VOLUME }): EnvironmentDefinition => ({
  name: "fixture-pgup",
  domain: "pgup.example.com",
  containerPrefix: prefix,
  database: { name: "time_tracker", user: "postgres" },
  volumes: { database: OLD_VOLUME },
  images: { postgres: "tt-standin/postgres:17" },
  postgresUpgrade: { from, how: "dump-and-restore", reason: "the engine test" },
});
const plan: Plan = planFromDefinition(definition());
const db = plan.containers.db.name;
const NEW_VOLUME = plan.volumes.database;
const ROWS: Record<string, number> = { clients: 7, projects: 250, time_entries: 3000 };

const { dir, cleanup } = tempDir("pgup-engine");
/** The host's paths, below a folder of the test's own (the tool's TIMETRACKER_UPGRADE_ROOT). */
const root = join(dir, "root");
const hostPath = (path: string) => join(root, path);

function sh(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", input: options.input ?? "", env: options.env ?? process.env, timeout: 300_000 });
  return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}
const docker = (...args: string[]) => sh("docker", args);
function dockerOk(...args: string[]): string {
  const result = docker(...args);
  if (result.code !== 0) throw new Error(`docker ${args.join(" ")}: ${result.stderr}`);
  return result.stdout.trim();
}
const psql = (container: string, sql: string) => dockerOk("exec", container, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "time_tracker", "-At", "-F", "\t", "-c", sql);
const rowsOf = (container: string) =>
  Object.fromEntries(psql(container, "select table_name from information_schema.tables where table_schema = 'public' order by 1").split("\n").filter(Boolean).map((t) => [t, Number(psql(container, `select count(*) from ${t}`))]));
const majorOf = (container: string) => Number(psql(container, "show server_version_num")) / 10000 | 0;

/** A named volume bound to a folder, as the program makes each one (infra/components/app.ts). */
function volume(name: string, folder: string): void {
  mkdirSync(folder, { recursive: true });
  dockerOk("volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind", "--opt", `device=${folder}`, name);
}

/** The database container as the program starts it: the plan's name, network, volume and credentials. */
function startDb(image: string, volumeName: string): void {
  dockerOk("run", "-d", "--name", db, "--network", plan.network, "--network-alias", "db", "-e", "POSTGRES_USER=postgres", "-e", `POSTGRES_PASSWORD=${PASSWORD}`, "-e", "POSTGRES_DB=time_tracker", "--label", `timetracker.stack=${prefix}`, "-v", `${volumeName}:/var/lib/postgresql/data`, image);
  const deadline = Date.now() + 90_000;
  while (docker("exec", db, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "time_tracker").code !== 0) {
    if (Date.now() > deadline) throw new Error(`${db} (${image}) never accepted connections: ${docker("logs", "--tail", "20", db).stderr}`);
    spawnSync("sleep", ["1"]);
  }
}

const toolPath = join(dir, "timetracker-postgres-upgrade");
/** The rendered tool run as the deploy runs it: password on stdin; `path` first on PATH when given. */
function tool(args: string[], options: { file?: string; pathFirst?: string } = {}) {
  const env = { ...process.env, TIMETRACKER_UPGRADE_ROOT: root, PATH: options.pathFirst ? `${options.pathFirst}:${process.env.PATH}` : process.env.PATH };
  return sh("bash", [options.file ?? toolPath, ...args], { input: `${PASSWORD}\n`, env });
}

beforeAll(() => {
  const built = sh("bash", [join(REPO_ROOT, "app-images/standins/build.sh"), "postgres", "postgres17"]);
  if (built.code !== 0) throw new Error(`the stand-in images could not be built: ${built.stderr}`);
  // What host setup makes before a deploy: the lock's and the records' folders, every volume's folder (the new one empty).
  for (const path of ["/run/lock", plan.host.postgresUpgradesDir, plan.host.lockDir, plan.volumePaths.database]) mkdirSync(hostPath(path), { recursive: true });
  writeFileSync(toolPath, renderPostgresUpgradeTool(plan));
  dockerOk("network", "create", plan.network);
  volume(OLD_VOLUME, hostPath(plan.postgresUpgrade!.fromVolumePath));
  startDb("tt-standin/postgres:15", OLD_VOLUME);
  psql(db, `create table clients (id serial primary key, name text not null);
    create table projects (id serial primary key, client_id int references clients(id), name text);
    create table time_entries (id bigserial primary key, project_id int references projects(id), minutes int, note text, at timestamptz default now());
    insert into clients (name) select 'client ' || g from generate_series(1, ${ROWS.clients}) g;
    insert into projects (client_id, name) select 1 + g % ${ROWS.clients}, 'project ' || g from generate_series(1, ${ROWS.projects}) g;
    insert into time_entries (project_id, minutes, note) select 1 + g % ${ROWS.projects}, g % 480, repeat('x', g % 40) from generate_series(1, ${ROWS.time_entries}) g;`);
}, 600_000);

afterAll(() => {
  docker("rm", "-f", db, plan.postgresUpgrade!.restoreContainer);
  docker("volume", "rm", OLD_VOLUME, NEW_VOLUME);
  docker("network", "rm", plan.network);
  cleanup();
});

describe("the rendered upgrade tool on this machine's Docker engine, postgres 15 -> 17", () => {
  it("starts from postgres 15 serving the rows", () => {
    expect(majorOf(db)).toBe(15);
    expect(rowsOf(db)).toEqual(ROWS);
  });

  it("refuses a from that is not what runs, changing nothing", () => {
    const stale = join(dir, "stale-tool");
    writeFileSync(stale, renderPostgresUpgradeTool(planFromDefinition(definition({ major: 16, volume: OLD_VOLUME }))));
    const result = tool(["run"], { file: stale });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`refused: ${db} runs postgres 15, but postgresUpgrade.from.major is 16; nothing was changed`);
    expect(readdirSync(hostPath(plan.volumePaths.database))).toEqual([]);
    psql(db, "insert into clients (name) values ('still writable'); delete from clients where name = 'still writable'");
  });

  it("stops at a difference in the rows of a table (forced), with postgres 15 serving and writable, nothing of 17 left", () => {
    // A docker that loses one restored row: what a restore missing rows would look like.
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    const real = sh("bash", ["-c", "command -v docker"]).stdout.trim();
    writeFileSync(
      join(bin, "docker"),
      `#!/bin/bash
${real} "$@"
status=$?
if [ "$status" = 0 ] && [ "$1" = exec ] && [[ " $* " == *" pg_restore "* ]]; then
  ${real} exec "$3" psql -q -U postgres -d time_tracker -c 'delete from time_entries where id = (select min(id) from time_entries)' >/dev/null
fi
exit "$status"
`,
    );
    chmodSync(join(bin, "docker"), 0o755);
    const result = tool(["run"], { pathFirst: bin });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toContain(`  time_entries ${ROWS.time_entries} -> ${ROWS.time_entries! - 1}`);
    expect(result.stderr).toContain("FAILED: the rows per table differ between postgres 15 and postgres 17");
    expect(result.stderr).toContain("postgres 15 in " + db + " serves on, and accepts writes to time_tracker again");
    expect(majorOf(db)).toBe(15);
    expect(rowsOf(db)).toEqual(ROWS);
    psql(db, "insert into clients (name) values ('written after'); delete from clients where name = 'written after'");
    expect(docker("inspect", plan.postgresUpgrade!.restoreContainer).code).not.toBe(0);
    expect(readdirSync(hostPath(plan.volumePaths.database))).toEqual([]);
    expect(readFileSync(hostPath(`${plan.host.postgresUpgradesDir}/${NEW_VOLUME}`), "utf8")).toContain("state=failed");
  });

  let upgraded = { stdout: "", seconds: 0 };
  it("upgrades: dumps 15 with 17's pg_dump, restores into the new volume, the same rows per table", () => {
    const started = Date.now();
    const result = tool(["run"]);
    upgraded = { stdout: result.stdout, seconds: (Date.now() - started) / 1000 };
    expect(result.code, result.stderr).toBe(0);
    for (const [table, rows] of Object.entries(ROWS)) expect(result.stdout).toContain(`  ${table} ${rows} -> ${rows}\n`);
    expect(result.stdout).toContain(`kept: ${OLD_VOLUME}`);
    expect(readFileSync(hostPath(`${plan.volumePaths.database}/PG_VERSION`), "utf8").trim()).toBe("17");
    expect(readFileSync(hostPath(`${plan.postgresUpgrade!.fromVolumePath}/PG_VERSION`), "utf8").trim()).toBe("15");
    expect(existsSync(hostPath(plan.postgresUpgrade!.dumpFile))).toBe(false);
    // Until the deploy replaces it, postgres 15 serves reads and refuses writes: none can be lost.
    expect(rowsOf(db)).toEqual(ROWS);
    expect(docker("exec", db, "psql", "-U", "postgres", "-d", "time_tracker", "-c", "insert into clients (name) values ('late')").stderr).toContain("read-only transaction");
    expect(tool(["run"]).stdout).toContain("nothing to do");
  });

  it("postgres 17 on the new volume (the deploy's new db container) serves the same rows per table; the old volume is kept", () => {
    dockerOk("stop", "-t", "60", db);
    dockerOk("rm", db);
    volume(NEW_VOLUME, hostPath(plan.volumePaths.database));
    startDb("tt-standin/postgres:17", NEW_VOLUME);
    expect(majorOf(db)).toBe(17);
    expect(rowsOf(db)).toEqual(ROWS);
    psql(db, "insert into clients (name) values ('written on 17')");
    expect(dockerOk("volume", "ls", "-q")).toContain(OLD_VOLUME);
    const status = tool(["status"]);
    expect(status.stdout).toContain(`${NEW_VOLUME}: postgres 15 -> 17, done`);
    expect(status.stdout).toContain(`old volume ${OLD_VOLUME} kept in ${plan.postgresUpgrade!.fromVolumePath}`);
    console.log(`upgrade took ${upgraded.seconds.toFixed(1)} s:\n${upgraded.stdout}`);
  });

  it("remove-old deletes the kept volume and its folder, and only that", () => {
    const result = tool(["remove-old", OLD_VOLUME]);
    expect(result.code, result.stderr).toBe(0);
    expect(dockerOk("volume", "ls", "-q").split("\n")).not.toContain(OLD_VOLUME);
    expect(existsSync(hostPath(plan.postgresUpgrade!.fromVolumePath))).toBe(false);
    expect(rowsOf(db)).toEqual({ ...ROWS, clients: ROWS.clients! + 1 });
    expect(tool(["remove-old", OLD_VOLUME]).stderr).toContain("was removed already");
  });
});
