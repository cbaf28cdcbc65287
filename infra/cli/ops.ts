/**
 * `npm run ops -- --stack <name> <command>`: what `docker compose ps/logs/exec` answered,
 * for a stack's Lightsail host, over SSH with the stack's pinned host key.
 *
 * Output formats (stable: the rehearsal and runbooks match them):
 *
 * ps      a header line `NAME  IMAGE  STATUS  PORTS`, then one line per container that
 *         carries the label timetracker.stack=<stack>, the Plan's order first
 *         (db, redis, backend, backend-previous, frontend, frontend-previous, caddy):
 *           `<container name>  <image>  <docker status>  <ports or ->[  <- note]`
 *         columns separated by at least two spaces; the line starts with the name, and the
 *         status is Docker's, e.g. `Up 3 minutes (healthy)`, `Exited (0) 2 hours ago`.
 *         A stopped `<name>-previous` is noted `<- previous <service>: what
 *         npm run rollback -- --stack <stack> --service <service> brings back`.
 *         A container of the Plan not on the host: a line `missing: <name> (...)`.
 *         Then, when the host has the release tool, a blank line,
 *         `release tool (sudo -n /usr/local/bin/timetracker-release status):` and its lines.
 *         Exit 0, or docker's exit code.
 *
 * logs    `docker logs` as is for one service; without a service each line is prefixed
 *         `<service padded to 8> | `.
 *
 * health  one line per container of the Plan, in the order db, redis, backend, frontend, caddy:
 *           `<container name>: <state>[ (<detail>)]`
 *         state is `healthy`, or Docker's health (`unhealthy`, `starting`), or, when not
 *         running, its status (`exited`, `restarting`, `created`, ...), or `missing`;
 *         `running` for a container without a health check (none in the Plan has none).
 *         Then:
 *           `api: <HTTP status>`      /api/health through Caddy on the host, `000` when nothing answered
 *           `  <url> Host <domain>[ (...)]: <first 300 characters of the body>`
 *           `disk /: <avail> free of <size> (<use%> used)`
 *           `disk <data mount>: <avail> free of <size> (<use%> used)`   or `... NOT MOUNTED (...)`
 *           the lines of `sudo -n /usr/local/bin/timetracker-backup status`, as the tool prints them:
 *             `newest dump: <name> (<age>)`
 *             `newest bucket copy: <name> (<age>)` | `newest bucket copy: none` |
 *             `bucket: unreachable (<reason>)` | `bucket: no credentials yet`
 *           or `backups: unknown (...)` / `backups: no status within 45 s (...)` when it gave none
 *           `host status (sudo -n /usr/local/bin/timetracker-status, …):` and the document it writes,
 *             each line indented two spaces (`  status: ok` or `  status: alarm <conditions>`, then
 *             `  disk: …`, `  backup: …`, `  nightly: …`, `  checked: …`), printed before the backup
 *             tool's lines; or `host status: unknown (…)` on a host set up before the writer
 *           `health: ok` or `health: FAILED (<what>)`
 *         When /var/lib/timetracker/disk-warning exists, its lines come first, each
 *         prefixed `!!! `, under `!!! DISK WARNING (/var/lib/timetracker/disk-warning):`.
 *         The site asked is the first of the Caddyfile the host's Caddy runs (rendered from
 *         the definition the host was deployed with, e.g. the rehearsal's local one), or the
 *         checkout's Plan when it cannot be read: `http://<bind or 127.0.0.1>:<http port>` with
 *         `Host: <domain>` when TLS is off, `https://<domain>:<https port>` with
 *         `--resolve <domain>:<https port>:127.0.0.1` otherwise (`-k` for tls internal).
 *         Exit 1 when a container is neither healthy nor running without a health check, the
 *         api did not answer 200, the host status is an alarm, or the backups are in doubt: the newest bucket copy older than
 *         the Plan's hostStatus.copyMaxAgeHours (the host's own status uses it too), none while the host has a dump, the bucket unreachable or without credentials,
 *         no status from the tool; 255 when the host was not reached.
 *
 * lock    the host's lock tool as it prints (infra/render/deploy-lock.ts): `lock: free`, or a line per
 *         holder, `lock: held on purpose since <UTC> (<age> ago) by <user> (ssh from <address>[, <sender>]): <message>`,
 *         `lock: held since … (pid <pid>)` (a run), `lock: stale since …` (a killed run's record).
 *         Exit 0; acquire 75 when a hold is already in place.
 *
 * maintenance  `maintenance: off`, or `maintenance: on since <UTC> by <sender>`, `  message: <message>`
 *         and the route that still answers. Exit 0; 1 when the host's Caddy has no maintenance mode.
 *
 * To match: `^<container name>  ` (ps), `^<container name>: healthy$` and `^api: 200$` (health),
 * `^lock: free$` (lock), `^maintenance: (on|off)\b` (maintenance).
 * Every command runs without a terminal when stdin is not one (ps, logs and health never read it).
 */
