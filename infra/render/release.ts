import { createHash } from "node:crypto";
import type { ContainerPlan, Plan } from "../model/plan.js";
import { BACKUP_TOOL } from "./backup.js";
import { renderCaddyfile } from "./caddyfile.js";
import { PRUNE_ASSETS_COMMAND, renderKeptAssets } from "./kept-assets.js";
import { lockFunctions, RELEASE_LOCK } from "./deploy-lock.js";
import { DAEMON_JSON } from "./launch-script.js";
import { renderNginxConf } from "./nginx-conf.js";
import { shellQuote as q, shellWord as word } from "./shell.js";

/** Where host setup installs the release tool; every deploy, rollback and pre-deploy dump runs it. */
export const RELEASE_TOOL = "/usr/local/bin/timetracker-release";

/** The services that go live through a checked candidate. */
export const RELEASED_SERVICES = ["backend", "frontend"] as const;
export type ReleasedService = (typeof RELEASED_SERVICES)[number];

/** Seconds a candidate that answers, but not 200, gets to become ready. */
const READY_GRACE_SECONDS = 30;
/** Seconds a stopping version gets to finish its requests. */
const STOP_GRACE_SECONDS = 30;

/** Where a run keeps the service's environment file (secrets included): root-only, in tmpfs, for one run. */
export const ENV_FILE_PREFIX = "/run/timetracker-env.";

/** The comment every firewall rule of the tool carries: `<tag>:<service>`; a run clears the stack's at its start. */
export const drainRuleTag = (plan: Plan) => `timetracker-release:${plan.stack}`;

/** Where the tool keeps what it must remember across deploys (on the data disk: it outlives the instance). */
export const releaseStateDir = (plan: Plan) => `${plan.host.stateDir}/releases`;

/** Files placed into the service's container before it starts, by path. */
function containerFiles(plan: Plan, c: ContainerPlan): { path: string; content: string }[] {
  const render = { "nginx.conf": renderNginxConf, Caddyfile: renderCaddyfile };
  return c.files.map((f) => ({ path: f.path, content: render[f.file](plan) }));
}

/** The Docker health check as one shell command (`--health-cmd` takes a shell string). */
function healthCommand(c: ContainerPlan): string {
  const [kind, ...rest] = c.healthCheck.test;
  return kind === "CMD-SHELL" ? rest.join(" ") : rest.map(word).join(" ");
}

/** `docker create` options for the service, every value from the Plan. */
function createOptions(plan: Plan, c: ContainerPlan): string[] {
  const check = c.healthCheck;
  return [
    `--network ${q(plan.network)}`,
    "--restart unless-stopped",
    `--health-cmd ${q(healthCommand(c))}`,
    `--health-interval ${check.intervalSeconds}s`,
    `--health-timeout ${check.timeoutSeconds}s`,
    `--health-retries ${check.retries}`,
    `--health-start-period ${check.startPeriodSeconds}s`,
    `--log-driver ${q(DAEMON_JSON["log-driver"])}`,
    ...Object.entries(DAEMON_JSON["log-opts"]).map(([k, v]) => `--log-opt ${q(`${k}=${v}`)}`),
    `--label ${q(`timetracker.stack=${plan.stack}`)}`,
    `--label ${q(`timetracker.service=${c.service}`)}`,
    ...c.volumes.map((v) => `--volume ${q(`${v.volume}:${v.path}${v.readOnly ? ":ro" : ""}`)}`),
  ];
}

/** What a release of the service depends on besides its image: a change means a new release. */
function spec(plan: Plan, c: ContainerPlan): string {
  const { image: _image, ...rest } = c;
  const inputs = {
    container: rest,
    network: plan.network,
    files: containerFiles(plan, c),
    healthHost: plan.caddy.healthHost,
    options: createOptions(plan, c),
  };
  return createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 12);
}

/** The short hash a deploy passes to the tool: equal only when the tool on the host is the one rendered for it. */
export const releaseSpec = (plan: Plan, service: ReleasedService) => spec(plan, plan.containers[service]);

/** The secret variables the service reads, in the order the tool expects them on stdin. */
const secretEnvNames = (c: ContainerPlan) => Object.entries(c.env).flatMap(([k, v]) => (typeof v === "string" ? [] : [k]));
const plainEnv = (c: ContainerPlan) => Object.entries(c.env).flatMap(([k, v]) => (typeof v === "string" ? [`${k}=${v}`] : []));

function serviceBlock(plan: Plan, c: ContainerPlan): string {
  const release = c.release;
  if (!release) throw new Error(`${c.service} has no release plan`);
  return `  ${c.service})
    name=${q(c.name)}
    candidate=${q(release.candidateName)}
    previous=${q(release.previousName)}
    slots=(${release.slots.join(" ")})
    internal=${c.listenPort}
    ready_path=${q(release.readyPath)}
    # shellcheck disable=SC2016 # the command is meant literally: it runs in the one-off container
    release_command=${q(release.command)}
    secret_keys=(${secretEnvNames(c).join(" ")})
    plain_env=(${plainEnv(c).map(q).join(" ")})
    spec=${spec(plan, c)}
    wait_seconds=${c.healthCheck.startPeriodSeconds + c.healthCheck.retries * (c.healthCheck.intervalSeconds + c.healthCheck.timeoutSeconds) + 30}
    create_options=(
      ${createOptions(plan, c).join("\n      ")}
    )
    ;;`;
}

