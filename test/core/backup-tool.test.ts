import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planFor } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { BACKUP_TOOL, renderBackupTool } from "../../infra/render/backup.js";
import { HOLD_WAIT_SECONDS, LOCK_REFUSED_EXIT } from "../../infra/render/deploy-lock.js";
import { renderMaintenancePage, RESTORE_MAINTENANCE_MESSAGE } from "../../infra/render/maintenance.js";
import { renderBucketCredentials } from "../../infra/render/bucket-credentials.js";
import { DISK_CHECK, renderHostSetup } from "../../infra/render/host-setup.js";
import { renderStatusTool, STATUS_TOOL } from "../../infra/render/host-status.js";
import { renderAll } from "../../infra/render/index.js";
import { catalog } from "../../stacks/catalog.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { S3RVER_OBJECT } from "../../tools/rehearsal/bucket-server.js";
import { planFromDefinition, REPO_ROOT, run, tempDir } from "./helpers.js";

/**
 * The host's backup tool (infra/render/backup.ts) run for real: bash, real rclone and a real
 * S3 server (s3rver, in this process), with stand-ins only for what needs a host: `docker`
 * (a script that plays the database container and the backend) and `logger`.
 */

const { dir, cleanup } = tempDir("backup");
const require = createRequire(import.meta.url);
const S3rver = require("s3rver") as new (options: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> };
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account") as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void } };

const keyId = `TEST${randomBytes(6).toString("hex").toUpperCase()}`;
const secret = randomBytes(24).toString("base64url");
const store = join(dir, "s3");
let server: { close(): Promise<void> } | undefined;
let endpoint = "";

beforeAll(async () => {
  DUMMY_ACCOUNT.createKeyPair(keyId, secret);
  DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
  const s3 = new S3rver({ address: "127.0.0.1", port: 0, directory: store, silent: true });
  endpoint = `http://127.0.0.1:${(await s3.run()).port}`;
  server = s3;
});
afterAll(async () => {
  await server?.close();
  cleanup();
});

/** Bash's own braces are written %{ } here, so that the template leaves them alone. */
const FAKE_DOCKER = String.raw`#!/bin/bash
# Containers are files holding their status; the database is a file holding the bytes pg_dump prints.
state=%{FAKE_STATE:?}
printf '%s\n' "$*" >> "$state/docker.calls"
case "$1" in
  inspect)
    name=%{*: -1}
    [ -f "$state/containers/$name" ] || { echo "Error: No such object: $name" >&2; exit 1; }
    status=$(cat "$state/containers/$name")
    case "%{3:-}" in
      *Running*) if [ "$status" = running ]; then echo true; else echo false; fi ;;
      *Health*) if [ "$status" = running ]; then echo healthy; else echo "$status"; fi ;;
      *) echo '[{}]' ;;
    esac ;;
  stop) echo exited > "$state/containers/%{*: -1}" ;;
  start) echo "%{FAKE_START_STATUS:-running}" > "$state/containers/$2" ;;
  exec)
    shift; [ "$1" = -i ] && shift; shift
    case "$*" in
      pg_dump*) cat "$state/db" ;;
      pg_restore*--list*)
        content=$(cat)
        [[ $content == PGDMP* ]] || { echo "pg_restore: error: input file does not appear to be a valid archive" >&2; exit 1; }
        printf '; Archive\n215; 0 16386 TABLE DATA public items tt\n216; 0 16390 TABLE DATA public users tt\n' ;;
      pg_restore*)
        content=$(cat)
        [[ $content != *FAILRESTORE* ]] || { echo "pg_restore: error: could not execute query" >&2; exit 1; }
        printf '%s' "$content" > "$state/db" ;;
      *"select 1"*) echo 1 ;;
      *query_to_xml*) printf 'items\t3\nusers\t2\n' ;;
      *"table_schema || "*) printf 'public.items\npublic.users\n' ;;
      psql*) : ;;
      *) echo "fake docker: unexpected exec $*" >&2; exit 9 ;;
    esac ;;
  *) echo "fake docker: unexpected $*" >&2; exit 9 ;;
esac
`.replaceAll("%{", "${");

/** Records every rclone command line and environment, then runs the real rclone. */
const rcloneShim = (real: string) => `#!/bin/bash
printf '%s\\n' "$*" >> "$FAKE_STATE/rclone.calls"
env >> "$FAKE_STATE/rclone.env"
exec ${real} "$@"
`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}
/** Everything the tool printed, for the last test: the secret must be in none of it. */
const printed: string[] = [];

/**
 * The rclones the tool runs with: this machine's (a host on Ubuntu 24.04 or Debian 12 has
 * 1.60), and the oldest a host runs, Ubuntu 22.04's 1.53.3, which `tools/rclone-oldest.sh`
 * fetches (`.ci/run` does; without it, a local run skips that half).
 */
const OLDEST_RCLONE = join(REPO_ROOT, ".cache/rclone-1.53.3/rclone");
const RCLONES: [label: string, path: string, version: RegExp][] = [
  ["this machine's rclone", (await run("sh", ["-c", "command -v rclone"])).stdout.trim(), /^rclone v\d/],
  ["rclone 1.53.3 (Ubuntu 22.04's)", OLDEST_RCLONE, /^rclone v1\.53\.3/],
];