import { planFor } from "../model/catalog.js";
import { nearest } from "../model/nearest.js";
import { DISK_WARNING_FILE } from "../render/host-setup.js";
import type { Plan, Service } from "../model/plan.js";
import { BACKUP_TOOL } from "../render/backup.js";
import { STATUS_TOOL } from "../render/host-status.js";
import { RELEASE_TOOL } from "../render/release.js";
import { shellWord } from "../render/shell.js";
import { DEFAULT_MAINTENANCE_MESSAGE } from "../render/maintenance.js";
import { HOLD_WAIT_SECONDS } from "../render/deploy-lock.js";
import { checkedMessage, LOCK_ACTIONS, lockCommand, senderIdentity, type LockAction } from "./deploy-lock.js";
import { MAINTENANCE_ACTIONS, maintenanceScript, type MaintenanceAction } from "./maintenance.js";
import {
  checkedConnection,
  CONNECTION_USAGE,
  readFromHost,
  runOnHost,
  SSH_CONNECTION_FAILED,
  unreachableMessage,
  type HostConnection,
  type SessionOptions,
} from "./host-ssh.js";
import { loadCatalog } from "./load-catalog.js";
import { InputError, knownStack, runCli, UsageError } from "./run.js";

const SERVICES: readonly Service[] = ["db", "redis", "backend", "frontend", "caddy"];
const COMMANDS = ["ps", "logs", "exec", "psql", "health", "lock", "maintenance"] as const;
type Command = (typeof COMMANDS)[number];

/** Lines of one service's log by default (`--tail all` for every line), and of each service's without one. */
const DEFAULT_TAIL_ONE = "200";
const DEFAULT_TAIL_EACH = "20";
/** Seconds the backup tool's status may take: it asks the bucket, which may not answer. */
const BACKUP_STATUS_TIMEOUT = 45;
/** Written by a daily disk check on the host, when there is one. */

