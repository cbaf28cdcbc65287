import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BACKUP_TOOL } from "../../../infra/render/backup.js";
import { S3RVER_OBJECT } from "../bucket-server.js";
import type { Rehearsal } from "../context.js";
import { check } from "../probes.js";

/**
 * Every dump copied off the host into the stand-in bucket, the nightly job with its key
 * never in clear, and a restore drill from the bucket copy after the database volume and
 * the host's dumps are destroyed. Records the drill's figures.
 */
export async function backups(r: Rehearsal): Promise<void> {
  const { say, probes, plan, admin, world, stackName, keyPath, engineState, backupTool, machineHostKey, apiHealth, readItems, items, indented } = r;
  const m = r.measurements;
  say("backups: every dump copied off the host, and a restore from the copy");
  const bucketName = () => String(engineState().entry("aws:lightsail/bucket:Bucket", "backups-bucket")?.inputs.name ?? "");
  /** What the stand-in bucket holds under the dumps' prefix, read from its store on this side, off the host. */
  const bucketObjects = () => {
    const folder = join(world.bucket.directory, bucketName(), plan.backup.bucket.prefix);
    return existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith(S3RVER_OBJECT)).map((f) => f.slice(0, -S3RVER_OBJECT.length)).sort() : [];
  };
  const hostDumps = async () => (await admin.ssh(`sudo -n ls -1 ${plan.backup.dumpDir}`)).stdout.split("\n").filter((f) => f.endsWith(".dump"));
  const bucketKey = JSON.parse(readFileSync(world.bucket.keyFile, "utf8")) as { accessKeyId: string; secretAccessKey: string };
  const countsOf = (text: string) => new Map(text.split("\n").filter((l) => /^\w+\t\d+$/.test(l)).map((l) => l.split("\t") as [string, string]).map(([t, n]) => [t, Number(n)]));
  await probes.run("every pre-deploy and rollback dump is in the bucket, under a name that sorts by time", async () => {
    const objects = bucketObjects();
    const taken = (await hostDumps()).filter((f) => /-(predeploy|rollback)-/.test(f));
    check(taken.length > 0, "no pre-deploy dump on the host");
    for (const file of taken) {
      const [, kind, stamp] = /-(predeploy|rollback)-(\d{8}T\d{6}Z)\.dump$/.exec(file) ?? [];
      check(objects.includes(`${stamp}-${kind}.dump`), `${file} has no copy in the bucket (${objects.join(", ")})`);
    }
    const byTime = [...objects].sort((a, b) => a.slice(0, 16).localeCompare(b.slice(0, 16)));
    check(JSON.stringify(byTime) === JSON.stringify(objects), "the names do not sort by time");
    return `${taken.length} dumps on the host, ${objects.length} copies in ${bucketName()}: ${objects.slice(-3).join(", ")}`;
  });
  let rowsBefore = new Map<string, number>();
  await probes.run("production-shaped data written: 14 tables, 6 users, 3 teams, thousands of time entries", async () => {
    const db = plan.containers.db.name;
    const seeded = await admin.ssh(`sudo -n docker exec -i ${db} psql -v ON_ERROR_STOP=1 -q -U ${plan.database.user} -d ${plan.database.name}`, readFileSync("tools/rehearsal/production-shape.sql", "utf8"));
    check(seeded.code === 0, `seeding failed: ${seeded.stderr.trim().slice(-300)}`);
    const counts = await backupTool("counts");
    check(counts.code === 0, counts.stderr);
    rowsBefore = countsOf(counts.stdout);
    check(rowsBefore.size === 14, `${rowsBefore.size} tables: ${[...rowsBefore.keys()].join(", ")}`);
    check(rowsBefore.get("users") === 6 && rowsBefore.get("teams") === 3, "not 6 users and 3 teams");
    return [...rowsBefore].map(([t, n]) => `${t} ${n}`).join(", ");
  });
  await probes.run("the nightly job dumps and copies off the host; the bucket key is never in clear (process list, logs, files) and only root reads it", async () => {
    const secret = bucketKey.secretAccessKey;
    // Sample the host's process list while the job runs: rclone's command line must not carry the key.
    const run = await admin.ssh(
      `sudo -n ${BACKUP_TOOL} nightly > /tmp/nightly.out 2>&1 & job=$!; : > /tmp/ps.samples; while [ -d /proc/$job ]; do ps -eo args >> /tmp/ps.samples; sleep 0.05; done; wait $job; echo "exit $?"; cat /tmp/nightly.out`,
    );
    check(/exit 0/.test(run.stdout), `the nightly job failed: ${run.stdout.slice(-400)}`);
    const samples = (await admin.ssh("cat /tmp/ps.samples; sudo -n rm -f /tmp/ps.samples /tmp/nightly.out")).stdout;
    const rcloneSeen = samples.split("\n").filter((l) => l.includes("rclone")).length;
    const logs = (await admin.ssh("sudo -n journalctl --no-pager -q 2>/dev/null; sudo -n cat /var/log/syslog 2>/dev/null; for c in $(sudo -n docker ps -aq); do sudo -n docker logs $c 2>&1; done")).stdout;
    const rendered = readdirSync(join("rendered", stackName)).map((f) => readFileSync(join("rendered", stackName, f), "utf8")).join("\n");
    for (const [where, text] of [["the process list", samples], ["the host's logs", logs], ["the rendered files", rendered], ["the job's output", run.stdout]] as const) {
      check(!text.includes(secret), `the bucket's secret key is in ${where}`);
    }
    const file = await admin.ssh(`sudo -n stat -c '%a %U' ${plan.backup.bucket.credentialsFile}; sudo -n sed -n 's/^secret_access_key = //p' ${plan.backup.bucket.credentialsFile} | sha256sum`);
    const [mode, digest] = file.stdout.trim().split("\n");
    check(mode === "600 root", `credentials file is ${mode}`);
    // The stand-in checks only the key id: the secret the host holds must be the one the program was given.
    check(digest?.startsWith(createHash("sha256").update(`${secret}\n`).digest("hex")) === true, "the host holds another secret than the bucket's key");
    m.nightlyObject = bucketObjects().filter((o) => o.endsWith("-nightly.dump")).at(-1) ?? "";
    check(m.nightlyObject !== "", `no nightly copy in the bucket: ${bucketObjects().join(", ")}`);
    return `copied as ${m.nightlyObject}; ${samples.split("\n").length} process-list lines sampled (${rcloneSeen} of rclone), logs and ${readdirSync(join("rendered", stackName)).length} rendered files checked; credentials 600 root`;
  });
  await probes.run("restore drill: the database volume destroyed and the host's dumps gone, npm run restore brings every table back from the bucket copy", async () => {
    const db = plan.containers.db.name;
    const volume = plan.volumePaths.database;
    // The disk loses the database and every dump on it; the bucket still has its copies.
    const wiped = await admin.ssh(
      `sudo -n docker stop -t 10 ${db} >/dev/null && sudo -n find ${volume} -mindepth 1 -delete && sudo -n sh -c 'rm -f ${plan.backup.dumpDir}/*.dump' && sudo -n docker start ${db} >/dev/null`,
    );
    check(wiped.code === 0, `could not destroy the volume: ${wiped.stderr}`);
    const deadline = Date.now() + 120_000;
    while ((await admin.ssh(`sudo -n docker inspect -f '{{.State.Health.Status}}' ${db}`)).stdout.trim() !== "healthy" && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1000));
    const empty = countsOf((await backupTool("counts")).stdout);
    check(empty.size === 0, `the database still has ${empty.size} tables`);
    check((await hostDumps()).length === 0, "dumps left on the host");
    const start = Date.now();
    const restored = await r.hostCommand("infra/cli/restore.ts", [
      "--stack", stackName, "--from", m.nightlyObject, "--yes",
      "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", await machineHostKey(),
    ]);
    m.restoreWall = (Date.now() - start) / 1000;
    console.log(indented(restored.stdout));
    check(restored.code === 0, `restore exited ${restored.code}: ${restored.stderr.trim().slice(-400)}`);
    m.restoreSeconds = Number(/restored \S+ into \S+ in ([\d.]+) s/.exec(restored.stdout)?.[1] ?? Number.NaN);
    const after = countsOf((await backupTool("counts")).stdout);
    const table = [...rowsBefore].map(([t, n]) => `${t} ${n} -> ${after.get(t) ?? "missing"}`);
    console.log(indented(`rows per table, before -> after:\n${table.join("\n")}`));
    for (const [t, n] of rowsBefore) check(after.get(t) === n, `${t}: ${n} rows before, ${after.get(t) ?? "no table"} after`);
    await apiHealth();
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `items through Caddy: ${names.join(", ")}`);
    m.drill = table;
    return `${rowsBefore.size} tables equal; restored in ${m.restoreSeconds} s (the command took ${m.restoreWall.toFixed(1)} s); the site answers with its rows`;
  });
}
