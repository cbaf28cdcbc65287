#!/usr/bin/env bash
# Build the TimeTracker stand-in images locally, pulling nothing from any image registry.
#
#   build.sh [--rebuild] [NAME...]
#
# NAME is one of: debian debian-trixie postgres postgres17 redis caddy nginx python
# sample-backend sample-frontend (default: all, in that order). An image is built only when its tag is missing, or when
# its build key changed (label tt.standin.context-sha: hash of the build context and of the
# parent image, so a rebuilt base also rebuilds the images FROM it). --rebuild forces a
# rebuild of the selected images without docker's layer cache. The debootstrap roots of the
# base images (bookworm; trixie for postgres 17, which Debian 13 ships) are kept in
# /var/cache/tt-standin/ and reused; delete one to redo its debootstrap.
# Prints one line per image: "<status> <tag> <seconds>s".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP_IMAGES=$(cd "$HERE/.." && pwd)

MIRROR=${TT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${TT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE_DIR=${TT_STANDIN_CACHE:-/var/cache/tt-standin}
LOG_DIR=${TT_STANDIN_LOGS:-/tmp/tt-standin-build}
# bump when the base recipe below changes, so cached base images are rebuilt
BASE_RECIPE=3
# network used by RUN steps (apt-get); host avoids depending on the bridge's NAT
BUILD_NETWORK=${TT_BUILD_NETWORK:-host}

# the classic builder: no buildx/BuildKit needed, and FROM resolves local tags without pulling
export DOCKER_BUILDKIT=0
export PATH="$PATH:/usr/sbin:/sbin"

ALL=(debian debian-trixie postgres postgres17 redis caddy nginx python sample-backend sample-frontend)
# The base images, each a debootstrap root of a Debian suite.
declare -A SUITE=(
  [debian]=bookworm
  [debian-trixie]=trixie
)
declare -A TAG=(
  [debian]=tt-standin/debian:bookworm
  [debian-trixie]=tt-standin/debian:trixie
  [postgres]=tt-standin/postgres:15
  [postgres17]=tt-standin/postgres:17
  [redis]=tt-standin/redis:7
  [caddy]=tt-standin/caddy:2
  [nginx]=tt-standin/nginx:1
  [python]=tt-standin/python:3.11
  [sample-backend]=tt-sample/backend:dev
  [sample-frontend]=tt-sample/frontend:dev
)
declare -A CONTEXT=(
  [postgres]=$HERE/postgres
  [postgres17]=$HERE/postgres
  [redis]=$HERE/redis
  [caddy]=$HERE/caddy
  [nginx]=$HERE/nginx
  [python]=$HERE/python
  [sample-backend]=$APP_IMAGES/sample/backend
  [sample-frontend]=$APP_IMAGES/sample/frontend
)
# Build arguments of an image whose context serves more than one (its Dockerfile's defaults otherwise).
declare -A BUILD_ARGS=(
  [postgres17]="DEBIAN_SUITE=trixie PG_MAJOR=17"
)

REBUILD=0
SELECTED=()
for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    *)
      [ -n "${TAG[$arg]:-}" ] || { echo "build.sh: unknown image $arg (one of: ${ALL[*]})" >&2; exit 2; }
      SELECTED+=("$arg") ;;
  esac
done
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${ALL[@]}")

bash "$HERE/engine.sh"
mkdir -p "$LOG_DIR"

say() { printf '%-8s %-30s %4ss\n' "$1" "$2" "$3"; }

image_label() { # tag label -> value ('' when the image or label is missing)
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

context_sha() { # dir -> sha256 of every file's path and content
  (cd "$1" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum) | sha256sum | cut -c1-16
}

build_args() { # name -> --build-arg options, one a line
  local arg
  for arg in ${BUILD_ARGS[$1]:-}; do printf -- '--build-arg\n%s\n' "$arg"; done
}

build_key() { # name -> hash of the build context, its build arguments and the image its
  # Dockerfile starts FROM (ARGs resolved), so that rebuilding a base image also rebuilds the images on top of it
  local dir=${CONTEXT[$1]} parent parent_id
  parent=$(awk -v args="${BUILD_ARGS[$1]:-}" '
    BEGIN { n = split(args, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); given[p[1]] = p[2] } }
    toupper($1) == "ARG" { split($2, p, "="); value[p[1]] = (p[1] in given) ? given[p[1]] : p[2] }
    toupper($1) == "FROM" { from = $2; for (k in value) gsub("\\$\\{" k "\\}", value[k], from); print from; exit }' "$dir/Dockerfile")
  parent_id=$(docker image inspect --format '{{.Id}}' "$parent" 2>/dev/null || echo missing)
  printf '%s %s %s\n' "$(context_sha "$dir")" "${BUILD_ARGS[$1]:-}" "$parent_id" | sha256sum | cut -c1-16
}

fail_with_log() { # name log
  echo "build.sh: building $1 failed; last lines of $2:" >&2
  tail -n 40 "$2" >&2 || true
  exit 1
}

# ---------------------------------------------------------------- base image
umount_below() { # never rm -rf a tree that still has /proc or /sys of the host mounted in it
  local dir=$1 m
  awk '{print $2}' /proc/mounts | { grep -E "^${dir}(/|$)" || true; } | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

make_rootfs() { # suite
  local suite=$1 rootfs=$CACHE_DIR/$1-minbase
  local tmp=$rootfs.partial log=$LOG_DIR/debootstrap-$1.log
  if [ "$(id -u)" != 0 ]; then echo "build.sh: debootstrap needs root" >&2; exit 1; fi
  mkdir -p "$CACHE_DIR"
  umount_below "$tmp"
  rm -rf --one-file-system "$tmp"
  echo "debootstrap $suite (minbase) into $tmp, log: $log" >&2
  if ! debootstrap --variant=minbase "$suite" "$tmp" "$MIRROR" >"$log" 2>&1; then
    umount_below "$tmp"
    fail_with_log debootstrap "$log"
  fi
  umount_below "$tmp"

  # apt: the suite + updates + security; keep derived images small, like the official debian image
  cat >"$tmp/etc/apt/sources.list" <<SRC
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb $SECURITY_MIRROR $suite-security main
SRC
  cat >"$tmp/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
  echo 'Acquire::Languages "none";' >"$tmp/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$tmp/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$tmp/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # no docs/man pages in derived images (copyright files are kept)
  cat >"$tmp/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
CONF
  # package maintainer scripts must not try to start services inside a build
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 755 "$tmp/usr/sbin/policy-rc.d"
  # docker supplies these at run time
  rm -f "$tmp/etc/resolv.conf" "$tmp/etc/hostname"
  : >"$tmp/etc/hostname"
  rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/cache/apt/*.bin \
    "$tmp"/var/log/apt/* "$tmp"/var/log/dpkg.log "$tmp"/var/log/bootstrap.log "$tmp"/tmp/*
  mv "$tmp" "$rootfs"
  touch "$CACHE_DIR/$suite-minbase.done"
}

build_debian() { # name
  local tag=${TAG[$1]} suite=${SUITE[$1]}
  local rootfs=$CACHE_DIR/$suite-minbase
  if [ ! -f "$CACHE_DIR/$suite-minbase.done" ] || [ ! -d "$rootfs" ]; then
    umount_below "$rootfs"
    rm -rf --one-file-system "$rootfs"
    make_rootfs "$suite"
  fi
  tar --numeric-owner -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    docker import \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'CMD ["bash"]' \
      -c "LABEL tt.standin.context-sha=base-$BASE_RECIPE" \
      -c "LABEL org.opencontainers.image.description=\"Debian $suite minbase (debootstrap), local stand-in for debian:$suite\"" \
      -m "debootstrap --variant=minbase $suite" - "$tag" >"$LOG_DIR/$1.log" 2>&1 ||
    fail_with_log "$1" "$LOG_DIR/$1.log"
}

build_context() { # name
  local name=$1 tag=${TAG[$1]} ctx=${CONTEXT[$1]} sha=$2
  local no_cache=()
  [ "$REBUILD" = 0 ] || no_cache=(--no-cache)
  local args=()
  mapfile -t args < <(build_args "$name")
  docker build "${no_cache[@]}" "${args[@]}" --network "$BUILD_NETWORK" --label "tt.standin.context-sha=$sha" -t "$tag" "$ctx" \
    >"$LOG_DIR/$name.log" 2>&1 || fail_with_log "$name" "$LOG_DIR/$name.log"
}

for name in "${SELECTED[@]}"; do
  tag=${TAG[$name]}
  if [ -n "${SUITE[$name]:-}" ]; then want=base-$BASE_RECIPE; else want=$(build_key "$name"); fi
  have=$(image_label "$tag" tt.standin.context-sha)
  start=$(date +%s)
  if [ "$REBUILD" = 0 ] && [ -n "$have" ] && [ "$have" = "$want" ]; then
    say cached "$tag" 0
    continue
  fi
  status=built
  [ -z "$have" ] || status=rebuilt
  old_id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  if [ -n "${SUITE[$name]:-}" ]; then build_debian "$name"; else build_context "$name" "$want"; fi
  new_id=$(docker image inspect --format '{{.Id}}' "$tag")
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    # drop the replaced image if nothing else uses it (fails harmlessly otherwise)
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
  say "$status" "$tag" $(($(date +%s) - start))
done