const USAGE = `usage: npm run ops -- --stack <name> <command>
commands:
  ps                              the stack's containers on the host: name, image, status and health,
                                  published ports; a stopped <name>-previous is what a rollback brings
                                  back; then the release tool's status
  logs [<service>] [-f] [--tail N|all]
                                  the service's log (its last ${DEFAULT_TAIL_ONE} lines unless --tail); without a
                                  service the last ${DEFAULT_TAIL_EACH} lines of each, prefixed with its name;
                                  -f follows (Ctrl-C ends it)
  exec <service> -- <command> [<arg>...]
                                  runs the command in the service's container (docker exec -i, and -t
                                  when stdin is a terminal), exits with its exit code
  psql [-- <psql arg>...]         psql in the database container as the stack's user on its database;
                                  with stdin not a terminal, SQL is read from it:
                                  echo 'select 1' | npm run ops -- --stack <name> psql
  health                          each container's health, /api/health through Caddy on the host, disk
                                  free on / and the data disk, the host's status (what the
                                  host alerts read), the backup tool's status (newest dump,
                                  newest bucket copy), the host's disk warning if any; exit 1 if a
                                  container or /api/health is unhealthy, the host's status is an
                                  alarm, or the newest bucket copy is older than the host's status
                                  allows (a day and some slack), missing, or the bucket unreachable
  lock status | acquire -m <message> | release
                                  the host's deploy lock: who holds it (user, SSH client, sender), since
                                  when and why, or free, or stale (a killed run's record). acquire holds
                                  it on purpose until release: deploys, rollbacks and restores wait
                                  ${HOLD_WAIT_SECONDS} s for it, then are refused (the holder's own restores and
                                  rollbacks run under it); release ends a hold and clears a stale record
  maintenance on [-m <message>] | off | status
                                  on: every route but the backend's ready path (/api/health) answers
                                  503 with a page showing the message, and Retry-After; off: the app
                                  answers again. Caddy needs no reload
services: ${SERVICES.join(", ")}
options:
${CONNECTION_USAGE}
  -m, --message <text>
           one line: why the lock is held (lock acquire), what users read (maintenance on)
  --help   print this and exit
Runs docker on the host over SSH as the stack's user (in the docker group; sudo -n only for the
backup and release tools' status, the lock tool and the maintenance page), accepting only the
stack's pinned host key.
Port 22 is open only to host.adminCidrs.`;

const OPTIONS = {
  stack: { type: "string" },
  host: { type: "string" },
  user: { type: "string" },
  key: { type: "string" },
  "host-key": { type: "string" },
  follow: { type: "boolean", short: "f", default: false },
  tail: { type: "string" },
  message: { type: "string", short: "m" },
} as const;

/** One shell command line for the remote shell, each word quoted as it needs. */
const line = (...words: string[]) => words.map(shellWord).join(" ");

/** `(did you mean x?)` when a mistyped word is close to one of `words`. */
const meant = (typed: string, words: readonly string[]) => {
  const word = nearest(typed, words);
  return word ? ` (did you mean ${word}?)` : "";
};

/** What `lock` or `maintenance` is asked to do: one of `choices`. */
function actionOf<T extends string>(value: string | undefined, command: Command, choices: readonly T[]): T {
  if (value === undefined) throw new UsageError(`${command}: say what to do: one of ${choices.join(", ")}`);
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`${command}: "${value}" is not one of ${choices.join(", ")}`);
  return value as T;
}

function serviceOf(value: string | undefined, command: Command): Service {
  if (value === undefined) throw new UsageError(`${command}: name a service: one of ${SERVICES.join(", ")}`);
  if (!(SERVICES as readonly string[]).includes(value)) throw new UsageError(`${command}: "${value}" is not a service${meant(value, SERVICES)}: one of ${SERVICES.join(", ")}`);
  return value as Service;
}

// ---------------------------------------------------------------------------- ps

/** A container as `docker ps --format '{{json .}}'` prints it (the fields read here). */
interface PsEntry {
  Names: string;
  Image: string;
  Status: string;
  Ports: string;
}

function psScript(plan: Plan): string {
  return [
    "echo '@@ containers'",
    `${line("docker", "ps", "-a", "--filter", `label=timetracker.stack=${plan.stack}`, "--format", "{{json .}}")} || exit`,
    // The tool waits for a running release's lock: a status is not worth waiting for.
    `if [ -x ${RELEASE_TOOL} ]; then`,
    "  echo '@@ release'",
    `  timeout 10 sudo -n ${RELEASE_TOOL} status 2>&1`,
    "  s=$?",
    `  if [ "$s" -eq 124 ]; then echo "(no status within 10 s: a release holds the tool's lock)"; elif [ "$s" -ne 0 ]; then echo "(no status: exit $s)"; fi`,
    "fi",
  ].join("\n");
}

