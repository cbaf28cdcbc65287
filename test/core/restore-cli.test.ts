import { catalog } from "../../stacks/catalog.js";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BACKUP_TOOL } from "../../infra/render/backup.js";
import { shellWord } from "../../infra/render/shell.js";
import { sentBy } from "../../infra/cli/deploy-lock.js";
import { planOf, REPO_ROOT } from "./helpers.js";
import { removeTree } from "../scratch.js";

/**
 * `npm run restore` as a user runs it, against a fake `ssh` (and, where the stack is read, a
 * fake `pulumi`) first on PATH. The fake ssh appends each session's arguments to a file
 * (NUL-separated, one session a line), copies the known_hosts file it was given, and answers
 * the backup tool's `list` with FAKE_LIST (exit FAKE_LIST_EXIT) and its `restore` with
 * FAKE_RESTORE (exit FAKE_RESTORE_EXIT); FAKE_SSH_EXIT=255 stands for an unreachable host.
 */

const scratch = mkdtempSync(join(tmpdir(), "tt-restore-cli-"));
afterAll(() => removeTree(scratch));

const HOST = "198.51.100.7";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPinnedForTheRestoreCliTest0123456789";
const KEY = join(scratch, "id_ed25519");
writeFileSync(KEY, "not a real key\n", { mode: 0o600 });
const DEST = `ubuntu@${HOST}`;
const db = planOf("staging").database.name;

function script(dir: string, name: string, text: string) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), text);
  chmodSync(join(dir, name), 0o755);
}

const FAKE_SSH = `#!/bin/bash
{ printf '%s\\0' "$@"; echo; } >> "$FAKE_OUT/ssh-sessions"
for arg in "$@"; do
  case "$arg" in
    UserKnownHostsFile=*)
      printf '%s\\n' "\${arg#UserKnownHostsFile=}" > "$FAKE_OUT/known-hosts-path"
      cp "\${arg#UserKnownHostsFile=}" "$FAKE_OUT/known-hosts" ;;
  esac
done
[ -n "\${FAKE_SSH_EXIT:-}" ] && { echo "ssh: connect to host: Connection timed out" >&2; exit "$FAKE_SSH_EXIT"; }
remote=\${@: -1}
case "$remote" in
  *" list"*) printf '%s\\n' "$FAKE_LIST"; exit "\${FAKE_LIST_EXIT:-0}" ;;
  *" restore "*) printf '%s\\n' "$FAKE_RESTORE"; exit "\${FAKE_RESTORE_EXIT:-0}" ;;
  *) echo "unexpected remote command: $remote" >&2; exit 99 ;;
esac
`;

const FAKE_PULUMI = `#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_OUT/pulumi-calls"
case "$1 $2" in
  "stack output") printf '%s\\n' "$FAKE_PULUMI_OUTPUTS" ;;
  "config get") printf '%s\\n' "$FAKE_PULUMI_KEY" ;;
  *) echo "unexpected pulumi call: $*" >&2; exit 2 ;;
esac
`;

const bin = join(scratch, "bin");
script(bin, "ssh", FAKE_SSH);
script(bin, "pulumi", FAKE_PULUMI);

/** The tool's `list`: oldest first; the newest of all is a prerestore dump, the newest taken before it is on the host and in the bucket. */
const LIST = [
  ["host", `${db}-nightly-20261118T030000Z.dump`, "1048576", "2026-11-18T03:00:04Z"],
  ["bucket", "20261118T030000Z-nightly.dump", "1048576", "2026-11-18T03:00:09Z"],
  ["host", `${db}-predeploy-20261119T101500Z.dump`, "1153434", "2026-11-19T10:15:02Z"],
  ["bucket", "20261119T101500Z-predeploy.dump", "1153434", "2026-11-19T10:15:07Z"],
  ["host", `${db}-prerestore-20261119T120000Z.dump`, "2048", "2026-11-19T12:00:01Z"],
].map((fields) => fields.join("\t"));

const RESTORE = [
  "stopping the backend",
  `dumping ${db} first: ${db}-prerestore-20261120T090000Z.dump`,
  "pg_restore …",
  "users\t12",
  "projects\t3",
  "time_entries\t4711",
  "starting the backend",
  `restored ${db}-predeploy-20261119T101500Z.dump into ${db} in 4.2 s`,
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The remote command of each ssh session, in order. */
  remotes: string[];
  /** ssh's options before the destination, of each session. */
  options: string[][];
  knownHosts?: string;
  knownHostsPath?: string;
  pulumiCalls: string[];
}

