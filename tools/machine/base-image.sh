#!/usr/bin/env bash
# Build the machine stand-in base image: Debian bookworm with systemd as PID 1, cloud-init
# (NoCloud), sshd and its own dockerd, configured like a Lightsail Ubuntu 22.04 blueprint
# (default user "ubuntu", keys from the metadata, passwordless sudo). Nothing is pulled from
# an image registry: the root comes from debootstrap, packages from deb.debian.org.
#
#   base-image.sh [--rebuild]
#
# Prints the image tag (tt-machine/base:<key>) on stdout; progress goes to stderr.
# <key> is a hash of this file (it holds the package list and every config file), so the
# image is rebuilt exactly when the recipe changes. The debootstrap root is cached in
# /var/cache/tt-machine/ (TT_MACHINE_CACHE) and reused across recipe changes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
MIRROR=${TT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${TT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE_DIR=${TT_MACHINE_CACHE:-/var/cache/tt-machine}
LOG_DIR=${TT_MACHINE_LOGS:-/tmp/tt-machine-build}
# bump when make_rootfs changes: the cached debootstrap root is keyed by it, not by $KEY,
# so editing the packages or config below does not redo debootstrap
ROOTFS_RECIPE=1
ROOTFS=$CACHE_DIR/bookworm-minbase-$ROOTFS_RECIPE
ROOT_TAG=tt-machine/rootfs:bookworm-$ROOTFS_RECIPE

# What a Lightsail Ubuntu 22.04 image already has, as far as our launch script and deploy
# steps can tell, plus what they install: the machines reach no package mirror once they run,
# so the launch script's `apt-get install docker.io cron` and host setup's `apt-get install
# rclone` (the backup tool's copy to the bucket) must find nothing left to do. Installed with
# Recommends (as Ubuntu does).
PACKAGES=(
  systemd systemd-sysv dbus libpam-systemd cloud-init openssh-server sudo docker.io cron rclone
  apparmor iptables perl needrestart curl ca-certificates iproute2 util-linux e2fsprogs
  procps python3 lsb-release gnupg less netbase ifupdown kmod locales
)

export DOCKER_BUILDKIT=0 # classic builder: FROM resolves the local tag, never pulls
export PATH="$PATH:/usr/sbin:/sbin"

KEY=$(sha256sum "$SELF" | cut -c1-12)
TAG=tt-machine/base:$KEY
REBUILD=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    -h | --help) sed -n '2,12p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "base-image.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { printf 'base-image: %s\n' "$*" >&2; }
fail_with_log() { # what log
  log "$1 failed; last lines of $2:"
  tail -n 40 "$2" >&2 || true
  exit 1
}

if [ "$REBUILD" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then log "debootstrap and docker need root"; exit 1; fi
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
mkdir -p "$CACHE_DIR" "$LOG_DIR"
# one builder at a time (parallel runs would debootstrap into the same directory); the
# runs that waited find the image built
exec 9>"$CACHE_DIR/.lock"
flock 9
if [ "$REBUILD" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi

umount_below() { # never rm -rf a tree that still has the host's /proc or /sys mounted in it
  local dir=$1 m
  awk '{print $2}' /proc/mounts | { grep -E "^${dir}(/|$)" || true; } | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

make_rootfs() {
  local tmp=$ROOTFS.partial dlog=$LOG_DIR/debootstrap.log
  umount_below "$tmp"
  rm -rf --one-file-system "$tmp"
  log "debootstrap bookworm (minbase) into $tmp, log: $dlog"
  debootstrap --variant=minbase bookworm "$tmp" "$MIRROR" >"$dlog" 2>&1 || {
    umount_below "$tmp"
    fail_with_log debootstrap "$dlog"
  }
  umount_below "$tmp"
  cat >"$tmp/etc/apt/sources.list" <<SRC
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
SRC
  echo 'Acquire::Languages "none";' >"$tmp/etc/apt/apt.conf.d/99no-languages"
  rm -f "$tmp/etc/resolv.conf" "$tmp/etc/hostname"
  rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/archives/*.deb "$tmp"/tmp/*
  mv "$tmp" "$ROOTFS"
  touch "$ROOTFS.done"
}

start=$(date +%s)
if ! docker image inspect "$ROOT_TAG" >/dev/null 2>&1; then
  if [ ! -f "$ROOTFS.done" ] || [ ! -d "$ROOTFS" ]; then
    umount_below "$ROOTFS"
    rm -rf --one-file-system "$ROOTFS"
    make_rootfs
  fi
  log "importing $ROOTFS as $ROOT_TAG"
  tar --numeric-owner -C "$ROOTFS" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -m "debootstrap --variant=minbase bookworm" - "$ROOT_TAG" >/dev/null
fi

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/files"

# ---------------------------------------------------------------- config files
# cloud-init: only NoCloud (seed dir written by machine.ts), no network config (docker
# configures eth0), the Ubuntu default user instead of Debian's "debian".
cat >"$CTX/files/90-tt-machine.cfg" <<'CFG'
datasource_list: [ NoCloud, None ]
network:
  config: disabled
# docker owns /etc/hostname and /etc/hosts (bind mounts)
preserve_hostname: true
manage_etc_hosts: false
ssh_pwauth: false
disable_root: true
ssh_deletekeys: true
ssh_genkeytypes: [ rsa, ecdsa, ed25519 ]
system_info:
  default_user:
    name: ubuntu
    lock_passwd: true
    gecos: Ubuntu
    groups: [ adm, sudo ]
    sudo: [ "ALL=(ALL) NOPASSWD:ALL" ]
    shell: /bin/bash
# the root is an overlay filesystem, not a partition: nothing to grow
growpart:
  mode: "off"
resize_rootfs: false
CFG

# ds-identify would otherwise search for a datasource and may disable cloud-init
cat >"$CTX/files/ds-identify.cfg" <<'CFG'
policy: enabled
CFG

cat >"$CTX/files/sshd-tt-machine.conf" <<'CFG'
# as on a Lightsail blueprint: keys only
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
CFG

# Units that cannot work, or must not run, in a container sharing the host's kernel:
# consoles, udev (devices are the host's), kernel module and sysctl tweaks, apparmor
# profiles (would load into the host kernel), waiting for networkd that does not run.
cat >"$CTX/files/mask-units" <<'LIST'
getty@tty1.service
serial-getty@.service
getty-static.service
console-getty.service
systemd-udevd.service
systemd-udevd-control.socket
systemd-udevd-kernel.socket
systemd-udev-trigger.service
systemd-udev-settle.service
systemd-networkd-wait-online.service
systemd-modules-load.service
systemd-sysctl.service
systemd-remount-fs.service
systemd-firstboot.service
sys-kernel-debug.mount
sys-kernel-tracing.mount
sys-kernel-config.mount
sys-fs-fuse-connections.mount
dev-hugepages.mount
apparmor.service
e2scrub_reap.service
e2scrub_all.timer
apt-daily.timer
apt-daily-upgrade.timer
LIST

# PID 1 of the container: make what docker mounts look like a VM's root to systemd, then
# become systemd. Needed because the container is not --privileged (see machine.ts: some
# hosts lack CAP_SYS_RESOURCE, which --privileged insists on), so docker mounts /sys and the
# cgroup v1 hierarchies read-only; our cgroup namespace is private, so writing is confined
# to this machine's own subtree.
cat >"$CTX/files/tt-machine-init" <<'INIT'
#!/bin/bash
mount -o remount,rw /sys 2>/dev/null || true
for m in /sys/fs/cgroup/*; do
  if mountpoint -q "$m"; then mount -o remount,bind,rw "$m" 2>/dev/null || true; fi
done
# Without CAP_SYS_RESOURCE no unit can raise a limit above ours; docker.service and
# containerd.service ask for more and would fail at exec ("Failed at step LIMITS").
bnd=$(awk '/^CapBnd/ { print $2 }' /proc/self/status)
if [ $(( (16#$bnd >> 24) & 1 )) = 0 ]; then
  for unit in docker containerd; do
    mkdir -p "/run/systemd/system/$unit.service.d"
    printf '[Service]\nLimitNOFILE=%s\nLimitNPROC=%s\n' "$(ulimit -Hn)" "$(ulimit -Hu)" \
      >"/run/systemd/system/$unit.service.d/tt-machine-limits.conf"
  done
fi
exec /sbin/init "$@"
INIT

cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $ROOT_TAG
ENV container=docker DEBIAN_FRONTEND=noninteractive
# no service may start during the build; removed at the end
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \\
 && apt-get update -qq \\
 && apt-get install -y -qq ${PACKAGES[*]} >/dev/null \\
 && rm -f /usr/sbin/policy-rc.d
COPY files/ /tmp/tt-files/
RUN set -e; cd /tmp/tt-files \\
 && install -m 0644 90-tt-machine.cfg /etc/cloud/cloud.cfg.d/90-tt-machine.cfg \\
 && install -m 0644 ds-identify.cfg /etc/cloud/ds-identify.cfg \\
 && install -m 0644 sshd-tt-machine.conf /etc/ssh/sshd_config.d/tt-machine.conf \\
 && install -m 0755 tt-machine-init /usr/local/sbin/tt-machine-init \\
 && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null \\
 && while read -r unit; do systemctl mask "\$unit" >/dev/null 2>&1 || true; done <mask-units \\
 && systemctl set-default multi-user.target \\
 && systemctl enable ssh docker containerd cron cloud-init-local cloud-init cloud-config cloud-final \\
 && rm -f /etc/ssh/ssh_host_* /etc/machine-id /var/lib/dbus/machine-id && : >/etc/machine-id \\
 && rm -rf /tmp/tt-files /var/lib/cloud/* /var/log/cloud-init*
STOPSIGNAL SIGRTMIN+3
LABEL tt.machine.base-key=$KEY
CMD ["/usr/local/sbin/tt-machine-init"]
DOCKERFILE

blog=$LOG_DIR/build.log
log "building $TAG, log: $blog"
no_cache=()
[ "$REBUILD" = 0 ] || no_cache=(--no-cache)
docker build "${no_cache[@]}" --network host -t "$TAG" "$CTX" >"$blog" 2>&1 || fail_with_log "docker build" "$blog"
# drop images of older recipes (fails harmlessly while a machine still runs one)
docker image ls --format '{{.Repository}}:{{.Tag}}' tt-machine/base | { grep -vxF "$TAG" || true; } |
  while read -r old; do docker image rm "$old" >/dev/null 2>&1 || true; done
log "built $TAG in $(($(date +%s) - start))s"
echo "$TAG"