/** The remote output's sections: lines after `@@ <name> [args]`, keyed by name, in order. */
function sections(stdout: string): { name: string; args: string; lines: string[] }[] {
  const result: { name: string; args: string; lines: string[] }[] = [];
  for (const text of stdout.replace(/\n$/, "").split("\n")) {
    const header = /^@@ (\S+) ?(.*)$/.exec(text);
    if (header) result.push({ name: header[1] as string, args: header[2] as string, lines: [] });
    else result.at(-1)?.lines.push(text);
  }
  return result;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2))).join("").trimEnd());
}

function printPs(plan: Plan, stdout: string, code: number): void {
  const parts = sections(stdout);
  const entries: PsEntry[] = [];
  for (const text of parts.find((p) => p.name === "containers")?.lines ?? []) {
    try {
      entries.push(JSON.parse(text) as PsEntry);
    } catch {
      if (text.trim() !== "") console.error(text);
    }
  }
  const notes = new Map<string, string>();
  const order: string[] = [];
  for (const service of SERVICES) {
    const c = plan.containers[service];
    order.push(c.name);
    if (c.release) {
      order.push(c.release.previousName, c.release.candidateName);
      notes.set(c.release.previousName, `<- previous ${service}: what npm run rollback -- --stack ${plan.stack} --service ${service} brings back`);
      notes.set(c.release.candidateName, `<- candidate ${service}: a release in progress`);
    }
  }
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  entries.sort((a, b) => rank(a.Names) - rank(b.Names) || a.Names.localeCompare(b.Names));
  const rows = [["NAME", "IMAGE", "STATUS", "PORTS", ""]];
  for (const e of entries) rows.push([e.Names, e.Image, e.Status, e.Ports || "-", notes.get(e.Names) ?? ""]);
  for (const text of table(rows)) console.log(text);
  if (code !== 0) {
    // docker itself failed (its message is above): nothing can be said about what is missing.
    console.error(`ps: docker ps failed on the host (exit ${code})`);
    return;
  }
  const present = new Set(entries.map((e) => e.Names));
  for (const service of SERVICES) {
    const name = plan.containers[service].name;
    if (!present.has(name)) console.log(`missing: ${name} (the ${service} of the Plan is not on the host)`);
  }
  const release = parts.find((p) => p.name === "release");
  if (release) {
    console.log(`\nrelease tool (sudo -n ${RELEASE_TOOL} status):`);
    for (const text of release.lines) console.log(text);
  }
}

// ---------------------------------------------------------------------------- logs

function logsScript(plan: Plan, service: Service | undefined, follow: boolean, tail: string | undefined): string {
  const args = (s: Service, n: string) => ["docker", "logs", ...(follow ? ["-f"] : []), "--tail", n, plan.containers[s].name];
  if (service) return line(...args(service, tail ?? DEFAULT_TAIL_ONE));
  const width = Math.max(...SERVICES.map((s) => s.length));
  const each = SERVICES.map((s) => {
    const prefix = `s/^/${s.padEnd(width)} | /`;
    return `${line(...args(s, tail ?? DEFAULT_TAIL_EACH))} 2>&1 | ${line("sed", ...(follow ? ["-u"] : []), prefix)}`;
  });
  // Following: every log at once, until Ctrl-C ends the session.
  return follow ? `${each.map((c) => `${c} &`).join("\n")}\nwait` : each.join("\n");
}

// ---------------------------------------------------------------------------- health

/** Caddy's site address for a domain, as infra/render/caddyfile.ts writes it. */
const siteAddress = (plan: Plan, domain: string) => (plan.tls.mode === "off" ? `http://${domain}` : domain);

