#!/bin/bash
# Generated from the stack's Plan by `npm run render`. Do not edit.
# Release tool for stack "staging", installed by host setup as /usr/local/bin/timetracker-release.
# Usage: timetracker-release deploy <service> <image> <spec> | rollback <service> | dump <reason> | status | prune-assets [<hours>]
set -euo pipefail

network='timetracker-staging-net'
state_dir='/mnt/timetracker-data/state/releases'
backup_tool='/usr/local/bin/timetracker-backup'
db_container='timetracker-staging-db'
db_name='timetracker_v2_dev'
health_host='localhost'
# Caddy sees a slot come or go within one health interval; nginx re-resolves the backend's name within its DNS cache time.
caddy_interval=2
drain_seconds=6
stop_grace=30
ready_grace=30
rule_tag='timetracker-release:staging'
lock_file='/run/lock/timetracker-release.lock'
lock_dir='/mnt/timetracker-data/state/deploy-lock'

say() { printf '%s\n' "$*"; }
refuse() {
  printf 'refused: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '%s\n' "$line" >&2; done
  exit 1
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

service_spec() {
  case "$1" in
  backend)
    name='timetracker-staging-backend'
    candidate='timetracker-staging-backend-candidate'
    previous='timetracker-staging-backend-previous'
    slots=(8081 18081)
    internal=8080
    ready_path='/api/health'
    # shellcheck disable=SC2016 # the command is meant literally: it runs in the one-off container
    release_command='alembic upgrade head'
    secret_keys=(DB_PASSWORD REDIS_PASSWORD SECRET_KEY)
    plain_env=('ENVIRONMENT=staging' 'DEBUG=false' 'DB_HOST=timetracker-staging-db' 'DB_PORT=5432' 'DB_NAME=timetracker_v2_dev' 'DB_USER=timetracker' 'REDIS_HOST=timetracker-staging-redis' 'REDIS_PORT=6379' 'ALLOWED_HOSTS=["timetracker-staging.shaemarcus.com","localhost","127.0.0.1","timetracker-staging-backend"]' 'CORS_ORIGINS=["https://timetracker-staging.shaemarcus.com"]')
    spec=9c2a997be176
    wait_seconds=145
    create_options=(
      --network 'timetracker-staging-net'
      --restart unless-stopped
      --health-cmd 'curl -fsS -o /dev/null -H '\''Host: localhost'\'' http://127.0.0.1:8080/health'
      --health-interval 10s
      --health-timeout 5s
      --health-retries 5
      --health-start-period 40s
      --log-driver 'json-file'
      --log-opt 'max-size=10m'
      --log-opt 'max-file=3'
      --label 'timetracker.stack=staging'
      --label 'timetracker.service=backend'
    )
    ;;
  frontend)
    name='timetracker-staging-frontend'
    candidate='timetracker-staging-frontend-candidate'
    previous='timetracker-staging-frontend-previous'
    slots=(3001 13001)
    internal=80
    ready_path='/healthz'
    # shellcheck disable=SC2016 # the command is meant literally: it runs in the one-off container
    release_command=''
    secret_keys=()
    plain_env=()
    spec=b4311868ad62
    wait_seconds=115
    create_options=(
      --network 'timetracker-staging-net'
      --restart unless-stopped
      --health-cmd 'wget -q -O /dev/null http://127.0.0.1:80/healthz || exit 1'
      --health-interval 10s
      --health-timeout 5s
      --health-retries 5
      --health-start-period 10s
      --log-driver 'json-file'
      --log-opt 'max-size=10m'
      --log-opt 'max-file=3'
      --label 'timetracker.stack=staging'
      --label 'timetracker.service=frontend'
      --volume '/mnt/timetracker-data/frontend-assets/assets:/usr/share/nginx/kept/assets:ro'
    )
    ;;
  *) refuse "unknown service '$1': expected one of backend, frontend" ;;
  esac
}

# Places the service's rendered files into a created container: put_files <service> <container>.
put_files() {
  local f
  case "$1" in
  frontend)
    f=$(mktemp)
    cat > "$f" <<'FILE_0'
