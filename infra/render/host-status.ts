import { HOST_CONDITIONS } from "../model/host-conditions.js";
import type { Plan } from "../model/plan.js";
import { BACKUP_TOOL } from "./backup.js";
import { DISK_CHECK } from "./host-setup.js";
import { shellQuote as q } from "./shell.js";

/** Where host setup installs the status writer; cron runs it, and the nightly job's cron line after the job. */
export const STATUS_TOOL = "/usr/local/bin/timetracker-status";

/** The cron job that runs the writer every `plan.hostStatus.intervalMinutes`. */
export const STATUS_CRON = "/etc/cron.d/timetracker-status";

/**
 * What the host reports on (HOST_CONDITIONS), in the order of the document's lines and of the
 * alarm's first line (`status: alarm disk nightly`): each name is a rule of the writer below, `check_<name>`.
 */
export const HOST_STATUS_CONDITIONS = HOST_CONDITIONS.map((condition) => condition.name);

/** The first line Caddy answers (503) while the writer has written nothing yet: an alarm too. */
export const NO_REPORT_LINE = "status: alarm report";

/** The UTC minute of the nightly dump, as its cron line runs it. */
const nightlyTime = (plan: Plan) => `${plan.backup.dumpTimeUtc.slice(0, 2)}:00 UTC`;

/**
 * The host's status writer (bash, run as root by cron): checks each condition of
 * HOST_STATUS_CONDITIONS and writes the document Caddy serves on the host status's path:
 *
 *   status: ok                          or  status: alarm <condition>...
 *   disk: ok (<detail>)                 one line per problem when in alarm: disk: alarm (<problem>)
 *   backup: ok|alarm (<detail>)
 *   nightly: ok|alarm (<detail>)
 *   checked: <UTC time> (stack <stack>, every <n> min and after each nightly job)
 *
 * disk     the disk check's own rule (`timetracker-disk-check --check`, host.diskWarningPercent):
 *          / or the data disk at least that full, / under host.minFreeDiskGb free, the data disk
 *          not mounted or unreadable;
 * backup   the newest copy in the bucket (the backup tool records each copy it makes) older than
 *          `copyMaxAgeHours`; with no copy yet, that long since the writer first ran here;
 * nightly  the last nightly job failed (the backup tool records each run's result), until one succeeds.
 *
 * The document goes to `okFile` or `alarmFile` (a temp file renamed into place, then the other
 * removed), so Caddy never serves half of one and, while both briefly exist, serves the alarm.
 * Each condition's own lines and the `checked:` line go the same way to its own pair of files
 * (plan.hostStatus.conditions), which its alert check reads.
 * Prints the document; logs a change of its first line to syslog (tag timetracker-status).
 * Exits 0 when all is well, 1 in alarm, 2 when it could not write the document.
 * TIMETRACKER_STATUS_ROOT puts every host path below a folder (the tests' hook; cron sets nothing).
 */
