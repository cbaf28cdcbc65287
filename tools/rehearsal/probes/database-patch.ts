import type { Rehearsal } from "../context.js";
import { daemonEnv, exec } from "../docker.js";
import { check } from "../probes.js";

/** Postgres says how its last run ended when it starts: a clean shutdown, or a crash it must recover from. */
const CLEAN_START = /database system was shut down at/;
const CRASH_RECOVERY = /not properly shut down|automatic recovery in progress|database system was interrupted/;

/**
 * A Postgres patch bump replaces the database container (delete first: its name is fixed).
 * The provider stops the old one with its grace period, so Postgres shuts down cleanly; the
 * new one's log says so, with no crash recovery, and the rows are there.
 */
export async function databasePatch(r: Rehearsal): Promise<void> {
  const { probes, deploy, plan, apiHealth, readItems, items } = r;
  await probes.run("a Postgres patch bump: the old container is shut down cleanly (grace period), the new one starts without crash recovery, rows intact", async () => {
    const db = plan.containers.db.image;
    const image = r.current.images?.postgres ?? (db.source === "registry" ? db.ref : "");
    const bumped = image.replace(/^(postgres:\d+)\.(\d+)/, (_match: string, major: string, minor: string) => `${major}.${Number(minor) + 1}`);
    check(bumped !== image, `cannot bump ${image}`);
    r.current = { ...r.current, images: { ...r.current.images, postgres: bumped } };
    const result = await deploy(r.current);
    check(result.ok, result.error);
    check(result.action("app-db")?.action === "replace", `the database container was not replaced: ${result.changed.join(", ")}`);
    const deleted = result.progress.calls.find((c) => c.startsWith("delete app-db "));
    check(deleted !== undefined, `no delete of the old database container: ${result.progress.calls.join("; ")}`);
    const logs = await exec("docker", ["logs", plan.containers.db.name], { env: daemonEnv() });
    const text = `${logs.stdout}${logs.stderr}`;
    check(CLEAN_START.test(text), `the new database's log does not report a clean shutdown of the old one:\n${text.slice(0, 600)}`);
    check(!CRASH_RECOVERY.test(text), `the new database recovered from a crash: ${text.match(CRASH_RECOVERY)?.[0]}`);
    await apiHealth();
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
    return `${image} -> ${bumped}: "${text.match(CLEAN_START)?.[0]}…" in the new container's log, no recovery; rows ${names.join(", ")}`;
  });
}
