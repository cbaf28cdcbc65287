import { catalog } from "../../stacks/catalog.js";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { senderIdentity } from "../../infra/cli/deploy-lock.js";
import { maintenanceScript } from "../../infra/cli/maintenance.js";
import { DATA_MOUNT } from "../../infra/model/derive.js";
import { BACKUP_TOOL } from "../../infra/render/backup.js";
import { renderCaddyfile } from "../../infra/render/caddyfile.js";
import { LOCK_TOOL, RELEASE_LOCK, renderLockTool } from "../../infra/render/deploy-lock.js";
import { STATUS_TOOL } from "../../infra/render/host-status.js";
import { DEFAULT_MAINTENANCE_MESSAGE, renderMaintenancePage } from "../../infra/render/maintenance.js";
import { RELEASE_TOOL } from "../../infra/render/release.js";
import { planOf, REPO_ROOT, run as runCommand } from "./helpers.js";
import { removeTree } from "../scratch.js";

/**
 * `npm run ops` as a user runs it, against a fake `ssh` first on PATH. The fake records
 * its arguments (NUL-separated: a remote script spans lines), then either prints a canned
 * remote output (FAKE_SSH_STDOUT), or runs the remote command with bash as the host's login
 * shell would (FAKE_SSH_RUN), where fake `docker`, `curl`, `df` and `sudo` answer, or
 * prints one line; it exits with FAKE_SSH_EXIT when set.
 */

const scratch = mkdtempSync(join(tmpdir(), "tt-ops-cli-"));
afterAll(() => removeTree(scratch));

const HOST = "198.51.100.7";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPinnedForTheOpsCliTest0123456789abc";
const KEY = join(scratch, "id_ed25519");
writeFileSync(KEY, "not a real key\n", { mode: 0o600 });
const DEST = `ubuntu@${HOST}`;

const plan = planOf("staging");
const names = {
  db: plan.containers.db.name,
  redis: plan.containers.redis.name,
  backend: plan.containers.backend.name,
  frontend: plan.containers.frontend.name,
  caddy: plan.containers.caddy.name,
};

const bin = join(scratch, "bin");
mkdirSync(bin);
function script(name: string, text: string) {
  writeFileSync(join(bin, name), text);
  chmodSync(join(bin, name), 0o755);
}

script(
  "ssh",
  `#!/bin/bash
printf '%s\\0' "$@" > "$FAKE_OUT/ssh-argv"
if [ -n "\${FAKE_SSH_STDOUT:-}" ]; then printf '%s\\n' "$FAKE_SSH_STDOUT"; exit "\${FAKE_SSH_EXIT:-0}"; fi
if [ -n "\${FAKE_SSH_RUN:-}" ]; then
  while [ "$#" -gt 0 ] && [ "$1" != "${DEST}" ]; do shift; done
  shift
  bash -c "$*"
  code=$?
  exit "\${FAKE_SSH_EXIT:-$code}"
fi
echo "fake ssh: remote output"
exit "\${FAKE_SSH_EXIT:-0}"
`,
);

script(
  "docker",
  `#!/bin/bash
echo "docker $*" >> "$FAKE_OUT/docker-calls"
case "$1" in
  logs) echo "a line of \${@: -1}"; echo "another line of \${@: -1}" ;;
  inspect)
    name=\${@: -1}
    case " \${FAKE_UNHEALTHY:-} " in *" $name "*) echo "running unhealthy"; exit 0 ;; esac
    case " \${FAKE_MISSING:-} " in *" $name "*) echo "Error: No such object: $name" >&2; exit 1 ;; esac
    echo "running healthy" ;;
  exec)
    shift
    while [ "\${1#-}" != "$1" ]; do shift; done
    name=$1; shift
    if [ "$1 $2" = "cat /etc/caddy/Caddyfile" ]; then
      [ -n "\${FAKE_CADDYFILE:-}" ] || { echo "no such container" >&2; exit 1; }
      printf '%s\\n' "$FAKE_CADDYFILE"; exit 0
    fi
    echo "in $name:"
    printf '[%s]\\n' "$@"
    if [ "$1" = psql ]; then echo "stdin: $(cat)"; fi
    exit "\${FAKE_EXEC_EXIT:-0}" ;;
  *) echo "unexpected docker $*" >&2; exit 2 ;;
esac
`,
);

script(
  "curl",
  `#!/bin/bash
printf '%s\\0' "$@" > "$FAKE_OUT/curl-argv"
if [ -n "\${FAKE_API_BODY+set}" ]; then body=$FAKE_API_BODY; else body='{"status":"healthy"}'; fi
printf '%s\\n%s' "$body" "\${FAKE_API_CODE:-200}"
`,
);

script(
  "df",
  `#!/bin/bash
path=\${@: -1}
on=$path
if [ -n "\${FAKE_UNMOUNTED:-}" ]; then on=/; fi
echo "Filesystem      Size  Used Avail Use% Mounted on"
echo "/dev/fake        39G  7.6G   31G  20% $on"
`,
);