export function renderStatusTool(plan: Plan): string {
  const s = plan.hostStatus;
  const mount = plan.host.dataDisk.mount;
  return `#!/bin/bash
# Generated from the stack's Plan by \`npm run render\`. Do not edit.
# Host status for stack "${plan.stack}", installed by host setup as ${STATUS_TOOL}: cron runs it every
# ${s.intervalMinutes} min and after each nightly job. Caddy serves what it writes on an unguessable path, which a
# Route 53 check reads (docs/alerts.md): 200 while all is well, 503 naming what is not.
set -uo pipefail
export LC_ALL=C

root=\${TIMETRACKER_STATUS_ROOT:-}
status_dir="$root"${q(s.hostDir)}
ok_file="$status_dir"/${q(s.okFile)}
alarm_file="$status_dir"/${q(s.alarmFile)}
records="$root"${q(s.recordsDir)}
last_copy="$records"/${q(s.lastCopy)}
last_nightly="$records"/${q(s.lastNightly)}
since_file="$records"/${q(s.since)}
disk_check="$root"${q(DISK_CHECK)}
percent=${plan.host.diskWarningPercent}
max_age_hours=${s.copyMaxAgeHours}
now=$(date -u +%s)

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
# Seconds since the epoch of a yyyymmddThhmmssZ time (the backup tool's names); fails on anything else.
seconds_of() {
  [[ $1 =~ ^([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z$ ]] || return 1
  date -u -d "\${BASH_REMATCH[1]}-\${BASH_REMATCH[2]}-\${BASH_REMATCH[3]}T\${BASH_REMATCH[4]}:\${BASH_REMATCH[5]}:\${BASH_REMATCH[6]}Z" +%s
}
age() {
  local s=$((now - $1))
  if [ "$s" -lt 0 ]; then s=0; fi
  if [ "$s" -ge 86400 ]; then
    printf '%d d %d h' $((s / 86400)) $((s % 86400 / 3600))
  elif [ "$s" -ge 3600 ]; then
    printf '%d h %d min' $((s / 3600)) $((s % 3600 / 60))
  else
    printf '%d min' $((s / 60))
  fi
}
# One line of at most 300 characters: a record or a tool's message never breaks the document's shape.
one_line() { printf '%s' "$1" | tr '\\r\\n\\t' '   ' | tr -s ' ' | cut -c 1-300; }

lines=()
alarms=()
# report <condition> ok|alarm <detail>: one line of the document.
report() {
  lines+=("$1: $2 ($(one_line "$3"))")
  if [ "$2" = alarm ] && [[ " \${alarms[*]} " != *" $1 "* ]]; then alarms+=("$1"); fi
}

check_disk() {
  local out code problem
  out=$("$disk_check" --check "$percent" 2>&1)
  code=$?
  case $code in
    0) report disk ok "/ and ${mount} under $percent% full, / has ${plan.host.minFreeDiskGb} GB free or more" ;;
    1)
      while IFS= read -r problem; do
        if [ -n "$problem" ]; then report disk alarm "$problem"; fi
      done <<< "$out"
      ;;
    *) report disk alarm "the disk check did not run (exit $code): $out" ;;
  esac
}

check_backup() {
  local name stamp taken
  if [ -s "$last_copy" ]; then
    name=$(head -n 1 "$last_copy")
    if ! taken=$(seconds_of "\${name:0:16}"); then
      report backup alarm "$last_copy holds no copy's name: $name"
    elif [ $((now - taken)) -gt $((max_age_hours * 3600)) ]; then
      report backup alarm "the newest copy in the bucket, $name, is $(age "$taken") old (over $max_age_hours h): the nightly job or its copy did not happen; see journalctl -t timetracker-backup"
    else
      report backup ok "the newest copy in the bucket, $name, is $(age "$taken") old"
    fi
    return
  fi
  # No copy yet: counted from this writer's first run here, so a new stack has a day to make one.
  stamp=$(head -n 1 "$since_file" 2>/dev/null || true)
  if ! taken=$(seconds_of "$stamp"); then
    taken=$now
    mkdir -p "$records" && date -u -d "@$now" +%Y%m%dT%H%M%SZ > "$since_file"
  fi
  if [ $((now - taken)) -gt $((max_age_hours * 3600)) ]; then
    report backup alarm "no copy in the bucket since $(iso "$taken") ($(age "$taken")): the nightly job or its copy did not happen; see journalctl -t timetracker-backup"
  else
    report backup ok "no copy in the bucket yet: the nightly job at ${nightlyTime(plan)} makes one"
  fi
}

check_nightly() {
  local stamp result message ran
  if [ ! -e "$last_nightly" ]; then
    report nightly ok "none has run yet: the first is at ${nightlyTime(plan)}"
    return
  fi
  read -r stamp result message < "$last_nightly" || true
  if ! ran=$(seconds_of "$stamp"); then
    report nightly alarm "$last_nightly cannot be read: $(head -c 200 "$last_nightly")"
  elif [ "$result" = ok ]; then
    report nightly ok "the last one, $(iso "$ran"), $message"
  else
    report nightly alarm "the last one, $(iso "$ran"), failed: $message; it clears when one succeeds (sudo ${BACKUP_TOOL} nightly)"
  fi
}

${HOST_STATUS_CONDITIONS.map((condition) => `check_${condition}`).join("\n")}

if [ "\${#alarms[@]}" -eq 0 ]; then
  first=${q(s.okLine)} target=$ok_file other=$alarm_file
else
  first="status: alarm \${alarms[*]}" target=$alarm_file other=$ok_file
fi
checked="checked: $(iso "$now") (stack ${plan.stack}, every ${s.intervalMinutes} min and after each nightly job)"
document=$(printf '%s\\n' "$first" "\${lines[@]}" "$checked")

# publish <file> <other file> <document>: the document into <file> (a temp file renamed into place), then <other> removed.
publish() {
  local tmp=
  if ! { mkdir -p "$status_dir" && tmp=$(mktemp "$status_dir/.status.XXXXXX") && printf '%s\\n' "$3" > "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$1"; }; then
    if [ -n "$tmp" ]; then rm -f "$tmp"; fi
    echo "could not write $1" >&2
    logger -t timetracker-status -p user.err "could not write $1" 2>/dev/null || true
    exit 2
  fi
  rm -f "$2"
}

# publish_condition <condition> <ok file> <alarm file>: its own lines and the time, for its alert check.
publish_condition() {
  local own=() line
  for line in "\${lines[@]}"; do
    if [[ $line == "$1: "* ]]; then own+=("$line"); fi
  done
  if [[ " \${alarms[*]} " == *" $1 "* ]]; then
    publish "$status_dir/$3" "$status_dir/$2" "$(printf '%s\\n' "\${own[@]}" "$checked")"
  else
    publish "$status_dir/$2" "$status_dir/$3" "$(printf '%s\\n' "\${own[@]}" "$checked")"
  fi
}

# The first line before this run: a change is logged.
before=$(head -n 1 "$alarm_file" 2>/dev/null || head -n 1 "$ok_file" 2>/dev/null || true)
${s.conditions.map((c) => `publish_condition ${c.name} ${q(c.okFile)} ${q(c.alarmFile)}`).join("\n")}
publish "$target" "$other" "$document"
if [ "$before" != "$first" ]; then
  printf '%s\\n' "$document" | logger -t timetracker-status -p "user.$([ "$target" = "$ok_file" ] && echo notice || echo warning)" 2>/dev/null || true
fi
printf '%s\\n' "$document"
if [ "$target" = "$ok_file" ]; then exit 0; fi
exit 1
`;
}