/** One host: the tool rendered for `plan`, its root paths moved into a temp folder, a bucket of its own. */
async function hostWith(name: string, plan: Plan, realRclone: string) {
  const base = join(dir, name);
  const root = join(base, "root");
  const state = join(base, "state");
  const bin = join(base, "bin");
  for (const d of [join(root, "run/lock"), join(state, "containers"), bin]) mkdirSync(d, { recursive: true });
  writeFileSync(join(state, `containers/${plan.containers.db.name}`), "running");
  writeFileSync(join(state, `containers/${plan.containers.backend.name}`), "running");
  writeFileSync(join(state, "db"), "PGDMP database v1");
  writeFileSync(join(bin, "docker"), FAKE_DOCKER);
  writeFileSync(join(bin, "rclone"), rcloneShim(realRclone));
  writeFileSync(join(bin, "logger"), `#!/bin/sh\nprintf '%s\\n' "$*" >> "$FAKE_STATE/logger.calls"\n`);
  for (const f of ["docker", "rclone", "logger"]) chmodSync(join(bin, f), 0o755);
  const script = join(base, "backup.sh");
  writeFileSync(script, renderBackupTool(plan));
  const bucketName = `bucket-${name}`;
  mkdirSync(join(store, bucketName), { recursive: true });
  // This sandbox sets AWS_CA_BUNDLE, which rclone fails to load (LoadCustomCABundleError): not a host's setting.
  const { AWS_CA_BUNDLE: _ca, ...env } = process.env;
  const dumps = join(root, plan.backup.dumpDir);
  return {
    plan,
    root,
    state,
    dumps,
    credentials: join(root, plan.backup.bucket.credentialsFile),
    config: (port = endpoint) => renderBucketCredentials(plan.backup.bucket, { bucketName, accessKeyId: keyId, secretAccessKey: secret, endpoint: port }),
    /** What the bucket holds under the dumps' prefix, from s3rver's own store. */
    objects: () => {
      const folder = join(store, bucketName, plan.backup.bucket.prefix);
      return existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith(S3RVER_OBJECT)).map((f) => f.slice(0, -S3RVER_OBJECT.length)).sort() : [];
    },
    /** A dump file on the host taken at `stamp`, as the tool or the old nightly job names it. */
    file: (kind: string, stamp: string, content = "PGDMP crafted") => {
      mkdirSync(dumps, { recursive: true });
      const path = join(dumps, kind === "legacy" ? `${plan.database.name}-${stamp}.dump` : `${plan.database.name}-${kind}-${stamp}.dump`);
      writeFileSync(path, content);
      return path;
    },
    bin,
    script,
    tool: (args: string[], stdin = "", extra: Record<string, string> = {}): Promise<Result> =>
      new Promise((resolve) => {
        const child = spawn("bash", [script, ...args], {
          env: { ...env, PATH: `${bin}:${env.PATH}`, TIMETRACKER_BACKUP_ROOT: root, FAKE_STATE: state, ...extra },
          stdio: ["pipe", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (code) => {
          printed.push(stdout, stderr);
          resolve({ code, stdout, stderr });
        });
        // A tool that exits before reading its input closes the pipe: that is its answer, not the test's error.
        child.stdin.on("error", () => {});
        child.stdin.end(stdin);
      }),
  };
}

/** A UTC time as the names carry it: yyyymmddThhmmssZ, `days` ago. */
const stampAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
const lines = (text: string) => text.split("\n").filter((l) => l !== "");
const withKeep = (bucket: { keepCount: number } | { keepDays: number }) =>
  planFromDefinition({ ...stagingDefinition, backup: { bucket } });

describe("the backup tool, rendered for every stack", () => {
  const plans: [string, Plan][] = [...catalog.map((d): [string, Plan] => [d.name, planFor(catalog, d.name)]), ["keepCount 3", withKeep({ keepCount: 3 })]];

  it.each(plans)("%s: shellcheck finds nothing; host setup installs it byte for byte; renderAll ships it as backup.sh", async (name, plan) => {
    const tool = renderBackupTool(plan);
    const file = join(dir, `shellcheck-${name.replace(/\W/g, "-")}.sh`);
    writeFileSync(file, tool);
    const checked = await run("shellcheck", ["--norc", "--format=gcc", file]);
    expect(checked.spawnError?.code, "shellcheck is not installed: apt-get install shellcheck").toBeUndefined();
    expect({ code: checked.code, findings: checked.stdout + checked.stderr }).toEqual({ code: 0, findings: "" });
    expect(renderAll(plan)["backup.sh"]).toBe(tool);
    const setup = renderHostSetup(plan);
    const header = `put ${BACKUP_TOOL} 0755 <<'SH' || true\n`;
    const start = setup.indexOf(header) + header.length;
    expect(setup.slice(start, setup.indexOf("\nSH\n", start) + 1)).toBe(tool);
    // cron.d: no % in the line (cron would cut it there), the output to syslog, then the host status.
    expect(setup).toContain(`\n0 ${Number(plan.backup.dumpTimeUtc.slice(0, 2))} * * * root ${BACKUP_TOOL} nightly 2>&1 | logger -t timetracker-backup; ${STATUS_TOOL} >/dev/null 2>&1\n`);
  });
});

describe.each(RCLONES)("with %s, against a real S3 server (s3rver: it checks a V4 signature's access key id, not the secret)", (label, rclone, version) => {
  const id = RCLONES.findIndex(([l]) => l === label);
  const host = (name: string, plan: Plan) => hostWith(`${id}-${name}`, plan, rclone);

  it("runs the rclone it names", async () => {
    expect(existsSync(rclone), rclone === OLDEST_RCLONE ? "run bash tools/rclone-oldest.sh" : "rclone is not installed: apt-get install rclone").toBe(true);
    expect((await run(rclone, ["version"])).stdout).toMatch(version);
  });

  it("without credentials: ship exits 3, a dump still succeeds (a warning, logged), list warns, status says so, nightly fails", async () => {
    const h = await host("no-credentials", planFor(catalog, "staging"));
    const dump = await h.tool(["dump", "predeploy"]);
    expect(dump.code, dump.stderr).toBe(0);
    const path = lines(dump.stdout).at(-1)!;
    expect(path).toMatch(new RegExp(`^${h.dumps}/timetracker_v2_dev-predeploy-\\d{8}T\\d{6}Z\\.dump$`));
    expect(readFileSync(path, "utf8")).toBe("PGDMP database v1");
    const missing = `no bucket credentials at ${h.credentials}: \`pulumi up\` writes them (step backup-credentials)`;
    expect(dump.stderr).toContain(`${missing}\nwarning: ${path} was not copied to the bucket (exit 3): it is on this host only\n`);
    expect(readFileSync(join(h.state, "logger.calls"), "utf8")).toContain("-t timetracker-backup -p user.warning");

    expect(await h.tool(["ship", path])).toEqual({ code: 3, stdout: "", stderr: `${missing}\n` });
    const list = await h.tool(["list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^host\ttimetracker_v2_dev-predeploy-\d{8}T\d{6}Z\.dump\t17\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
    expect(lines(list.stderr)).toEqual([`warning: ${missing}; only the host's dumps are listed`]);
    expect((await h.tool(["status"])).stdout).toMatch(/^newest dump: timetracker_v2_dev-predeploy-\S+ \(\d+ s\)\nbucket: no credentials yet\n$/);
    const nightly = await h.tool(["nightly"]);
    expect(nightly.code).toBe(1);
    expect(nightly.stderr).toMatch(/nightly: \S+-nightly-\S+ is on this host only: the copy to the bucket failed\n$/);
  });

  it("set-credentials writes the configuration root-only (0600 in a 0700 folder), checks the bucket answers, prints no key", async () => {
    const h = await host("credentials", planFor(catalog, "staging"));
    const set = await h.tool(["set-credentials"], h.config());
    expect(set).toEqual({ code: 0, stdout: `wrote ${h.credentials} (0600, root only)\nthe bucket answers through the remote backups:\n`, stderr: "" });
    expect(readFileSync(h.credentials, "utf8")).toBe(h.config());
    expect(statSync(h.credentials).mode & 0o777).toBe(0o600);
    expect(statSync(join(h.credentials, "..")).mode & 0o777).toBe(0o700);
    // Something else on stdin is refused and the file kept.
    const junk = await h.tool(["set-credentials"], "not a configuration\n");
    expect(junk.code).toBe(1);
    expect(junk.stderr).toContain("stdin holds no [backups] remote");
    expect(readFileSync(h.credentials, "utf8")).toBe(h.config());
    expect(readdirSync(join(h.credentials, ".."))).toEqual(["backup-bucket.conf"]);
  });

  it("ship: objects are named <UTC time>-<kind>.dump, so they sort by time; keepCount 3 keeps the newest 3, never the newest lost", async () => {
    const h = await host("count", withKeep({ keepCount: 3 }));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    // Kinds out of alphabetical order in time, one the old nightly job's name, shipped in no particular order.
    const taken = [["rollback", stampAgo(5)], ["predeploy", stampAgo(4)], ["legacy", stampAgo(3).slice(0, 13)], ["nightly", stampAgo(2)], ["predeploy", stampAgo(1)]] as const;
    const objectOf = ([kind, stamp]: readonly [string, string]) => (kind === "legacy" ? `${stamp}00Z-nightly.dump` : `${stamp}-${kind}.dump`);
    for (const i of [3, 0, 4, 1]) {
      const shipped = await h.tool(["ship", h.file(taken[i]![0], taken[i]![1])]);
      expect(shipped.code, shipped.stderr).toBe(0);
      expect(shipped.stdout).toContain(`to backups:${objectOf(taken[i]!)} (13 bytes)`);
    }
    expect(h.objects()).toEqual([1, 3, 4].map((i) => objectOf(taken[i]!)));
    // An older dump shipped last is beyond the count at once; the newest stays.
    const late = await h.tool(["ship", h.file(taken[2]![0], taken[2]![1])]);
    expect(late.stdout).toContain(`the bucket keeps the newest 3: deleted ${objectOf(taken[1]!)}\n`);
    expect(h.objects()).toEqual([2, 3, 4].map((i) => objectOf(taken[i]!)));
    // Name order is time order: the bucket's listing is sorted by the time in the names.
    const names = lines((await h.tool(["list"])).stdout).filter((l) => l.startsWith("bucket\t")).map((l) => l.split("\t")[1]);
    expect(names).toEqual(h.objects());
  });

  it("ship with keepDays 10: deletes copies older than 10 days by the time in their names, never the newest", async () => {
    const h = await host("days", withKeep({ keepDays: 10 }));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    const stamps = Object.fromEntries([40, 30, 12, 9, 3].map((days) => [days, stampAgo(days)]));
    for (const days of [40, 30]) expect((await h.tool(["ship", h.file("nightly", stamps[days]!)])).code).toBe(0);
    // Both are older than 10 days: only the older goes, the newest copy is never deleted.
    expect(h.objects()).toEqual([`${stamps[30]}-nightly.dump`]);
    for (const days of [12, 9, 3]) expect((await h.tool(["ship", h.file("predeploy", stamps[days]!)])).code).toBe(0);
    expect(h.objects()).toEqual([`${stamps[9]}-predeploy.dump`, `${stamps[3]}-predeploy.dump`]);
  });

  it("ship prunes only the tool's own copies: objects named otherwise stay in the bucket, whatever their names sort as", async () => {
    const h = await host("foreign", withKeep({ keepCount: 1 }));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    const note = join(h.root, "note.txt");
    writeFileSync(note, "kept by hand");
    const foreign = ["20200101T000000Z-manual.dump", "by-hand.dump", "notes.txt"];
    for (const name of foreign) {
      const put = await run("bash", ["-c", `env -u AWS_CA_BUNDLE '${rclone}' --config '${h.credentials}' -q copyto '${note}' 'backups:${name}'`]);
      expect(put.code, put.stderr).toBe(0);
    }
    const stamps = [stampAgo(3), stampAgo(2)];
    for (const stamp of stamps) expect((await h.tool(["ship", h.file("nightly", stamp)])).code).toBe(0);
    expect(h.objects()).toEqual([`${stamps[1]}-nightly.dump`, ...foreign].sort());
  });

  it("restore chooses: latest is the newest by the time in its name, never a prerestore dump, the host's file before its copy; a named copy whose dump is on the host is read there", async () => {
    const h = await host("choose", planFor(catalog, "staging"));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    const older = h.file("nightly", stampAgo(3));
    const newest = h.file("predeploy", stampAgo(1));
    for (const file of [older, newest]) expect((await h.tool(["ship", file])).code).toBe(0);
    h.file("rollback", stampAgo(2));
    h.file("prerestore", stampAgo(0.5));
    const latest = await h.tool(["restore", "latest", "--dry-run"]);
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.stdout).toMatch(new RegExp(`^dry run: restore ${newest.split("/").at(-1)} \\(host, `));
    const copyOfOlder = h.objects().find((o) => o.endsWith("-nightly.dump"))!;
    const named = await h.tool(["restore", copyOfOlder, "--dry-run"]);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toMatch(new RegExp(`^dry run: restore ${older.split("/").at(-1)} \\(host, `));
    expect(named.stdout).not.toContain("fetch backups:");
  });

  it("dump: pg_dump in the database container, the newest of its kind kept on the host (nightly by age), copied; its path last", async () => {
    const h = await host("dump", planFor(catalog, "staging"));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    const { preDeployKeep, keepDays } = h.plan.backup;
    const old = Array.from({ length: preDeployKeep + 2 }, (_, i) => h.file("predeploy", stampAgo(20 - i)));
    const dump = await h.tool(["dump", "predeploy"]);
    expect(dump.code, dump.stderr).toBe(0);
    const path = lines(dump.stdout).at(-1)!;
    expect(lines(dump.stdout)).toEqual([path]);
    expect(readFileSync(join(h.state, "docker.calls"), "utf8")).toContain(`exec ${h.plan.containers.db.name} pg_dump -U timetracker -d timetracker_v2_dev --format=custom\n`);
    expect(readdirSync(h.dumps).filter((f) => f.includes("-predeploy-")).sort().map((f) => join(h.dumps, f))).toEqual([...old.slice(-(preDeployKeep - 1)), path]);
    expect(h.objects()).toEqual([`${path.split("-predeploy-")[1]!.slice(0, 16)}-predeploy.dump`]);

    const stale = [h.file("nightly", stampAgo(keepDays + 1)), h.file("legacy", stampAgo(keepDays + 1).slice(0, 13))];
    const fresh = [h.file("nightly", stampAgo(keepDays - 1)), h.file("legacy", stampAgo(keepDays - 1).slice(0, 13))];
    const nightly = await h.tool(["nightly"]);
    expect(nightly.code, nightly.stderr).toBe(0);
    expect(nightly.stdout).toMatch(/^nightly: \S+-nightly-\S+ dumped and copied off the host\n$/);
    for (const f of stale) expect(existsSync(f), f).toBe(false);
    for (const f of fresh) expect(existsSync(f), f).toBe(true);
  });

  it("list and status: host and bucket rows, tab-separated, oldest first; an unreachable bucket is one warning line", async () => {
    const h = await host("list", planFor(catalog, "staging"));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    h.file("nightly", stampAgo(2));
    expect((await h.tool(["dump", "predeploy"])).code).toBe(0);
    const list = await h.tool(["list"]);
    expect(list.stderr).toBe("");
    const rows = lines(list.stdout).map((l) => l.split("\t"));
    for (const row of rows) expect(row.join("\t")).toMatch(/^(host|bucket)\t\S+\.dump\t\d+\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(rows.map((r) => r[0])).toEqual(["host", "host", "bucket"]);
    expect(rows.map((r) => r[3])).toEqual(rows.map((r) => r[3]).sort());
    expect((await h.tool(["status"])).stdout).toMatch(/^newest dump: timetracker_v2_dev-predeploy-\S+ \(\d+ s\)\nnewest bucket copy: \d{8}T\d{6}Z-predeploy\.dump \(\d+ s\)\n$/);

    // The bucket's endpoint on a port nothing listens on.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    writeFileSync(h.credentials, h.config(`http://127.0.0.1:${closed}`));
    const down = await h.tool(["list"]);
    expect(down.code).toBe(0);
    expect(lines(down.stdout).map((l) => l.split("\t")[0])).toEqual(["host", "host"]);
    expect(lines(down.stderr)).toHaveLength(1);
    expect(down.stderr).toMatch(/^warning: the bucket \(backups:\) could not be read: .*connection refused; only the host's dumps are listed\n$/);
    expect(lines((await h.tool(["status"])).stdout)[1]).toMatch(/^bucket: unreachable \(.*connection refused\)$/);
    writeFileSync(h.credentials, h.config());
  });

  it("restore --dry-run names the dump, its size and time and the containers it would stop, and changes nothing", async () => {
    const h = await host("dry-run", planFor(catalog, "staging"));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    expect((await h.tool(["dump", "nightly"])).code).toBe(0);
    const snapshot = () => JSON.stringify([readdirSync(h.root, { recursive: true }).sort(), h.objects(), readFileSync(join(h.state, "db"), "utf8")]);
    const before = snapshot();
    const calls = readFileSync(join(h.state, "docker.calls"), "utf8");
    const dry = await h.tool(["restore", "latest", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^dry run: restore timetracker_v2_dev-nightly-\S+ \(host, 17 bytes, taken \d{4}-\S+Z\) into timetracker_v2_dev; nothing is changed\n/);
    expect(dry.stdout).toContain(`  stop ${h.plan.containers.backend.name} (docker stop -t 30)\n`);
    expect(snapshot()).toBe(before);
    const since = readFileSync(join(h.state, "docker.calls"), "utf8").slice(calls.length);
    expect(lines(since).every((c) => c.startsWith("inspect "))).toBe(true);
  });

  it("restore latest from the bucket: prerestore dump, backend stopped, database recreated and restored, counts, backend healthy", async () => {
    const h = await host("restore", planFor(catalog, "staging"));
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    const nightly = lines((await h.tool(["dump", "nightly"])).stdout).at(-1)!;
    const object = h.objects()[0]!;
    // The host loses its dump; the database moves on.
    rmSync(nightly);
    writeFileSync(join(h.state, "db"), "PGDMP database v2");
    writeFileSync(join(h.state, "docker.calls"), "");
    const restored = await h.tool(["restore", "latest"]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`fetched backups:${object}`);
    expect(restored.stdout).toContain("items\t3\nusers\t2\n");
    expect(lines(restored.stdout).at(-1)).toMatch(new RegExp(`^restored ${object} into timetracker_v2_dev in \\d+\\.\\d s$`));
    expect(readFileSync(join(h.state, "db"), "utf8")).toBe("PGDMP database v1");
    const prerestore = readdirSync(h.dumps).find((f) => f.includes("-prerestore-"))!;
    expect(readFileSync(join(h.dumps, prerestore), "utf8")).toBe("PGDMP database v2");
    const { db, backend } = h.plan.containers;
    const acts = lines(readFileSync(join(h.state, "docker.calls"), "utf8")).filter((c) => !c.startsWith("inspect"));
    expect(acts.map((c) => c.replace(/ -c .*/, " -c …"))).toEqual([
      `exec -i ${db.name} pg_restore --list`,
      `exec ${db.name} psql -U timetracker -d timetracker_v2_dev -Atc select 1`,
      `exec ${db.name} pg_dump -U timetracker -d timetracker_v2_dev --format=custom`,
      `stop -t 30 ${backend.name}`,
      `exec ${db.name} psql -v ON_ERROR_STOP=1 -q -U timetracker -d postgres -c …`,
      `exec ${db.name} psql -v ON_ERROR_STOP=1 -q -U timetracker -d postgres -c …`,
      `exec -i ${db.name} pg_restore -U timetracker -d timetracker_v2_dev --no-owner --exit-on-error`,
      `exec ${db.name} psql -v ON_ERROR_STOP=1 -U timetracker -d timetracker_v2_dev -At -F \t -c …`,
      `exec ${db.name} psql -U timetracker -d timetracker_v2_dev -At -c …`,
      `start ${backend.name}`,
    ]);
    expect(acts[4]).toContain('DROP DATABASE IF EXISTS "timetracker_v2_dev" WITH (FORCE)');
    expect(acts[5]).toContain('CREATE DATABASE "timetracker_v2_dev" OWNER "timetracker"');

    // A dump that fails to restore: the database as it was is put back, the backend started, exit 1.
    const broken = h.file("rollback", stampAgo(1), "PGDMP FAILRESTORE");
    const failed = await h.tool(["restore", broken.split("/").at(-1)!]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`FAILED: pg_restore of ${broken.split("/").at(-1)} into timetracker_v2_dev failed`);
    expect(failed.stderr).toMatch(/put \S+-prerestore-\S+ back into timetracker_v2_dev/);
    expect(readFileSync(join(h.state, "db"), "utf8")).toBe("PGDMP database v1");
    expect(readFileSync(join(h.state, `containers/${backend.name}`), "utf8").trim()).toBe("running");
  });

  it("usage: --help exits 0, an unknown command prints it and exits 2", async () => {
    const h = await host("usage", planFor(catalog, "staging"));
    const help = await h.tool(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["dump <kind>", "ship <file>", "nightly", "list", "counts", "restore <name>|latest [--dry-run]", "set-credentials", "status"]) {
      expect(help.stdout).toContain(`\n  ${command}`);
    }
    expect(await h.tool(["frobnicate"])).toEqual({ code: 2, stdout: "", stderr: help.stdout });
  });

  it("the secret key is in no output of the tool, and on no command line or in no environment of rclone or docker", () => {
    expect(printed.length).toBeGreaterThan(20);
    for (const text of printed) expect(text).not.toContain(secret);
    const logs = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && /\.(calls|env)$/.test(e.name));
    const rcloneCalls = logs.filter((e) => e.name === "rclone.calls").map((e) => readFileSync(join(e.parentPath, e.name), "utf8"));
    expect(lines(rcloneCalls.join("")).length).toBeGreaterThan(10);
    for (const call of lines(rcloneCalls.join(""))) expect(call).toMatch(/^--config \S+\/etc\/timetracker\/backup-bucket\.conf -q /);
    for (const log of logs) expect(readFileSync(join(log.parentPath, log.name), "utf8"), log.name).not.toContain(secret);
  });
});

describe("a restore meets the deploy lock, and shows the maintenance page while it runs", () => {
  const [, thisRclone] = RCLONES[0]!;
  const plan = planFor(catalog, "staging");
  const { page, info } = plan.caddy.maintenance;

  /** A host whose stand-in docker notes, when the backend is stopped, the maintenance page Caddy would serve. */
  async function restoreHost(name: string) {
    const h = await hostWith(`lock-${name}`, plan, thisRclone);
    const folder = join(h.root, plan.caddy.maintenance.hostDir);
    renameSync(join(h.bin, "docker"), join(h.bin, "docker.real"));
    writeFileSync(
      join(h.bin, "docker"),
      `#!/bin/bash\nif [ "$1" = stop ]; then cp '${folder}/${page}' "$FAKE_STATE/page-at-stop" 2>/dev/null || echo none > "$FAKE_STATE/page-at-stop"; fi\nexec '${join(h.bin, "docker.real")}' "$@"\n`,
    );
    chmodSync(join(h.bin, "docker"), 0o755);
    // A hold is waited for ${HOLD_WAIT_SECONDS} s on a host; a second here.
    writeFileSync(h.script, readFileSync(h.script, "utf8").replace(`\nhold_wait=${HOLD_WAIT_SECONDS}\n`, "\nhold_wait=1\n"));
    const dump = h.file("nightly", stampAgo(1), "PGDMP restore me");
    const hold = (by: string) => {
      mkdirSync(join(h.root, plan.host.lockDir), { recursive: true });
      writeFileSync(join(h.root, plan.host.lockDir, "hold"), `kind=hold\npid=1\nuser=ubuntu\nfrom=ssh from 203.0.113.7\nby=${by}\nsince=2026-11-20T09:00:00Z\nwhy=moving the data\n`);
    };
    return { ...h, folder, dump: dump.split("/").at(-1)!, hold, pageAtStop: () => readFileSync(join(h.state, "page-at-stop"), "utf8") };
  }

  it("turns maintenance mode on once the dump is checked (before the prerestore dump, before the backend stops), and off before it says restored", async () => {
    const h = await restoreHost("on-off");
    const restored = await h.tool(["restore", h.dump]);
    expect(restored.code, restored.stderr).toBe(0);
    const out = lines(restored.stdout);
    const at = (prefix: string) => out.findIndex((l) => l.startsWith(prefix));
    expect(at("checked: pg_restore reads it")).toBeLessThan(at("maintenance mode on: every route but /api/health answers 503"));
    expect(at("maintenance mode on:")).toBeLessThan(at("prerestore dump:"));
    expect(at("prerestore dump:")).toBeLessThan(at("stopped "));
    expect(at("maintenance mode off")).toBe(out.length - 2);
    expect(out.at(-1)).toMatch(new RegExp(`^restored ${h.dump} into timetracker_v2_dev in \\d+\\.\\d s$`));
    expect(h.pageAtStop()).toBe(renderMaintenancePage(plan, RESTORE_MAINTENANCE_MESSAGE));
    expect(existsSync(join(h.folder, page)), "the page is gone").toBe(false);
    expect(existsSync(join(h.folder, info))).toBe(false);
  });

  it("a restore that fails turns it off too, once the old database is back; one that is on already stays on", async () => {
    const h = await restoreHost("failed");
    const broken = h.file("rollback", stampAgo(2), "PGDMP FAILRESTORE").split("/").at(-1)!;
    const failed = await h.tool(["restore", broken]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("maintenance mode off\n");
    expect(h.pageAtStop()).toContain("restored from a backup");
    expect(existsSync(join(h.folder, page))).toBe(false);

    mkdirSync(h.folder, { recursive: true });
    writeFileSync(join(h.folder, page), "an operator's page");
    const restored = await h.tool(["restore", h.dump]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain("maintenance mode is on already: it stays on after the restore\n");
    expect(restored.stdout).not.toContain("maintenance mode off");
    expect(readFileSync(join(h.folder, page), "utf8")).toBe("an operator's page");
  });

  it(`someone else's hold: the restore waits, then is refused (exit ${LOCK_REFUSED_EXIT}) naming the holder; nothing was changed, no page`, async () => {
    const h = await restoreHost("held");
    h.hold("alice@laptop");
    const refused = await h.tool(["restore", h.dump], "", { TIMETRACKER_LOCK_BY: "bob@desk" });
    expect(refused.code).toBe(LOCK_REFUSED_EXIT);
    expect(refused.stderr).toMatch(/^refused: the deploy lock is held by a hold taken on purpose since 2026-11-20T09:00:00Z \(.* ago\) by ubuntu \(ssh from 203\.0\.113\.7, alice@laptop\): moving the data; waited \d+ s, nothing was changed\.\n/);
    expect(existsSync(join(h.state, "docker.calls")), "no docker call: nothing ran").toBe(false);
    expect(readFileSync(join(h.state, "db"), "utf8")).toBe("PGDMP database v1");
    expect(existsSync(h.folder)).toBe(false);
    // --dry-run takes no lock.
    expect((await h.tool(["restore", h.dump, "--dry-run"])).code).toBe(0);
  });

  it("the hold's own holder restores under it; the nightly dump runs under anyone's hold (a forgotten hold must not stop the backups)", async () => {
    const h = await restoreHost("own");
    h.hold("alice@laptop");
    const own = await h.tool(["restore", h.dump], "", { TIMETRACKER_LOCK_BY: "alice@laptop" });
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout).toMatch(/^runs under its sender's hold: held on purpose since .*: moving the data\n/);
    expect(readFileSync(join(h.state, "db"), "utf8")).toBe("PGDMP restore me");

    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    const nightly = await h.tool(["nightly"]);
    expect(nightly.code, nightly.stderr).toBe(0);
    expect(nightly.stdout).toMatch(/^a hold is in place \(since .*: moving the data\): nightly dump runs anyway\n/);
    expect(readdirSync(h.dumps).some((f) => f.includes("-nightly-") && f !== h.dump)).toBe(true);
  });
});

describe("the backup tool's guards", () => {
  const [, thisRclone] = RCLONES[0]!;
  const plan = planFor(catalog, "staging");

  it("refuses an unknown kind of dump and a restore name that is not a plain name (no path), and does nothing", async () => {
    const h = await hostWith("guard-names", plan, thisRclone);
    const weekly = await h.tool(["dump", "weekly"]);
    expect(weekly).toMatchObject({ code: 2, stdout: "" });
    expect(weekly.stderr).toContain("unknown kind of dump 'weekly': expected one of nightly, predeploy, rollback, prerestore");
    const outside = join(h.root, "outside.dump");
    writeFileSync(outside, "PGDMP not a dump of this tool");
    for (const name of [outside, "../outside.dump", "-x"]) {
      const refused = await h.tool(["restore", name, "--dry-run"]);
      expect({ name, code: refused.code, stdout: refused.stdout }).toEqual({ name, code: 2, stdout: "" });
      expect(refused.stderr).toMatch(/^usage: timetracker-backup restore <name>\|latest \[--dry-run\]/);
    }
    expect(existsSync(h.dumps)).toBe(false);
    expect(existsSync(join(h.state, "docker.calls")), "no docker call").toBe(false);
  });

  it("a backend that exits after the restore fails it at once (not after the health wait), and the old database is put back", async () => {
    const h = await hostWith("guard-exited", plan, thisRclone);
    const dump = h.file("nightly", stampAgo(1), "PGDMP restore me").split("/").at(-1)!;
    const started = Date.now();
    const failed = await h.tool(["restore", dump], "", { FAKE_START_STATUS: "exited" });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(new RegExp(`${plan.containers.backend.name} is exited after \\d+ s`));
    expect(failed.stderr).toContain(`restore of ${dump} FAILED: ${plan.containers.backend.name} did not become healthy`);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(readFileSync(join(h.state, "db"), "utf8")).toBe("PGDMP database v1");
  });

  it("rclone's error in a message never shows the bucket's key, even when rclone prints it", async () => {
    const h = await hostWith("guard-redact", plan, thisRclone);
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);
    // An rclone that fails, quoting its configuration's key (the file after --config).
    writeFileSync(join(h.bin, "rclone"), `#!/bin/bash\necho "2026/11/20 10:00:00 ERROR : Attempt 1/3 failed: SignatureDoesNotMatch for key $(sed -n 's/^secret_access_key = //p' "$2")" >&2\nexit 1\n`);
    const shipped = await h.tool(["ship", h.file("predeploy", stampAgo(1))]);
    expect(shipped.code).toBe(1);
    expect(shipped.stderr).toContain("SignatureDoesNotMatch for key <redacted>");
    expect(shipped.stderr).not.toContain(secret);
  });
});

describe("the records the host status reads (infra/render/host-status.ts)", () => {
  const [, thisRclone] = RCLONES[0]!;
  const plan = planFor(catalog, "staging");
  const { recordsDir, lastCopy, lastNightly } = plan.hostStatus;

  /** The real status writer on the tool's root, its disk check a stand-in that finds nothing (the disk rule is host-status.test's). */
  const statusOf = async ({ root, bin, state }: { root: string; bin: string; state: string }) => {
    const writer = join(root, STATUS_TOOL);
    mkdirSync(join(writer, ".."), { recursive: true });
    writeFileSync(writer, renderStatusTool(plan));
    writeFileSync(join(root, DISK_CHECK), "#!/bin/sh\nexit 0\n");
    chmodSync(join(root, DISK_CHECK), 0o755);
    const result = await new Promise<string>((resolve) => {
      const child = spawn("bash", [writer], { env: { ...process.env, TIMETRACKER_STATUS_ROOT: root, PATH: `${bin}:${process.env.PATH}`, FAKE_STATE: state } });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.on("close", () => resolve(out));
    });
    return lines(result);
  };

  it("each copy names itself the newest (never an older one shipped again), each nightly job its result; the writer reads both", async () => {
    const h = await hostWith("records", plan, thisRclone);
    const records = join(h.root, recordsDir);
    const read = (name: string) => readFileSync(join(records, name), "utf8");
    expect((await h.tool(["set-credentials"], h.config())).code).toBe(0);

    const nightly = await h.tool(["nightly"]);
    expect(nightly.code, nightly.stderr).toBe(0);
    const copied = h.objects().find((o) => o.endsWith("-nightly.dump"))!;
    expect(read(lastCopy)).toBe(`${copied}\n`);
    expect(read(lastNightly)).toMatch(/^\d{8}T\d{6}Z ok dumped and copied off the host\n$/);
    expect(statSync(join(records, lastCopy)).mode & 0o777).toBe(0o644);
    const ok = await statusOf(h);
    expect(ok[0]).toBe(plan.hostStatus.okLine);
    expect(ok.find((l) => l.startsWith("backup: "))).toMatch(new RegExp(`^backup: ok \\(the newest copy in the bucket, ${copied}, is \\d+ min old\\)$`));

    expect((await h.tool(["ship", h.file("predeploy", stampAgo(3))])).code).toBe(0);
    expect(read(lastCopy), "an older dump shipped again").toBe(`${copied}\n`);

    // The bucket gone from the host's view (its credentials moved away): the nightly job fails and says why.
    renameSync(h.credentials, `${h.credentials}.away`);
    const failed = await h.tool(["nightly"]);
    expect(failed.code).toBe(1);
    const [, reason] = /^\d{8}T\d{6}Z failed (.*)\n$/.exec(read(lastNightly)) ?? [];
    expect(reason).toMatch(/^nightly: \S+-nightly-\S+\.dump is on this host only: the copy to the bucket failed$/);
    expect(read(lastCopy)).toBe(`${copied}\n`);
    const alarm = await statusOf(h);
    expect(alarm[0]).toBe("status: alarm nightly");
    expect(alarm.find((l) => l.startsWith("nightly: "))).toContain(`failed: ${reason}; it clears when one succeeds`);

    renameSync(`${h.credentials}.away`, h.credentials);
    expect((await h.tool(["nightly"])).code).toBe(0);
    expect((await statusOf(h))[0]).toBe(plan.hostStatus.okLine);
  });

  it("a nightly job that dies before its copy records the reason it printed", async () => {
    const h = await hostWith("records-no-db", plan, thisRclone);
    writeFileSync(join(h.state, `containers/${plan.containers.db.name}`), "exited");
    const failed = await h.tool(["nightly"]);
    expect(failed.code).toBe(1);
    expect(readFileSync(join(h.root, recordsDir, lastNightly), "utf8")).toMatch(
      new RegExp(`^\\d{8}T\\d{6}Z failed the database container ${plan.containers.db.name} is not running: nothing was dumped\\n$`),
    );
    expect(existsSync(join(h.root, recordsDir, lastCopy))).toBe(false);
  });
});