/** What the host's backup tool answers to `status` unless a case says otherwise: all is well. */
const DUMP_LINE = `newest dump: ${plan.database.name}-nightly-20261120T030000Z.dump (2 h 5 min)`;
const BUCKET_LINE = "newest bucket copy: 20261120T030000Z-nightly.dump (2 h 4 min)";
const BACKUP_STATUS = [DUMP_LINE, BUCKET_LINE].join("\n");
/** What the host's status writer prints unless a case says otherwise: all is well. */
const HOST_STATUS = [
  "status: ok",
  `disk: ok (/ and ${plan.host.dataDisk.mount} under 80% full, / has 5 GB free or more)`,
  "backup: ok (the newest copy in the bucket, 20261120T030000Z-nightly.dump, is 2 h 4 min old)",
  "nightly: ok (the last one, 2026-11-20T03:00:00Z, dumped and copied off the host)",
  "checked: 2026-11-20T05:04:00Z (stack staging, every 5 min and after each nightly job)",
].join("\n");

script(
  "sudo",
  `#!/bin/bash
[ "$1" = -n ] && shift
case "$1 $2" in
  "${BACKUP_TOOL} status")
    printf '%s\\n' "\${FAKE_BACKUP_STATUS-$BACKUP_STATUS}"
    exit "\${FAKE_BACKUP_EXIT:-0}" ;;
  "${STATUS_TOOL} ")
    printf '%s\\n' "\${FAKE_HOST_STATUS-$HOST_STATUS}"
    exit "\${FAKE_HOST_STATUS_EXIT:-0}" ;;
  *) echo "sudo: $1: command not found" >&2; exit 1 ;;
esac
`,
);

script(
  "pulumi",
  `#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_OUT/pulumi-calls"
case "$1 $2" in
  "stack output") printf '%s\\n' "$FAKE_PULUMI_OUTPUTS" ;;
  "config get") printf '%s\\n' "$FAKE_PULUMI_KEY" ;;
  *) echo "unexpected pulumi call: $*" >&2; exit 2 ;;
esac
`,
);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ssh's arguments, or undefined when ssh never ran. */
  sshArgv?: string[];
  curlArgv?: string[];
  dockerCalls: string[];
  pulumiCalls: string[];
}