function healthScript(plan: Plan): string {
  const names = SERVICES.map((s) => plan.containers[s].name);
  const caddy = plan.caddy;
  const mount = plan.host.dataDisk.mount;
  const first = plan.domains[0] ?? "localhost";
  return `
for name in ${names.map(shellWord).join(" ")}; do
  echo "@@ container $name"
  docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$name" 2>&1
done

# /api/health through Caddy, for the first site of the Caddyfile the host runs (it was
# rendered from the Plan the host was deployed with); the checkout's Plan when unreadable.
site=${shellWord(siteAddress(plan, first))} addr=${shellWord(caddy.bind ?? "127.0.0.1")} http=${caddy.httpPort} https=${caddy.httpsPort} insecure=${plan.tls.mode === "internal" ? "-k" : "''"} from=plan
caddyfile=$(docker exec ${shellWord(plan.containers.caddy.name)} cat /etc/caddy/Caddyfile 2>/dev/null) || caddyfile=
live=$(printf '%s\\n' "$caddyfile" | sed -n 's/^\\([^[:space:]#{}()][^[:space:]]*\\) {$/\\1/p' | head -n 1)
if [ -n "$live" ]; then
  option() { printf '%s\\n' "$caddyfile" | sed -n "s/^[[:space:]]*$1 \\\\([^[:space:]]*\\\\)$/\\\\1/p" | head -n 1; }
  site=$live from=host http=$(option http_port) https=$(option https_port) addr=$(option default_bind)
  http=\${http:-80} https=\${https:-443} addr=\${addr:-127.0.0.1} insecure=
  if grep -q '^[[:space:]]*local_certs$' <<< "$caddyfile"; then insecure=-k; fi
fi
case $site in
  http://*) domain=\${site#http://}; url="http://$addr:$http/api/health"; set -- -H "Host: $domain" ;;
  *) domain=$site; url="https://$domain:$https/api/health"; set -- --resolve "$domain:$https:$addr" $insecure ;;
esac
echo "@@ api-url $from $domain $url"
if command -v curl >/dev/null 2>&1; then
  answer=$(curl -sS -m 10 -w '\\n%{http_code}' "$@" "$url" 2>&1)
  echo "@@ api $(printf '%s\\n' "$answer" | tail -n 1)"
  printf '%s\\n' "$answer" | sed '$d'
else
  echo "@@ api 000"
  echo "curl is not installed on the host"
fi

echo "@@ df /"
df -hP / 2>&1
echo "@@ df ${mount}"
df -hP ${shellWord(mount)} 2>&1

# The backup tool's own status: the one source for the newest dump and its copy off the host.
# Bounded: an unreachable bucket must not hang the report.
echo "@@ backups"
timeout ${BACKUP_STATUS_TIMEOUT} sudo -n ${BACKUP_TOOL} status 2>&1
s=$?
if [ "$s" -eq 124 ]; then echo "@@ backups-timeout"; elif [ "$s" -ne 0 ]; then echo "@@ backups-exit $s"; fi

# The host's own status, written now as cron writes it: what the host alarms read.
echo "@@ host-status"
timeout 20 sudo -n ${STATUS_TOOL} 2>&1

if [ -e ${DISK_WARNING_FILE} ]; then
  echo "@@ disk-warning"
  cat ${DISK_WARNING_FILE} 2>/dev/null || sudo -n cat ${DISK_WARNING_FILE} 2>&1
fi
echo "@@ end"
`.trimStart();
}

const oneLine = (lines: string[]) => lines.join(" ").replace(/\s+/g, " ").trim();

/**
 * Seconds in an age as the backup tool words it (`2 h 5 min`, `3d 4h`, `45 min`, `1 day`);
 * undefined when it names no unit this knows, so an unreadable age is never called old.
 */
function ageSeconds(text: string): number | undefined {
  const units: Record<string, number> = { w: 604800, d: 86400, h: 3600, m: 60, s: 1 };
  let total = 0;
  let found = false;
  for (const [, value, unit] of text.matchAll(/(\d+(?:\.\d+)?)\s*(weeks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])/gi)) {
    const key = (unit as string).toLowerCase().startsWith("mi") ? "m" : (unit as string).toLowerCase()[0];
    total += Number(value) * (units[key as string] ?? 0);
    found = true;
  }
  return found ? total : undefined;
}

