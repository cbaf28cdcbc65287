#!/bin/bash
# Generated from the stack's Plan by `npm run render`. Do not edit.
# Host status for stack "staging", installed by host setup as /usr/local/bin/timetracker-status: cron runs it every
# 5 min and after each nightly job. Caddy serves what it writes on an unguessable path, which a
# Route 53 check reads (docs/alerts.md): 200 while all is well, 503 naming what is not.
set -uo pipefail
export LC_ALL=C

root=${TIMETRACKER_STATUS_ROOT:-}
status_dir="$root"'/mnt/timetracker-data/volumes/timetracker-staging-caddy-config/host-status'
ok_file="$status_dir"/'ok.txt'
alarm_file="$status_dir"/'alarm.txt'
records="$root"'/mnt/timetracker-data/state/host-status'
last_copy="$records"/'last-copy'
last_nightly="$records"/'last-nightly'
since_file="$records"/'since'
disk_check="$root"'/usr/local/bin/timetracker-disk-check'
percent=80
max_age_hours=26
now=$(date -u +%s)

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
# Seconds since the epoch of a yyyymmddThhmmssZ time (the backup tool's names); fails on anything else.
seconds_of() {
  [[ $1 =~ ^([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z$ ]] || return 1
  date -u -d "${BASH_REMATCH[1]}-${BASH_REMATCH[2]}-${BASH_REMATCH[3]}T${BASH_REMATCH[4]}:${BASH_REMATCH[5]}:${BASH_REMATCH[6]}Z" +%s
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
one_line() { printf '%s' "$1" | tr '\r\n\t' '   ' | tr -s ' ' | cut -c 1-300; }

lines=()
alarms=()
# report <condition> ok|alarm <detail>: one line of the document.
report() {
  lines+=("$1: $2 ($(one_line "$3"))")
  if [ "$2" = alarm ] && [[ " ${alarms[*]} " != *" $1 "* ]]; then alarms+=("$1"); fi
}

check_disk() {
  local out code problem
  out=$("$disk_check" --check "$percent" 2>&1)
  code=$?
  case $code in
    0) report disk ok "/ and /mnt/timetracker-data under $percent% full, / has 5 GB free or more" ;;
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
    if ! taken=$(seconds_of "${name:0:16}"); then
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
    report backup ok "no copy in the bucket yet: the nightly job at 03:00 UTC makes one"
  fi
}

check_nightly() {
  local stamp result message ran
  if [ ! -e "$last_nightly" ]; then
    report nightly ok "none has run yet: the first is at 03:00 UTC"
    return
  fi
  read -r stamp result message < "$last_nightly" || true
  if ! ran=$(seconds_of "$stamp"); then
    report nightly alarm "$last_nightly cannot be read: $(head -c 200 "$last_nightly")"
  elif [ "$result" = ok ]; then
    report nightly ok "the last one, $(iso "$ran"), $message"
  else
    report nightly alarm "the last one, $(iso "$ran"), failed: $message; it clears when one succeeds (sudo /usr/local/bin/timetracker-backup nightly)"
  fi
}

check_disk
check_backup
check_nightly

if [ "${#alarms[@]}" -eq 0 ]; then
  first='status: ok' target=$ok_file other=$alarm_file
else
  first="status: alarm ${alarms[*]}" target=$alarm_file other=$ok_file
fi
checked="checked: $(iso "$now") (stack staging, every 5 min and after each nightly job)"
document=$(printf '%s\n' "$first" "${lines[@]}" "$checked")

# publish <file> <other file> <document>: the document into <file> (a temp file renamed into place), then <other> removed.
publish() {
  local tmp=
  if ! { mkdir -p "$status_dir" && tmp=$(mktemp "$status_dir/.status.XXXXXX") && printf '%s\n' "$3" > "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$1"; }; then
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
  for line in "${lines[@]}"; do
    if [[ $line == "$1: "* ]]; then own+=("$line"); fi
  done
  if [[ " ${alarms[*]} " == *" $1 "* ]]; then
    publish "$status_dir/$3" "$status_dir/$2" "$(printf '%s\n' "${own[@]}" "$checked")"
  else
    publish "$status_dir/$2" "$status_dir/$3" "$(printf '%s\n' "${own[@]}" "$checked")"
  fi
}

# The first line before this run: a change is logged.
before=$(head -n 1 "$alarm_file" 2>/dev/null || head -n 1 "$ok_file" 2>/dev/null || true)
publish_condition disk 'disk.ok.txt' 'disk.alarm.txt'
publish_condition backup 'backup.ok.txt' 'backup.alarm.txt'
publish_condition nightly 'nightly.ok.txt' 'nightly.alarm.txt'
publish "$target" "$other" "$document"
if [ "$before" != "$first" ]; then
  printf '%s\n' "$document" | logger -t timetracker-status -p "user.$([ "$target" = "$ok_file" ] && echo notice || echo warning)" 2>/dev/null || true
fi
printf '%s\n' "$document"
if [ "$target" = "$ok_file" ]; then exit 0; fi
exit 1