# Generated from the stack's Plan by `npm run render`. Do not edit.
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    server_tokens off;
    client_body_temp_path /tmp/nginx-client-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;

    map $http_upgrade $connection_upgrade {
        default upgrade;
        '' close;
    }

    # Docker's embedded DNS on user-defined networks; a swapped-in backend is found within the cache time.
    resolver 127.0.0.11 valid=5s ipv6=off;

    server {
        listen 80;
        root /usr/share/nginx/html;
        index index.html;

        location = /healthz {
            access_log off;
            default_type text/plain;
            return 200 "ok\n";
        }

        location /api/ {
            set $backend http://timetracker-staging-backend:8080;
            proxy_pass $backend;
            proxy_http_version 1.1;
            proxy_set_header Host timetracker-staging-backend;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
        }

        location /assets/ {
            try_files $uri @kept_assets;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }

        # A page loaded before the last frontend deploy names the files of its own release:
        # the release tool keeps them on the data disk (app.frontend.keepAssetsHours).
        location @kept_assets {
            root /usr/share/nginx/kept;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }

        # The page names the current hashed files: a browser asks for it again every time.
        location = /index.html {
            add_header Cache-Control "no-cache";
        }

        location / {
            try_files $uri $uri/ /index.html;
        }
    }
}
FILE_0
    chmod 0644 "$f"
    docker cp "$f" "$2:/etc/nginx/nginx.conf"
    rm -f "$f"
    ;;
  *) ;;
  esac
}

# The frontend's hashed files, kept across releases for a page loaded before a swap
# (infra/render/kept-assets.ts).
assets_service='frontend'
assets_image_dir='/usr/share/nginx/html/assets'
assets_dir='/mnt/timetracker-data/frontend-assets'
assets_files='/mnt/timetracker-data/frontend-assets/assets'
assets_releases='/mnt/timetracker-data/frontend-assets/releases'
keep_assets_hours=24

assets_record() { printf '%s/%s' "$assets_releases" "$(printf '%s' "$1" | sha256sum | cut -c1-16)"; }

keep_assets() {
  local container=$1 image=$2 incoming record out
  [ "$service" = "$assets_service" ] || return 0
  install -d -m 0755 "$assets_dir" "$assets_files"
  install -d -m 0700 "$assets_releases"
  incoming=$(mktemp -d "$assets_dir/incoming.XXXXXX")
  if ! out=$(docker cp -L "$container:$assets_image_dir/." "$incoming" 2>&1); then
    rm -rf "$incoming"
    say "$service: nothing kept of $image: no $assets_image_dir in it ($out)"
    return 0
  fi
  # nginx's workers read them, whoever owned them in the image.
  chmod -R u=rwX,go=rX "$incoming"
  record=$(assets_record "$image")
  {
    printf 'image %s\n' "$image"
    (cd "$incoming" && find . -type f -printf 'file %P\n' | LC_ALL=C sort)
  } > "$record.new"
  cp -R "$incoming/." "$assets_files/"
  rm -rf "$incoming"
  # The record only once its files are in place: a prune never keeps a name without its file.
  mv -f "$record.new" "$record"
  say "$service: kept the $(grep -c '^file ' "$record" || true) hashed files of $image in $assets_files, served $keep_assets_hours h after a newer release"
}

keep_live_assets() {
  local image
  [ "$service" = "$assets_service" ] || return 0
  exists "$name" || return 0
  image=$(docker inspect -f '{{.Config.Image}}' "$name")
  [ -f "$(assets_record "$image")" ] || keep_assets "$name" "$image"
}

