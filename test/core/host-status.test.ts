import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { BACKUP_TOOL } from "../../infra/render/backup.js";
import { renderCaddyfile } from "../../infra/render/caddyfile.js";
import { DISK_CHECK, renderDiskCheck, renderHostSetup } from "../../infra/render/host-setup.js";
import { HOST_STATUS_CONDITIONS, NO_REPORT_LINE, renderStatusCron, renderStatusTool, STATUS_CRON, STATUS_TOOL } from "../../infra/render/host-status.js";
import { renderAll } from "../../infra/render/index.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { copyOf, planFromDefinition, plansOf, run, tempDir } from "./helpers.js";

/**
 * The host's status (infra/render/host-status.ts): the writer run for real by bash, with the
 * real rendered disk check and stand-ins only for `df` and `logger` (a test cannot fill this
 * machine's disks or read its syslog); then served by a real Caddy from the stack's Caddyfile.
 * The backup tool's side (it writes the records read here) is in backup-tool.test.ts.
 */

const GB = 1024 * 1024; // df -k counts KiB
const HOUR = 3_600_000;

const { dir, cleanup } = tempDir("host-status");
afterAll(cleanup);

const bin = join(dir, "bin");
mkdirSync(bin);
const install = (path: string, text: string) => {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
};

/** Stand-in df: `df --output=target,pcent,avail -k <path>` from FAKE_DF_ROOT (/) or FAKE_DF_DATA ("<target> <use%> <avail KiB>"). */
install(
  join(bin, "df"),
  `#!/bin/sh
case $3 in
  /) row=$FAKE_DF_ROOT ;;
  *) row=$FAKE_DF_DATA ;;
esac
read -r target pcent avail <<EOF
$row
EOF
printf 'Mounted on Use%%     Avail\\n%-10s %4s %9s\\n' "$target" "$pcent" "$avail"
`,
);
/** Stand-in logger: one line per call, "<options>: <stdin's lines joined by |>", in FAKE_LOG. */
install(join(bin, "logger"), `#!/bin/sh\nprintf '%s: %s\\n' "$*" "$(tr '\\n' '|')" >> "$FAKE_LOG"\n`);

const definition = (host: Partial<NonNullable<EnvironmentDefinition["host"]>> = {}): EnvironmentDefinition => ({
  ...stagingDefinition,
  host: { ...stagingDefinition.host, minFreeDiskGb: 5, diskWarningPercent: 80, ...host },
});
const plan = planFromDefinition(definition());
const data = plan.host.dataDisk.mount;
const s = plan.hostStatus;

/** A host below `root`: the writer and the disk check rendered for `p`, as host setup installs them. */
function hostAt(name: string, p: Plan = plan) {
  const root = join(dir, name);
  const writer = install(join(root, STATUS_TOOL), renderStatusTool(p));
  install(join(root, DISK_CHECK), renderDiskCheck(p));
  const statusDir = join(root, p.hostStatus.hostDir);
  const records = join(root, p.hostStatus.recordsDir);
  const log = join(root, "syslog");
  return { root, writer, statusDir, records, log };
}
const host = hostAt("host");

interface Disk {
  used: number;
  freeKb: number;
}
const roomy: Disk = { used: 40, freeKb: 30 * GB };

function writeStatus(disks: { root?: Disk; data?: Disk } = {}, h = host) {
  const row = (mount: string, disk: Disk) => `${mount} ${disk.used}% ${disk.freeKb}`;
  const result = spawnSync("bash", [h.writer], {
    encoding: "utf8",
    timeout: 10_000,
    env: {
      PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      TIMETRACKER_STATUS_ROOT: h.root,
      FAKE_DF_ROOT: row("/", disks.root ?? roomy),
      FAKE_DF_DATA: row(data, disks.data ?? roomy),
      FAKE_LOG: h.log,
    },
  });
  if (result.error) throw result.error;
  const lines = result.stdout.split("\n").filter(Boolean);
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, lines, first: lines[0], line: (condition: string) => lines.filter((l) => l.startsWith(`${condition}: `)) };
}