function filesFunction(plan: Plan): string {
  const cases = Object.values(plan.containers)
    .filter((c) => c.release && c.files.length > 0)
    .map((c) => {
      const body = containerFiles(plan, c)
        .map(
          (f, i) => `    f=$(mktemp)
    cat > "$f" <<'FILE_${i}'
${f.content}FILE_${i}
    chmod 0644 "$f"
    docker cp "$f" "$2:${f.path}"
    rm -f "$f"`,
        )
        .join("\n");
      return `  ${c.service})\n${body}\n    ;;`;
    });
  return `# Places the service's rendered files into a created container: put_files <service> <container>.
put_files() {
  local f
  case "$1" in
${cases.join("\n")}
  *) ;;
  esac
}`;
}

/**
 * The host's release tool for one stack: takes a new version of the backend or the frontend
 * live without a gap, or refuses and leaves the live version untouched.
 *
 *   deploy <service> <image> <spec>  run the release command (backend), start the image as a
 *                                    candidate on the free slot, check it, swap, drain the old
 *   rollback <service>               the same, with the previous version's image
 *   dump <reason>                    the backup tool's dump (infra/render/backup.ts): onto the data
 *                                    disk, the newest few kept, and copied to the stack's bucket
 *   status                           what is live and what a rollback would bring back
 *   prune-assets [<hours>]           drops the kept frontend files of releases replaced at least
 *                                    <hours> ago (default app.frontend.keepAssetsHours; hourly)
 *
 * Secrets come on stdin as KEY=VALUE lines (deploy) or from the live container (rollback),
 * and reach Docker only through a root-only env file: never a command line or a log.
 */
