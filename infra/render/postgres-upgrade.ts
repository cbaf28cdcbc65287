import type { Plan, PostgresUpgradePlan } from "../model/plan.js";
import { COUNTS_SQL } from "./backup.js";
import { lockFunctions, RELEASE_LOCK } from "./deploy-lock.js";
import { ENV_FILE_PREFIX } from "./release.js";
import { shellQuote as q } from "./shell.js";

/** Where host setup installs the upgrade tool; the deploy runs `run` before it replaces the database container. */
export const POSTGRES_UPGRADE_TOOL = "/usr/local/bin/timetracker-postgres-upgrade";

/** Seconds the new major's one-off server gets to initialise its directory and accept connections. */
const READY_SECONDS = 120;

/** Where the db container keeps its data: the mount of the database volume. */
function dataPath(plan: Plan): string {
  const mount = plan.containers.db.volumes.find((v) => v.volume === plan.volumes.database);
  if (!mount) throw new Error(`the db container has no volume ${plan.volumes.database}`);
  return mount.path;
}

/** The variables and the `run` command of a planned upgrade. */
function planned(plan: Plan, upgrade: PostgresUpgradePlan): { variables: string; run: string } {
  const db = plan.containers.db;
  const image = db.image.source === "registry" ? db.image.ref : "";
  const to = plan.database.major;
  const from = upgrade.fromMajor;
  const variables = `stack=${q(plan.stack)}
network=${q(plan.network)}
env_prefix="$root"${q(ENV_FILE_PREFIX)}
image=${q(image)}
from_major=${from}
from_volume=${q(upgrade.fromVolume)}
from_path=${q(upgrade.fromVolumePath)}
to_major=${to}
to_volume=${q(plan.volumes.database)}
to_dir="$root"${q(plan.volumePaths.database)}
restore_container=${q(upgrade.restoreContainer)}
dump_file="$root"${q(upgrade.dumpFile)}
stop_grace=${db.stopGraceSeconds}
ready_wait=${READY_SECONDS}`;
  const run = `# --- run: the planned upgrade, postgres ${from} -> ${to} ---
# State of one run, global: the exit trap reads it.
record="$records/$to_volume"
working=no frozen=no finished=no

# Undoes what this run did, whatever failed: postgres ${from} serves on, writable again.
undo() {
  if exists "$restore_container"; then docker rm -f "$restore_container" >/dev/null 2>&1 || true; fi
  find "$to_dir" -mindepth 1 -delete 2>/dev/null || true
  rm -f "$dump_file"
  if [ "$frozen" = yes ]; then
    if live_sql postgres "ALTER DATABASE \\"$db_name\\" RESET default_transaction_read_only" >/dev/null; then
      say "postgres $from_major in $db_container serves on, and accepts writes to $db_name again" >&2
    else
      printf 'could not accept writes to %s again: run ALTER DATABASE "%s" RESET default_transaction_read_only in %s\\n' "$db_name" "$db_name" "$db_container" >&2
    fi
  fi
  record_set "$record" state=failed "failed=$(now)"
}
on_exit() {
  if [ "$working" = yes ] && [ "$finished" != yes ]; then undo; fi
  lock_forget
}
fail() {
  printf 'postgres upgrade %s -> %s FAILED: %s\\n' "$from_major" "$to_major" "$1" >&2
  exit 1
}

wait_ready() {
  local deadline=$((SECONDS + ready_wait))
  while [ "$SECONDS" -lt "$deadline" ]; do
    running "$restore_container" || return 1
    # Over TCP: while the image initialises the directory, its server listens on the socket only.
    if docker exec "$restore_container" pg_isready -q -h 127.0.0.1 -U "$db_user" -d "$db_name" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  return 1
}

# "<table> <before> -> <after>" for every table either side has.
rows_report() { join -t "$tab" -a 1 -a 2 -e missing -o 0,1.2,2.2 <(printf '%s\\n' "$1" | awk 'NF') <(printf '%s\\n' "$2" | awk 'NF') | awk -F "$tab" '{ printf "  %s %s -> %s\\n", $1, $2, $3 }'; }

run() {
  local password live_major live_volume before after env_file started=$SECONDS
  [ ! -t 0 ] || die "run reads the database password on stdin: pipe it in" 2
  IFS= read -r password || true
  [ -n "$password" ] || die "run reads the database password on stdin, and got none" 2
  trap on_exit EXIT
  lock_take "postgres upgrade $from_major -> $to_major" honour

  if [ "$(field "$record" state)" = "done" ] && [ "$(cat "$to_dir/PG_VERSION" 2>/dev/null || true)" = "$to_major" ]; then
    say "postgres $from_major -> $to_major was done at $(field "$record" finished): $to_volume holds postgres $to_major; nothing to do"
    return 0
  fi
  # What serves now must be what postgresUpgrade.from names.
  running "$db_container" || refuse "the database container $db_container is not running: the upgrade dumps the running postgres $from_major (a new instance and an upgrade go in separate deploys)"
  live_major=$(major_of "$db_container") || refuse "postgres in $db_container does not answer"
  [ "$live_major" = "$from_major" ] || refuse "$db_container runs postgres $live_major, but postgresUpgrade.from.major is $from_major"
  live_volume=$(volume_of "$db_container")
  [ "$live_volume" = "$from_volume" ] || refuse "$db_container keeps its data in volume '$live_volume', but postgresUpgrade.from.volume is $from_volume"
  # The new directory is emptied below: never the one that holds the data.
  [ "$to_volume" != "$from_volume" ] || refuse "the new major's volume is the old one ($from_volume)"
  if exists "$restore_container"; then
    docker rm -f "$restore_container" >/dev/null
    say "removed $restore_container, left by an unfinished upgrade"
  fi
  install -d -m 0755 "$to_dir"
  if [ -n "$(ls -A "$to_dir")" ]; then
    [ -f "$record" ] || refuse "$to_dir is not empty, and no upgrade by this tool wrote it: look at what it holds and move it away"
    find "$to_dir" -mindepth 1 -delete
    say "emptied $to_dir: an unfinished upgrade left it"
  fi
  record_set "$record" state=running "started=$(now)" "from_major=$from_major" "from_volume=$from_volume" "from_path=$from_path" "to_major=$to_major" "to_volume=$to_volume"
  working=yes

  # From here on, any failure undoes this run (on_exit). First no write may land after the dump:
  # sessions are ended and new ones are read only, so postgres $from_major still serves every read.
  live_sql postgres "ALTER DATABASE \\"$db_name\\" SET default_transaction_read_only = on" >/dev/null || fail "could not refuse writes to $db_name"
  frozen=yes
  live_sql postgres "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$db_name' AND pid <> pg_backend_pid()" >/dev/null || fail "could not end the sessions of $db_name"
  say "writes to $db_name in $db_container are refused from now on: its sessions were ended, new ones are read only"
  before=$(counts_of "$db_container") || fail "could not count the rows of $db_name in $db_container"

  # The new major in a one-off container on a new, empty directory. Its password reaches it in an
  # env file (root only, in tmpfs, gone once the container is created), never on a command line.
  env_file=$(mktemp "\${env_prefix}upgrade.XXXXXX") || fail "could not write the env file"
  printf 'POSTGRES_USER=%s\\nPOSTGRES_DB=%s\\nPOSTGRES_PASSWORD=%s\\n' "$db_user" "$db_name" "$password" > "$env_file"
  if ! docker run -d --name "$restore_container" --network "$network" --env-file "$env_file" --volume "$to_dir:$data_path" \\
    --label "timetracker.stack=$stack" --label timetracker.service=db-upgrade --stop-timeout "$stop_grace" "$image" >/dev/null; then
    rm -f "$env_file"
    fail "could not start postgres $to_major ($image) in $restore_container"
  fi
  rm -f "$env_file"
  wait_ready || fail "postgres $to_major in $restore_container did not accept connections within $ready_wait s: $(docker logs --tail 5 "$restore_container" 2>&1 | tr '\\n' ' ')"
  [ "$(major_of "$restore_container")" = "$to_major" ] || fail "$image does not run postgres $to_major"
  say "postgres $to_major started in $restore_container on $to_dir"

  # The newer major's pg_dump, reaching the old server over the stack's network, as PostgreSQL's
  # upgrade advice has it ("use the pg_dump and pg_dumpall programs from the newer version").
  install -d -m 0700 "$(dirname "$dump_file")"
  # shellcheck disable=SC2016 # expanded by sh inside the container
  printf '%s' "$password" | docker exec -i "$restore_container" sh -c 'PGPASSWORD=$(cat); export PGPASSWORD; exec pg_dump -h "$1" -U "$2" -d "$3" --format=custom' sh "$db_container" "$db_user" "$db_name" > "$dump_file" ||
    fail "pg_dump (postgres $to_major) of $db_name in $db_container failed"
  say "dumped $db_name from postgres $from_major with postgres $to_major's pg_dump ($(stat -c %s "$dump_file") bytes)"
  docker exec -i "$restore_container" pg_restore -U "$db_user" -d "$db_name" --no-owner --exit-on-error < "$dump_file" ||
    fail "pg_restore into postgres $to_major failed"
  after=$(counts_of "$restore_container") || fail "could not count the rows of $db_name in $restore_container"
  say "rows per table, postgres $from_major -> $to_major:"
  rows_report "$before" "$after"
  [ "$before" = "$after" ] || fail "the rows per table differ between postgres $from_major and postgres $to_major (above)"

  docker stop -t "$stop_grace" "$restore_container" >/dev/null || fail "could not stop $restore_container"
  docker rm "$restore_container" >/dev/null || fail "could not remove $restore_container"
  [ "$(cat "$to_dir/PG_VERSION" 2>/dev/null || true)" = "$to_major" ] || fail "$to_dir holds no postgres $to_major directory"
  rm -f "$dump_file"
  printf '%s\\n' "$after" > "$record.rows"
  record_set "$record" "state=done" "finished=$(now)" "seconds=$((SECONDS - started))"
  finished=yes
  say "postgres $from_major -> $to_major: $to_volume restored and checked in $((SECONDS - started)) s; the database container is replaced next"
  say "kept: $from_volume ($from_path), read only; remove it once you no longer need it: sudo ${POSTGRES_UPGRADE_TOOL} remove-old $from_volume"
}
`;
  return { variables, run };
}

