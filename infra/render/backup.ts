import type { Plan } from "../model/plan.js";
import { lockFunctions, RELEASE_LOCK } from "./deploy-lock.js";
import { maintenanceFunctions, renderMaintenancePage, RESTORE_MAINTENANCE_MESSAGE } from "./maintenance.js";
import { shellQuote as q } from "./shell.js";

/** Where host setup installs the backup tool; the nightly job, the release tool's dumps and `npm run restore` run it. */
export const BACKUP_TOOL = "/usr/local/bin/timetracker-backup";

/** The kinds of dump, in the names of the files and of the bucket's objects. */
export const DUMP_KINDS = ["nightly", "predeploy", "rollback", "prerestore"] as const;

/** Seconds a restore waits for the backend to be healthy again: at least 3 minutes, more if its health check needs it. */
const healthWaitSeconds = (plan: Plan) => {
  const check = plan.containers.backend.healthCheck;
  return Math.max(180, check.startPeriodSeconds + check.retries * (check.intervalSeconds + check.timeoutSeconds) + 30);
};

/** Rows of every base table of schema public in one query (query_to_xml runs a count per table), by name. */
export const COUNTS_SQL =
  "select table_name, (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', table_schema, table_name), false, true, '')))[1]::text " +
  "from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name collate \"C\"";

/** Every base table, schema-qualified as `pg_restore --list` names it. */
const TABLES_SQL = "select table_schema || '.' || table_name from information_schema.tables where table_type = 'BASE TABLE'";

/** The bucket's retention as bash: fills `doomed` from the time-sorted `objects`, never the newest. */
function bucketRetention(plan: Plan): { rule: string; code: string } {
  const keep = plan.backup.bucket.keep;
  if ("count" in keep) {
    return {
      rule: `the newest ${keep.count}`,
      code: `  # Newest last: all but the newest ${keep.count} go (the newest always stays: keep >= 1).
  if [ "$n" -gt ${keep.count} ]; then doomed=("\${objects[@]:0:n-${keep.count}}"); fi`,
    };
  }
  return {
    rule: `${keep.days} days`,
    code: `  cutoff=$(stamp_ago ${keep.days})
  # Every copy taken before the cutoff goes, but never the newest (the last): a stopped nightly job must not empty the bucket.
  for object in "\${objects[@]:0:n-1}"; do
    if [[ \${object:0:16} < $cutoff ]]; then doomed+=("$object"); fi
  done`,
  };
}

/**
 * The names a dump goes by, as extended regular expressions (bash's =~, and JavaScript's
 * RegExp alike): the host's `<db>-<kind>-<UTC time>.dump`, the nightly job's older
 * `<db>-<yyyymmddThhmm>.dump`, and the bucket's `<UTC time>-<kind>.dump`. The time is the
 * last group of host and legacy, the first of object.
 */
export function dumpNamePatterns(databaseName: string): { host: string; legacy: string; object: string } {
  const kinds = DUMP_KINDS.join("|");
  return {
    host: `^${databaseName}-(${kinds})-([0-9]{8}T[0-9]{6}Z)\\.dump$`,
    legacy: `^${databaseName}-([0-9]{8}T[0-9]{4})\\.dump$`,
    object: `^([0-9]{8}T[0-9]{6}Z)-(${kinds})\\.dump$`,
  };
}

/**
 * The host's backup tool for one stack (bash, run as root). Every dump of the stack's
 * database goes through it and is copied off the host to the stack's bucket with rclone:
 *
 *   dump <kind>                 pg_dump into the dump folder, keep the newest, copy to the bucket;
 *                               a failed copy is a warning (the deploy needs the local dump);
 *                               prints the dump's path as its last line on stdout
 *   ship <file>                 copy one dump as `<UTC yyyymmddThhmmssZ>-<kind>.dump`, then prune
 *   nightly                     `dump nightly` under the release lock; exit 1 when the copy failed
 *   list                        `<where>\t<name>\t<bytes>\t<UTC ISO time>`, oldest first
 *   counts                      `<table>\t<rows>` for every table of schema public
 *   restore <name>|latest [--dry-run]
 *   set-credentials             rclone's configuration on stdin, into a root-only file
 *   status                      the newest dump and the newest bucket copy, with their ages
 *
 * The bucket is reached only through the rclone remote `plan.backup.bucket.remote`, whose
 * configuration (the access key) lives in a root-only file: no key is ever on a command line,
 * in an environment variable or in a message.
 */
