#!/bin/bash
# Generated from the stack's Plan by `npm run render`. Do not edit.
# Postgres upgrade tool for stack "staging", installed by host setup as /usr/local/bin/timetracker-postgres-upgrade.
# Usage: timetracker-postgres-upgrade run | status | remove-old <volume>
set -euo pipefail
shopt -s nullglob
export LC_ALL=C

# Test hook: the tests run this tool with every host path below a temporary folder.
# Nothing sets it on a host: sudo resets the environment.
root=${TIMETRACKER_UPGRADE_ROOT:-}
lock_file="$root"'/run/lock/timetracker-release.lock'
lock_dir="$root"'/mnt/timetracker-data/state/deploy-lock'
records="$root"'/mnt/timetracker-data/state/postgres-upgrades'
db_container='timetracker-staging-db'
db_user='timetracker'
db_name='timetracker_v2_dev'
data_path='/var/lib/postgresql/data'
counts_sql='select table_name, (xpath('\''/row/n/text()'\'', query_to_xml(format('\''select count(*) as n from %I.%I'\'', table_schema, table_name), false, true, '\'''\'')))[1]::text from information_schema.tables where table_schema = '\''public'\'' and table_type = '\''BASE TABLE'\'' order by table_name collate "C"'
tab=$'\t'


