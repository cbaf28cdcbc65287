#!/usr/bin/env bash
# Make sure a Docker engine plus the tools build.sh needs are available.
#   engine.sh         install missing packages (Debian + root only), start dockerd if needed
#   engine.sh stop    stop the dockerd this script started (pid in /tmp/tt-dockerd.pid)
#   engine.sh fresh   start a second engine that has never run: a new empty data root, its own
#                     exec root, pidfile, socket and default bridge link (tt-fresh0, not docker0),
#                     so nothing of an earlier engine's state is reused; prints the line to eval:
#                     export DOCKER_HOST=... TT_MACHINES_NETWORK=...
#                     CI runs the rehearsals on it, as on a machine whose engine starts for the
#                     first time. Stops (and wipes) the previous fresh engine first.
#   engine.sh stop-fresh   stop the fresh engine and remove its data root
# Idempotent: a second run does nothing but check.
# Env: TT_DOCKERD_WAIT (seconds to wait for the engine, default 60), TT_DOCKERD_ARGS (extra dockerd flags),
#      TT_FRESH_ENGINE_DIR (where the fresh engine keeps everything, default /var/tmp/tt-fresh-engine),
#      TT_FRESH_BRIDGE_CIDR (its default bridge's address, default 10.213.211.1/24).
set -euo pipefail

PIDFILE=/tmp/tt-dockerd.pid
LOGFILE=/tmp/tt-dockerd.log
WAIT_SECS=${TT_DOCKERD_WAIT:-60}

log() { printf 'engine: %s\n' "$*" >&2; }

is_debian_root() { [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ]; }

stop_engine() {
  if [ ! -s "$PIDFILE" ]; then
    log "no $PIDFILE: no dockerd started by engine.sh, nothing to stop"
    return 0
  fi
  local pid
  pid=$(cat "$PIDFILE")
  if ! kill -0 "$pid" 2>/dev/null; then
    log "dockerd pid $pid is not running"
    rm -f "$PIDFILE"
    return 0
  fi
  log "stopping dockerd pid $pid"
  kill -TERM "$pid"
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }
    sleep 1
  done
  log "dockerd pid $pid did not exit after 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

# command -> Debian package providing it
declare -A PKG_OF=(
  [docker]=docker.io
  [dockerd]=docker.io
  [debootstrap]=debootstrap
  [tar]=tar
  [iptables]=iptables
)