export function renderReleaseTool(plan: Plan): string {
  const services = Object.values(plan.containers).filter((c) => c.release);
  const db = plan.containers.db;
  const drainSeconds = Math.max(2 * plan.caddy.healthIntervalSeconds, plan.frontendUpstream.dnsCacheSeconds) + 1;
  const allSlots = services.flatMap((c) => c.release!.slots);
  return `#!/bin/bash
# Generated from the stack's Plan by \`npm run render\`. Do not edit.
# Release tool for stack "${plan.stack}", installed by host setup as ${RELEASE_TOOL}.
# Usage: timetracker-release deploy <service> <image> <spec> | rollback <service> | dump <reason> | status | ${PRUNE_ASSETS_COMMAND} [<hours>]
set -euo pipefail

network=${q(plan.network)}
state_dir=${q(releaseStateDir(plan))}
backup_tool=${q(BACKUP_TOOL)}
db_container=${q(db.name)}
db_name=${q(plan.database.name)}
health_host=${q(plan.caddy.healthHost)}
# Caddy sees a slot come or go within one health interval; nginx re-resolves the backend's name within its DNS cache time.
caddy_interval=${plan.caddy.healthIntervalSeconds}
drain_seconds=${drainSeconds}
stop_grace=${STOP_GRACE_SECONDS}
ready_grace=${READY_GRACE_SECONDS}
rule_tag=${q(drainRuleTag(plan))}
lock_file=${q(RELEASE_LOCK)}
lock_dir=${q(plan.host.lockDir)}

say() { printf '%s\\n' "$*"; }
refuse() {
  printf 'refused: %s\\n' "$1" >&2
  shift
  for line in "$@"; do printf '%s\\n' "$line" >&2; done
  exit 1
}

${lockFunctions(plan)}
service_spec() {
  case "$1" in
${services.map((c) => serviceBlock(plan, c)).join("\n")}
  *) refuse "unknown service '$1': expected one of ${services.map((c) => c.service).join(", ")}" ;;
  esac
}

${filesFunction(plan)}

${renderKeptAssets(plan)}

running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = "true" ]; }
exists() { docker inspect "$1" >/dev/null 2>&1; }
host_port() { docker inspect -f "{{with index .HostConfig.PortBindings \\"$internal/tcp\\"}}{{(index . 0).HostPort}}{{end}}" "$1" 2>/dev/null || true; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Host: $health_host" "http://127.0.0.1:$1$ready_path" || true)" = "200" ]; }

# The live version's environment, for a rollback: only the variables the service is given.
live_env() {
  local key line
  for key in "\${secret_keys[@]}"; do
    line=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$name" | grep -m1 "^$key=" || true)
    [ -n "$line" ] || refuse "the live $name has no $key: roll back by deploying instead"
    printf '%s\\n' "$line"
  done
}

# Secrets from stdin, checked against the variables the service reads.
stdin_env() {
  local line key expected
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    key=\${line%%=*}
    expected=no
    for k in "\${secret_keys[@]}"; do [ "$k" = "$key" ] && expected=yes; done
    [ "$expected" = yes ] || refuse "stdin names $key, which $name does not read"
    printf '%s\\n' "$line"
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
  file=\${file##*$'\\n'}
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
  if [ "\${#drain_rule[@]}" -gt 0 ]; then
    iptables -w -D OUTPUT "\${drain_rule[@]}" 2>/dev/null || true
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
    iptables -w -I OUTPUT "\${drain_rule[@]}"
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
      *"--comment \\\"$rule_tag:"* | *"--comment $rule_tag:"*) ;;
      *) continue ;;
    esac
    # "-A OUTPUT <rule>", the comment in quotes (it holds no quote or space itself).
    read -ra words <<< "\${line//\\\"/}"
    iptables -w -D OUTPUT "\${words[@]:2}" || true
  done < <(iptables -w -S OUTPUT 2>/dev/null || true)
  for slot in ${allSlots.join(" ")}; do
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
  rm -f ${ENV_FILE_PREFIX}*
  clear_rules
  for s in ${services.map((c) => c.service).join(" ")}; do recover_service "$s"; done
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
  mapfile -t lines < <(printf '%s\\n' "$output" | tail -n 40)
  if [ "$status" -ne 0 ]; then
    refuse "the release command '$release_command' failed (exit $status) in a one-off container from $image; $name keeps serving the live version." "Its last lines:" "\${lines[@]}"
  fi
  printf '%s\\n' "\${lines[@]}"
  printf '%s\\n' "$image" > "$done_file"
  printf '%s release-command %s %s\\n' "$(date -u +%FT%TZ)" "$service" "$image" >> "$state_dir/history"
}

# Starts the image as the candidate on the free slot and waits until it is ready, or refuses.
# Ready: its readiness path answers 200 twice in a row while Docker's health check has not
# failed. Once it answers at all it has ready_grace seconds to answer 200.
start_candidate() {
  local image=$1 env_file=$2 slot=$3 deadline health code passes=0 answering=""
  docker rm -f "$candidate" >/dev/null 2>&1 || true
  docker create --name "$candidate" --env-file "$env_file" --env "TIMETRACKER_IMAGE=$image" \\
    --publish "127.0.0.1:$slot:$internal" --label "timetracker.spec=$spec" --label "timetracker.image=$image" --label "timetracker.env=$(env_hash)" \\
    "\${create_options[@]}" "$image" >/dev/null
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
      refuse "the candidate $candidate from $image failed its check: $what. It was removed; $name was not touched." "Its last log lines:" "\${logs[@]}"
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
  printf '%s\\n' "$image" > "$state_dir/$service.live"
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
  slot=\${slots[0]}
  [ "$old_port" = "\${slots[0]}" ] && slot=\${slots[1]}
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
  env_file=$(mktemp ${ENV_FILE_PREFIX}XXXXXX)
  printf '%s\n' "\${plain_env[@]}" > "$env_file"
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
  if running "$name" && [ "$(docker inspect -f '{{index .Config.Labels "timetracker.image"}} {{index .Config.Labels "timetracker.spec"}} {{index .Config.Labels "timetracker.env"}}' "$name")" = "$image $spec $(env_hash)" ] \\
    && [ "$(docker inspect -f '{{.State.Health.Status}}' "$name")" != unhealthy ]; then
    say "$service: $image is already live as $name"
    return 0
  fi
  release_command "$image" "$env_file"
  release "$image" "$env_file"
  rm -f "$state_dir/$service.rolled-back"
  printf '%s deploy %s %s\\n' "$(date -u +%FT%TZ)" "$service" "$image" >> "$state_dir/history"
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
  printf '%s\\n' "$current" > "$state_dir/$service.rolled-back"
  printf '%s rollback %s %s\\n' "$(date -u +%FT%TZ)" "$service" "$image" >> "$state_dir/history"
}

status() {
  local s
  for s in ${services.map((c) => c.service).join(" ")}; do
    service=$s
    service_spec "$s"
    printf '%s live:     %s\\n' "$s" "$(docker inspect -f '{{.Config.Image}} on {{range $p, $b := .HostConfig.PortBindings}}{{(index $b 0).HostPort}}{{end}}, {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$name" 2>/dev/null || echo none)"
    printf '%s previous: %s\\n' "$s" "$(docker inspect -f '{{.Config.Image}}' "$previous" 2>/dev/null || echo none)"
  done
}

install -d -m 0700 "$state_dir"
command=\${1:-}
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
  ${PRUNE_ASSETS_COMMAND})
    [ "$#" -le 2 ] || refuse "usage: timetracker-release ${PRUNE_ASSETS_COMMAND} [<hours>]"
    prune_assets "\${2:-$keep_assets_hours}"
    ;;
  *) refuse "usage: timetracker-release deploy <service> <image> <spec> | rollback <service> | dump <reason> | status | ${PRUNE_ASSETS_COMMAND} [<hours>]" ;;
esac
`;
}