assets_went_live() {
  local live record now
  live=$(assets_record "$1")
  now=$(date +%s)
  for record in "$assets_releases"/*; do
    case "$record" in *.new | *'/*') continue ;; esac
    if [ "$record" = "$live" ]; then
      grep -v '^superseded ' "$record" > "$record.new" || true
    elif grep -q '^superseded ' "$record"; then
      continue
    else
      { cat "$record"; printf 'superseded %s\n' "$now"; } > "$record.new"
    fi
    mv -f "$record.new" "$record"
  done
}

prune_assets() {
  local hours=$1 now record line superseded file relative dropped=0 removed=0
  local -A named=()
  case "$hours" in
    '' | *[!0-9]*) refuse "usage: timetracker-release prune-assets [<hours>]: '$hours' is not a whole number of hours" ;;
  esac
  [ -d "$assets_releases" ] || { say "frontend assets: none kept"; return 0; }
  # What a killed run left half-done: a copy not yet recorded, a record not yet in place.
  rm -rf "$assets_dir"/incoming.* "$assets_releases"/*.new
  now=$(date +%s)
  for record in "$assets_releases"/*; do
    [ -f "$record" ] || continue
    superseded=$(sed -n 's/^superseded //p' "$record")
    if [ -n "$superseded" ] && [ $((now - superseded)) -ge $((hours * 3600)) ]; then
      say "frontend assets: $(sed -n 's/^image //p' "$record") was replaced $(((now - superseded) / 3600)) h ago: its files go"
      rm -f "$record"
      dropped=$((dropped + 1))
      continue
    fi
    while IFS= read -r line; do
      if [ "${line%% *}" = file ]; then named["${line#file }"]=1; fi
    done < "$record"
  done
  while IFS= read -r -d '' file; do
    relative=${file#"$assets_files"/}
    if [ -z "${named[$relative]:-}" ]; then
      rm -f "$file"
      removed=$((removed + 1))
    fi
  done < <(find "$assets_files" -type f -print0 2>/dev/null)
  find "$assets_files" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  say "frontend assets: $dropped releases and $removed files pruned (replaced at least $hours h ago); ${#named[@]} files kept"
}

running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = "true" ]; }
exists() { docker inspect "$1" >/dev/null 2>&1; }
host_port() { docker inspect -f "{{with index .HostConfig.PortBindings \"$internal/tcp\"}}{{(index . 0).HostPort}}{{end}}" "$1" 2>/dev/null || true; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Host: $health_host" "http://127.0.0.1:$1$ready_path" || true)" = "200" ]; }

# The live version's environment, for a rollback: only the variables the service is given.
live_env() {
  local key line
  for key in "${secret_keys[@]}"; do
    line=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$name" | grep -m1 "^$key=" || true)
    [ -n "$line" ] || refuse "the live $name has no $key: roll back by deploying instead"
    printf '%s\n' "$line"
  done
}

# Secrets from stdin, checked against the variables the service reads.
stdin_env() {
  local line key expected
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    key=${line%%=*}
    expected=no
    for k in "${secret_keys[@]}"; do [ "$k" = "$key" ] && expected=yes; done
    [ "$expected" = yes ] || refuse "stdin names $key, which $name does not read"
    printf '%s\n' "$line"
  done
}

# Every dump goes through the backup tool, which also copies it off the host (a failed copy
# only warns there: this deploy needs the local dump). It does not take the lock this tool holds.
dump() {
  local reason=$1 file
  if ! running "$db_container"; then
    say "no running database ($db_container): nothing to dump"
    return 0
  fi
  file=$("$backup_tool" dump "$reason") || refuse "the $reason dump of $db_name failed ($backup_tool dump $reason): nothing was changed"
  file=${file##*$'\n'}
  say "dumped $db_name to $file ($(du -h "$file" | cut -f1))"
}

# Draining a version: new connections to its slot are refused by a firewall rule (Caddy marks
# the slot down at the refused dial and retries the request on the other slot at once) while its
# requests in flight finish. Not Caddy's admin API (127.0.0.1:2019), which could move a route's
# upstream instead: any change through it reloads Caddy's whole config, which closes every
# WebSocket of every route (caddyserver/caddy#3143); the Caddyfile's routes carry no @id, so
# the tool would have to find each site's handlers in the adapted JSON; and the change lives
# only in Caddy's memory (a Caddy restart brings back the Caddyfile), a second state a killed
# run would leave half-done. The
# rule touches only new connections to one loopback port, and carries a comment naming the
# stack's tool, so a run clears every one a killed run left (clear_rules) before anything else.
drain_rule=()
unblock() {
  if [ "${#drain_rule[@]}" -gt 0 ]; then
    iptables -w -D OUTPUT "${drain_rule[@]}" 2>/dev/null || true
  fi
  drain_rule=()
}

# Stops a version that is still serving (a container holding a slot), letting its requests in
# flight finish: new connections to its slot are refused for drain_seconds, then it stops.
retire() {
  local container=$1 port
  port=$(host_port "$container")
  # Never the live version's slot: only a container beside it is retired.
  if [ -n "$port" ] && { [ "$container" = "$name" ] || [ "$port" != "$(host_port "$name")" ]; }; then
    drain_rule=(-o lo -p tcp --dport "$port" --syn -m comment --comment "$rule_tag:$service" -j REJECT --reject-with tcp-reset)
    iptables -w -I OUTPUT "${drain_rule[@]}"
  fi
  sleep "$drain_seconds"
  docker stop -t "$stop_grace" "$container" >/dev/null
  unblock
}

# Removes every rule of this stack's tool that a killed run left behind (the lock is held: no
# run is using one), and the uncommented drain rule that tools before the comment added.
clear_rules() {
  local line words slot
  while IFS= read -r line; do
    case "$line" in
      *"--comment \"$rule_tag:"* | *"--comment $rule_tag:"*) ;;
      *) continue ;;
    esac
    # "-A OUTPUT <rule>", the comment in quotes (it holds no quote or space itself).
    read -ra words <<< "${line//\"/}"
    iptables -w -D OUTPUT "${words[@]:2}" || true
  done < <(iptables -w -S OUTPUT 2>/dev/null || true)
  for slot in 8081 18081 3001 13001; do
    while iptables -w -D OUTPUT -o lo -p tcp --dport "$slot" --syn -j REJECT --reject-with tcp-reset 2>/dev/null; do :; done
  done
}

# Brings the service back to a state a release starts from, whatever step a killed run stopped
# at: a container under the live name, serving; no candidate; no old version still running.
# Idempotent: on a settled service it does nothing.
recover_service() {
  service=$1
  service_spec "$service"
  if ! exists "$name"; then
    # Killed between the two renames (or before a first release finished).
    if running "$previous"; then
      say "$service: a killed run left no $name: $previous takes the name back"
      docker rename "$previous" "$name"
    elif running "$candidate" && ready "$(host_port "$candidate")"; then
      say "$service: a killed run left no $name: its checked candidate takes the name"
      docker rename "$candidate" "$name"
    elif exists "$previous"; then
      say "$service: a killed run left no $name: $previous takes the name back and starts"
      docker rename "$previous" "$name"
      docker start "$name" >/dev/null
    fi
  fi
  if exists "$candidate"; then
    say "$service: removing the candidate a killed run left"
    if running "$candidate"; then retire "$candidate"; fi
    docker rm -f "$candidate" >/dev/null
  fi
  if exists "$name" && running "$previous"; then
    say "$service: a killed run was draining $previous: finishing the drain"
    retire "$previous"
  fi
}

# Before anything else: the secrets, rules and half-done swaps of a killed run (SIGKILL runs no
# trap; the lock it held went with it).
recover() {
  local s
  rm -f /run/timetracker-env.*
  clear_rules
  for s in backend frontend; do recover_service "$s"; done
}

# Runs the release command in a one-off container from the image, once per image.
release_command() {
  local image=$1 env_file=$2 done_file="$state_dir/$service.release-command" output status=0
  [ -n "$release_command" ] || return 0
  if [ "$(cat "$done_file" 2>/dev/null || true)" = "$image" ]; then
    say "release command already ran for $image"
    return 0
  fi
  say "release command: $release_command"
  if running "$name-release"; then
    say "waiting for the release command a killed run started"
    docker wait "$name-release" >/dev/null 2>&1 || true
  fi
  docker rm -f "$name-release" >/dev/null 2>&1 || true
  output=$(docker run --rm --name "$name-release" --network "$network" --env-file "$env_file" --label "timetracker.service=$service-release" "$image" sh -c "$release_command" 2>&1) || status=$?
  mapfile -t lines < <(printf '%s\n' "$output" | tail -n 40)
  if [ "$status" -ne 0 ]; then
    refuse "the release command '$release_command' failed (exit $status) in a one-off container from $image; $name keeps serving the live version." "Its last lines:" "${lines[@]}"
  fi
  printf '%s\n' "${lines[@]}"
  printf '%s\n' "$image" > "$done_file"
  printf '%s release-command %s %s\n' "$(date -u +%FT%TZ)" "$service" "$image" >> "$state_dir/history"
}

# Starts the image as the candidate on the free slot and waits until it is ready, or refuses.
# Ready: its readiness path answers 200 twice in a row while Docker's health check has not
# failed. Once it answers at all it has ready_grace seconds to answer 200.
start_candidate() {
  local image=$1 env_file=$2 slot=$3 deadline health code passes=0 answering=""
  docker rm -f "$candidate" >/dev/null 2>&1 || true
  docker create --name "$candidate" --env-file "$env_file" --env "TIMETRACKER_IMAGE=$image" \
    --publish "127.0.0.1:$slot:$internal" --label "timetracker.spec=$spec" --label "timetracker.image=$image" --label "timetracker.env=$(env_hash)" \
    "${create_options[@]}" "$image" >/dev/null
  put_files "$service" "$candidate"
  # Before it can take traffic: every version then serves its files, the one draining too.
  keep_assets "$candidate" "$image"
  docker start "$candidate" >/dev/null
  say "candidate $candidate started from $image on 127.0.0.1:$slot"
  deadline=$((SECONDS + wait_seconds))
  while :; do
    sleep 1
    health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$candidate")
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Host: $health_host" "http://127.0.0.1:$slot$ready_path" || true)
    if [ "$code" = 200 ] && [ "$health" != unhealthy ]; then
      passes=$((passes + 1))
      if [ "$passes" -ge 2 ]; then
        say "candidate ready: GET $ready_path with Host $health_host answered 200 (Docker health: $health)"
        return 0
      fi
      continue
    fi
    passes=0
    if [ -z "$answering" ] && [ "$code" != 000 ]; then answering=$SECONDS; fi
    local what=""
    if ! running "$candidate"; then
      what="it stopped ($(docker inspect -f '{{.State.Status}}, exit code {{.State.ExitCode}}' "$candidate"))"
    elif [ "$health" = unhealthy ]; then
      what="its Docker health check $(docker inspect -f '{{json .Config.Healthcheck.Test}}' "$candidate") failed"
    elif [ -n "$answering" ] && [ $((SECONDS - answering)) -ge "$ready_grace" ]; then
      what="GET $ready_path with Host $health_host answered $code for $ready_grace s: $(curl -s -m 5 -H "Host: $health_host" "http://127.0.0.1:$slot$ready_path" | head -c 300 || true)"
    elif [ "$SECONDS" -ge "$deadline" ]; then
      what="GET $ready_path did not answer within $wait_seconds s"
    fi
    if [ -n "$what" ]; then
      mapfile -t logs < <(docker logs --tail 20 "$candidate" 2>&1 || true)
      docker rm -f "$candidate" >/dev/null 2>&1 || true
      refuse "the candidate $candidate from $image failed its check: $what. It was removed; $name was not touched." "Its last log lines:" "${logs[@]}"
    fi
  done
}

# The candidate takes the live name; the old version drains and is kept, stopped, for a rollback.
# A kill between the two renames leaves no container under the live name: the next run's
# recover gives it back; a failure there, the exit trap (restore_live).
swap() {
  local image=$1
  docker rm -f "$previous" >/dev/null 2>&1 || true
  renaming=yes
  if exists "$name"; then docker rename "$name" "$previous"; fi
  docker rename "$candidate" "$name"
  renaming=no
  # Caddy's next check finds the new slot ready before the old one stops answering.
  sleep $((caddy_interval + 1))
  if running "$previous"; then retire "$previous"; fi
  printf '%s\n' "$image" > "$state_dir/$service.live"
  say "$service: $image is live as $name"
  # The replaced release's files stay served for keep_assets_hours; older ones go now.
  if [ "$service" = "$assets_service" ]; then
    assets_went_live "$image"
    prune_assets "$keep_assets_hours"
  fi
}

release() {
  local image=$1 env_file=$2 old_port="" slot
  if exists "$name"; then old_port=$(host_port "$name"); fi
  slot=${slots[0]}
  [ "$old_port" = "${slots[0]}" ] && slot=${slots[1]}
  keep_live_assets
  start_candidate "$image" "$env_file" "$slot"
  swap "$image"
}

# The env file (secrets included) lives in /run, root-only, for the length of one run. Its hash
# labels the container, so a new secret (a rotation) releases a new one.
env_file=""
renaming=no
# A run that fails between the two renames gives the live name back to the previous version.
restore_live() {
  if [ "$renaming" = yes ] && ! exists "$name" && exists "$previous"; then
    docker rename "$previous" "$name" || true
  fi
}
trap 'rm -f "$env_file"; unblock; restore_live; lock_forget' EXIT
new_env_file() {
  env_file=$(mktemp /run/timetracker-env.XXXXXX)
  printf '%s
' "${plain_env[@]}" > "$env_file"
}
env_hash() { sha256sum "$env_file" | cut -c1-16; }

deploy() {
  local image=$1 wanted=$2
  [ "$wanted" = "$spec" ] || refuse "the release tool on this host was rendered for another definition of $service (spec $spec, the deploy sent $wanted): run the deploy again so host setup installs the new one"
  if [ "$(cat "$state_dir/$service.rolled-back" 2>/dev/null || true)" = "$image" ]; then
    refuse "$image was rolled back on this host (npm run rollback): deploy a fixed version, or run the rollback again to put it back first"
  fi
  new_env_file
  stdin_env >> "$env_file"
  if running "$name" && [ "$(docker inspect -f '{{index .Config.Labels "timetracker.image"}} {{index .Config.Labels "timetracker.spec"}} {{index .Config.Labels "timetracker.env"}}' "$name")" = "$image $spec $(env_hash)" ] \
    && [ "$(docker inspect -f '{{.State.Health.Status}}' "$name")" != unhealthy ]; then
    say "$service: $image is already live as $name"
    return 0
  fi
  release_command "$image" "$env_file"
  release "$image" "$env_file"
  rm -f "$state_dir/$service.rolled-back"
  printf '%s deploy %s %s\n' "$(date -u +%FT%TZ)" "$service" "$image" >> "$state_dir/history"
}

rollback() {
  local image current
  exists "$previous" || refuse "there is no previous version of $service on this host to roll back to"
  running "$name" || refuse "$name is not running: deploy instead of rolling back"
  image=$(docker inspect -f '{{.Config.Image}}' "$previous")
  current=$(docker inspect -f '{{.Config.Image}}' "$name")
  new_env_file
  live_env >> "$env_file"
  say "rolling $service back from $current to $image (the release command does not run: the schema stays as it is)"
  if [ "$service" = backend ]; then dump rollback; fi
  release "$image" "$env_file"
  printf '%s\n' "$current" > "$state_dir/$service.rolled-back"
  printf '%s rollback %s %s\n' "$(date -u +%FT%TZ)" "$service" "$image" >> "$state_dir/history"
}

status() {
  local s
  for s in backend frontend; do
    service=$s
    service_spec "$s"
    printf '%s live:     %s\n' "$s" "$(docker inspect -f '{{.Config.Image}} on {{range $p, $b := .HostConfig.PortBindings}}{{(index $b 0).HostPort}}{{end}}, {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$name" 2>/dev/null || echo none)"
    printf '%s previous: %s\n' "$s" "$(docker inspect -f '{{.Config.Image}}' "$previous" 2>/dev/null || echo none)"
  done
}

install -d -m 0700 "$state_dir"
command=${1:-}
case "$command" in
  deploy | rollback | dump)
    # Waits for another run, or a hold (named in the refusal), then records this run.
    lock_take "$*" honour
    recover
    ;;
  *)
    # status reads; prune-assets deletes only files no live release serves: both wait for a
    # running release, and a hold (someone restoring by hand) does not stop them.
    exec 9> "$lock_file"
    flock -w "$lock_wait" 9 || refuse "another release is running on this host"
    ;;
esac
case "$command" in
  deploy)
    [ "$#" -eq 4 ] || refuse "usage: timetracker-release deploy <service> <image> <spec>"
    service=$2
    service_spec "$service"
    deploy "$3" "$4"
    ;;
  rollback)
    [ "$#" -eq 2 ] || refuse "usage: timetracker-release rollback <service>"
    service=$2
    service_spec "$service"
    rollback
    ;;
  dump)
    [ "$#" -eq 2 ] || refuse "usage: timetracker-release dump <reason>"
    dump "$2"
    ;;
  status) status ;;
  prune-assets)
    [ "$#" -le 2 ] || refuse "usage: timetracker-release prune-assets [<hours>]"
    prune_assets "${2:-$keep_assets_hours}"
    ;;
  *) refuse "usage: timetracker-release deploy <service> <image> <spec> | rollback <service> | dump <reason> | status | prune-assets [<hours>]" ;;
esac
