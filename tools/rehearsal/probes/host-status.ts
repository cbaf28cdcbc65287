import { STATUS_TOOL } from "../../../infra/render/host-status.js";
import type { Rehearsal } from "../context.js";
import { httpRequest } from "../http.js";
import { check } from "../probes.js";

/** A UTC time as the backup tool's names carry it (yyyymmddThhmmssZ), `hours` ago. */
const stampAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

/**
 * The host's own status, as the second alert check reads it: through Caddy on its unguessable
 * path, after the writer runs (as cron runs it). Each condition is made real on the machine and
 * undone: the data disk filled past host.diskWarningPercent, the newest copy's record aged past
 * a day, the bucket out of the host's reach for a nightly job. Each time the path answers 503
 * naming the condition, and of the conditions' own paths (one alert check each) only that
 * condition's answers 503; then 200 and `status: ok` once it is fixed.
 */
export async function hostStatus(r: Rehearsal): Promise<void> {
  const { say, probes, plan, admin, web, host, containerInfo, backupTool, indented } = r;
  const s = plan.hostStatus;
  const mount = plan.host.dataDisk.mount;
  const credentials = plan.backup.bucket.credentialsFile;
  say("the host's status for the second alert check (disk, bucket copy, nightly job)");

  // The path's end is Caddy's environment variable: the probe reads it there, and never prints it.
  const env = ((await containerInfo(plan.containers.caddy.name)).Config.Env ?? []) as string[];
  const token = env.find((e) => e.startsWith(`${s.tokenEnv}=`))?.slice(s.tokenEnv.length + 1) ?? "";
  const path = `${s.pathPrefix}${token}`;
  /** The writer's run (as cron runs it), then what a Route 53 checker gets. */
  const status = async () => {
    const ran = await admin.ssh(`sudo -n ${STATUS_TOOL} >/dev/null`);
    check(ran.code === 0 || ran.code === 1, `${STATUS_TOOL} exited ${ran.code}: ${ran.stderr.trim().slice(-300)}`);
    const answer = await httpRequest(web, path, host);
    // Each condition's own path, as its alert check reads it: the status code by condition.
    const own: Record<string, number> = {};
    for (const c of s.conditions) own[c.name] = (await httpRequest(web, `${path}${c.pathSuffix}`, host)).status;
    return { ...answer, own, first: answer.body.split("\n")[0] ?? "", line: (condition: string) => answer.body.split("\n").filter((l) => l.startsWith(`${condition}: `)) };
  };
  /** Only `condition`'s own path answers 503 (its alarm's e-mail alone), every other condition's 200. */
  const onlyAlarm = (answer: Awaited<ReturnType<typeof status>>, condition: string) => {
    const expected = Object.fromEntries(s.conditions.map((c) => [c.name, c.name === condition ? 503 : 200]));
    check(JSON.stringify(answer.own) === JSON.stringify(expected), `the conditions' own paths answered ${JSON.stringify(answer.own)}, not ${JSON.stringify(expected)}`);
    return s.conditions.map((c) => `${c.pathSuffix} ${answer.own[c.name]}`).join(", ");
  };
  const allWell = async (after: string) => {
    const answer = await status();
    check(answer.status === 200 && answer.first === s.okLine, `after ${after}: ${answer.status} ${answer.body.slice(0, 400)}`);
    onlyAlarm(answer, "");
  };

  await probes.run("the status path answers 200 and `status: ok` through Caddy; the prefix alone is the app's", async () => {
    check(token.length === 32, `Caddy's ${s.tokenEnv} holds ${token.length} characters`);
    const answer = await status();
    console.log(indented(answer.body));
    check(answer.status === 200 && answer.first === s.okLine, `${answer.status}: ${answer.body.slice(0, 400)}`);
    const own = onlyAlarm(answer, "");
    const prefix = await httpRequest(web, s.pathPrefix, host);
    check(!prefix.body.startsWith("status:"), `${s.pathPrefix} answered the document`);
    return `${answer.status}, ${answer.body.split("\n").length - 1} lines; each condition's path: ${own}; ${s.pathPrefix} alone: ${prefix.status}, the app's page`;
  });

  await probes.run(`the data disk filled past ${plan.host.diskWarningPercent}%: 503 naming the disk; the file removed: 200`, async () => {
    const fill = `${mount}/host-status-probe.fill`;
    const sized = await admin.ssh(`df --output=used,avail -B1 ${mount} | tail -n 1`);
    const [used, avail] = sized.stdout.trim().split(/\s+/).map(Number) as [number, number];
    check(used > 0 && avail > 0, `df on ${mount}: ${sized.stdout} ${sized.stderr}`);
    const bytes = Math.ceil(((plan.host.diskWarningPercent + 2) / 100) * (used + avail)) - used;
    try {
      const filled = await admin.ssh(`sudo -n fallocate -l ${bytes} ${fill}`);
      check(filled.code === 0, `fallocate: ${filled.stderr}`);
      const full = await status();
      check(full.status === 503 && full.first === "status: alarm disk", `filled: ${full.status} ${full.body.slice(0, 400)}`);
      const named = full.line("disk").find((l) => l.startsWith(`disk: alarm (${mount} is `)) ?? "";
      check(named !== "", `no line names ${mount}: ${full.body.slice(0, 400)}`);
      const own = onlyAlarm(full, "disk");
      await admin.ssh(`sudo -n rm -f ${fill}`);
      await allWell("the file was removed");
      return `${(bytes / 1e9).toFixed(1)} GB: 503 "${full.first}", "${named.slice(0, 90)}…" (${own}); removed: 200`;
    } finally {
      await admin.ssh(`sudo -n rm -f ${fill}`);
    }
  });

  await probes.run(`the newest copy's record aged past ${s.copyMaxAgeHours} h: 503 naming the backup; put back: 200`, async () => {
    const record = `${s.recordsDir}/${s.lastCopy}`;
    const saved = (await admin.ssh(`sudo -n cat ${record}`)).stdout.trim();
    check(/^\d{8}T\d{6}Z-\w+\.dump$/.test(saved), `${record} holds ${JSON.stringify(saved)}`);
    const aged = `${stampAgo(s.copyMaxAgeHours + 3)}-nightly.dump`;
    try {
      await admin.ssh(`echo ${aged} | sudo -n tee ${record} >/dev/null`);
      const stale = await status();
      check(stale.status === 503 && stale.first === "status: alarm backup", `aged: ${stale.status} ${stale.body.slice(0, 400)}`);
      check(stale.line("backup")[0]?.includes(aged) === true, `the backup line does not name ${aged}: ${stale.line("backup")[0]}`);
      const own = onlyAlarm(stale, "backup");
      await admin.ssh(`echo ${saved} | sudo -n tee ${record} >/dev/null`);
      await allWell("the record was put back");
      return `503 "${stale.first}", "${stale.line("backup")[0]?.slice(0, 110)}…" (${own}); put back: 200`;
    } finally {
      await admin.ssh(`echo ${saved} | sudo -n tee ${record} >/dev/null`);
    }
  });

  await probes.run("the bucket out of reach for a nightly job: 503 naming the nightly job; reached again by the next one: 200", async () => {
    try {
      await admin.ssh(`sudo -n mv ${credentials} ${credentials}.away`);
      const failed = await backupTool("nightly");
      check(failed.code === 1, `the nightly job without the bucket exited ${failed.code}`);
      const alarm = await status();
      const line = alarm.line("nightly")[0] ?? "";
      check(alarm.status === 503 && alarm.first === "status: alarm nightly", `after the failed nightly job: ${alarm.status} ${alarm.body.slice(0, 400)}`);
      check(line.includes("the copy to the bucket failed"), `the nightly line: ${line}`);
      const own = onlyAlarm(alarm, "nightly");
      await admin.ssh(`sudo -n mv ${credentials}.away ${credentials}`);
      const again = await backupTool("nightly");
      check(again.code === 0, `the next nightly job exited ${again.code}: ${again.stderr.slice(-300)}`);
      await allWell("a nightly job that reached the bucket");
      return `503 "${alarm.first}", "${line.slice(0, 120)}…" (${own}); the next nightly job: 200`;
    } finally {
      await admin.ssh(`sudo -n sh -c '[ -e ${credentials} ] || mv ${credentials}.away ${credentials}'`);
    }
  });
}
