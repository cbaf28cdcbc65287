import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { releaseStateDir } from "../../../infra/render/release.js";
import { CLIENTS, type Rehearsal } from "../context.js";
import { daemonEnv, dockerApi, execOk } from "../docker.js";
import { httpRequest } from "../http.js";
import { SAMPLE_START_DELAY_SECONDS } from "../localize.js";
import { check } from "../probes.js";
import { copySampleApp } from "../sample-app.js";

/**
 * Deploys that fail safe and swaps without a gap, under client traffic through Caddy: an
 * image that never becomes ready, a failing and a good migration, a frontend swap, and
 * rollback (and the refusal to bring a rolled-back image back).
 */
export async function releases(r: Rehearsal): Promise<void> {
  const { say, probes, deploy, local, plan, web, host, admin, world, stackName, keyPath, appSource, runId, items } = r;
  const { backendId, apiHealth, containerInfo, readItems, machineHostKey, underTraffic, trafficSummary, noGap } = r;
  const swaps = r.measurements.swaps;
  say(`deploys that fail safe (the sample backend starts in ${SAMPLE_START_DELAY_SECONDS} s)`);
  const sql = async (query: string) =>
    (await execOk("docker", ["exec", plan.containers.db.name, "psql", "-U", plan.database.user, "-d", plan.database.name, "-tAc", query], { env: daemonEnv() })).stdout.trim();
  const schemaRevision = () => sql("SELECT version_num FROM alembic_version");
  const itemColumns = () => sql("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'items'");
  const liveVersion = async () => JSON.parse((await httpRequest(web, "/api/version", host)).body) as { image: string; schema: string | null };
  const releaseHistory = async () => (await admin.ssh(`sudo -n cat ${releaseStateDir(plan)}/history`)).stdout.trim().split("\n");
  const candidateGone = async () => (await dockerApi("GET", `/containers/${plan.containers.backend.release?.candidateName}/json`)).status === 404;
  const migrations = join(appSource, "backend", "migrations", "versions");
  const migration = (revision: string, down: string, upgrade: string[]) =>
    [`"""rehearsal: ${revision}"""`, "import sqlalchemy as sa", "from alembic import op", "", `revision = "${revision}"`, `down_revision = "${down}"`,
      "branch_labels = None", "depends_on = None", "", "", "def upgrade() -> None:", ...upgrade.map((l) => `    ${l}`), "", "", "def downgrade() -> None:", "    pass", ""].join("\n");

  await probes.run("an image that builds but never becomes ready: refused twice (a re-run checks again), no failed request, live backend untouched, no candidate left", async () => {
    const before = await backendId();
    const main = join(appSource, "backend", "app", "main.py");
    const source = readFileSync(main, "utf8");
    const drifted = source.replace('_env("DB_HOST", "localhost")', '_env("DB_HOSTNAME", "localhost")');
    check(drifted !== source, "the sample backend no longer reads DB_HOST as expected");
    // A renamed setting: the process starts and /health answers, but the database is never found.
    writeFileSync(main, drifted);
    const { result: [first, again], traffic } = await underTraffic("/api/health", async () => [await deploy(local), await deploy(local)]);
    copySampleApp(appSource);
    for (const run of [first, again]) {
      check(!run.ok, "the unready image went live");
      check(/failed its check: GET \/api\/health with Host localhost answered 503/.test(run.error), `unexpected failure: ${run.error.slice(0, 300)}`);
    }
    check(/Its last log lines/.test(first.error), "the refusal shows no log lines of the candidate");
    check((await backendId()) === before, "the live backend was replaced");
    check(await candidateGone(), "a candidate was left behind");
    check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed: ${traffic.failures.slice(0, 3).join("; ")}`);
    await apiHealth();
    return `${first.error.split("\n").find((l) => l.includes("failed its check"))?.slice(0, 200)}; ${trafficSummary(traffic)}`;
  });
  const headBefore = await schemaRevision().catch(() => "");
  await probes.run("a migration that fails: refused with its output, the schema unchanged, the live backend untouched", async () => {
    check(headBefore !== "", "no alembic_version in the database: the release command never ran");
    const columns = await itemColumns();
    const before = await backendId();
    writeFileSync(join(migrations, "9001_rehearsal_broken.py"), migration("9001", headBefore, ['op.add_column("items", sa.Column("half_done", sa.Text()))', 'op.execute("ALTER TABLE no_such_table ADD COLUMN x integer")']));
    const { result, traffic } = await underTraffic("/api/health", () => deploy(local));
    copySampleApp(appSource);
    check(!result.ok, "the broken migration was deployed");
    check(/the release command 'alembic upgrade head' failed/.test(result.error) && /no_such_table/.test(result.error), `unexpected failure: ${result.error.slice(0, 400)}`);
    check((await schemaRevision()) === headBefore, `the schema moved to ${await schemaRevision()}`);
    check((await itemColumns()) === columns, `the items table changed: ${await itemColumns()}`);
    check((await backendId()) === before, "the live backend was replaced");
    check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed`);
    return `schema stays ${headBefore} (${columns}); ${trafficSummary(traffic)}`;
  });
  let previousImage = "";
  let migratedImage = "";
  await probes.run(`a good migration: applied exactly once, before the swap; the new backend serves; the pre-deploy dump holds the schema before it; no gap with ${CLIENTS} clients`, async () => {
    previousImage = (await liveVersion()).image;
    const dumpsBefore = (await admin.ssh(`sudo -n ls ${plan.backup.dumpDir}`)).stdout.split("\n");
    writeFileSync(join(migrations, "9002_rehearsal_note.py"), migration("9002", headBefore, ['op.add_column("items", sa.Column("note", sa.Text(), nullable=True))']));
    const { result, traffic, seconds } = await underTraffic("/api/health", () => deploy(local));
    check(result.ok, result.error);
    swaps.backend = { ...traffic, seconds };
    // Known before any check of this probe can fail: the rollback probes after it need it.
    migratedImage = (await liveVersion()).image;
    noGap(traffic);
    check(migratedImage !== previousImage, `still ${previousImage}`);
    check((await schemaRevision()) === "9002" && (await itemColumns()).includes("note"), `schema ${await schemaRevision()}: ${await itemColumns()}`);
    const again = await deploy(local);
    check(again.ok, again.error);
    const runs = (await releaseHistory()).filter((l) => l.includes(`release-command backend ${migratedImage}`));
    check(runs.length === 1, `the release command ran ${runs.length} times for ${migratedImage}`);
    const dumps = (await admin.ssh(`sudo -n ls ${plan.backup.dumpDir}`)).stdout.split("\n").filter((f) => f.includes("-predeploy-") && !dumpsBefore.includes(f));
    check(dumps.length >= 1, "no new pre-deploy dump on the data disk");
    const newest = dumps.sort().at(-1);
    const schema = await admin.ssh(`sudo -n sh -c 'docker exec -i ${plan.containers.db.name} pg_restore --schema-only -f - < ${plan.backup.dumpDir}/${newest}'`);
    check(/CREATE TABLE public\.items/.test(schema.stdout) && !/\bnote\b/.test(schema.stdout), `the dump's schema: ${schema.stdout.slice(0, 200)}`);
    return `${migratedImage} live with schema 9002; ${newest} holds the schema before it; ${trafficSummary(traffic)}; ${seconds.toFixed(1)} s`;
  });
  await probes.run(`a frontend swap: no gap with ${CLIENTS} clients on /`, async () => {
    const before = (await containerInfo(plan.containers.frontend.name)).Id;
    appendFileSync(join(appSource, "frontend", "index.html"), `\n<!-- rehearsal ${runId} -->\n`);
    const { result, traffic, seconds } = await underTraffic("/", () => deploy(local));
    check(result.ok, result.error);
    swaps.frontend = { ...traffic, seconds };
    check((await containerInfo(plan.containers.frontend.name)).Id !== before, "the frontend was not released");
    noGap(traffic);
    return `${trafficSummary(traffic)}; ${seconds.toFixed(1)} s`;
  });
  const rollback = (...extra: string[]) =>
    underTraffic("/api/health", async () =>
      r.hostCommand("infra/cli/rollback.ts", ["--stack", stackName, "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", await machineHostKey(), ...extra]),
    );
  await probes.run("rollback in one command: the previous version serves again within 60 s, no gap, rows intact", async () => {
    const { result, traffic, seconds } = await rollback();
    check(result.code === 0, `rollback exited ${result.code}: ${result.stderr.trim().slice(-400)}`);
    swaps.rollback = { ...traffic, seconds };
    check(seconds < 60, `took ${seconds.toFixed(1)} s`);
    check((await liveVersion()).image === previousImage, `live: ${(await liveVersion()).image}, expected ${previousImage}`);
    noGap(traffic);
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
    return `${migratedImage} -> ${previousImage} in ${seconds.toFixed(1)} s; ${trafficSummary(traffic)}; rows ${names.join(", ")}`;
  });
  await probes.run("after a rollback, a deploy that would bring the rolled-back image back is refused; a second rollback returns to it", async () => {
    const refused = await deploy({ ...local, app: { ...local.app, extraEnv: { ...local.app?.extraEnv, REHEARSAL_EDIT: "1" } } });
    check(!refused.ok && /was rolled back on this host/.test(refused.error), `the rolled-back image was deployed again: ${refused.error}`);
    check((await liveVersion()).image === previousImage, "the live version changed");
    try {
      const { result } = await rollback();
      check(result.code === 0, `the second rollback exited ${result.code}: ${result.stderr.trim().slice(-300)}`);
      check((await liveVersion()).image === migratedImage, `live: ${(await liveVersion()).image}, expected ${migratedImage}`);
    } finally {
      // The host goes back to the rehearsal's definition whatever failed above: the probes after this one deploy from it.
      const deployed = await deploy(local);
      check(deployed.ok, deployed.error);
    }
    return `refused: ${refused.error.split("\n").find((l) => l.includes("rolled back"))?.slice(0, 120)}; back on ${migratedImage}`;
  });
}