let runs = 0;
/** Runs the CLI from the repository root as `npx tsx` does, stdin not a terminal unless `wrap` gives it one. */
function ops(args: string[], env: Record<string, string> = {}, input?: string, wrap?: (argv: string[]) => [string, string[]]): Promise<Run> {
  const out = join(scratch, `run-${++runs}`);
  mkdirSync(out);
  const read = (name: string) => (existsSync(join(out, name)) ? readFileSync(join(out, name), "utf8") : undefined);
  // node with tsx's loader: npx and tsx's own wrapper process would double each run's time.
  const argv = ["--import", "tsx", "infra/cli/ops.ts", ...args];
  const [file, fileArgs] = wrap ? wrap([process.execPath, ...argv]) : [process.execPath, argv];
  return new Promise((resolve, reject) => {
    const child = spawn(file, fileArgs, {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`, FAKE_OUT: out, NO_COLOR: "1", BACKUP_STATUS, HOST_STATUS, ...env },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      timeout: 30_000,
    });
    if (input !== undefined) child.stdin?.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code,
        stdout,
        stderr: stderr
          .split("\n")
          .filter((line) => !line.startsWith("npm warn"))
          .join("\n"),
        sshArgv: read("ssh-argv")?.replace(/\0$/, "").split("\0"),
        curlArgv: read("curl-argv")?.replace(/\0$/, "").split("\0"),
        dockerCalls: (read("docker-calls") ?? "").split("\n").filter(Boolean),
        pulumiCalls: (read("pulumi-calls") ?? "").split("\n").filter(Boolean),
      }),
    );
  });
}

const explicit = ["--host", HOST, "--user", "ubuntu", "--key", KEY, "--host-key", HOST_KEY];
const staging = ["--stack", "staging", ...explicit];

/** The ssh options before the destination, and the remote command (one shell line or script). */
function session(run: Run): { options: string[]; remote: string } {
  const argv = run.sshArgv ?? [];
  const at = argv.indexOf(DEST);
  expect(at, `ssh ran with ${DEST}`).toBeGreaterThan(0);
  expect(argv.length, "one remote command string").toBe(at + 2);
  return { options: argv.slice(0, at), remote: argv[at + 1] as string };
}

function expectRefusal(run: Run, message: string | RegExp) {
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(typeof message === "string" ? new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : message);
  expect(run.stderr).toContain("Run `npm run ops -- --help`");
  expect(run.stderr).not.toContain("usage:");
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).not.toContain("node:internal");
  expect(run.sshArgv, "ssh must not run").toBeUndefined();
}

const PS_LINES = [
  { Names: names.caddy, Image: "caddy:2.8.4-alpine", Status: "Up 3 hours (healthy)", Ports: "" },
  { Names: `${names.backend}-previous`, Image: "timetracker-staging-backend:aaa111", Status: "Exited (0) 2 hours ago", Ports: "" },
  { Names: names.backend, Image: "timetracker-staging-backend:bbb222", Status: "Up 2 hours (healthy)", Ports: "127.0.0.1:18081->8080/tcp" },
  { Names: names.db, Image: "postgres:15.10-bookworm", Status: "Up 3 hours (healthy)", Ports: "5432/tcp" },
  { Names: names.frontend, Image: "timetracker-staging-frontend:ccc333", Status: "Up 2 hours (healthy)", Ports: "127.0.0.1:3001->80/tcp" },
].map((e) => JSON.stringify(e));

describe.concurrent("ops CLI", () => {
  it("ps: lists the stack's containers by label, the previous versions marked, then the release tool's status", async () => {
    const release = ["backend live:     timetracker-staging-backend:bbb222 on 18081, running healthy", "backend previous: timetracker-staging-backend:aaa111"];
    const run = await ops([...staging, "ps"], { FAKE_SSH_STDOUT: ["@@ containers", ...PS_LINES, "@@ release", ...release].join("\n") });
    expect(run.code, run.stderr).toBe(0);
    const { options, remote } = session(run);
    expect(options).toContain("-n");
    expect(options).not.toContain("-t");
    expect(options.some((o, i) => o === "StrictHostKeyChecking=yes" && options[i - 1] === "-o")).toBe(true);
    expect(remote).toBe(
      [
        "echo '@@ containers'",
        "docker ps -a --filter label=timetracker.stack=staging --format '{{json .}}' || exit",
        `if [ -x ${RELEASE_TOOL} ]; then`,
        "  echo '@@ release'",
        `  timeout 10 sudo -n ${RELEASE_TOOL} status 2>&1`,
        "  s=$?",
        `  if [ "$s" -eq 124 ]; then echo "(no status within 10 s: a release holds the tool's lock)"; elif [ "$s" -ne 0 ]; then echo "(no status: exit $s)"; fi`,
        "fi",
      ].join("\n"),
    );
    const lines = run.stdout.split("\n");
    expect(lines[0]).toMatch(/^NAME +IMAGE +STATUS +PORTS$/);
    // The Plan's order: db, (redis), backend, backend-previous, frontend, caddy.
    const order = [names.db, names.backend, `${names.backend}-previous`, names.frontend, names.caddy];
    expect(lines.slice(1, 6).map((l) => l.split(/\s+/)[0])).toEqual(order);
    expect(lines.find((l) => l.startsWith(`${names.backend} `))).toMatch(/bbb222 +Up 2 hours \(healthy\) +127\.0\.0\.1:18081->8080\/tcp$/);
    expect(lines.find((l) => l.startsWith(`${names.backend}-previous `))).toMatch(
      /Exited \(0\) 2 hours ago +- +<- previous backend: what npm run rollback -- --stack staging --service backend brings back$/,
    );
    expect(lines).toContain(`missing: ${names.redis} (the redis of the Plan is not on the host)`);
    expect(run.stdout).toContain(`release tool (sudo -n ${RELEASE_TOOL} status):\n${release.join("\n")}\n`);
  });

  it("logs <service> --tail N: docker logs of the Plan's container, no terminal, no input", async () => {
    const [run, prod] = await Promise.all([ops([...staging, "logs", "backend", "--tail", "20"]), ops(["--stack", "prod", ...explicit, "logs", "caddy", "-f"])]);
    expect(run.code, run.stderr).toBe(0);
    const { options, remote } = session(run);
    expect(remote).toBe(`docker logs --tail 20 ${names.backend}`);
    expect(options).toContain("-n");
    expect(options).not.toContain("-t");
    expect(run.stdout).toContain("fake ssh: remote output");
    expect(session(prod).remote).toBe(`docker logs -f --tail 200 ${planOf("prod").containers.caddy.name}`);
  });

  it("logs without a service: the last lines of each service, prefixed with its name; -f follows them all", async () => {
    const run = await ops([...staging, "logs"], { FAKE_SSH_RUN: "1" });
    expect(run.code, run.stderr).toBe(0);
    expect(session(run).remote).toBe(
      (["db", "redis", "backend", "frontend", "caddy"] as const)
        .map((s) => `docker logs --tail 20 ${names[s]} 2>&1 | sed 's/^/${s.padEnd(8)} | /'`)
        .join("\n"),
    );
    for (const s of ["db", "redis", "backend", "frontend", "caddy"] as const) {
      expect(run.stdout).toContain(`${s.padEnd(8)} | a line of ${names[s]}\n${s.padEnd(8)} | another line of ${names[s]}\n`);
    }
    const follow = await ops([...staging, "logs", "-f", "--tail", "5"], { FAKE_SSH_RUN: "1" });
    expect(follow.code, follow.stderr).toBe(0);
    expect(session(follow).remote).toContain(`docker logs -f --tail 5 ${names.db} 2>&1 | sed -u 's/^/db       | /' &\n`);
    expect(session(follow).remote.endsWith("&\nwait")).toBe(true);
    expect(follow.dockerCalls).toHaveLength(5);
    expect(follow.stdout).toContain(`frontend | a line of ${names.frontend}`);
  });

  it("exec: docker exec -i in the service's container, the command quoted for the remote shell, its exit code passed on", async () => {
    const tricky = `echo "a  b" it's $HOME; true`;
    const run = await ops([...staging, "exec", "backend", "--", "sh", "-c", tricky, ""], { FAKE_SSH_RUN: "1", FAKE_EXEC_EXIT: "3" });
    const { options, remote } = session(run);
    expect(remote).toBe(`docker exec -i ${names.backend} sh -c 'echo "a  b" it'\\''s $HOME; true' ''`);
    expect(options, "no terminal when stdin is not one").not.toContain("-t");
    expect(options).not.toContain("-n");
    // Through a real shell, the container gets each argument intact.
    expect(run.stdout).toContain(`in ${names.backend}:\n[sh]\n[-c]\n[${tricky}]\n[]\n`);
    expect(run.code).toBe(3);
    expect(run.stderr).not.toContain("could not reach");
  });

  // util-linux's script(1) gives the CLI a terminal as stdin (tools/prerequisites.sh installs it).
  it("exec adds -t for ssh and docker when stdin is a terminal", async () => {
    const inPty = (argv: string[]): [string, string[]] => ["script", ["-qec", argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" "), "/dev/null"]];
    const run = await ops([...staging, "exec", "frontend", "--", "sh"], {}, undefined, inPty);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const { options, remote } = session(run);
    expect(options).toContain("-t");
    expect(remote).toBe(`docker exec -i -t ${names.frontend} sh`);
  });

  it("psql: the Plan's database and user in the db container, SQL passed through stdin", async () => {
    const run = await ops([...staging, "psql"], { FAKE_SSH_RUN: "1" }, "select 1;\n");
    expect(run.code, run.stderr).toBe(0);
    const { options, remote } = session(run);
    expect(remote).toBe(`docker exec -i ${names.db} psql -U timetracker -d timetracker_v2_dev`);
    expect(options).not.toContain("-t");
    expect(run.stdout).toContain("stdin: select 1;");
    const extra = await ops(["--stack", "prod", ...explicit, "psql", "--", "-c", "select count(*) from users"]);
    const prod = planOf("prod");
    expect(session(extra).remote).toBe(`docker exec -i ${prod.containers.db.name} psql -U ${prod.database.user} -d ${prod.database.name} -c 'select count(*) from users'`);
  });

  it("health: each container's health, /api/health through Caddy with the host's site, disks, the newest dump; exit 0", async () => {
    const caddyfile = ["{", "\tadmin localhost:2019", "\tauto_https off", "}", "", "(timetracker_routes) {", "\thandle {", "\t}", "}", "", "http://staging.rehearsal.localhost {", "\timport timetracker_routes", "}"];
    const run = await ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_CADDYFILE: caddyfile.join("\n") });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const { options } = session(run);
    expect(options).toContain("-n");
    const lines = run.stdout.split("\n");
    expect(lines.slice(0, 6)).toEqual([
      `${names.db}: healthy`,
      `${names.redis}: healthy`,
      `${names.backend}: healthy`,
      `${names.frontend}: healthy`,
      `${names.caddy}: healthy`,
      "api: 200",
    ]);
    // The host runs the rehearsal's definition (its own domain, no TLS): its Caddyfile wins.
    expect(run.curlArgv).toEqual(["-sS", "-m", "10", "-w", "\\n%{http_code}", "-H", "Host: staging.rehearsal.localhost", "http://127.0.0.1:80/api/health"]);
    expect(lines[6]).toBe(
      `  http://127.0.0.1:80/api/health Host staging.rehearsal.localhost (the host's Caddyfile serves staging.rehearsal.localhost; the checkout's Plan says ${plan.domains[0]}: the host runs another definition): {"status":"healthy"}`,
    );
    expect(lines).toContain("disk /: 31G free of 39G (20% used)");
    expect(lines).toContain(`disk ${plan.host.dataDisk.mount}: 31G free of 39G (20% used)`);
    // The backup tool's status, as it printed it, right before the verdict.
    expect(lines.slice(-4)).toEqual([DUMP_LINE, BUCKET_LINE, "health: ok", ""]);
    expect(run.dockerCalls).toContain(`docker inspect -f {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} ${names.backend}`);
  });

  it("health: the Plan's TLS site when the Caddyfile cannot be read; exit 1 on an unhealthy container or an api answer other than 200", async () => {
    const run = await ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_UNHEALTHY: names.backend, FAKE_MISSING: names.redis, FAKE_API_CODE: "502", FAKE_API_BODY: "" });
    expect(run.code).toBe(1);
    const domain = plan.domains[0] as string;
    expect(plan.tls.mode).toBe("acme");
    expect(run.curlArgv).toEqual(["-sS", "-m", "10", "-w", "\\n%{http_code}", "--resolve", `${domain}:443:127.0.0.1`, `https://${domain}:443/api/health`]);
    expect(run.stdout).toContain(`${names.backend}: unhealthy\n`);
    expect(run.stdout).toContain(`${names.redis}: missing (no such container on the host)\n`);
    expect(run.stdout).toContain(`api: 502\n  https://${domain}:443/api/health Host ${domain}: (empty)\n`);
    expect(run.stdout).toContain(`health: FAILED (${names.redis} missing, ${names.backend} unhealthy, api 502)`);

    const api = await ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_API_CODE: "000", FAKE_API_BODY: "curl: (7) Failed to connect", FAKE_UNMOUNTED: "1" });
    expect(api.code).toBe(1);
    expect(api.stdout).toContain("api: 000\n");
    expect(api.stdout).toContain(`disk ${plan.host.dataDisk.mount}: NOT MOUNTED (a folder on /`);
    expect(api.stdout).toContain("health: FAILED (api 000)");
  });

  it("health: a bucket copy older than 26 h, an unreachable bucket, no credentials or a dump never copied is a problem", async () => {
    const cases: [string, string][] = [
      [`${DUMP_LINE}\nnewest bucket copy: 20261118T030000Z-nightly.dump (2 d 2 h)`, "health: FAILED (bucket copy 2 d 2 h old)"],
      [`${DUMP_LINE}\nnewest bucket copy: 20261119T030000Z-nightly.dump (26 h 30 min)`, "health: FAILED (bucket copy 26 h 30 min old)"],
      [`${DUMP_LINE}\nbucket: unreachable (dial tcp: i/o timeout)`, "health: FAILED (bucket unreachable)"],
      [`${DUMP_LINE}\nbucket: no credentials yet`, "health: FAILED (bucket has no credentials)"],
      [`${DUMP_LINE}\nnewest bucket copy: none`, "health: FAILED (no bucket copy)"],
    ];
    const runs = await Promise.all(cases.map(([status]) => ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_BACKUP_STATUS: status })));
    runs.forEach((run, i) => {
      const [status, verdict] = cases[i] as [string, string];
      expect(run.code, run.stdout).toBe(1);
      expect(run.stdout).toContain(`${status}\n${verdict}\n`);
    });
  });

  it("health: a copy within 26 h, or a new stack with no dump yet, is fine; a tool that did not answer is a problem", async () => {
    const fresh = `${DUMP_LINE}\nnewest bucket copy: 20261119T030000Z-nightly.dump (25 h 59 min)`;
    const empty = "newest dump: none\nnewest bucket copy: none";
    const [young, none, missing, timeout, failed] = await Promise.all([
      ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_BACKUP_STATUS: fresh }),
      ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_BACKUP_STATUS: empty }),
      ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_BACKUP_STATUS: `sudo: ${BACKUP_TOOL}: command not found`, FAKE_BACKUP_EXIT: "1" }),
      ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_BACKUP_STATUS: "", FAKE_BACKUP_EXIT: "124" }),
      ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_BACKUP_STATUS: "rclone: config: permission denied", FAKE_BACKUP_EXIT: "2" }),
    ]);
    expect(young.code, young.stdout).toBe(0);
    expect(young.stdout).toContain(`${fresh}\nhealth: ok\n`);
    expect(none.code, none.stdout).toBe(0);
    expect(none.stdout).toContain(`${empty}\nhealth: ok\n`);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain(`backups: unknown (${BACKUP_TOOL} is not on the host: run pulumi up to install it)\nhealth: FAILED (backup tool missing)\n`);
    expect(timeout.code).toBe(1);
    expect(timeout.stdout).toContain(`backups: no status within 45 s (sudo -n ${BACKUP_TOOL} status)\nhealth: FAILED (backup status unknown)\n`);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`rclone: config: permission denied\nbackups: sudo -n ${BACKUP_TOOL} status exited 2\nhealth: FAILED (backup status unknown)\n`);
    expect(session(young).remote).toContain(`timeout 45 sudo -n ${BACKUP_TOOL} status 2>&1\n`);
  });

  it("health: the host's status as its writer prints it, before the backups; an alarm is a problem, a host without the writer is not", async () => {
    const alarm = ["status: alarm disk nightly", `disk: alarm (${plan.host.dataDisk.mount} is 91% full (1 GB free): …)`, "backup: ok (…)", "nightly: alarm (the last one, …, failed: …)", "checked: …"].join("\n");
    const [ok, alarmed, old] = await Promise.all([
      ops([...staging, "health"], { FAKE_SSH_RUN: "1" }),
      ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_HOST_STATUS: alarm, FAKE_HOST_STATUS_EXIT: "1" }),
      ops([...staging, "health"], { FAKE_SSH_RUN: "1", FAKE_HOST_STATUS: `sudo: ${STATUS_TOOL}: command not found`, FAKE_HOST_STATUS_EXIT: "1" }),
    ]);
    const header = `host status (sudo -n ${STATUS_TOOL}, what the host alerts read):`;
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toContain(`${header}\n${HOST_STATUS.split("\n").map((l) => `  ${l}`).join("\n")}\n${DUMP_LINE}\n`);
    expect(session(ok).remote).toContain(`timeout 20 sudo -n ${STATUS_TOOL} 2>&1\n`);
    expect(alarmed.code).toBe(1);
    expect(alarmed.stdout).toContain(`${header}\n  status: alarm disk nightly\n  disk: alarm (`);
    expect(alarmed.stdout).toContain("health: FAILED (host status: disk nightly)\n");
    expect(old.code, old.stdout).toBe(0);
    expect(old.stdout).toContain(`host status: unknown (sudo: ${STATUS_TOOL}: command not found; pulumi up installs ${STATUS_TOOL})\n`);
  });

  it("health: prints the host's disk warning first and prominently", async () => {
    const remote = [
      ...Object.values(names).flatMap((n) => [`@@ container ${n}`, "running healthy"]),
      "@@ api-url plan timetracker-staging.shaemarcus.com https://timetracker-staging.shaemarcus.com:443/api/health",
      "@@ api 200",
      '{"status":"healthy"}',
      "@@ df /",
      "Filesystem Size Used Avail Use% Mounted on",
      "/dev/root 39G 37G 2G 95% /",
      "@@ backups",
      DUMP_LINE,
      BUCKET_LINE,
      "@@ disk-warning",
      "only 2 GB free on /",
      "docker system df: 30 GB of images",
      "@@ end",
    ];
    const run = await ops([...staging, "health"], { FAKE_SSH_STDOUT: remote.join("\n") });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.startsWith("!!! DISK WARNING (/var/lib/timetracker/disk-warning):\n!!!   only 2 GB free on /\n!!!   docker system df: 30 GB of images\n\n")).toBe(true);
    expect(run.stdout).toContain("disk /: 2G free of 39G (95% used)");
    expect(run.stdout).toContain(`disk ${plan.host.dataDisk.mount}: unknown (no answer)`);
    expect(run.stdout).toContain("health: ok, but see the DISK WARNING above");
  });

  it("explains an unreachable host (ssh exit 255): the address and port 22 open only to host.adminCidrs", async () => {
    // Both ways a session runs: output read back (ps, health) and streamed (logs, exec, psql).
    const runs = await Promise.all([["health"], ["logs", "db"]].map((command) => ops([...staging, ...command], { FAKE_SSH_EXIT: "255" })));
    for (const run of runs) {
      expect(run.code).toBe(255);
      expect(run.stderr).toContain(`could not reach ubuntu@${HOST} on port 22`);
      expect(run.stderr).toContain("open only to host.adminCidrs (203.0.113.10/32)");
      expect(run.stderr).not.toMatch(/^\s+at /m);
      expect(run.stdout).not.toContain("health:");
    }
  });

  it("reads the address, user, host key and key path from the stack when they are not given, as rollback does", async () => {
    const outputs = JSON.stringify({ staticIp: HOST, sshUser: "ubuntu", hostKey: HOST_KEY });
    const run = await ops(["--stack", "prod", "logs", "db", "--tail", "all"], { FAKE_PULUMI_OUTPUTS: outputs, FAKE_PULUMI_KEY: KEY });
    expect(run.code, run.stderr).toBe(0);
    expect(run.pulumiCalls).toEqual(["stack output --json --show-secrets=false --stack prod", "config get --stack prod timetracker:sshPrivateKeyPath"]);
    expect(session(run).remote).toBe(`docker logs --tail all ${planOf("prod").containers.db.name}`);
    expect(run.sshArgv?.[(run.sshArgv?.indexOf("-i") ?? 0) + 1]).toBe(KEY);
  });

  it("prints the usage with --help and exits 0", async () => {
    const run = await ops(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("usage: npm run ops -- --stack <name> <command>");
    for (const command of ["ps", "logs [<service>] [-f] [--tail N|all]", "exec <service> -- <command>", "psql", "health"]) expect(run.stdout).toContain(command);
    expect(run.sshArgv).toBeUndefined();
  });

  it("refuses unknown commands and services, stray arguments, misplaced options and stacks outside the catalog", async () => {
    const cases: [string[], string][] = [
      [["frob"], 'unknown command "frob": one of ps, logs, exec, psql, health'],
      [["logs", "web"], 'logs: "web" is not a service: one of db, redis, backend, frontend, caddy'],
      [["exec", "nginx", "--", "sh"], 'exec: "nginx" is not a service'],
      [["exec", "backend", "ls"], "unexpected argument: ls (the command goes after --: exec <service> -- <command>)"],
      [["ps", "backend"], "unexpected argument: backend"],
      [["ps", "-f"], "-f applies to logs only"],
      [["logs", "--tail", "ten"], '--tail: "ten" is not a number of lines (or all)'],
    ];
    const runs = await Promise.all([...cases.map(([args]) => ops([...staging, ...args])), ops(["--stack", "nope", ...explicit, "ps"])]);
    cases.push([[], `--stack: no environment is named "nope"; the catalog has: ${catalog.map((d) => d.name).join(", ")}`]);
    runs.forEach((run, i) => expectRefusal(run, (cases[i] as [string[], string])[1]));
  });
});