export function renderBackupTool(plan: Plan): string {
  const { backup, database } = plan;
  const { bucket } = backup;
  const backend = plan.containers.backend;
  const candidate = backend.release?.candidateName ?? `${backend.name}-candidate`;
  const kinds = DUMP_KINDS.join("|");
  const retention = bucketRetention(plan);
  const waitSeconds = healthWaitSeconds(plan);
  const names = dumpNamePatterns(database.name);
  return `#!/bin/bash
# Generated from the stack's Plan by \`npm run render\`. Do not edit.
# Backup tool for stack "${plan.stack}", installed by host setup as ${BACKUP_TOOL}.
# Usage: timetracker-backup dump <kind> | ship <file> | nightly | list | counts | restore <name>|latest [--dry-run] | set-credentials | status
set -euo pipefail
shopt -s nullglob
# Sorting, comparing names and the decimal point of the timings do not depend on the caller's locale.
export LC_ALL=C

# Test hook: the tests run this tool unprivileged with every host path below a temporary folder.
# Nothing sets it on a host: cron passes no such variable and sudo resets the environment.
root=\${TIMETRACKER_BACKUP_ROOT:-}
dump_dir="$root"${q(backup.dumpDir)}
restore_dir="$dump_dir/restore"
credentials="$root"${q(bucket.credentialsFile)}
lock_file="$root"${q(RELEASE_LOCK)}
lock_dir="$root"${q(plan.host.lockDir)}
maintenance_dir="$root"${q(plan.caddy.maintenance.hostDir)}
# What the host status (infra/render/host-status.ts) reads: the newest copy made, the last nightly job.
last_copy="$root"${q(`${plan.hostStatus.recordsDir}/${plan.hostStatus.lastCopy}`)}
last_nightly="$root"${q(`${plan.hostStatus.recordsDir}/${plan.hostStatus.lastNightly}`)}
remote=${q(bucket.remote)}
db_container=${q(plan.containers.db.name)}
db_user=${q(database.user)}
db_name=${q(database.name)}
backend=${q(backend.name)}
backend_candidate=${q(candidate)}
# Nightly dumps are kept on the host this many days; the others, this many newest of each kind.
keep_days=${backup.keepDays}
dump_keep=${backup.preDeployKeep}
health_wait=${waitSeconds}
tab=$'\\t'
# Host files: <db>-<kind>-<UTC time>.dump, and the nightly job's older <db>-<yyyymmddThhmm>.dump.
# Bucket objects: <UTC time>-<kind>.dump, so that their names sort by time.
host_re=${q(names.host)}
legacy_re=${q(names.legacy)}
object_re=${q(names.object)}
counts_sql=${q(COUNTS_SQL)}
tables_sql=${q(TABLES_SQL)}
no_credentials="no bucket credentials at $credentials: \\\`pulumi up\\\` writes them (step backup-credentials)"

usage() {
  cat <<USAGE
usage: timetracker-backup <command>   (as root; stack "${plan.stack}", database ${database.name})
  dump <kind>          pg_dump into $dump_dir/${database.name}-<kind>-<UTC time>.dump
                       (kind: ${DUMP_KINDS.join(", ")}); the host keeps nightly dumps ${backup.keepDays} days and
                       the newest ${backup.preDeployKeep} of each other kind; then ship it (a failed copy only
                       warns). Prints the dump's path as its last line.
  ship <file>          copy a dump to $remote:<UTC time>-<kind>.dump, then keep ${retention.rule} of
                       copies there (never deleting the newest). Exit 3 without credentials.
  nightly              dump nightly once no deploy or restore holds $lock_file;
                       exit 1 when the copy off the host failed
  list                 every dump, oldest first: <where>\\t<name>\\t<bytes>\\t<UTC time> (where: host, bucket)
  counts               <table>\\t<rows> for every table of schema public
  restore <name>|latest [--dry-run]
                       replace the database with a dump (a host file or a bucket object; latest: the
                       newest that is not a prerestore dump) after a prerestore dump, which is put
                       back if the restore fails. --dry-run prints the steps and changes nothing.
  set-credentials      rclone's configuration on stdin into $credentials (0600),
                       then check the bucket answers
  status               the newest dump and the newest bucket copy, with their ages
USAGE
}

say() { printf '%s\\n' "$*"; }
warn() { printf 'warning: %s\\n' "$*" >&2; }
# The last message die printed: the nightly job's record says why it failed.
last_error=''
die() {
  printf '%s\\n' "$1" >&2
  last_error=$1
  exit "\${2:-1}"
}
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
exists() { docker inspect "$1" >/dev/null 2>&1; }

${lockFunctions(plan)}
${maintenanceFunctions(plan)}
stamp_ago() { date -u -d "@$(($(date -u +%s) - $1 * 86400))" +%Y%m%dT%H%M%SZ; }
iso() { printf '%s-%s-%sT%s:%s:%sZ' "\${1:0:4}" "\${1:4:2}" "\${1:6:2}" "\${1:9:2}" "\${1:11:2}" "\${1:13:2}"; }
age() {
  local s
  s=$(($(date -u +%s) - $(date -u -d "$(iso "$1")" +%s)))
  if [ "$s" -lt 0 ]; then s=0; fi
  if [ "$s" -ge 86400 ]; then
    printf '%d d %d h' $((s / 86400)) $((s % 86400 / 3600))
  elif [ "$s" -ge 3600 ]; then
    printf '%d h %d min' $((s / 3600)) $((s % 3600 / 60))
  elif [ "$s" -ge 60 ]; then
    printf '%d min' $((s / 60))
  else
    printf '%d s' "$s"
  fi
}

# Sets name_kind and name_stamp (yyyymmddThhmmssZ) from a host file's or a bucket object's name.
parse_name() {
  name_kind='' name_stamp=''
  if [[ $1 =~ $host_re ]]; then
    name_kind=\${BASH_REMATCH[1]} name_stamp=\${BASH_REMATCH[2]}
  elif [[ $1 =~ $object_re ]]; then
    name_stamp=\${BASH_REMATCH[1]} name_kind=\${BASH_REMATCH[2]}
  elif [[ $1 =~ $legacy_re ]]; then
    name_kind=nightly name_stamp=\${BASH_REMATCH[1]}00Z
  else
    return 1
  fi
}
# The bucket object a dump is copied to: its time first, so that the names sort by time.
object_name() { parse_name "$1" && printf '%s-%s.dump' "$name_stamp" "$name_kind"; }

# record <file> <line>: one line for the host status, whole (temp file and mv); never fails the tool.
record() {
  local tmp
  install -d -m 0755 "$(dirname "$1")" 2>/dev/null || return 0
  tmp=$(mktemp "$1.XXXXXX" 2>/dev/null) || return 0
  if ! { printf '%s\\n' "$2" > "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$1"; }; then rm -f "$tmp"; fi
}
# A copy's object name, unless the record names a newer one (a dump shipped again by hand is older).
record_copy() {
  local current
  current=$(head -n 1 "$last_copy" 2>/dev/null || true)
  if [[ ! $1 < $current ]]; then record "$last_copy" "$1"; fi
}
# The nightly job's result at its exit: <UTC time> ok|failed <message>.
record_nightly() {
  local result=ok message='dumped and copied off the host'
  if [ "$1" -ne 0 ]; then result=failed message=\${last_error:-"exit $1 (see journalctl -t timetracker-backup)"}; fi
  record "$last_nightly" "$(date -u +%Y%m%dT%H%M%SZ) $result \${message//$'\\n'/ }"
}

have_credentials() { [ -s "$credentials" ]; }
# rclone reads the key from the root-only file: nothing secret is on its command line or in its environment.
bucket() { TZ=UTC rclone --config "$credentials" -q --retries 3 --low-level-retries 3 "$@"; }
# Questions (list, status, restore's choice) give up sooner: \`npm run ops -- health\` waits 45 s for the status.
bucket_quick() { TZ=UTC rclone --config "$credentials" -q --retries 1 --low-level-retries 2 --contimeout 5s --timeout 15s "$@"; }
# rclone's last error as one short line (no timestamp, URL or request ids), and never the key,
# should rclone ever print it.
reason() {
  local text secret
  text=$(printf '%s\\n' "$1" | awk '/^[0-9][0-9][0-9][0-9]\\/[0-9][0-9]\\/[0-9][0-9] / { last = "" } { last = last " " $0 } END { print last }' |
    sed -E 's#^ *[0-9/]+ [0-9:]+ ##; s#^(ERROR|NOTICE|CRITICAL) *: *(: *)?##; s#.*(last error was|errors and): ##; s#(Get|Head|Put|Post|Delete) "[^"]*": ##g; s#[[:space:]]*status code: [0-9]+, request id:.*##' |
    tr -s ' \\t' '  ')
  secret=$(sed -n 's/^secret_access_key *= *//p' "$credentials" 2>/dev/null | head -n 1 || true)
  if [ -n "$secret" ]; then text=\${text//"$secret"/<redacted>}; fi
  text=\${text%"\${text##*[![:space:]]}"}
  printf '%s' "\${text:0:\${2:-300}}"
}

# Keeps ${retention.rule} of the bucket's dumps, by the time in their names. Other objects are left alone.
prune_bucket() {
  local out object n cutoff objects=() doomed=() gone=()
  if ! out=$(bucket lsf --files-only "$remote:" 2>&1); then
    warn "could not list $remote: to keep ${retention.rule}: $(reason "$out"); the next copy prunes again"
    return 1
  fi
  mapfile -t objects < <(printf '%s\\n' "$out" | grep -E "$object_re" | sort || true)
  n=\${#objects[@]}
  if [ "$n" -le 1 ]; then return 0; fi
${retention.code}
  for object in "\${doomed[@]}"; do
    if out=$(bucket deletefile "$remote:$object" 2>&1); then
      gone+=("$object")
    else
      warn "could not delete $remote:$object: $(reason "$out")"
    fi
  done
  if [ "\${#gone[@]}" -gt 0 ]; then say "the bucket keeps ${retention.rule}: deleted \${gone[*]}"; fi
}

# Copies one dump off the host, then applies the bucket's retention (a failure there is only a
# warning: the copy is made). Exit 3 without credentials, 1 when the copy failed.
ship_file() {
  local file=$1 name object out
  name=\${file##*/}
  if ! have_credentials; then
    printf '%s\\n' "$no_credentials" >&2
    return 3
  fi
  if [ ! -f "$file" ]; then
    printf 'no such dump: %s\\n' "$file" >&2
    return 1
  fi
  if ! object=$(object_name "$name"); then
    printf '%s is not named like a dump (%s-<kind>-<UTC time>.dump)\\n' "$name" "$db_name" >&2
    return 1
  fi
  if ! out=$(bucket copyto "$file" "$remote:$object" 2>&1); then
    printf 'could not copy %s to %s:%s: %s\\n' "$name" "$remote" "$object" "$(reason "$out")" >&2
    return 1
  fi
  say "copied $name to $remote:$object ($(stat -c %s "$file") bytes)"
  record_copy "$object"
  prune_bucket || true
}

# The host keeps nightly dumps ${backup.keepDays} days (by the time in their names) and the newest
# ${backup.preDeployKeep} of each other kind.
prune_host() {
  local kind=$1 cutoff file
  if [ "$kind" = nightly ]; then
    cutoff=$(stamp_ago "$keep_days")
    for file in "$dump_dir"/*.dump; do
      parse_name "\${file##*/}" || continue
      if [ "$name_kind" = nightly ] && [[ $name_stamp < $cutoff ]] && [ "$file" != "$dumped" ]; then rm -f "$file"; fi
    done
  else
    find "$dump_dir" -maxdepth 1 -name "$db_name-$kind-*.dump" | sort -r | tail -n "+$((dump_keep + 1))" | xargs -r rm -f
  fi
}

# Dumps the database (sets dumped), keeps the newest, copies it off the host (sets shipped=yes|no).
# Its messages go to stderr: stdout is left for the dump's path.
dumped='' shipped=no
dump_db() {
  local kind=$1 file status=0
  [[ $kind =~ ^(${kinds})$ ]] || die "unknown kind of dump '$kind': expected one of ${DUMP_KINDS.join(", ")}" 2
  running "$db_container" || die "the database container $db_container is not running: nothing was dumped"
  install -d -m 0700 "$dump_dir"
  file="$dump_dir/$db_name-$kind-$(date -u +%Y%m%dT%H%M%SZ).dump"
  if ! docker exec "$db_container" pg_dump -U "$db_user" -d "$db_name" --format=custom > "$file.partial"; then
    rm -f "$file.partial"
    die "pg_dump of $db_name in $db_container failed: nothing was dumped"
  fi
  mv -f "$file.partial" "$file"
  dumped=$file
  printf 'dumped %s to %s (%s bytes)\\n' "$db_name" "$file" "$(stat -c %s "$file")" >&2
  prune_host "$kind"
  ship_file "$file" >&2 || status=$?
  if [ "$status" -eq 0 ]; then
    shipped=yes
  else
    # The local dump is what a deploy or a restore needs: a failed copy warns (and syslog keeps it), it does not fail.
    warn "$file was not copied to the bucket (exit $status): it is on this host only"
    logger -t timetracker-backup -p user.warning "$file was not copied to the bucket (exit $status): it is on this host only" 2>/dev/null || true
  fi
}

# The nightly job. Under the release lock, so it never dumps in the middle of a deploy or a restore
# (a hold taken on purpose does not stop it). Exit 1 when the copy failed: the local dump alone
# does not outlive the disk, and the nightly copy is the one the bucket's retention counts on
# (cron sends this output to syslog). Its result is recorded for the host status either way.
nightly() {
  trap 'record_nightly $?; lock_forget' EXIT
  lock_take "nightly dump" ignore
  dump_db nightly
  if [ "$shipped" != yes ]; then die "nightly: $dumped is on this host only: the copy to the bucket failed"; fi
  say "nightly: $dumped dumped and copied off the host"
}

host_rows() {
  local file time
  for file in "$dump_dir"/*.dump; do
    if parse_name "\${file##*/}"; then time=$(iso "$name_stamp"); else time=$(date -u -r "$file" +%Y-%m-%dT%H:%M:%SZ); fi
    printf 'host\\t%s\\t%s\\t%s\\n' "\${file##*/}" "$(stat -c %s "$file")" "$time"
  done
}

# The bucket's objects as list rows (bucket_rows); on failure the reason is in bucket_error.
read_bucket() {
  local out name size modified time
  bucket_rows='' bucket_error=''
  if ! have_credentials; then
    bucket_error='no credentials yet'
    return 1
  fi
  if ! out=$(bucket_quick lsf --files-only --format pst --separator "$tab" "$remote:" 2>&1); then
    bucket_error=$(reason "$out" 200)
    return 1
  fi
  while IFS=$tab read -r name size modified; do
    [ -n "$name" ] || continue
    if parse_name "$name"; then time=$(iso "$name_stamp"); else time="\${modified/ /T}Z"; fi
    bucket_rows+="bucket$tab$name$tab$size$tab$time"$'\\n'
  done <<< "$out"
}

# Oldest first by the time in the name; a host file before its bucket copy.
by_time() { awk 'NF' | sort -t "$tab" -k4,4 -k1,1r; }

list() {
  local rows
  rows=$(host_rows)
  if read_bucket; then
    rows+=$'\\n'"$bucket_rows"
  elif have_credentials; then
    warn "the bucket ($remote:) could not be read: $bucket_error; only the host's dumps are listed"
  else
    warn "$no_credentials; only the host's dumps are listed"
  fi
  printf '%s\\n' "$rows" | by_time
}

counts() { docker exec "$db_container" psql -v ON_ERROR_STOP=1 -U "$db_user" -d "$db_name" -At -F "$tab" -c "$counts_sql"; }

status() {
  local file newest='' newest_stamp='' row
  for file in "$dump_dir"/*.dump; do
    parse_name "\${file##*/}" || continue
    if [[ $name_stamp > $newest_stamp ]]; then newest=\${file##*/} newest_stamp=$name_stamp; fi
  done
  if [ -n "$newest" ]; then say "newest dump: $newest ($(age "$newest_stamp"))"; else say "newest dump: none"; fi
  if ! have_credentials; then
    say "bucket: no credentials yet"
  elif ! read_bucket; then
    say "bucket: unreachable (\${bucket_error:0:120})"
  else
    row=$(printf '%s' "$bucket_rows" | by_time | tail -n 1)
    newest=$(cut -f2 <<< "$row")
    if [ -n "$newest" ] && parse_name "$newest"; then say "newest bucket copy: $newest ($(age "$name_stamp"))"; else say "newest bucket copy: none"; fi
  fi
}

set_credentials() {
  local dir out deadline
  [ ! -t 0 ] || die "set-credentials reads rclone's configuration on stdin: pipe it in" 2
  dir=$(dirname "$credentials")
  install -d -m 0700 "$dir"
  chmod 0700 "$dir"
  umask 077
  # A global: the exit trap runs after this function has returned.
  credentials_tmp=$(mktemp "$dir/.credentials.XXXXXX")
  trap 'rm -f "$credentials_tmp"' EXIT
  cat > "$credentials_tmp"
  grep -qx "\\[$remote\\]" "$credentials_tmp" || die "stdin holds no [$remote] remote: expected the rclone configuration the program renders (nothing was written)"
  chmod 0600 "$credentials_tmp"
  mv -f "$credentials_tmp" "$credentials"
  say "wrote $credentials (0600, root only)"
  # A new access key takes a moment to be accepted everywhere.
  deadline=$((SECONDS + 60))
  while :; do
    if out=$(bucket lsf "$remote:" --max-depth 1 2>&1); then
      say "the bucket answers through the remote $remote:"
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 5
  done
  die "the bucket did not answer through the remote $remote: within 60 s: $(reason "$out")"
}

# --- restore ---
wait_healthy() {
  local state deadline=$((SECONDS + health_wait)) start=$SECONDS
  while :; do
    state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$backend" 2>/dev/null || true)
    if [ "$state" = healthy ] || [ "$state" = running ]; then
      say "$backend is $state after $((SECONDS - start)) s"
      return 0
    fi
    if [ "$state" = exited ] || [ "$state" = dead ] || [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s is %s after %s s\\n' "$backend" "\${state:-missing}" "$((SECONDS - start))" >&2
      return 1
    fi
    sleep 2
  done
}

psql_admin() { docker exec "$db_container" psql -v ON_ERROR_STOP=1 -q -U "$db_user" -d postgres -c "$1"; }
dropped=no
recreate() {
  psql_admin "DROP DATABASE IF EXISTS \\"$db_name\\" WITH (FORCE)" || return 1
  dropped=yes
  psql_admin "CREATE DATABASE \\"$db_name\\" OWNER \\"$db_user\\""
}
pg_restore_into() { docker exec -i "$db_container" pg_restore -U "$db_user" -d "$db_name" --no-owner --exit-on-error < "$1"; }

# Finds the dump to restore: sets src_where (host|bucket), src_name, src_bytes, src_time.
choose() {
  local wanted=$1 rows row key host_row
  rows=$(host_rows)
  if read_bucket; then rows+=$'\\n'"$bucket_rows"; fi
  if [ "$wanted" = latest ]; then
    # A prerestore dump is the database just before a restore: never what "latest" means (after a
    # restore that went wrong it would bring back the very database being left).
    row=$(printf '%s\\n' "$rows" | awk -F "$tab" 'NF && $2 !~ /-prerestore[-.]/' | sort -t "$tab" -k4,4r -k1,1r | head -n 1)
  else
    row=$(printf '%s\\n' "$rows" | awk -F "$tab" -v n="$wanted" '$2 == n' | sort -t "$tab" -k1,1r | head -n 1)
    # A bucket object whose dump is also on the host: the host's file, no download.
    if [ "\${row%%"$tab"*}" = bucket ] && key=$(object_name "$wanted"); then
      while IFS= read -r host_row; do
        if [ "$(object_name "$(cut -f2 <<< "$host_row")" || true)" = "$key" ]; then row=$host_row; fi
      done < <(printf '%s\\n' "$rows" | grep "^host$tab" || true)
    fi
  fi
  if [ -z "$row" ]; then
    if [ -n "$bucket_error" ]; then warn "the bucket could not be read: $bucket_error"; fi
    die "no dump named '$wanted' on this host ($dump_dir) or in the bucket: see timetracker-backup list; nothing was changed"
  fi
  IFS=$tab read -r src_where src_name src_bytes src_time <<< "$row"
}

# A restore turns maintenance mode on once the dump is checked, and off when it ends, whichever
# way: the site answers a page that says what is happening instead of errors or half the data.
# Left as it is when it was on already (an operator's, for longer work).
restore_maintenance=no
restore_page() {
  cat <<'PAGE'
${renderMaintenancePage(plan, RESTORE_MAINTENANCE_MESSAGE)}PAGE
}
maintenance_for_restore() {
  local page
  if [ -f "$maintenance_page" ]; then
    say "maintenance mode is on already: it stays on after the restore"
    return 0
  fi
  page=$(mktemp)
  restore_page > "$page"
  maintenance_on "$page" "timetracker-backup restore $src_name" ${q(RESTORE_MAINTENANCE_MESSAGE)}
  rm -f "$page"
  restore_maintenance=yes
  say "maintenance mode on: every route but ${plan.caddy.maintenance.operatorPath} answers 503 with a page until the restore ends"
}
maintenance_after_restore() {
  if [ "$restore_maintenance" = yes ]; then
    maintenance_off
    restore_maintenance=no
    say "maintenance mode off"
  fi
}

restore() {
  local wanted='' dry=no arg file toc expected present missing prerestore='' stopped=() c started=$EPOCHREALTIME
  for arg in "$@"; do
    case "$arg" in
      --dry-run) dry=yes ;;
      -*) die "usage: timetracker-backup restore <name>|latest [--dry-run]" 2 ;;
      *) [ -z "$wanted" ] || die "usage: timetracker-backup restore <name>|latest [--dry-run]" 2; wanted=$arg ;;
    esac
  done
  [[ $wanted =~ ^[A-Za-z0-9_][A-Za-z0-9._-]*$ ]] || die "usage: timetracker-backup restore <name>|latest [--dry-run] (a dump's name as list prints it)" 2
  if [ "$dry" = no ]; then
    trap 'maintenance_after_restore; lock_forget' EXIT
    lock_take "restore $wanted" honour
  fi
  choose "$wanted"
  if [ "$src_where" = host ]; then file="$dump_dir/$src_name"; else file="$restore_dir/$src_name"; fi

  if [ "$dry" = yes ]; then
    say "dry run: restore $src_name ($src_where, $src_bytes bytes, taken $src_time) into $db_name; nothing is changed"
    if [ "$src_where" = bucket ]; then say "  fetch $remote:$src_name to $file"; fi
    say "  check it with pg_restore --list in $db_container"
    if [ -f "$maintenance_page" ]; then
      say "  maintenance mode is on already: it stays on"
    else
      say "  turn maintenance mode on (every route but ${plan.caddy.maintenance.operatorPath} answers 503 with a page) until the restore ends"
    fi
    say "  dump $db_name as a prerestore dump into $dump_dir (if it answers) and copy it to the bucket"
    for c in "$backend" "$backend_candidate"; do
      if running "$c"; then say "  stop $c (docker stop -t 30)"; fi
    done
    say "  drop $db_name (WITH (FORCE)) and create it again, owned by $db_user"
    say "  pg_restore $src_name into $db_name (--no-owner --exit-on-error)"
    say "  count the rows of every table and check every table with data in the dump exists"
    if exists "$backend"; then say "  start $backend and wait until it is healthy (up to $health_wait s)"; fi
    say "  on a failure once $db_name is dropped: put the prerestore dump back and start $backend"
    return 0
  fi

  say "restoring $src_name ($src_where, $src_bytes bytes, taken $src_time) into $db_name"
  running "$db_container" || die "the database container $db_container is not running: start it first; nothing was changed"
  if [ "$src_where" = bucket ]; then
    have_credentials || die "$no_credentials; nothing was changed"
    install -d -m 0700 "$restore_dir"
    if ! toc=$(bucket copyto "$remote:$src_name" "$file.partial" 2>&1); then
      rm -f "$file.partial"
      die "could not fetch $remote:$src_name: $(reason "$toc"); nothing was changed"
    fi
    mv -f "$file.partial" "$file"
    say "fetched $remote:$src_name to $file"
  fi
  toc=$(docker exec -i "$db_container" pg_restore --list < "$file") || die "pg_restore cannot read $file: it is not a dump of pg_dump --format=custom; nothing was changed"
  expected=$(awk '$4 == "TABLE" && $5 == "DATA" { print $6 "." $7 }' <<< "$toc" | sort -u)
  say "checked: pg_restore reads it ($(awk 'NF' <<< "$expected" | wc -l) tables with data)"
  maintenance_for_restore

  if [ "$(docker exec "$db_container" psql -U "$db_user" -d "$db_name" -Atc 'select 1' 2>/dev/null || true)" = 1 ]; then
    dump_db prerestore
    prerestore=$dumped
    say "prerestore dump: $prerestore"
  else
    say "no prerestore dump: $db_name does not answer in $db_container"
  fi

  # Anything failing from here puts the database as it was back, and the backend up.
  fail() {
    printf 'restore of %s FAILED: %s\\n' "$src_name" "$1" >&2
    if [ "$dropped" = yes ]; then
      if running "$backend"; then docker stop -t 30 "$backend" >/dev/null || true; fi
      if [ -z "$prerestore" ]; then
        printf 'there is no prerestore dump to put back: %s is as the failed restore left it\\n' "$db_name" >&2
      elif recreate && pg_restore_into "$prerestore"; then
        printf 'put %s back into %s\\n' "$prerestore" "$db_name" >&2
      else
        printf 'could not put %s back: restore it with timetracker-backup restore %s\\n' "$prerestore" "\${prerestore##*/}" >&2
      fi
    fi
    if exists "$backend"; then
      docker start "$backend" >/dev/null || true
      wait_healthy || true
    fi
    exit 1
  }

  for c in "$backend" "$backend_candidate"; do
    if running "$c"; then
      docker stop -t 30 "$c" >/dev/null || fail "could not stop $c"
      stopped+=("$c")
    fi
  done
  if [ "\${#stopped[@]}" -gt 0 ]; then say "stopped \${stopped[*]}"; fi
  recreate || fail "could not drop and create $db_name"
  say "dropped and created $db_name (owner $db_user)"
  pg_restore_into "$file" || fail "pg_restore of $src_name into $db_name failed"
  say "pg_restore of $src_name done"
  counts || fail "could not count the rows of $db_name"
  present=$(docker exec "$db_container" psql -U "$db_user" -d "$db_name" -At -c "$tables_sql") || fail "could not list the tables of $db_name"
  missing=$(comm -23 <(printf '%s\\n' "$expected" | awk 'NF') <(printf '%s\\n' "$present" | sort -u))
  [ -z "$missing" ] || fail "tables of the dump missing after the restore: $(tr '\\n' ' ' <<< "$missing")"
  say "every table with data in the dump is in $db_name"
  if exists "$backend"; then
    docker start "$backend" >/dev/null || fail "could not start $backend"
    wait_healthy || fail "$backend did not become healthy within $health_wait s"
  else
    say "no container $backend on this host: the next deploy starts it"
  fi
  if [ "$src_where" = bucket ]; then rm -f "$file"; fi
  maintenance_after_restore
  say "restored $src_name into $db_name in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
}

command=\${1:-}
case "$command" in
  dump)
    [ "$#" -eq 2 ] || die "usage: timetracker-backup dump <kind>" 2
    dump_db "$2"
    say "$dumped"
    ;;
  ship)
    [ "$#" -eq 2 ] || die "usage: timetracker-backup ship <file>" 2
    ship_file "$2"
    ;;
  nightly) nightly ;;
  list) list ;;
  counts) counts ;;
  restore)
    shift
    restore "$@"
    ;;
  set-credentials) set_credentials ;;
  status) status ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
`;
}
