import type { Plan } from "../model/plan.js";
import { shellQuote as q } from "./shell.js";

/**
 * The lock a deploy, a rollback, the nightly dump and a restore share: none of them runs while
 * another does. The release tool holds it (fd 9) for a whole deploy, so its pre-deploy dump
 * (`timetracker-backup dump`) must not take it again.
 */
export const RELEASE_LOCK = "/run/lock/timetracker-release.lock";

/** Where host setup installs the lock's own tool (`npm run ops -- lock` runs it). */
export const LOCK_TOOL = "/usr/local/bin/timetracker-lock";

/** Seconds a run waits for another run (a deploy's checks, a dump, a restore) to end before it refuses. */
export const LOCK_WAIT_SECONDS = 900;
/** Seconds a run waits for a hold taken on purpose: a hold lasts a while, so the wait is short. */
export const HOLD_WAIT_SECONDS = 60;
/** The exit code of a run refused because the lock is held: nothing was changed (sysexits' EX_TEMPFAIL). */
export const LOCK_REFUSED_EXIT = 75;

/**
 * The variable a run is sent with (`sudo -n env TIMETRACKER_LOCK_BY=<who> <tool> …`) to say who
 * sent it: a restore or a rollback sent by the hold's own holder runs under the hold.
 */
export const LOCK_BY_VARIABLE = "TIMETRACKER_LOCK_BY";

/** How a hold is released, as the lock's messages name it. */
const releaseCommand = (plan: Plan) => `npm run ops -- --stack ${plan.stack} lock release`;

/**
 * The lock's bash functions, shared by the release, backup and lock tools. The caller sets
 * `lock_file` (the flock's file) and `lock_dir` (plan.host.lockDir) first.
 *
 * The flock is the mutual exclusion: a run holds it on fd 9 until it ends, and a killed run
 * loses it with its process. The records only describe it:
 *   run   the run that holds the flock (what, who, from where, since when, its pid); a record
 *         whose flock is free was left by a killed run: stale, replaced by the next run
 *   hold  a hold taken on purpose (`timetracker-lock acquire`), which no process keeps: deploys,
 *         rollbacks and restores treat it as held until it is released
 */
export function lockFunctions(plan: Plan): string {
  return `# The deploy lock (infra/render/deploy-lock.ts): the flock on $lock_file is the mutual
# exclusion; the records in $lock_dir only describe it, each written whole (temp file, rename).
lock_run="$lock_dir/run"
lock_hold="$lock_dir/hold"
lock_wait=${LOCK_WAIT_SECONDS}
hold_wait=${HOLD_WAIT_SECONDS}

lock_note() { printf '%s\\n' "$*"; }
# A value as one line of text: a record is key=value lines.
lock_clean() { printf '%s' "$1" | tr '\\t\\r\\n' '   ' | tr -d '\\000-\\037\\177' | cut -c 1-300; }
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
  printf 'since %s (%s ago) by %s (%s%s): %s' "$since" "$(lock_age "$since")" "$(lock_field "$1" user)" "$(lock_field "$1" from)" "\${by:+, $by}" "$(lock_field "$1" why)"
}

# Milliseconds since the epoch (bash's clock: SECONDS counts whole seconds from a point inside one).
lock_now() {
  local t=\${EPOCHREALTIME//[!0-9]/}
  printf '%s' $((10#$t / 1000))
}

# Where this run comes from: the SSH client of the session it runs in. sudo leaves SSH_CLIENT
# out of the environment, so it is read from the nearest process up the tree that has it.
lock_origin() {
  local pid=$$ client
  while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
    client=$(tr '\\0' '\\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^SSH_CLIENT=//p' | head -n 1) || client=''
    if [ -n "$client" ]; then
      printf 'ssh from %s' "\${client%% *}"
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
  printf 'kind=%s\\npid=%s\\nuser=%s\\nfrom=%s\\nby=%s\\nsince=%s\\nwhy=%s\\n' "$2" "$$" \\
    "$(lock_clean "\${SUDO_USER:-$(id -un)}")" "$(lock_origin)" "$(lock_clean "\${${LOCK_BY_VARIABLE}:-}")" \\
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(lock_clean "$3")" > "$tmp"
  mv -f "$tmp" "$1"
}

# True when a hold is in place and this run was not sent by its holder.
lock_hold_blocks() {
  [ -s "$lock_hold" ] || return 1
  [ -n "\${${LOCK_BY_VARIABLE}:-}" ] || return 0
  [ "$(lock_field "$lock_hold" by)" != "$(lock_clean "$${LOCK_BY_VARIABLE}")" ]
}

# lock_take <why> honour|ignore: takes the flock on fd 9 and records this run. While another
# run holds it, waits up to lock_wait s; while a hold is in place (honour), up to hold_wait s;
# then refuses (exit ${LOCK_REFUSED_EXIT}) naming the holder. The nightly dump ignores holds: a
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
      printf 'refused: the deploy lock is held by %s; waited %s s, nothing was changed.\\n' "$holder" $((waited / 1000)) >&2
      if [ "\${key%% *}" = hold ]; then printf 'The holder releases it with: %s\\n' ${q(releaseCommand(plan))} >&2; fi
      exit ${LOCK_REFUSED_EXIT}
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
`;
}