/**
 * `npm run ops -- lock …` and `… maintenance …` against a stand-in ssh that runs the remote
 * command with bash as the host's login shell would (in an SSH session from CLIENT), a stand-in
 * sudo that runs the real rendered lock tool and the real maintenance script with the host's
 * paths moved into a temp folder, and a stand-in docker that shows the host's Caddyfile.
 */
const CLIENT = "203.0.113.9";
const lockBin = join(scratch, "lock-bin");
mkdirSync(lockBin);
function lockScript(name: string, text: string) {
  writeFileSync(join(lockBin, name), text);
  chmodSync(join(lockBin, name), 0o755);
}

lockScript(
  "ssh",
  `#!/bin/bash
printf '%s\\0' "$@" > "$FAKE_OUT/ssh-argv"
while [ "$#" -gt 0 ] && [ "$1" != "ubuntu@${HOST}" ]; do shift; done
shift
# In the host's temp root: nothing a remote command writes can land elsewhere by a relative path.
cd "$FAKE_ROOT" || exit 1
SSH_CLIENT="${CLIENT} 50123 22" bash -c "$*"
`,
);

// The host's paths, moved under FAKE_ROOT: the lock tool is rendered there; a root script (bash -c) has its paths rewritten.
lockScript(
  "sudo",
  `#!/bin/bash
[ "$1" = -n ] && shift
from=${DATA_MOUNT}
args=()
for a in "$@"; do
  if [ "$a" = ${LOCK_TOOL} ]; then a="$FAKE_ROOT/lock-tool"; fi
  args+=("\${a//"$from"/"$FAKE_ROOT$from"}")
done
SUDO_USER=ubuntu exec "\${args[@]}"
`,
);