/** A UTC time as the backup tool's names carry it (yyyymmddThhmmssZ), `ms` ago. */
const stampAgo = (ms: number) => new Date(Date.now() - ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
const isoOf = (stamp: string) => stamp.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z");
const record = (name: string, line: string, h = host) => {
  mkdirSync(h.records, { recursive: true });
  writeFileSync(join(h.records, name), `${line}\n`);
};
const freshCopy = (h = host) => {
  const object = `${stampAgo(HOUR)}-nightly.dump`;
  record(s.lastCopy, object, h);
  return object;
};
const nightlyOk = (h = host) => {
  const stamp = stampAgo(HOUR);
  record(s.lastNightly, `${stamp} ok dumped and copied off the host`, h);
  return stamp;
};
const files = (h: { statusDir: string }) => (existsSync(h.statusDir) ? readdirSync(h.statusDir).sort() : []);
/** The whole document's file there: ok.txt or alarm.txt. */
const served = (h = host) => files(h).filter((f) => f === s.okFile || f === s.alarmFile);
/** Each condition's file there, in the table's order: `<condition>.ok.txt` or `<condition>.alarm.txt`, and what it holds. */
const conditionsServed = (h = host) =>
  s.conditions.map((c) => {
    const file = files(h).filter((f) => f === c.okFile || f === c.alarmFile);
    return { file: file.join(","), text: file.length === 1 ? readFileSync(join(h.statusDir, file[0]!), "utf8") : "" };
  });
const logged = (h = host) => (existsSync(h.log) ? readFileSync(h.log, "utf8").split("\n").filter(Boolean) : []);

beforeEach(() => {
  for (const path of [host.statusDir, host.records, host.log]) rmSync(path, { recursive: true, force: true });
});

describe("the status writer (timetracker-status), run by bash with stand-in df and logger", () => {
  it("all well: `status: ok`, then one ok line per condition in the table's order, in ok.txt (0644) only; exit 0", () => {
    const copy = freshCopy();
    const ran = nightlyOk();
    const result = writeStatus();
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(result.lines.map((l) => l.split(":")[0])).toEqual(["status", ...HOST_STATUS_CONDITIONS, "checked"]);
    expect(result.lines.slice(0, 4)).toEqual([
      s.okLine,
      `disk: ok (/ and ${data} under 80% full, / has 5 GB free or more)`,
      `backup: ok (the newest copy in the bucket, ${copy}, is 1 h 0 min old)`,
      `nightly: ok (the last one, ${isoOf(ran)}, dumped and copied off the host)`,
    ]);
    expect(result.lines[4]).toMatch(/^checked: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(stack staging, every 5 min and after each nightly job\)$/);
    expect(served()).toEqual([s.okFile]);
    expect(readFileSync(join(host.statusDir, s.okFile), "utf8")).toBe(result.stdout);
    expect(statSync(join(host.statusDir, s.okFile)).mode & 0o777).toBe(0o644);
    // Each condition's own document: its line, then the time; what its alert check reads.
    expect(conditionsServed()).toEqual(s.conditions.map((c, at) => ({ file: c.okFile, text: `${result.lines[at + 1]}\n${result.lines[4]}\n` })));
    for (const c of s.conditions) expect(readFileSync(join(host.statusDir, c.okFile), "utf8").startsWith(c.okText)).toBe(true);
  });

  it("disk: at host.diskWarningPercent (the disk check's own rule) the status names the disk, one line per problem; one percent under is well", () => {
    freshCopy();
    nightlyOk();
    const full = writeStatus({ data: { used: 80, freeKb: 3 * GB } });
    expect(full.code).toBe(1);
    expect(full.first).toBe("status: alarm disk");
    expect(full.line("disk")).toEqual([
      `disk: alarm (${data} is 80% full (3 GB free): it holds the database, Redis, Caddy's certificates and the dumps (${plan.backup.dumpDir}); run 'sudo du -xsh ${data}/*')`,
    ]);
    expect(served()).toEqual([s.alarmFile]);
    expect(readFileSync(join(host.statusDir, s.alarmFile), "utf8")).toBe(full.stdout);
    // Only the disk's own document is an alarm, with its line: the other conditions' checks stay healthy.
    expect(conditionsServed().map((c) => c.file)).toEqual(s.conditions.map((c) => (c.name === "disk" ? c.alarmFile : c.okFile)));
    expect(conditionsServed()[0]!.text.split("\n")[0]).toBe(full.line("disk")[0]);

    const both = writeStatus({ root: { used: 93, freeKb: 2 * GB }, data: { used: 95, freeKb: 1 * GB } });
    expect(both.first).toBe("status: alarm disk");
    expect(both.line("disk")).toEqual([expect.stringMatching(/^disk: alarm \(\/ is 93% full \(2 GB free, under the 5 GB a deploy needs/), expect.stringMatching(new RegExp(`^disk: alarm \\(${data} is 95% full \\(1 GB free\\)`))]);

    expect(writeStatus({ data: { used: 79, freeKb: 4 * GB } }).first).toBe(s.okLine);
    expect(served()).toEqual([s.okFile]);
    expect(conditionsServed().map((c) => c.file)).toEqual(s.conditions.map((c) => c.okFile));
  });

  it("disk: the threshold is the plan's host.diskWarningPercent", () => {
    const sixty = hostAt("sixty", planFromDefinition(definition({ diskWarningPercent: 60 })));
    freshCopy(sixty);
    expect(writeStatus({ data: { used: 61, freeKb: 8 * GB } }, sixty).first).toBe("status: alarm disk");
    expect(writeStatus({ data: { used: 59, freeKb: 8 * GB } }, sixty).first).toBe(s.okLine);
  });

  it(`backup: a newest bucket copy over ${s.copyMaxAgeHours} h old is an alarm naming it; one within is well`, () => {
    nightlyOk();
    const stale = `${stampAgo((s.copyMaxAgeHours + 1) * HOUR)}-nightly.dump`;
    record(s.lastCopy, stale);
    const old = writeStatus();
    expect(old.code).toBe(1);
    expect(old.first).toBe("status: alarm backup");
    expect(old.line("backup")).toEqual([
      `backup: alarm (the newest copy in the bucket, ${stale}, is 1 d 3 h old (over 26 h): the nightly job or its copy did not happen; see journalctl -t timetracker-backup)`,
    ]);
    record(s.lastCopy, `${stampAgo((s.copyMaxAgeHours - 1) * HOUR)}-predeploy.dump`);
    const within = writeStatus();
    expect(within.first).toBe(s.okLine);
    expect(within.line("backup")[0]).toMatch(/^backup: ok \(the newest copy in the bucket, \S+-predeploy\.dump, is 1 d 1 h old\)$/);
  });

  it(`backup: with no copy yet, well for ${s.copyMaxAgeHours} h from the writer's first run on the host, then an alarm`, () => {
    nightlyOk();
    const first = writeStatus();
    expect(first.first).toBe(s.okLine);
    expect(first.line("backup")).toEqual(["backup: ok (no copy in the bucket yet: the nightly job at 03:00 UTC makes one)"]);
    const since = readFileSync(join(host.records, s.since), "utf8").trim();
    expect(Math.abs(Date.parse(isoOf(since)) - Date.now())).toBeLessThan(60_000);
    // A later run keeps the first run's time.
    writeStatus();
    expect(readFileSync(join(host.records, s.since), "utf8").trim()).toBe(since);

    const long = stampAgo((s.copyMaxAgeHours + 2) * HOUR);
    record(s.since, long);
    const never = writeStatus();
    expect(never.first).toBe("status: alarm backup");
    expect(never.line("backup")).toEqual([`backup: alarm (no copy in the bucket since ${isoOf(long)} (1 d 4 h): the nightly job or its copy did not happen; see journalctl -t timetracker-backup)`]);
  });

  it("nightly: a failed last nightly job is an alarm with its reason, until one succeeds", () => {
    freshCopy();
    expect(writeStatus().line("nightly")).toEqual(["nightly: ok (none has run yet: the first is at 03:00 UTC)"]);
    const failedAt = stampAgo(2 * HOUR);
    const reason = `nightly: ${plan.backup.dumpDir}/x-nightly.dump is on this host only: the copy to the bucket failed`;
    record(s.lastNightly, `${failedAt} failed ${reason}`);
    const failed = writeStatus();
    expect(failed.code).toBe(1);
    expect(failed.first).toBe("status: alarm nightly");
    expect(failed.line("nightly")).toEqual([`nightly: alarm (the last one, ${isoOf(failedAt)}, failed: ${reason}; it clears when one succeeds (sudo ${BACKUP_TOOL} nightly))`]);
    nightlyOk();
    expect(writeStatus().first).toBe(s.okLine);
  });

  it("every condition at once: one first line naming them in the table's order", () => {
    record(s.lastCopy, `${stampAgo(3 * 24 * HOUR)}-nightly.dump`);
    record(s.lastNightly, `${stampAgo(HOUR)} failed pg_dump of db in db failed: nothing was dumped`);
    const result = writeStatus({ data: { used: 99, freeKb: GB / 2 } });
    expect(result.first).toBe(`status: alarm ${HOST_STATUS_CONDITIONS.join(" ")}`);
    expect(result.lines.filter((l) => / alarm \(/.test(l))).toHaveLength(3);
  });

  it("an alarm's document never holds the line Route 53 looks for, however a record reads", () => {
    freshCopy();
    record(s.lastNightly, `${stampAgo(HOUR)} failed ${s.okLine}\n${s.okLine}`);
    const result = writeStatus();
    expect(result.first).toBe("status: alarm nightly");
    expect(result.lines.slice(1).every((l) => !l.startsWith(s.okLine))).toBe(true);
    // Each record's text stays on its own line, cut to 300 characters.
    record(s.lastNightly, `${stampAgo(HOUR)} failed ${"x".repeat(1000)}`);
    expect(writeStatus().line("nightly")[0]!.length).toBeLessThan(400);
  });

  it("unreadable records and a disk check that does not run are alarms, never silence", () => {
    nightlyOk();
    record(s.lastCopy, "not-a-dump-name");
    expect(writeStatus().line("backup")).toEqual([`backup: alarm (${join(host.records, s.lastCopy)} holds no copy's name: not-a-dump-name)`]);
    freshCopy();
    record(s.lastNightly, "yesterday ok");
    expect(writeStatus().line("nightly")[0]).toMatch(/^nightly: alarm \(.*last-nightly cannot be read: yesterday ok/);
    nightlyOk();
    const noCheck = hostAt("no-disk-check");
    rmSync(join(noCheck.root, DISK_CHECK));
    freshCopy(noCheck);
    const result = writeStatus({}, noCheck);
    expect(result.first).toBe("status: alarm disk");
    expect(result.line("disk")[0]).toMatch(/^disk: alarm \(the disk check did not run \(exit 127\): /);
  });

  it("ok and alarm replace each other whole; a change of the first line is logged, a repeat is not", () => {
    freshCopy();
    nightlyOk();
    writeStatus();
    writeStatus({ data: { used: 90, freeKb: GB } });
    expect(served()).toEqual([s.alarmFile]);
    writeStatus({ data: { used: 91, freeKb: GB } });
    writeStatus();
    expect(served()).toEqual([s.okFile]);
    expect(logged().map((l) => l.replace(/\|checked: .*$/, ""))).toEqual([
      `-t timetracker-status -p user.notice: ${s.okLine}|disk: ok (/ and ${data} under 80% full, / has 5 GB free or more)|${writeStatus().line("backup")[0]}|${writeStatus().line("nightly")[0]}`,
      expect.stringMatching(/^-t timetracker-status -p user\.warning: status: alarm disk\|disk: alarm \(\/mnt\/timetracker-data is 90% full/),
      expect.stringMatching(/^-t timetracker-status -p user\.notice: status: ok\|/),
    ]);
  });

  it("a document it cannot write: exit 2, the reason on stderr and in syslog", () => {
    const blocked = hostAt("blocked");
    freshCopy(blocked);
    mkdirSync(join(blocked.statusDir, ".."), { recursive: true });
    writeFileSync(blocked.statusDir, "a file where the folder should be");
    const result = writeStatus({}, blocked);
    expect(result.code).toBe(2);
    const first = join(blocked.statusDir, s.conditions[0]!.okFile);
    expect(result.stderr.endsWith(`could not write ${first}\n`)).toBe(true);
    expect(logged(blocked)).toEqual([`-t timetracker-status -p user.err could not write ${first}: `]);
  });
});

describe("the disk check's --check mode: the problems on stdout, and nowhere else", () => {
  it("prints one line per problem without a time, writes and logs nothing; exit 1, or 0 and nothing when all is well", () => {
    const env = (dataRow: string) => ({ PATH: `${bin}:${process.env.PATH}`, FAKE_DF_ROOT: `/ 40% ${30 * GB}`, FAKE_DF_DATA: dataRow, FAKE_LOG: host.log, TIMETRACKER_DISK_WARNING_FILE: join(dir, "never-written") });
    const check = join(host.root, DISK_CHECK);
    const full = spawnSync(check, ["--check", "80"], { encoding: "utf8", env: env(`${data} 85% ${3 * GB}`) });
    expect(full.status).toBe(1);
    expect(full.stdout).toBe(`${data} is 85% full (3 GB free): it holds the database, Redis, Caddy's certificates and the dumps (${plan.backup.dumpDir}); run 'sudo du -xsh ${data}/*'\n`);
    const fine = spawnSync(check, ["--check", "80"], { encoding: "utf8", env: env(`${data} 12% ${30 * GB}`) });
    expect({ code: fine.status, stdout: fine.stdout, stderr: fine.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(existsSync(join(dir, "never-written"))).toBe(false);
    expect(logged()).toEqual([]);
  });
});

describe("host setup and the rendered files", () => {
  it.each(plansOf().map((p) => [p.stack, p] as const))("%s: installs the writer byte for byte and its cron job, runs it after each nightly job and at its end", (_stack, p) => {
    const setup = renderHostSetup(p);
    const writer = renderStatusTool(p);
    expect(setup).toContain(`put ${STATUS_TOOL} 0755 <<'SH' || true\n${writer}SH\n`);
    expect(setup).toContain(`put ${STATUS_CRON} 0644 <<'CRON' || true\n${renderStatusCron(p)}CRON\n`);
    expect(renderStatusCron(p)).toMatch(new RegExp(`^\\*/5 \\* \\* \\* \\* root ${STATUS_TOOL} >/dev/null 2>&1$`, "m"));
    expect(setup).toContain(`root ${BACKUP_TOOL} nightly 2>&1 | logger -t timetracker-backup; ${STATUS_TOOL} >/dev/null 2>&1\n`);
    expect(setup).toContain(`install -d -m 0755 ${p.hostStatus.recordsDir} ${p.hostStatus.hostDir}\n`);
    expect(setup.trimEnd().split("\n").slice(-3, -1)).toContain(`${STATUS_TOOL} >/dev/null || true`);
    expect(renderAll(p)["host-status.sh"]).toBe(writer);
  });

  it.each(plansOf().map((p) => [p.stack, p] as const))("%s: shellcheck finds nothing in the writer", async (stack, p) => {
    const file = join(dir, `shellcheck-${stack}.sh`);
    writeFileSync(file, renderStatusTool(p));
    const checked = await run("shellcheck", ["--norc", "--format=gcc", file]);
    expect(checked.spawnError?.code, "shellcheck is not installed: apt-get install shellcheck").toBeUndefined();
    expect({ code: checked.code, findings: checked.stdout + checked.stderr }).toEqual({ code: 0, findings: "" });
  });

  it("the Plan puts the document in Caddy's config volume and the records on the data disk", () => {
    const config = plan.caddy.maintenance.dir.replace(/\/maintenance$/, "");
    expect(s.dir).toBe(`${config}/host-status`);
    expect(s.hostDir).toBe(`${plan.volumePaths.caddyConfig}/host-status`);
    expect(s.recordsDir.startsWith(`${data}/`)).toBe(true);
    expect(plan.containers.caddy.env[s.tokenEnv]).toEqual({ secret: "hostStatusToken" });
    expect(plan.secrets.find((x) => x.name === "hostStatusToken")).toEqual({ name: "hostStatusToken", length: 32, rotation: 0 });
  });
});

describe("Caddy serves the document on the path of prefix and token only (real caddy)", () => {
  const token = randomBytes(16).toString("hex");
  const path = `${s.pathPrefix}${token}`;
  const domain = plan.domains[0]!;
  const served = copyOf(plan);
  const h = hostAt("caddy");
  let upstream: Server;
  const caddies: ChildProcess[] = [];
  let caddyLog = "";

  const freePort = async (): Promise<number> => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  };
  const get = (at: number, url: string): Promise<{ status: number; type: string | undefined; cache: string | undefined; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: at, path: url, headers: { Host: domain } }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], cache: res.headers["cache-control"] as string | undefined, body }));
      });
      req.on("error", reject);
      req.end();
    });
  /** A Caddy from the stack's Caddyfile on free loopback ports, with `env` added to its environment. */
  const startCaddy = async (env: Record<string, string>) => {
    const p = copyOf(served);
    p.caddy.httpPort = await freePort();
    p.caddy.httpsPort = await freePort();
    p.caddy.adminAddress = `127.0.0.1:${await freePort()}`;
    const file = join(dir, `Caddyfile.${p.caddy.httpPort}`);
    writeFileSync(file, renderCaddyfile(p));
    const caddy = spawn("caddy", ["run", "--adapter", "caddyfile", "--config", file], { cwd: dir, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    caddies.push(caddy);
    caddy.stdout?.on("data", (d) => (caddyLog += d));
    caddy.stderr?.on("data", (d) => (caddyLog += d));
    for (let i = 0; i < 100; i++) {
      if ((await get(p.caddy.httpPort, "/").catch(() => undefined))?.status === 200) return p.caddy.httpPort;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`caddy did not answer within 10 s (apt-get install caddy):\n${caddyLog}`);
  };
  let port = 0;

  beforeAll(async () => {
    upstream = createServer((req, res) => res.end(`the app answers ${req.url}`));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const app = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    served.tls = { mode: "off" };
    served.caddy.bind = "127.0.0.1";
    served.caddy.routes = served.caddy.routes.map((r) => ({ ...r, upstreams: [app] }));
    served.caddy.maintenance.dir = join(h.root, "maintenance");
    served.hostStatus.dir = h.statusDir;
    port = await startCaddy({ [s.tokenEnv]: token });
  }, 30_000);

  afterAll(async () => {
    for (const caddy of caddies) caddy.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    upstream?.close();
  });

  it("before the writer's first run: 503 with a first line that is an alarm, for the whole document and each condition's", async () => {
    const answer = await get(port, path);
    expect(answer.status).toBe(503);
    expect(answer.body.startsWith(`${NO_REPORT_LINE} (`)).toBe(true);
    for (const c of s.conditions) {
      const own = await get(port, `${path}${c.pathSuffix}`);
      expect(own.status, c.name).toBe(503);
      expect(own.body.startsWith(`${c.name}: alarm (`), own.body).toBe(true);
    }
  });

  it("all well: 200 with the document, as text, never cached; an alarm: 503 with its document; ok again: 200", async () => {
    freshCopy(h);
    nightlyOk(h);
    const ok = writeStatus({}, h);
    expect(await get(port, path)).toEqual({ status: 200, type: "text/plain; charset=utf-8", cache: "no-store", body: ok.stdout });
    const alarm = writeStatus({ data: { used: 97, freeKb: GB } }, h);
    expect(await get(port, path)).toMatchObject({ status: 503, body: alarm.stdout, cache: "no-store" });
    expect(alarm.first).toBe("status: alarm disk");
    // Maintenance mode does not hide it: the status answers while the page is up.
    mkdirSync(served.caddy.maintenance.dir, { recursive: true });
    writeFileSync(join(served.caddy.maintenance.dir, plan.caddy.maintenance.page), "<p>maintenance</p>");
    expect((await get(port, path)).status).toBe(503);
    expect((await get(port, "/")).status).toBe(503);
    rmSync(served.caddy.maintenance.dir, { recursive: true });
    writeStatus({}, h);
    expect(await get(port, path)).toMatchObject({ status: 200, body: expect.stringMatching(new RegExp(`^${s.okLine}\n`)) });
  });

  it("each condition at <path>/<condition> (what its alert check reads): its line and 200 while fine; a full disk makes only the disk's 503", async () => {
    freshCopy(h);
    nightlyOk(h);
    writeStatus({}, h);
    for (const c of s.conditions) {
      const answer = await get(port, `${path}${c.pathSuffix}`);
      expect(answer, c.name).toMatchObject({ status: 200, cache: "no-store" });
      expect(answer.body.startsWith(`${c.okText} (`), answer.body).toBe(true);
    }
    const full = writeStatus({ data: { used: 97, freeKb: GB } }, h);
    for (const c of s.conditions) {
      const answer = await get(port, `${path}${c.pathSuffix}`);
      if (c.name === "disk") {
        expect(answer.status).toBe(503);
        expect(answer.body.split("\n")[0]).toBe(full.line("disk")[0]);
        expect(answer.body).not.toContain(c.okText);
      } else {
        expect(answer.status, c.name).toBe(200);
      }
    }
    writeStatus({}, h);
    expect((await get(port, `${path}/disk`)).status).toBe(200);
    // A condition that is not in the table is the app's, as any unknown path.
    expect(await get(port, `${path}/cpu`)).toMatchObject({ status: 200, body: `the app answers ${path}/cpu` });
  });

  it("while both files exist (the writer between its rename and its removal), the alarm is served", async () => {
    writeStatus({ data: { used: 97, freeKb: GB } }, h);
    writeFileSync(join(h.statusDir, s.okFile), `${s.okLine}\n`);
    expect((await get(port, path)).status).toBe(503);
    writeStatus({}, h);
    expect(readdirSync(h.statusDir).filter((f) => !f.startsWith("."))).toEqual([s.okFile, ...s.conditions.map((c) => c.okFile)].sort());
  });

  it("any other path, near ones included, is the app's; the files are not reachable by name", async () => {
    for (const other of [s.pathPrefix, s.pathPrefix.slice(0, -1), `${path}/`, `${path}x`, `${s.pathPrefix}${token.slice(0, -1)}`, `${s.pathPrefix}${s.okFile}`, `/${s.okFile}`, `${path}?x=1`.replace("?", "/")]) {
      expect(await get(port, other), other).toMatchObject({ status: 200, body: `the app answers ${other}` });
    }
  });

  it("the token is in no log line of Caddy's", () => {
    expect(caddyLog).not.toContain(token);
  });

  it("a Caddy without the token in its environment serves the document on no path", async () => {
    const bare = await startCaddy({});
    for (const other of [s.pathPrefix, path, `${s.pathPrefix}/disk`, `${path}/disk`]) expect(await get(bare, other), other).toMatchObject({ status: 200, body: `the app answers ${other}` });
  });
});