/**
 * The host's Postgres upgrade tool for one stack (bash, run as root):
 *
 *   run                 the upgrade the Plan declares (postgresUpgrade), the database password on
 *                       stdin: refuses unless the running database is postgresUpgrade.from; refuses
 *                       writes to it, dumps it with the new major's pg_dump, restores the dump into
 *                       the new volume in a one-off server of the new major and compares the rows of
 *                       every table. Any failure undoes it all: the old major serves on, writable. Done
 *                       already: nothing to do. The deploy runs it before the database container goes.
 *   status              every upgrade on the data disk, and the old volume each one kept
 *   remove-old <volume> deletes an old volume an upgrade kept, once nothing uses it
 */
export function renderPostgresUpgradeTool(plan: Plan): string {
  const upgrade = plan.postgresUpgrade;
  const parts = upgrade
    ? planned(plan, upgrade)
    : {
        variables: "",
        run: `run() { die "no upgrade planned: the definition of stack ${plan.stack} has no postgresUpgrade (docs/postgres-upgrade.md)" 2; }\n`,
      };
  return `#!/bin/bash
# Generated from the stack's Plan by \`npm run render\`. Do not edit.
# Postgres upgrade tool for stack "${plan.stack}", installed by host setup as ${POSTGRES_UPGRADE_TOOL}.
# Usage: timetracker-postgres-upgrade run | status | remove-old <volume>
set -euo pipefail
shopt -s nullglob
export LC_ALL=C

# Test hook: the tests run this tool with every host path below a temporary folder.
# Nothing sets it on a host: sudo resets the environment.
root=\${TIMETRACKER_UPGRADE_ROOT:-}
lock_file="$root"${q(RELEASE_LOCK)}
lock_dir="$root"${q(plan.host.lockDir)}
records="$root"${q(plan.host.postgresUpgradesDir)}
db_container=${q(plan.containers.db.name)}
db_user=${q(plan.database.user)}
db_name=${q(plan.database.name)}
data_path=${q(dataPath(plan))}
counts_sql=${q(COUNTS_SQL)}
tab=$'\\t'
${parts.variables}

usage() {
  printf '%s\\n' "usage: timetracker-postgres-upgrade run | status | remove-old <volume>   (as root; stack ${plan.stack})" >&2
  exit 2
}
say() { printf '%s\\n' "$*"; }
die() {
  printf '%s\\n' "$1" >&2
  exit "\${2:-1}"
}
refuse() { die "refused: $1; nothing was changed"; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
exists() { docker inspect "$1" >/dev/null 2>&1; }
# The volume a container keeps its data in (the mount at the data path).
volume_of() { docker inspect -f "{{range .Mounts}}{{if eq .Destination \\"$data_path\\"}}{{.Name}}{{end}}{{end}}" "$1" 2>/dev/null || true; }
# Over the container's socket, which its image trusts: no password.
live_sql() { docker exec "$db_container" psql -v ON_ERROR_STOP=1 -X -q -U "$db_user" -d "$1" -At -c "$2"; }
major_of() {
  local number
  number=$(docker exec "$1" psql -X -U "$db_user" -d postgres -At -c 'show server_version_num') || return 1
  printf '%s' $((number / 10000))
}
# <table>\\t<rows> for every table of schema public (the backup tool's counts).
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
    { grep -v "^\${pair%%=*}=" "$tmp" || true; } > "$tmp.next"
    printf '%s\\n' "$pair" >> "$tmp.next"
    mv -f "$tmp.next" "$tmp"
  done
  chmod 0600 "$tmp"
  mv -f "$tmp" "$file"
}
records_list() {
  local file
  for file in "$records"/*; do
    case "$file" in *.rows) continue ;; esac
    if [ -f "$file" ]; then printf '%s\\n' "$file"; fi
  done
}

${lockFunctions(plan)}
${parts.run}
status() {
  local file any=no from_volume
  while IFS= read -r file; do
    any=yes
    from_volume=$(field "$file" from_volume)
    say "$(basename "$file"): postgres $(field "$file" from_major) -> $(field "$file" to_major), $(field "$file" state) (started $(field "$file" started)$(if [ -n "$(field "$file" finished)" ]; then printf ', finished %s' "$(field "$file" finished)"; fi))"
    if [ -n "$(field "$file" old_removed)" ]; then
      say "  old volume $from_volume: removed $(field "$file" old_removed)"
    elif [ "$(field "$file" state)" = "done" ]; then
      say "  old volume $from_volume kept in $(field "$file" from_path) ($(du -sh "$root$(field "$file" from_path)" 2>/dev/null | cut -f1 || printf '?')): sudo ${POSTGRES_UPGRADE_TOOL} remove-old $from_volume"
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
  users=$(docker ps -a --filter "volume=$volume" --format '{{.Names}}' | tr '\\n' ' ')
  [ -z "\${users// /}" ] || die "refused: $volume is used by $users; nothing was removed"
  trap lock_forget EXIT
  lock_take "remove old postgres volume $volume" honour
  if docker volume inspect "$volume" >/dev/null 2>&1; then docker volume rm "$volume" >/dev/null; fi
  path=$(field "$found" from_path)
  rm -rf --one-file-system "$root$path"
  record_set "$found" "old_removed=$(now)"
  say "removed the old volume $volume and its folder $path"
}

case "\${1:-}" in
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
`;
}