usage() {
  printf '%s\n' "usage: timetracker-postgres-upgrade run | status | remove-old <volume>   (as root; stack staging)" >&2
  exit 2
}
say() { printf '%s\n' "$*"; }
die() {
  printf '%s\n' "$1" >&2
  exit "${2:-1}"
}
refuse() { die "refused: $1; nothing was changed"; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
exists() { docker inspect "$1" >/dev/null 2>&1; }
# The volume a container keeps its data in (the mount at the data path).
volume_of() { docker inspect -f "{{range .Mounts}}{{if eq .Destination \"$data_path\"}}{{.Name}}{{end}}{{end}}" "$1" 2>/dev/null || true; }
# Over the container's socket, which its image trusts: no password.
live_sql() { docker exec "$db_container" psql -v ON_ERROR_STOP=1 -X -q -U "$db_user" -d "$1" -At -c "$2"; }
major_of() {
  local number
  number=$(docker exec "$1" psql -X -U "$db_user" -d postgres -At -c 'show server_version_num') || return 1
  printf '%s' $((number / 10000))
}
# <table>\t<rows> for every table of schema public (the backup tool's counts).
counts_of() { docker exec "$1" psql -v ON_ERROR_STOP=1 -X -U "$db_user" -d "$db_name" -At -F "$tab" -c "$counts_sql"; }

# An upgrade's record: key=value lines, root only, each rewrite whole (temp file, rename).
field() { if [ -f "$1" ]; then sed -n "s/^$2=//p" "$1" | head -n 1; fi; }
record_set() {
  local file=$1 tmp pair
  shift
  install -d -m 0700 "$records"
  tmp=$(mktemp "$records/.record.XXXXXX")
  if [ -f "$file" ]; then cat "$file" > "$tmp"; fi
  for pair in "$@"; do
    { grep -v "^${pair%%=*}=" "$tmp" || true; } > "$tmp.next"
    printf '%s\n' "$pair" >> "$tmp.next"
    mv -f "$tmp.next" "$tmp"
  done
  chmod 0600 "$tmp"
  mv -f "$tmp" "$file"
}
records_list() {
  local file
  for file in "$records"/*; do
    case "$file" in *.rows) continue ;; esac
    if [ -f "$file" ]; then printf '%s\n' "$file"; fi
  done
}

# The deploy lock (infra/render/deploy-lock.ts): the flock on $lock_file is the mutual
# exclusion; the records in $lock_dir only describe it, each written whole (temp file, rename).
lock_run="$lock_dir/run"
lock_hold="$lock_dir/hold"
lock_wait=900
hold_wait=60

lock_note() { printf '%s\n' "$*"; }
# A value as one line of text: a record is key=value lines.
lock_clean() { printf '%s' "$1" | tr '\t\r\n' '   ' | tr -d '\000-\037\177' | cut -c 1-300; }
# lock_field <record> <key>: empty when the record or the key is not there.
lock_field() { if [ -f "$1" ]; then sed -n "s/^$2=//p" "$1" | head -n 1; fi; }
lock_age() {
  local s
  s=$(($(date -u +%s) - $(date -u -d "$1" +%s 2>/dev/null || date -u +%s)))
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
# "since <time> (<age> ago) by <user> (<from>[, <sent by>]): <why>"
lock_describe() {
  local since by
  since=$(lock_field "$1" since)
  by=$(lock_field "$1" by)
  printf 'since %s (%s ago) by %s (%s%s): %s' "$since" "$(lock_age "$since")" "$(lock_field "$1" user)" "$(lock_field "$1" from)" "${by:+, $by}" "$(lock_field "$1" why)"
}

# Milliseconds since the epoch (bash's clock: SECONDS counts whole seconds from a point inside one).
lock_now() {
  local t=${EPOCHREALTIME//[!0-9]/}
  printf '%s' $((10#$t / 1000))
}

# Where this run comes from: the SSH client of the session it runs in. sudo leaves SSH_CLIENT
# out of the environment, so it is read from the nearest process up the tree that has it.
lock_origin() {
  local pid=$$ client
  while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
    client=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^SSH_CLIENT=//p' | head -n 1) || client=''
    if [ -n "$client" ]; then
      printf 'ssh from %s' "${client%% *}"
      return 0
    fi
    pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || pid=''
  done
  printf 'on the host, no SSH session'
}

# lock_write <record> <kind> <why>
lock_write() {
  local tmp
  install -d -m 0700 "$lock_dir"
  tmp=$(mktemp "$lock_dir/.$2.XXXXXX")
  printf 'kind=%s\npid=%s\nuser=%s\nfrom=%s\nby=%s\nsince=%s\nwhy=%s\n' "$2" "$$" \
    "$(lock_clean "${SUDO_USER:-$(id -un)}")" "$(lock_origin)" "$(lock_clean "${TIMETRACKER_LOCK_BY:-}")" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(lock_clean "$3")" > "$tmp"
  mv -f "$tmp" "$1"
}

# True when a hold is in place and this run was not sent by its holder.
lock_hold_blocks() {
  [ -s "$lock_hold" ] || return 1
  [ -n "${TIMETRACKER_LOCK_BY:-}" ] || return 0
  [ "$(lock_field "$lock_hold" by)" != "$(lock_clean "$TIMETRACKER_LOCK_BY")" ]
}

# lock_take <why> honour|ignore: takes the flock on fd 9 and records this run. While another
# run holds it, waits up to lock_wait s; while a hold is in place (honour), up to hold_wait s;
# then refuses (exit 75) naming the holder. The nightly dump ignores holds: a
# forgotten hold must not stop the backups.
lock_take() {
  local why=$1 holds=$2 started holder key told='' limit waited
  started=$(lock_now)
  exec 9> "$lock_file"
  while :; do
    if [ "$holds" = honour ] && lock_hold_blocks; then
      holder="a hold taken on purpose $(lock_describe "$lock_hold")"
      key="hold $(lock_field "$lock_hold" since)"
      limit=$hold_wait
    elif ! flock -n 9; then
      if [ -s "$lock_run" ]; then holder="a run $(lock_describe "$lock_run") (pid $(lock_field "$lock_run" pid))"; else holder="a run that left no record"; fi
      key="run $(lock_field "$lock_run" since)"
      limit=$lock_wait
    elif [ "$holds" = honour ] && lock_hold_blocks; then
      # A hold was taken while this run waited for the flock: wait for the hold instead.
      flock -u 9
      continue
    else
      break
    fi
    if [ "$key" != "$told" ]; then
      lock_note "waiting up to $limit s for the deploy lock, held by $holder"
      told=$key
    fi
    waited=$(($(lock_now) - started))
    if [ "$waited" -ge $((limit * 1000)) ]; then
      printf 'refused: the deploy lock is held by %s; waited %s s, nothing was changed.\n' "$holder" $((waited / 1000)) >&2
      if [ "${key%% *}" = hold ]; then printf 'The holder releases it with: %s\n' 'npm run ops -- --stack staging lock release' >&2; fi
      exit 75
    fi
    sleep 2
  done
  if [ -s "$lock_run" ]; then lock_note "the deploy lock was free, but a killed run left its record (held $(lock_describe "$lock_run")): replaced"; fi
  if [ -s "$lock_hold" ]; then
    if [ "$holds" = honour ]; then lock_note "runs under its sender's hold: held on purpose $(lock_describe "$lock_hold")"; else lock_note "a hold is in place ($(lock_describe "$lock_hold")): $why runs anyway"; fi
  fi
  lock_write "$lock_run" run "$why"
}

# The exit trap's part: this run's record goes with it (never another run's).
lock_forget() {
  if [ "$(lock_field "$lock_run" pid)" = "$$" ]; then rm -f "$lock_run"; fi
}

run() { die "no upgrade planned: the definition of stack staging has no postgresUpgrade (docs/postgres-upgrade.md)" 2; }

status() {
  local file any=no from_volume
  while IFS= read -r file; do
    any=yes
    from_volume=$(field "$file" from_volume)
    say "$(basename "$file"): postgres $(field "$file" from_major) -> $(field "$file" to_major), $(field "$file" state) (started $(field "$file" started)$(if [ -n "$(field "$file" finished)" ]; then printf ', finished %s' "$(field "$file" finished)"; fi))"
    if [ -n "$(field "$file" old_removed)" ]; then
      say "  old volume $from_volume: removed $(field "$file" old_removed)"
    elif [ "$(field "$file" state)" = "done" ]; then
      say "  old volume $from_volume kept in $(field "$file" from_path) ($(du -sh "$root$(field "$file" from_path)" 2>/dev/null | cut -f1 || printf '?')): sudo /usr/local/bin/timetracker-postgres-upgrade remove-old $from_volume"
    fi
  done < <(records_list)
  if [ "$any" = no ]; then say "no Postgres upgrade on this data disk"; fi
}

remove_old() {
  local volume=$1 file found='' users path
  [[ $volume =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] || usage
  while IFS= read -r file; do
    if [ "$(field "$file" from_volume)" = "$volume" ] && [ "$(field "$file" state)" = "done" ]; then found=$file; fi
  done < <(records_list)
  [ -n "$found" ] || die "refused: no finished upgrade kept a volume $volume (timetracker-postgres-upgrade status lists them); nothing was removed"
  [ -z "$(field "$found" old_removed)" ] || die "$volume was removed already, at $(field "$found" old_removed)"
  [ "$(volume_of "$db_container")" = "$(field "$found" to_volume)" ] ||
    die "refused: $db_container does not run on $(field "$found" to_volume), the upgrade's volume: the upgrade is not deployed; nothing was removed"
  users=$(docker ps -a --filter "volume=$volume" --format '{{.Names}}' | tr '\n' ' ')
  [ -z "${users// /}" ] || die "refused: $volume is used by $users; nothing was removed"
  trap lock_forget EXIT
  lock_take "remove old postgres volume $volume" honour
  if docker volume inspect "$volume" >/dev/null 2>&1; then docker volume rm "$volume" >/dev/null; fi
  path=$(field "$found" from_path)
  rm -rf --one-file-system "$root$path"
  record_set "$found" "old_removed=$(now)"
  say "removed the old volume $volume and its folder $path"
}

case "${1:-}" in
  run)
    [ "$#" -eq 1 ] || usage
    run
    ;;
  status)
    [ "$#" -eq 1 ] || usage
    status
    ;;
  remove-old)
    [ "$#" -eq 2 ] || usage
    remove_old "$2"
    ;;
  *) usage ;;
esac