/**
 * The backup tool's status lines, as the report prints them (as the tool wrote them), and
 * what in them is a problem: no copy off the host for more than a day, or none at all.
 */
function backupReport(parts: { name: string; args: string; lines: string[] }[], maxAgeHours: number): { lines: string[]; problems: string[] } {
  const status = parts.find((p) => p.name === "backups");
  if (!status) return { lines: ["backups: unknown (no answer)"], problems: ["backups unknown"] };
  const lines = status.lines.filter((l) => l.trim() !== "");
  const timedOut = parts.some((p) => p.name === "backups-timeout");
  const failed = parts.find((p) => p.name === "backups-exit")?.args.trim();
  // sudo's answer for a command that is not there: a host set up before the tool existed.
  if (failed !== undefined && lines.some((l) => /command not found/.test(l))) {
    return { lines: [`backups: unknown (${BACKUP_TOOL} is not on the host: run pulumi up to install it)`], problems: ["backup tool missing"] };
  }
  const problems: string[] = [];
  if (timedOut) lines.push(`backups: no status within ${BACKUP_STATUS_TIMEOUT} s (sudo -n ${BACKUP_TOOL} status)`);
  if (failed !== undefined) lines.push(`backups: sudo -n ${BACKUP_TOOL} status exited ${failed}`);
  if (timedOut || failed !== undefined) problems.push("backup status unknown");

  const hostDump = lines.some((l) => /^newest dump: (?!none\b)/.test(l));
  for (const text of lines) {
    const copy = /^newest bucket copy: (.+) \(([^()]*)\)$/.exec(text);
    if (copy) {
      const seconds = ageSeconds(copy[2] as string);
      if (seconds !== undefined && seconds > maxAgeHours * 3600) problems.push(`bucket copy ${(copy[2] as string).replace(/\s*(ago|old)$/, "")} old`);
    } else if (/^newest bucket copy: none\b/.test(text)) {
      // A new stack has nothing to copy before its first nightly dump; a dump never copied is a problem.
      if (hostDump) problems.push("no bucket copy");
    } else if (/^bucket: unreachable\b/.test(text)) {
      problems.push("bucket unreachable");
    } else if (/^bucket: no credentials\b/.test(text)) {
      problems.push("bucket has no credentials");
    }
  }
  return { lines, problems };
}

/**
 * The host status writer's document (infra/render/host-status.ts), under a line naming it; its
 * `status: alarm <conditions>` is a problem. A host set up before the writer existed has none.
 */
function hostStatusReport(parts: { name: string; args: string; lines: string[] }[]): { lines: string[]; problems: string[] } {
  const lines = (parts.find((p) => p.name === "host-status")?.lines ?? []).filter((l) => l.trim() !== "");
  if (!lines[0]?.startsWith("status: ")) return { lines: [`host status: unknown (${oneLine(lines).slice(0, 200) || "no answer"}; pulumi up installs ${STATUS_TOOL})`], problems: [] };
  const alarm = /^status: alarm (.+)$/.exec(lines[0]);
  return { lines: [`host status (sudo -n ${STATUS_TOOL}, what the host alerts read):`, ...lines.map((l) => `  ${l}`)], problems: alarm ? [`host status: ${alarm[1]}`] : [] };
}