lockScript(
  "docker",
  `#!/bin/bash
if [ "$1 $3 $4" = "exec cat /etc/caddy/Caddyfile" ] && [ "$2" = ${plan.containers.caddy.name} ]; then
  printf '%s' "$FAKE_CADDYFILE"
  # The rest of a file that comes in a later write, after a reader that stops at its match has gone.
  if [ -n "\${FAKE_CADDYFILE_LATER:-}" ]; then sleep 0.3; printf '%s' "$FAKE_CADDYFILE_LATER"; fi
  exit 0
fi
echo "unexpected docker $*" >&2
exit 2
`,
);

interface HostRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The remote command, or undefined when ssh never ran. */
  remote?: string;
}

let hostRuns = 0;
/** A fresh host (its own temp root) unless one is given; returns it with the run. */
function opsOnHost(args: string[], options: { root?: string; env?: Record<string, string> } = {}): Promise<HostRun & { root: string }> {
  const out = join(scratch, `host-run-${++hostRuns}`);
  mkdirSync(out);
  const root = options.root ?? newRoot();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "infra/cli/ops.ts", ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${lockBin}:${dirname(process.execPath)}:/usr/bin:/bin`, FAKE_OUT: out, FAKE_ROOT: root, FAKE_CADDYFILE: renderCaddyfile(plan), NO_COLOR: "1", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const argv = existsSync(join(out, "ssh-argv")) ? readFileSync(join(out, "ssh-argv"), "utf8").replace(/\0$/, "").split("\0") : undefined;
      resolve({ code, stdout, stderr, remote: argv?.at(-1), root });
    });
  });
}

let roots = 0;
/** A host's root: the lock tool rendered with its lock file and records inside it. */
function newRoot(): string {
  const root = join(scratch, `host-root-${++roots}`);
  mkdirSync(root);
  writeFileSync(join(root, "lock-tool"), renderLockTool(plan).replaceAll(RELEASE_LOCK, join(root, "release.lock")).replaceAll(plan.host.lockDir, join(root, plan.host.lockDir)));
  chmodSync(join(root, "lock-tool"), 0o755);
  return root;
}

const me = senderIdentity();

/** A command line split into words by a real shell, as the host's login shell splits it. */
async function words(line: string | undefined): Promise<string[]> {
  const split = await runCommand("bash", ["-c", `set -- ${line ?? ""}; printf '%s\\0' "$@"`]);
  return split.stdout.split("\0").slice(0, -1);
}
const maintenanceFiles = (root: string) => join(root, plan.caddy.maintenance.hostDir);

function expectMistake(run: HostRun, message: string) {
  expect(run.code).toBe(1);
  expect(run.stderr).toContain(message);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.remote, "ssh must not run").toBeUndefined();
}

describe.concurrent("npm run ops -- lock, against the real lock tool", () => {
  it("status: the host's lock tool as root; a new host's lock is free", async () => {
    const run = await opsOnHost([...staging, "lock", "status"]);
    expect(run.remote).toBe(`sudo -n ${LOCK_TOOL} status`);
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 0, stdout: "lock: free\n", stderr: "" });
  });

  it("acquire -m: held on purpose, naming the SSH user, the client's address, the sender and why; a second acquire is refused (75); release frees it", async () => {
    const message = `restoring by hand: don't deploy "today"`;
    const acquired = await opsOnHost([...staging, "lock", "acquire", "-m", message]);
    expect(acquired.code, acquired.stderr).toBe(0);
    // The words the host's shell reads from the remote command: the message and the sender arrive whole.
    expect(await words(acquired.remote)).toEqual(["sudo", "-n", "env", `TIMETRACKER_LOCK_BY=${me}`, LOCK_TOOL, "acquire", message]);
    const held = `by ubuntu (ssh from ${CLIENT}, ${me}): ${message}`;
    expect(acquired.stdout.split("\n")[0]).toMatch(/^lock: held on purpose since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ s ago\) /);
    expect(acquired.stdout.split("\n")[0]).toContain(held);

    const status = await opsOnHost([...staging, "lock", "status"], { root: acquired.root });
    expect(status.stdout).toContain(held);
    expect(status.stdout).toContain("release it with: npm run ops -- --stack staging lock release");

    const second = await opsOnHost([...staging, "lock", "acquire", "-m", "me too"], { root: acquired.root });
    expect(second.code).toBe(75);
    expect(second.stderr).toContain(`refused: the deploy lock is already held on purpose since`);
    expect(second.stderr).toContain(held);

    const released = await opsOnHost([...staging, "lock", "release"], { root: acquired.root });
    expect(released.remote).toBe(`sudo -n ${LOCK_TOOL} release`);
    expect(released.code).toBe(0);
    expect(released.stdout).toMatch(/^released the hold: held on purpose since .*\nlock: free\n$/);
  });

  it("acquire from CI names the run: its actor and URL", async () => {
    const ci = { GITHUB_ACTIONS: "true", GITHUB_RUN_ID: "4242", GITHUB_REPOSITORY: "acme/timetracker-infra", GITHUB_SERVER_URL: "https://github.com", GITHUB_ACTOR: "octocat" };
    const run = await opsOnHost([...staging, "lock", "acquire", "-m", "release train"], { env: ci });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`(ssh from ${CLIENT}, octocat in CI run https://github.com/acme/timetracker-infra/actions/runs/4242): release train`);
  });

  it("refuses, before reaching the host: acquire without -m, -m elsewhere, a message of two lines or too long, an unknown action", async () => {
    const [noMessage, elsewhere, twoLines, tooLong, unknown, none] = await Promise.all([
      opsOnHost([...staging, "lock", "acquire"]),
      opsOnHost([...staging, "lock", "status", "-m", "why"]),
      opsOnHost([...staging, "lock", "acquire", "-m", "one\ntwo"]),
      opsOnHost([...staging, "lock", "acquire", "-m", "x".repeat(301)]),
      opsOnHost([...staging, "lock", "steal"]),
      opsOnHost([...staging, "lock"]),
    ]);
    expectMistake(noMessage, 'lock acquire: say why with -m "<message>"');
    expectMistake(elsewhere, "-m/--message applies to lock acquire and maintenance on only");
    expectMistake(twoLines, "-m/--message: the message must be one line");
    expectMistake(tooLong, "-m/--message: the message has 301 characters; at most 300");
    expectMistake(unknown, 'lock: "steal" is not one of status, acquire, release');
    expectMistake(none, "lock: say what to do: one of status, acquire, release");
  });
});