/** The writer's cron job: every `intervalMinutes`; its own failures go to syslog. */
export function renderStatusCron(plan: Plan): string {
  return `# The host's status for the second alert check (docs/alerts.md), every ${plan.hostStatus.intervalMinutes} min.
*/${plan.hostStatus.intervalMinutes} * * * * root ${STATUS_TOOL} >/dev/null 2>&1
`;
}

/**
 * One document's handle: `name` is the matcher's, `path` the exact path after the token. The
 * alarm file wins while both exist; neither (the writer has not run yet) is a 503 that names
 * the writer.
 */
function documentHandle(plan: Plan, name: string, path: string, okFile: string, alarmFile: string, noReport: string): string[] {
  const s = plan.hostStatus;
  const token = `{env.${s.tokenEnv}}`;
  return [
    `@${name} expression \`{path} == "${s.pathPrefix}" + ${token}${path ? ` + "${path}"` : ""} && ${token} != ""\``,
    `handle @${name} {`,
    `\troot * ${s.dir}`,
    "\theader Cache-Control no-store",
    `\t@${name}_alarm file /${alarmFile}`,
    `\thandle @${name}_alarm {`,
    `\t\trewrite * /${alarmFile}`,
    "\t\tfile_server {",
    "\t\t\tstatus 503",
    "\t\t}",
    "\t}",
    `\t@${name}_ok file /${okFile}`,
    `\thandle @${name}_ok {`,
    `\t\trewrite * /${okFile}`,
    "\t\tfile_server",
    "\t}",
    // Reached only when neither file exists: Caddy runs a handle's matching block and stops there.
    `\trespond "${noReport} (nothing written yet by ${STATUS_TOOL}, which ${STATUS_CRON} runs)" 503`,
    "}",
  ];
}

/**
 * The host status's routes in Caddy, before the app's routes: the whole document at prefix and
 * token, each condition's at `<prefix><token>/<condition>`; only those exact paths answer (any
 * other path under the prefix is the app's, as for any unknown path). The token is a runtime
 * placeholder read from Caddy's environment, so it is in no rendered file and in no config
 * Caddy saves; unset, nothing matches.
 */
export function hostStatusRoute(plan: Plan): string[] {
  const s = plan.hostStatus;
  return [
    ...documentHandle(plan, "host_status", "", s.okFile, s.alarmFile, NO_REPORT_LINE),
    ...s.conditions.flatMap((c) => documentHandle(plan, `host_status_${c.name}`, c.pathSuffix, c.okFile, c.alarmFile, `${c.name}: alarm`)),
  ];
}