/**
 * The host's lock tool for one stack (`npm run ops -- --stack <s> lock …`, as root):
 *
 *   status             `lock: free`, or one line per holder: `lock: held on purpose since …`,
 *                      `lock: held since …` (a run), `lock: stale since …` (a killed run's record)
 *   acquire <message>  waits for a running deploy, then holds the lock on purpose until released
 *   release            ends a hold and clears a killed run's record; a live run is left alone
 */
export function renderLockTool(plan: Plan): string {
  return `#!/bin/bash
# Generated from the stack's Plan by \`npm run render\`. Do not edit.
# Deploy lock tool for stack "${plan.stack}", installed by host setup as ${LOCK_TOOL}.
# Usage: timetracker-lock status | acquire <message> | release
set -euo pipefail

lock_file=${q(RELEASE_LOCK)}
lock_dir=${q(plan.host.lockDir)}

usage() {
  printf '%s\\n' "usage: timetracker-lock status | acquire <message> | release   (as root; stack \\"${plan.stack}\\")" >&2
  exit 2
}

${lockFunctions(plan)}
lock_status() {
  local free=no pid
  exec 9> "$lock_file"
  if flock -n 9; then
    free=yes
    flock -u 9
  fi
  if [ -s "$lock_hold" ]; then
    lock_note "lock: held on purpose $(lock_describe "$lock_hold")"
    lock_note "  deploys, rollbacks and restores wait $hold_wait s for it, then are refused; release it with: ${releaseCommand(plan)}"
  fi
  if [ -s "$lock_run" ]; then
    pid=$(lock_field "$lock_run" pid)
    if [ "$free" = yes ]; then
      lock_note "lock: stale $(lock_describe "$lock_run")"
      lock_note "  a killed run left this record: its pid $pid is gone and nothing holds the lock; lock release clears it (the next run replaces it)"
    elif [ -d "/proc/$pid" ]; then
      lock_note "lock: held $(lock_describe "$lock_run") (pid $pid)"
    else
      lock_note "lock: held $(lock_describe "$lock_run")"
      lock_note "  its pid $pid is gone, but a process it started still holds the lock: it ends with that process"
    fi
  elif [ "$free" = no ]; then
    lock_note "lock: held by a run that left no record"
  elif [ ! -s "$lock_hold" ]; then
    lock_note "lock: free"
  fi
}

# One hold at a time: a second one is refused, before waiting and once the flock is held.
lock_refuse_second_hold() {
  if [ -s "$lock_hold" ]; then
    printf 'refused: the deploy lock is already held on purpose %s; release it first: %s\\n' "$(lock_describe "$lock_hold")" ${q(releaseCommand(plan))} >&2
    exit ${LOCK_REFUSED_EXIT}
  fi
}

lock_acquire() {
  lock_refuse_second_hold
  lock_take "lock acquire" honour
  lock_refuse_second_hold
  lock_write "$lock_hold" hold "$1"
  lock_forget
  flock -u 9
  lock_status
}

lock_release() {
  local cleared=no
  exec 9> "$lock_file"
  if [ -s "$lock_hold" ]; then
    lock_note "released the hold: held on purpose $(lock_describe "$lock_hold")"
    rm -f "$lock_hold"
    cleared=yes
  fi
  if [ -s "$lock_run" ]; then
    if flock -n 9; then
      lock_note "cleared the record a killed run left: held $(lock_describe "$lock_run")"
      rm -f "$lock_run"
      flock -u 9
      cleared=yes
    else
      lock_note "left alone: a live run holds the lock (it releases it when it ends)"
    fi
  fi
  if [ "$cleared" = no ]; then lock_note "nothing to release"; fi
  lock_status
}

trap lock_forget EXIT
case "\${1:-}" in
  status)
    [ "$#" -eq 1 ] || usage
    lock_status
    ;;
  acquire)
    if [ "$#" -ne 2 ] || [ -z "$2" ]; then usage; fi
    lock_acquire "$2"
    ;;
  release)
    [ "$#" -eq 1 ] || usage
    lock_release
    ;;
  *) usage ;;
esac
`;
}