/** Prints the health report from the remote output; resolves to the exit code (0 or 1). */
function printHealth(plan: Plan, stdout: string): number {
  const parts = sections(stdout);
  const failures: string[] = [];

  const warning = parts.find((p) => p.name === "disk-warning");
  if (warning) {
    console.log(`!!! DISK WARNING (${DISK_WARNING_FILE}):`);
    for (const text of warning.lines) console.log(`!!!   ${text}`);
    console.log("");
  }

  for (const service of SERVICES) {
    const name = plan.containers[service].name;
    const part = parts.find((p) => p.name === "container" && p.args === name);
    const answer = oneLine(part?.lines ?? []);
    const match = /^(\w+) (\w+)$/.exec(answer);
    let state: string;
    if (!match) {
      state = /no such (object|container)/i.test(answer) ? "missing (no such container on the host)" : `unknown (docker: ${answer || "no answer"})`;
    } else {
      const [, status, health] = match as unknown as [string, string, string];
      state = status !== "running" ? status : health === "none" ? "running" : health;
    }
    console.log(`${name}: ${state}`);
    if (state !== "healthy" && state !== "running") failures.push(`${name} ${state.split(" ")[0]}`);
  }

  const api = parts.find((p) => p.name === "api");
  const code = api ? api.args.trim() : "000";
  const body = oneLine(api?.lines ?? []);
  console.log(`api: ${/^\d{3}$/.test(code) ? code : "000"}`);
  const [from, domain, url] = (parts.find((p) => p.name === "api-url")?.args ?? "").split(" ");
  const first = plan.domains[0];
  const source =
    from === "host" && domain !== first ? ` (the host's Caddyfile serves ${domain}; the checkout's Plan says ${first}: the host runs another definition)` : "";
  console.log(`  ${url ?? "?"} Host ${domain ?? "?"}${source}: ${body.length > 300 ? `${body.slice(0, 300)}…` : body || "(empty)"}`);
  if (code !== "200") failures.push(`api ${code}`);

  for (const path of ["/", plan.host.dataDisk.mount]) {
    const lines = parts.find((p) => p.name === "df" && p.args === path)?.lines ?? [];
    const row = lines[1]?.trim().split(/\s+/);
    if (!row || row.length < 6) {
      console.log(`disk ${path}: unknown (${oneLine(lines) || "no answer"})`);
      continue;
    }
    const [, total, , avail, used, mountedOn] = row as [string, string, string, string, string, string];
    if (path !== "/" && mountedOn !== path) {
      console.log(`disk ${path}: NOT MOUNTED (a folder on ${mountedOn}: ${avail} free of ${total}; the data disk is not attached or not mounted)`);
    } else {
      console.log(`disk ${path}: ${avail} free of ${total} (${used} used)`);
    }
  }

  const report = hostStatusReport(parts);
  for (const text of report.lines) console.log(text);
  failures.push(...report.problems);

  const backups = backupReport(parts, plan.hostStatus.copyMaxAgeHours);
  for (const text of backups.lines) console.log(text);
  failures.push(...backups.problems);

  if (!parts.some((p) => p.name === "end")) failures.push("the report stopped early");
  if (failures.length > 0) console.log(`health: FAILED (${failures.join(", ")})`);
  else console.log(`health: ok${warning ? `, but see the DISK WARNING above` : ""}`);
  return failures.length > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------- main

async function onHost(what: () => Promise<number>): Promise<number> {
  try {
    return await what();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new InputError("ssh is not installed (or not on PATH): install the OpenSSH client");
    throw error;
  }
}

await runCli(USAGE, OPTIONS, async (values, before, after) => {
  const [command, ...rest] = before;

  const catalog = await loadCatalog();
  const stacks = catalog.map((env) => env.name);
  if (values.stack === undefined) throw new UsageError(`--stack is required: one of ${stacks.join(", ")}`);
  const stack = knownStack(values.stack, stacks);
  if (command === undefined) throw new UsageError(`name a command: one of ${COMMANDS.join(", ")}`);
  if (!(COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command "${command}"${meant(command, COMMANDS)}: one of ${COMMANDS.join(", ")}`);
  const cmd = command as Command;

  const follow = values.follow === true;
  const tail = values.tail as string | undefined;
  if (cmd !== "logs" && follow) throw new UsageError(`-f applies to logs only`);
  if (cmd !== "logs" && tail !== undefined) throw new UsageError(`--tail applies to logs only`);
  if (tail !== undefined && !/^(\d+|all)$/.test(tail)) throw new UsageError(`--tail: "${tail}" is not a number of lines (or all)`);
  const maxPositionals = cmd === "logs" || cmd === "exec" || cmd === "lock" || cmd === "maintenance" ? 1 : 0;
  if (rest.length > maxPositionals) {
    const stray = rest.slice(maxPositionals);
    const hint = cmd === "exec" ? " (the command goes after --: exec <service> -- <command>)" : "";
    throw new UsageError(`unexpected argument${stray.length > 1 ? "s" : ""}: ${stray.join(" ")}${hint}`);
  }
  if (after !== undefined && cmd !== "exec" && cmd !== "psql") throw new UsageError(`${cmd} takes nothing after --: ${after.join(" ")}`);

  const lockAction = cmd === "lock" ? actionOf(rest[0], cmd, LOCK_ACTIONS) : undefined;
  const maintenanceAction = cmd === "maintenance" ? actionOf(rest[0], cmd, MAINTENANCE_ACTIONS) : undefined;
  const given = values.message as string | undefined;
  if (given !== undefined && lockAction !== "acquire" && maintenanceAction !== "on") throw new UsageError("-m/--message applies to lock acquire and maintenance on only");
  if (lockAction === "acquire" && given === undefined) throw new UsageError('lock acquire: say why with -m "<message>": whoever meets the lock reads it');
  const message = checkedMessage("-m/--message", given ?? DEFAULT_MAINTENANCE_MESSAGE);

  const plan = planFor(catalog, stack);
  const service = cmd === "exec" || (cmd === "logs" && rest[0] !== undefined) ? serviceOf(rest[0], cmd) : undefined;
  if (cmd === "exec" && (after === undefined || after.length === 0)) {
    throw new UsageError(`exec: the command goes after --: exec ${service} -- <command> [<arg>...]`);
  }

  const connection: HostConnection = await checkedConnection(stack, values);
  const tty = process.stdin.isTTY === true;
  const run = (remote: string, session: SessionOptions) => onHost(() => runOnHost(connection, [remote], session));
  let code: number;
  switch (cmd) {
    case "ps":
    case "health": {
      const script = cmd === "ps" ? psScript(plan) : healthScript(plan);
      let stdout = "";
      code = await onHost(async () => {
        const result = await readFromHost(connection, [script]);
        stdout = result.stdout;
        return result.code;
      });
      if (code === SSH_CONNECTION_FAILED) break;
      if (cmd === "ps") printPs(plan, stdout, code);
      else code = printHealth(plan, stdout) || (code === 0 ? 0 : 1);
      break;
    }
    case "logs":
      code = await run(logsScript(plan, service, follow, tail), { noStdin: true });
      break;
    case "exec":
      code = await run(line("docker", "exec", "-i", ...(tty ? ["-t"] : []), plan.containers[service as Service].name, ...(after ?? [])), { tty });
      break;
    case "psql": {
      const db = plan.containers.db.name;
      code = await run(line("docker", "exec", "-i", ...(tty ? ["-t"] : []), db, "psql", "-U", plan.database.user, "-d", plan.database.name, ...(after ?? [])), { tty });
      break;
    }
    case "lock":
      code = await run(lockCommand(lockAction as LockAction, message), { noStdin: true });
      break;
    case "maintenance": {
      const on = maintenanceAction === "on" ? { message, by: senderIdentity() } : undefined;
      code = await run(line("sudo", "-n", "bash", "-c", maintenanceScript(plan, maintenanceAction as MaintenanceAction, on)), { noStdin: true });
      break;
    }
  }
  if (code === SSH_CONNECTION_FAILED) console.error(unreachableMessage(connection, stack, plan.host.adminCidrs));
  return code;
});