let runs = 0;
/** Runs the CLI from the repository root, stdin not a terminal unless `wrap` gives it one. */
function restore(args: string[], env: Record<string, string> = {}, input?: string, wrap?: (argv: string[]) => [string, string[]]): Promise<Run> {
  const out = join(scratch, `run-${++runs}`);
  mkdirSync(out);
  const read = (name: string) => (existsSync(join(out, name)) ? readFileSync(join(out, name), "utf8") : undefined);
  // node with tsx's loader: npx and tsx's own wrapper process would double each run's time.
  const argv = ["--import", "tsx", "infra/cli/restore.ts", ...args];
  const [file, fileArgs] = wrap ? wrap([process.execPath, ...argv]) : [process.execPath, argv];
  return new Promise((resolve, reject) => {
    const child = spawn(file, fileArgs, {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`, FAKE_OUT: out, NO_COLOR: "1", FAKE_LIST: LIST.join("\n"), FAKE_RESTORE: RESTORE.join("\n"), ...env },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      timeout: 30_000,
    });
    if (input !== undefined) child.stdin?.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const sessions = (read("ssh-sessions") ?? "")
        .split("\n")
        .filter(Boolean)
        .map((s) => s.replace(/\0$/, "").split("\0"));
      resolve({
        code,
        stdout,
        stderr: stderr
          .split("\n")
          .filter((line) => !line.startsWith("npm warn"))
          .join("\n"),
        // Each session ends with the destination and one remote command string.
        remotes: sessions.map((s) => (s.indexOf(DEST) === s.length - 2 ? (s.at(-1) as string) : `(not one remote command: ${s.join(" ")})`)),
        options: sessions.map((s) => s.slice(0, s.indexOf(DEST))),
        knownHosts: read("known-hosts"),
        knownHostsPath: read("known-hosts-path")?.trim(),
        pulumiCalls: (read("pulumi-calls") ?? "").split("\n").filter(Boolean),
      });
    });
  });
}

const explicit = ["--host", HOST, "--user", "ubuntu", "--key", KEY, "--host-key", HOST_KEY];
const staging = ["--stack", "staging", ...explicit];
const LIST_CMD = `sudo -n ${BACKUP_TOOL} list 2>&1`;
/** A restore is sent as its sender's (`env TIMETRACKER_LOCK_BY=<user>@<machine>`); a dry run takes no lock. */
const restoreCmd = (name: string, dryRun = false) =>
  dryRun ? `sudo -n ${BACKUP_TOOL} restore ${name} --dry-run` : ["sudo", "-n", ...sentBy(), BACKUP_TOOL, "restore", name].map(shellWord).join(" ");

/** A user's mistake: one message pointing at the usage (not the usage itself), never a stack trace, and nothing run on the host. */
function expectRefusal(run: Run, message: string | RegExp) {
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(typeof message === "string" ? new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : message);
  expect(run.stderr).toContain("Run `npm run restore -- --help`");
  expect(run.stderr).not.toContain("usage:");
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).not.toContain("node:internal");
  expect(run.remotes, "ssh must not run").toEqual([]);
}

describe.concurrent("restore CLI", () => {
  it("lists the dumps, restores the newest that is not a prerestore one with --yes, and sums it up", async () => {
    const run = await restore([...staging, "--yes"]);
    expect(run.code, run.stderr).toBe(0);
    const name = `${db}-predeploy-20261119T101500Z.dump`;
    expect(run.remotes).toEqual([LIST_CMD, restoreCmd(name)]);
    // The runbook names the command the CLI runs.
    expect(readFileSync(join(REPO_ROOT, "docs/restore-database.md"), "utf8")).toContain(`sudo -n ${BACKUP_TOOL} restore <dump>`);
    // Both sessions connect as rollback does: only the pinned host key, never a prompt, no input read.
    for (const options of run.options) {
      const opt = (value: string) => options.some((arg, i) => arg === value && options[i - 1] === "-o");
      expect(opt("StrictHostKeyChecking=yes")).toBe(true);
      expect(opt("BatchMode=yes")).toBe(true);
      expect(options[options.indexOf("-i") + 1]).toBe(KEY);
      expect(options).toContain("-n");
      expect(options).not.toContain("-t");
    }
    // The restore's session (the last): its known_hosts file holds the pinned key alone, and is gone after.
    expect(run.options.at(-1)).toContain(`UserKnownHostsFile=${run.knownHostsPath}`);
    expect(run.knownHosts).toBe(`${HOST} ${HOST_KEY}\n`);
    expect(existsSync(run.knownHostsPath as string), "the temporary known_hosts file is removed").toBe(false);

    const lines = run.stdout.split("\n");
    expect(lines[0]).toBe(`dumps of staging (${DEST}):`);
    expect(lines[1]).toMatch(/^WHERE +NAME +SIZE +TIME \(UTC\)$/);
    expect(lines[2]).toMatch(new RegExp(`^host +${db}-nightly-20261118T030000Z\\.dump +1\\.0 MB +2026-11-18T03:00:04Z$`));
    expect(lines[5]).toMatch(/^bucket +20261119T101500Z-predeploy\.dump +1\.1 MB +2026-11-19T10:15:07Z$/);
    expect(lines[6]).toMatch(/^host +\S+-prerestore-\S+ +2\.0 KB /);
    expect(run.stdout).not.toContain("bucket: ");
    expect(run.stdout).toContain(`chosen: host ${name} (2026-11-19T10:15:02Z)\n${RESTORE[0]}\n`);
    // The tool's output streamed as it came, then the summary.
    expect(run.stdout).toContain(`${RESTORE.join("\n")}\n`);
    const summary = run.stdout.slice(run.stdout.lastIndexOf("\nrestored ") + 1);
    expect(summary).toBe(
      [
        `restored ${name} (host, 2026-11-19T10:15:02Z) into ${db} of staging in 4.2 s`,
        "  users         12 rows",
        "  projects      3 rows",
        "  time_entries  4711 rows",
        "",
      ].join("\n"),
    );
  });

  it("--dry-run runs only the tool's dry run of the dump named by --from, with no confirmation", async () => {
    const name = "20261118T030000Z-nightly.dump";
    const run = await restore([...staging, "--from", name, "--dry-run"], { FAKE_RESTORE: "would stop the backend\nwould restore" });
    expect(run.code, run.stderr).toBe(0);
    expect(run.remotes).toEqual([LIST_CMD, restoreCmd(name, true)]);
    expect(run.remotes.filter((r) => r.includes(" restore ") && !r.endsWith(" --dry-run")), "never a restore without --dry-run").toEqual([]);
    expect(run.stdout).toContain(`chosen: bucket ${name} (2026-11-18T03:00:09Z)\nwould stop the backend\nwould restore\n`);
    expect(run.stdout).toMatch(new RegExp(`dry run of ${name} on staging: exit 0 after \\d+\\.\\d s; nothing was changed`));
    expect(run.stdout).not.toContain("\nrestored ");

    const failed = await restore([...staging, "--dry-run", "--yes"], { FAKE_RESTORE_EXIT: "1" });
    expect(failed.code).toBe(1);
    expect(failed.remotes).toEqual([LIST_CMD, restoreCmd(`${db}-predeploy-20261119T101500Z.dump`, true)]);
    expect(failed.stderr).toMatch(/dry run of \S+ on staging: exit 1 after \d+\.\d s; nothing was changed/);
  });

  it("refuses to restore without a terminal and without --yes, before reaching the host", async () => {
    expectRefusal(await restore(staging), "restoring replaces the database of staging: stdin is not a terminal to confirm it, so pass --yes");
    expectRefusal(await restore(staging, {}, `staging\n`), "pass --yes");
  });

  it("refuses a --from no dump is named, with the closest names, after listing only", async () => {
    const run = await restore([...staging, "--from", "20261119T1015Z-predeploy.dump", "--yes"]);
    expect(run.code).toBe(1);
    expect(run.remotes).toEqual([LIST_CMD]);
    expect(run.stderr).toContain(
      `--from: no dump is named "20261119T1015Z-predeploy.dump"; the closest: 20261119T101500Z-predeploy.dump, 20261118T030000Z-nightly.dump, `,
    );
    expect(run.stderr).toContain("Nothing was changed.");
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it("says when the bucket could not be read, and restores latest from what the host has", async () => {
    // The tool's warning (its stderr, merged into what the CLI reads) comes before its rows.
    const warning = "warning: the bucket (backups:) could not be read: dial tcp 52.216.0.1:443: i/o timeout; only the host's dumps are listed";
    const run = await restore([...staging, "--yes"], { FAKE_LIST: [warning, LIST[0], LIST[2]].join("\n") });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("bucket: not listed: the bucket (backups:) could not be read: dial tcp 52.216.0.1:443: i/o timeout\n");
    expect(run.stdout).toMatch(/^host +\S+-predeploy-20261119T101500Z\.dump /m);
    expect(run.remotes.at(-1)).toBe(restoreCmd(`${db}-predeploy-20261119T101500Z.dump`));
  });

  it("latest: the newest by the time in the tool's names, the host's file before its bucket copy, whatever the listing order and listed times", async () => {
    const chosen = `${db}-predeploy-20261120T080000Z.dump`;
    const rows = [
      // Its bucket copy, listed first: same time in the name, the host's file goes first (no download).
      ["bucket", "20261120T080000Z-predeploy.dump", "1153434", "2026-11-20T08:00:07Z"],
      ["host", `${db}-nightly-20261119T030000Z.dump`, "1048576", "2026-11-19T03:00:04Z"],
      ["host", chosen, "1153434", "2026-11-20T08:00:02Z"],
      // The newest of all is the database just before a restore: never "latest".
      ["host", `${db}-prerestore-20261122T120000Z.dump`, "2048", "2026-11-22T12:00:01Z"],
      // The nightly job's older name (minutes only): its name's time, not the later time it is listed with.
      ["host", `${db}-20261101T0300.dump`, "1048576", "2026-11-30T00:00:00Z"],
      // A copy made by hand whose name only looks like a dump's: its listed time, not the one in its name.
      ["host", `copy-of-${db}-nightly-20991231T235959Z.dump`, "1048576", "2026-11-10T00:00:00Z"],
      // Listed last and listed newest, but taken first.
      ["bucket", "20261118T030000Z-nightly.dump", "1048576", "2026-11-25T00:00:00Z"],
    ].map((fields) => fields.join("\t"));
    const run = await restore([...staging, "--dry-run"], { FAKE_LIST: rows.join("\n") });
    expect(run.code, run.stderr).toBe(0);
    expect(run.remotes).toEqual([LIST_CMD, restoreCmd(chosen, true)]);
    expect(run.stdout).toContain(`chosen: host ${chosen} (2026-11-20T08:00:02Z)\n`);
  });

  it("on a new host whose disk came back empty, latest is the newest bucket copy", async () => {
    const run = await restore([...staging, "--yes"], { FAKE_LIST: [LIST[1], LIST[3]].join("\n") });
    expect(run.code, run.stderr).toBe(0);
    expect(run.remotes).toEqual([LIST_CMD, restoreCmd("20261119T101500Z-predeploy.dump")]);
    expect(run.stdout).toContain("chosen: bucket 20261119T101500Z-predeploy.dump (2026-11-19T10:15:07Z)\n");
  });

  it("a restore the deploy lock stops (exit 75) is not started, not FAILED: nothing was changed", async () => {
    const refusal = "refused: the deploy lock is held by a hold taken on purpose since 2026-11-20T09:00:00Z (5 min ago) by ubuntu (ssh from 203.0.113.7, bob@desk): moving data; waited 60 s, nothing was changed.";
    const run = await restore([...staging, "--yes"], { FAKE_RESTORE: refusal, FAKE_RESTORE_EXIT: "75" });
    expect(run.code).toBe(75);
    expect(run.stdout).toContain(refusal);
    expect(run.stderr).toContain(`restore of ${db}-predeploy-20261119T101500Z.dump on staging not started: the deploy lock is held (the tool says by whom, above); nothing was changed`);
    expect(run.stderr).not.toContain("FAILED");
  });

  it("has nothing to restore from when no dump is listed (exit 1)", async () => {
    const run = await restore([...staging, "--yes"], { FAKE_LIST: "" });
    expect(run.code).toBe(1);
    expect(run.remotes).toEqual([LIST_CMD]);
    expect(run.stdout).toContain("bucket: no copies yet");
    expect(run.stderr).toContain("nothing to restore from: no dump on the host or in the bucket; nothing was changed");
  });

  it("exits with the tool's code when the restore fails, saying the tool put the data back", async () => {
    const run = await restore([...staging, "--yes"], { FAKE_RESTORE: "pg_restore: error: could not execute query\nputting the previous data back", FAKE_RESTORE_EXIT: "1" });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("putting the previous data back\n");
    expect(run.stderr).toMatch(/restore of \S+-predeploy-20261119T101500Z\.dump on staging FAILED: exit 1 after \d+\.\d s \(the tool put the previous data back/);
    expect(run.stdout).not.toContain("\nrestored ");

    const list = await restore([...staging, "--yes"], { FAKE_LIST: "sudo: /usr/local/bin/timetracker-backup: command not found", FAKE_LIST_EXIT: "1" });
    expect(list.code).toBe(1);
    expect(list.remotes).toEqual([LIST_CMD]);
    expect(list.stderr).toContain(`sudo: ${BACKUP_TOOL}: command not found\n`);
    expect(list.stderr).toContain(
      `could not list the dumps of staging: sudo -n ${BACKUP_TOOL} list exited 1 (the host has no ${BACKUP_TOOL}: run pulumi up to install it); nothing was changed`,
    );
  });

  it("explains an unreachable host (ssh exit 255): the address and port 22 open only to host.adminCidrs", async () => {
    const run = await restore([...staging, "--dry-run"], { FAKE_SSH_EXIT: "255" });
    expect(run.code).toBe(255);
    expect(run.remotes).toEqual([LIST_CMD]);
    expect(run.stderr).toContain(`could not reach ${DEST} on port 22`);
    expect(run.stderr).toContain("open only to host.adminCidrs (203.0.113.10/32)");
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  // util-linux's script(1) gives the CLI a terminal as stdin, fed from ours (tools/prerequisites.sh installs it).
  it("in a terminal, asks for the stack's name: only that name restores", async () => {
    const inPty = (argv: string[]): [string, string[]] => ["script", ["-qec", argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" "), "/dev/null"]];
    const [wrong, right] = await Promise.all([restore(staging, {}, "prod\n", inPty), restore(staging, {}, "staging\n", inPty)]);
    expect(wrong.code, wrong.stdout).toBe(1);
    expect(wrong.stdout).toContain(`This replaces the database ${db} of staging with host ${db}-predeploy-20261119T101500Z.dump`);
    expect(wrong.stdout).toContain("Type the stack's name (staging) to restore");
    expect(wrong.stdout).toContain("not confirmed: nothing was changed");
    expect(wrong.remotes).toEqual([LIST_CMD]);
    expect(right.code, right.stdout).toBe(0);
    expect(right.remotes).toEqual([LIST_CMD, restoreCmd(`${db}-predeploy-20261119T101500Z.dump`)]);
  });

  it("reads the address, user, host key and key path from the stack when they are not given, as rollback does", async () => {
    const outputs = JSON.stringify({ staticIp: HOST, sshUser: "ubuntu", hostKey: HOST_KEY });
    const run = await restore(["--stack", "prod", "--dry-run"], { FAKE_PULUMI_OUTPUTS: outputs, FAKE_PULUMI_KEY: KEY });
    expect(run.code, run.stderr).toBe(0);
    expect(run.pulumiCalls).toEqual(["stack output --json --show-secrets=false --stack prod", "config get --stack prod timetracker:sshPrivateKeyPath"]);
    expect(run.remotes[0]).toBe(LIST_CMD);
  });

  it("prints the usage with --help and exits 0", async () => {
    const run = await restore(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^usage: npm run restore -- --stack <name> \[--from latest\|<dump>\] \[--dry-run\] \[--yes\]/);
    for (const option of ["--from latest|<dump>", "--dry-run", "--yes", "--host <ip>", "--host-key"]) expect(run.stdout).toContain(option);
    expect(run.remotes).toEqual([]);
  });

  it("refuses a stack outside the catalog, a stray argument and an empty --from", async () => {
    const [stack, stray, from] = await Promise.all([
      restore(["--stack", "nope", ...explicit, "--yes"]),
      restore([...staging, "latest", "--yes"]),
      restore([...staging, "--from", "", "--yes"]),
    ]);
    expectRefusal(stack, `--stack: no environment is named "nope"; the catalog has: ${catalog.map((d) => d.name).join(", ")}`);
    expectRefusal(stray, "unexpected argument 'latest'");
    expectRefusal(from, "--from: give latest or a dump's name");
  });
});