missing_pkgs() {
  local cmd pkgs=()
  for cmd in docker dockerd debootstrap tar iptables; do
    if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ] && ! [ -x "/sbin/$cmd" ]; then
      pkgs+=("${PKG_OF[$cmd]}")
    fi
  done
  # debootstrap needs the archive keyring to verify the bookworm Release file
  [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || pkgs+=(debian-archive-keyring)
  [ ${#pkgs[@]} -eq 0 ] || printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' '
}

ensure_cgroups() { # dockerd needs cgroupfs (v1 hierarchies or the v2 unified one) mounted
  if grep -qE '^[^ ]+ /sys/fs/cgroup(/[^ ]+)? cgroup2? ' /proc/mounts; then return 0; fi
  log "no cgroup filesystem mounted under /sys/fs/cgroup; mounting one"
  if command -v cgroupfs-mount >/dev/null 2>&1; then
    cgroupfs-mount || true
  elif grep -qw cgroup2 /proc/filesystems; then
    mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || true
  fi
  grep -qE '^[^ ]+ /sys/fs/cgroup(/[^ ]+)? cgroup2? ' /proc/mounts ||
    log "warning: still no cgroup filesystem; dockerd will probably fail (see $LOGFILE)"
}

start_engine() {
  export PATH="$PATH:/usr/sbin:/sbin"
  local pkgs
  pkgs=$(missing_pkgs)
  if [ -n "$pkgs" ]; then
    if ! is_debian_root; then
      log "missing: $pkgs"
      log "this script can only install them on Debian as root. Needed:"
      log "  - a Docker engine (>= 20.10) reachable by 'docker info' (Debian package docker.io)"
      log "  - debootstrap and debian-archive-keyring (to build tt-standin/debian:bookworm)"
      log "  - network access to http://deb.debian.org/debian (bookworm, bookworm-updates, bookworm-security)"
      log "on Debian as root: apt-get update && apt-get install -y --no-install-recommends $pkgs"
      exit 1
    fi
    log "installing: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    # keep maintainer scripts from starting services (dockerd is started below, the same way
    # on every machine); only when the machine has no policy of its own
    local own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
      own_policy=1
    fi
    local rc=0
    apt-get update -qq || rc=$?
    # shellcheck disable=SC2086
    [ "$rc" != 0 ] || apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || rc=$?
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    if [ "$rc" != 0 ]; then log "apt-get failed (exit $rc)"; exit 1; fi
  fi

  if docker info >/dev/null 2>&1; then
    log "docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    log "'docker info' fails and only root can start dockerd here; start a Docker engine (or add this user to group docker) and retry"
    exit 1
  fi
  ensure_cgroups
  if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "dockerd pid $(cat "$PIDFILE") already started by engine.sh, waiting for it"
  else
    # containerd is started by dockerd itself when not running as a service
    log "starting dockerd (log: $LOGFILE)"
    # TT_DOCKERD_ARGS: extra dockerd flags (e.g. a second engine on its own socket and data root)
    # shellcheck disable=SC2086
    nohup dockerd ${TT_DOCKERD_ARGS:-} >>"$LOGFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  local i
  for i in $(seq 1 "$WAIT_SECS"); do
    if docker info >/dev/null 2>&1; then
      log "docker engine is up after ${i}s (pid $(cat "$PIDFILE"))"
      return 0
    fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      log "dockerd exited; last lines of $LOGFILE:"
      tail -n 30 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      exit 1
    fi
    sleep 1
  done
  log "dockerd did not answer 'docker info' within ${WAIT_SECS}s; last lines of $LOGFILE:"
  tail -n 30 "$LOGFILE" >&2 || true
  exit 1
}

FRESH_DIR=${TT_FRESH_ENGINE_DIR:-/var/tmp/tt-fresh-engine}
FRESH_BRIDGE=tt-fresh0
FRESH_BRIDGE_CIDR=${TT_FRESH_BRIDGE_CIDR:-10.213.211.1/24}

stop_fresh() {
  if [ -s "$FRESH_DIR/dockerd.pid" ]; then
    local pid
    pid=$(cat "$FRESH_DIR/dockerd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      # Its containers and networks first: dockerd deletes a network's bridge link only when
      # the network is removed, and a link left behind would keep routing the machines' subnet.
      local fresh_host="unix://$FRESH_DIR/docker.sock" ids
      ids=$(DOCKER_HOST=$fresh_host docker ps -aq 2>/dev/null || true)
      # shellcheck disable=SC2086 # one id per word
      [ -z "$ids" ] || DOCKER_HOST=$fresh_host docker rm -f -v $ids >/dev/null 2>&1 || true
      DOCKER_HOST=$fresh_host docker network prune -f >/dev/null 2>&1 || true
      log "stopping the fresh dockerd pid $pid"
      kill -TERM "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Its containers' mounts live under the data and exec roots: unmount before removing.
  if [ -d "$FRESH_DIR" ]; then
    { grep -o " $FRESH_DIR/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$FRESH_DIR"
  fi
  # Whatever bridge a killed engine left: its default one and its machines' (names start tt-fresh).
  local link
  for link in $(ip -o link show type bridge | awk -F': ' '{print $2}' | grep '^tt-fresh' || true); do
    ip link delete "$link" || true
  done
}

# A second dockerd beside any other (the machine's own may be running): nothing it uses is
# shared with another engine's. Its default bridge is a link of its own, made here: dockerd
# --bridge=none would delete docker0, pulling it from under the machine's own engine, and
# docker0 with --bip would be shared with it. The rehearsal uses no default bridge anyway:
# machines get a user-defined network with its own subnet and gateway (tools/machine/machine.ts).
start_fresh() {
  export PATH="$PATH:/usr/sbin:/sbin"
  [ "$(id -u)" = 0 ] || { log "only root can start a dockerd"; exit 1; }
  ensure_cgroups
  stop_fresh
  mkdir -p "$FRESH_DIR/data" "$FRESH_DIR/exec"
  ip link add "$FRESH_BRIDGE" type bridge
  ip addr add "$FRESH_BRIDGE_CIDR" dev "$FRESH_BRIDGE"
  ip link set "$FRESH_BRIDGE" up
  local host="unix://$FRESH_DIR/docker.sock"
  log "starting a fresh dockerd: data root $FRESH_DIR/data (empty), socket $FRESH_DIR/docker.sock (log: $FRESH_DIR/dockerd.log)"
  # shellcheck disable=SC2086
  nohup dockerd --data-root "$FRESH_DIR/data" --exec-root "$FRESH_DIR/exec" --pidfile "$FRESH_DIR/dockerd.pid" \
    -H "$host" --bridge="$FRESH_BRIDGE" ${TT_DOCKERD_ARGS:-} >>"$FRESH_DIR/dockerd.log" 2>&1 </dev/null &
  local pid=$! i
  for i in $(seq 1 "$WAIT_SECS"); do
    if DOCKER_HOST=$host docker info >/dev/null 2>&1; then
      log "fresh docker engine is up after ${i}s (pid $pid)"
      # The machines' network on this engine gets its own name (its bridge link's), and a
      # subnet no link of this host routes yet (tools/machine/machine.ts picks it), so it never
      # meets a network another engine, running or stopped, made.
      echo "export DOCKER_HOST=$host TT_MACHINES_NETWORK=tt-fresh-machines"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "the fresh dockerd exited; last lines of $FRESH_DIR/dockerd.log:"
      tail -n 30 "$FRESH_DIR/dockerd.log" >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "the fresh dockerd did not answer within ${WAIT_SECS}s; last lines of $FRESH_DIR/dockerd.log:"
  tail -n 30 "$FRESH_DIR/dockerd.log" >&2 || true
  exit 1
}

case "${1:-start}" in
  start) start_engine ;;
  stop) stop_engine ;;
  fresh) start_fresh ;;
  stop-fresh) stop_fresh ;;
  *) echo "usage: $0 [start|stop|fresh|stop-fresh]" >&2; exit 2 ;;
esac