describe.concurrent("npm run ops -- maintenance, with the real maintenance script", () => {
  it("on -m: the page (rendered from the Plan, the message escaped) and its info written on the host, as root; status; off removes both", async () => {
    const message = "Moving to a bigger disk <until 10:00 UTC> & back soon";
    const on = await opsOnHost([...staging, "maintenance", "on", "-m", message]);
    expect(on.code, on.stderr).toBe(0);
    expect(on.remote).toMatch(/^sudo -n bash -c /);
    const files = maintenanceFiles(on.root);
    expect(readFileSync(join(files, plan.caddy.maintenance.page), "utf8")).toBe(renderMaintenancePage(plan, message));
    expect(readFileSync(join(files, plan.caddy.maintenance.info), "utf8")).toMatch(new RegExp(`^since=\\S+Z\\nby=${me.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\nmessage=Moving to a bigger disk <until 10:00 UTC> & back soon\\n$`));
    expect(on.stdout.split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^maintenance: on since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ by ${me.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`)),
      `  message: ${message}`,
      `  every route but /api/health answers 503 with ${plan.caddy.maintenance.hostDir}/index.html (Retry-After: 60)`.replace(plan.caddy.maintenance.hostDir, `${on.root}${plan.caddy.maintenance.hostDir}`),
      "",
    ]);

    const status = await opsOnHost([...staging, "maintenance", "status"], { root: on.root });
    expect(status.code).toBe(0);
    expect(status.stdout.split("\n").slice(0, 2)).toEqual(on.stdout.split("\n").slice(0, 2));

    const off = await opsOnHost([...staging, "maintenance", "off"], { root: on.root });
    expect({ code: off.code, stdout: off.stdout }).toEqual({ code: 0, stdout: "maintenance: off\n" });
    expect(readdirSync(files)).toEqual([]);
  });

  it("on without -m: the default message", async () => {
    const on = await opsOnHost([...staging, "maintenance", "on"]);
    expect(on.code, on.stderr).toBe(0);
    expect(readFileSync(join(maintenanceFiles(on.root), plan.caddy.maintenance.page), "utf8")).toBe(renderMaintenancePage(plan, DEFAULT_MAINTENANCE_MESSAGE));
  });

  it("on reads the host's whole Caddyfile before deciding: the rest arriving after the maintenance line (a reader that stopped there is gone) is no refusal", async () => {
    const on = await opsOnHost([...staging, "maintenance", "on", "-m", "x"], { env: { FAKE_CADDYFILE_LATER: "# the rest of the file\n" } });
    expect(on.code, on.stderr).toBe(0);
    expect(existsSync(join(maintenanceFiles(on.root), plan.caddy.maintenance.page))).toBe(true);
  });

  it("on is refused when the host's Caddy was deployed before maintenance mode: nothing is written", async () => {
    const old = renderCaddyfile(plan).replace(/\troot \/config\/maintenance\n/g, "");
    expect(old).not.toBe(renderCaddyfile(plan));
    const on = await opsOnHost([...staging, "maintenance", "on", "-m", "x"], { env: { FAKE_CADDYFILE: old } });
    expect(on.code).toBe(1);
    expect(on.stderr).toContain(`refused: the Caddy on this host (${plan.containers.caddy.name}) has no maintenance mode: deploy this version first (pulumi up); nothing was changed`);
    expect(existsSync(maintenanceFiles(on.root))).toBe(false);
  });

  it("refuses an unknown action, a stray argument and -m with off, before reaching the host", async () => {
    const [unknown, stray, offMessage] = await Promise.all([
      opsOnHost([...staging, "maintenance", "enable"]),
      opsOnHost([...staging, "maintenance", "on", "now"]),
      opsOnHost([...staging, "maintenance", "off", "-m", "x"]),
    ]);
    expectMistake(unknown, 'maintenance: "enable" is not one of on, off, status');
    expect(stray.code).toBe(1);
    expect(stray.remote).toBeUndefined();
    expectMistake(offMessage, "-m/--message applies to lock acquire and maintenance on only");
  });

  it.each(["on", "off", "status"] as const)("shellcheck finds nothing in the %s script", async (action) => {
    const file = join(scratch, `maintenance-${action}.sh`);
    writeFileSync(file, maintenanceScript(plan, action, action === "on" ? { message: "it's <x>", by: "a@b" } : undefined));
    const checked = await runCommand("shellcheck", ["--norc", "--format=gcc", "--shell=bash", file]);
    expect(checked.spawnError?.code, "shellcheck is not installed").toBeUndefined();
    expect({ code: checked.code, findings: checked.stdout + checked.stderr }).toEqual({ code: 0, findings: "" });
  });
});
