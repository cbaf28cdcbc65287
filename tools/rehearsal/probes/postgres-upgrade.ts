import { validateCatalog } from "../../../infra/model/catalog.js";
import type { EnvironmentDefinition } from "../../../infra/model/schema.js";
import { POSTGRES_UPGRADE_TOOL } from "../../../infra/render/postgres-upgrade.js";
import { catalog } from "../../../stacks/catalog.js";
import type { Rehearsal } from "../context.js";
import { withDefinition } from "../localize.js";
import { check } from "../probes.js";

/** The major the rehearsal upgrades to: Debian 13's postgresql-17 (tt-standin/postgres:17). */
const TO_IMAGE = "postgres:17.6-bookworm";

/**
 * PostgreSQL 15 -> 17 through the deploy (docs/postgres-upgrade.md): the definition names
 * postgres 17 and a postgresUpgrade from the deployed major and volume; `pulumi up` runs the
 * host's upgrade tool before it replaces the database container. The rows of every table are
 * the same before and after, the site answers with its rows, writes work on 17, the old volume
 * is kept until remove-old deletes it; removing postgresUpgrade afterwards changes no data.
 */
export async function postgresUpgrade(r: Rehearsal): Promise<void> {
  const { say, probes, deploy, plan, admin, apiHealth, readItems, items, backupTool, engineState, indented } = r;
  say("a Postgres major upgrade: 15 -> 17 by dump and restore, rows per table intact");
  const countsOf = (text: string) => new Map(text.split("\n").filter((l) => /^\w+\t\d+$/.test(l)).map((l) => l.split("\t") as [string, string]));
  const db = plan.containers.db.name;
  const major = async () => Number((await admin.ssh(`sudo -n docker exec ${db} psql -U ${plan.database.user} -d postgres -Atc 'show server_version_num'`)).stdout.trim()) / 10000 | 0;
  const fromVolume = plan.volumes.database;
  const fromPath = plan.volumePaths.database;
  let upgraded: EnvironmentDefinition = r.current;
  let toVolume = "";

  await probes.run("postgres 15 -> 17 through the deploy: the same rows in every table, the site's rows through Caddy, the old volume kept", async () => {
    check((await major()) === 15, `the database runs postgres ${await major()} before the upgrade`);
    const before = countsOf((await backupTool("counts")).stdout);
    check(before.size > 0, "no table to compare");
    upgraded = {
      ...r.current,
      images: { ...r.current.images, postgres: TO_IMAGE },
      postgresUpgrade: { from: { major: 15, volume: fromVolume }, how: "dump-and-restore", reason: "the rehearsal's upgrade probe" },
    };
    const next = validateCatalog(withDefinition(catalog, upgraded));
    check(next.ok, `the upgraded definition is not valid: ${next.ok ? "" : next.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`);
    toVolume = next.plans.find((p) => p.stack === plan.stack)?.volumes.database ?? "";
    const started = Date.now();
    const result = await deploy(upgraded);
    const seconds = (Date.now() - started) / 1000;
    check(result.ok, result.error);
    check(result.action("app-db")?.action === "replace", `the database container was not replaced: ${result.changed.join(", ")}`);
    const calls = result.progress.calls;
    const upgradeAt = calls.findIndex((c) => c.startsWith("create app-postgres-upgrade"));
    const dbDeletedAt = calls.findIndex((c) => c.startsWith("delete app-db "));
    check(upgradeAt >= 0 && dbDeletedAt > upgradeAt, `the old database container went before the upgrade ran: ${calls.join("; ")}`);
    const tool = String(engineState().entry("command:remote:Command", "app-postgres-upgrade")?.state.stdout ?? "");
    console.log(indented(tool));
    const toolSeconds = /restored and checked in (\d+) s/.exec(tool)?.[1] ?? "?";
    check((await major()) === 17, `the database runs postgres ${await major()} after the upgrade`);
    const after = countsOf((await backupTool("counts")).stdout);
    const table = [...before].map(([t, n]) => `${t} ${n} -> ${after.get(t) ?? "missing"}`);
    console.log(indented(`rows per table, postgres 15 -> 17:\n${table.join("\n")}`));
    for (const [t, n] of before) check(after.get(t) === n, `${t}: ${n} rows before, ${after.get(t) ?? "no table"} after`);
    check(after.size === before.size, `${before.size} tables before, ${after.size} after`);
    const mounted = await admin.ssh(`sudo -n docker inspect -f '{{range .Mounts}}{{.Name}}{{end}}' ${db}`);
    check(mounted.stdout.trim() === toVolume, `the database runs on ${mounted.stdout.trim()}, not ${toVolume}`);
    const kept = await admin.ssh(`sudo -n cat ${fromPath}/PG_VERSION`);
    check(kept.stdout.trim() === "15", `the old volume's folder ${fromPath} holds no postgres 15 directory: ${kept.stdout}${kept.stderr}`);
    await apiHealth();
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
    return `rows per table before -> after: ${table.join(", ")}; the deploy took ${seconds.toFixed(1)} s, the host's dump, restore and check ${toolSeconds} s; ${fromVolume} kept, ${toVolume} serving`;
  });

  await probes.run("after the upgrade: writes work on 17, postgresUpgrade removed changes no data, remove-old deletes the old volume", async () => {
    const written = await admin.ssh(
      `sudo -n docker exec ${db} psql -v ON_ERROR_STOP=1 -U ${plan.database.user} -d ${plan.database.name} -c 'create table upgrade_probe (id int); insert into upgrade_probe values (1); drop table upgrade_probe'`,
    );
    check(written.code === 0, `a write on 17 failed: ${written.stderr}`);
    const { postgresUpgrade: _done, ...settled } = upgraded;
    r.current = settled;
    const result = await deploy(r.current);
    check(result.ok, result.error);
    check(result.action("app-db") === undefined, `removing postgresUpgrade touched the database container: ${result.action("app-db")?.action}`);
    // A resource no longer declared is deleted at the end of the update: a call, not a step of the program's.
    check(result.progress.calls.some((c) => c.startsWith("delete app-postgres-upgrade")), `the upgrade command was not deleted: ${result.progress.calls.join("; ")}`);
    const status = await admin.ssh(`sudo -n ${POSTGRES_UPGRADE_TOOL} status`);
    check(status.stdout.includes(`old volume ${fromVolume} kept`), `status: ${status.stdout}${status.stderr}`);
    const removed = await admin.ssh(`sudo -n ${POSTGRES_UPGRADE_TOOL} remove-old ${fromVolume}`);
    check(removed.code === 0, `remove-old: ${removed.stderr}`);
    check((await admin.ssh(`sudo -n test -e ${fromPath}`)).code !== 0, `${fromPath} is still there`);
    await apiHealth();
    return `${result.changed.join(", ")}; ${removed.stdout.trim()}`;
  });
}
