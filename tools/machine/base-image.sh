#!/usr/bin/env bash
# Build the machine stand-in base image: Debian bookworm with systemd as PID 1, cloud-init
# (NoCloud), sshd and its own dockerd, configured like a Lightsail Ubuntu 22.04 blueprint
# (default user "ubuntu", keys from the metadata, passwordless sudo). Nothing is pulled from
# an image registry: the root comes from debootstrap, packages from deb.debian.org.
#
#   base-image.sh [--rebuild]
#
# Prints the image tag (tt-machine/base:<key>) on stdout; progress goes to stderr.
# <key> is a hash of this file (it holds the package list and every config file) and of the
# two settings below, so the image is rebuilt exactly when the recipe changes. The debootstrap
# root is cached in /var/cache/tt-machine/ (TT_MACHINE_CACHE) and reused across recipe changes.
#
# First boot as on stock Ubuntu: apt's sources are the rehearsal's package mirror
# (tools/rehearsal/package-mirror.ts) on the outer host, i.e. the machine's default gateway,
# port TT_PACKAGE_MIRROR_PORT (default 4580); and a stand-in for unattended-upgrades holds the
# dpkg lock for the first TT_FIRST_BOOT_LOCK_SECONDS (default 90) of the first boot.
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
PACKAGE_MIRROR_PORT=${TT_PACKAGE_MIRROR_PORT:-4580}
FIRST_BOOT_LOCK_SECONDS=${TT_FIRST_BOOT_LOCK_SECONDS:-90}
case "$PACKAGE_MIRROR_PORT$FIRST_BOOT_LOCK_SECONDS" in
  *[!0-9]*) echo "base-image.sh: TT_PACKAGE_MIRROR_PORT and TT_FIRST_BOOT_LOCK_SECONDS must be numbers" >&2; exit 2 ;;
esac

# What a Lightsail Ubuntu 22.04 image already has, as far as our launch script and deploy
# steps can tell, and nothing more: docker.io, cron and rclone are not here, the launch script
# installs them with apt from the rehearsal's package mirror, as it does on a real instance.
# Installed with Recommends (as Ubuntu does).
PACKAGES=(
  systemd systemd-sysv dbus libpam-systemd cloud-init openssh-server sudo
  apparmor iptables perl needrestart curl ca-certificates iproute2 util-linux e2fsprogs
  procps python3 lsb-release gnupg less netbase ifupdown kmod locales
)

export DOCKER_BUILDKIT=0 # classic builder: FROM resolves the local tag, never pulls
export PATH="$PATH:/usr/sbin:/sbin"

RECIPE=$(sha256sum "$SELF" | cut -c1-12)
KEY=$({ cat "$SELF"; echo "mirror-port=$PACKAGE_MIRROR_PORT lock-seconds=$FIRST_BOOT_LOCK_SECONDS"; } | sha256sum | cut -c1-12)
TAG=tt-machine/base:$KEY
REBUILD=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    -h | --help) sed -n '2,17p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# apt's sources: the rehearsal's package mirror, a flat repository served over HTTP on the
# outer host. The machine reaches the outer host at its default gateway, whatever network it
# is on, so the address is read from the routing table at each boot, before cloud-init.
cat >"$CTX/files/tt-machine-apt-sources" <<SH
#!/bin/sh
set -eu
gateway=\$(ip -4 route show default | awk '{ print \$3; exit }')
[ -n "\$gateway" ] || { echo "tt-machine-apt-sources: no default route" >&2; exit 1; }
printf 'deb [trusted=yes] http://%s:%s/ ./\n' "\$gateway" $PACKAGE_MIRROR_PORT >/etc/apt/sources.list
echo "tt-machine-apt-sources: apt uses the package mirror at http://\$gateway:$PACKAGE_MIRROR_PORT/"
SH

cat >"$CTX/files/tt-machine-apt-sources.service" <<'UNIT'
[Unit]
Description=apt sources: the rehearsal's package mirror on the outer host (default gateway)
Before=cloud-final.service tt-first-boot-upgrades.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/tt-machine-apt-sources

[Install]
WantedBy=multi-user.target
UNIT

# Stock Ubuntu runs unattended-upgrades at first boot: apt-daily's update holds apt's lists
# lock for a few seconds, then the upgrade holds the dpkg locks for a minute or more, and a
# launch script's apt-get fails unless it waits. This holds the same locks the same way (fcntl
# record locks, F_SETLKW, which is what apt and dpkg take: lockf() in Python), for
# /etc/tt-machine/first-boot-lock-seconds, once per machine. The service counts as started
# (so cloud-final, ordered after it, runs the launch script) only once the locks are held.
cat >"$CTX/files/tt-first-boot-upgrades" <<'PY'
#!/usr/bin/python3
"""Stand-in for Ubuntu's first-boot unattended-upgrades: hold apt's and dpkg's locks a while."""
import fcntl, os, socket, time

SECONDS = int(open("/etc/tt-machine/first-boot-lock-seconds").read().strip())
LISTS_SECONDS = min(10, SECONDS)  # apt-daily's `apt-get update`
DONE = "/var/lib/tt-machine/first-boot-upgrades.done"


def lock(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)  # fcntl(F_SETLKW, F_WRLCK), as apt and dpkg lock
    return fd


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


start = time.monotonic()
lists = lock("/var/lib/apt/lists/lock")
# apt's order: the frontend lock, then dpkg's own
held = [lock("/var/lib/dpkg/lock-frontend"), lock("/var/lib/dpkg/lock")]
notify("READY=1\nSTATUS=holding the dpkg lock for %d s" % SECONDS)
print("holding /var/lib/apt/lists/lock for %d s and the dpkg locks for %d s" % (LISTS_SECONDS, SECONDS), flush=True)
time.sleep(LISTS_SECONDS)
os.close(lists)
time.sleep(max(0, SECONDS - (time.monotonic() - start)))
os.makedirs(os.path.dirname(DONE), exist_ok=True)
open(DONE, "w").close()
print("released the dpkg locks after %.0f s" % (time.monotonic() - start), flush=True)
PY

cat >"$CTX/files/tt-first-boot-upgrades.service" <<'UNIT'
[Unit]
Description=Stand-in for Ubuntu's first-boot unattended-upgrades (holds the dpkg lock)
After=local-fs.target
Before=cloud-final.service
ConditionPathExists=!/var/lib/tt-machine/first-boot-upgrades.done

[Service]
Type=notify
NotifyAccess=main
TimeoutStartSec=120
ExecStart=/usr/local/sbin/tt-first-boot-upgrades

[Install]
WantedBy=multi-user.target
UNIT

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
 && install -m 0755 tt-machine-apt-sources tt-first-boot-upgrades /usr/local/sbin/ \\
 && install -m 0644 tt-machine-apt-sources.service tt-first-boot-upgrades.service /etc/systemd/system/ \\
 && install -d -m 0755 /etc/tt-machine && echo $FIRST_BOOT_LOCK_SECONDS >/etc/tt-machine/first-boot-lock-seconds \\
 && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null \\
 && while read -r unit; do systemctl mask "\$unit" >/dev/null 2>&1 || true; done <mask-units \\
 && systemctl set-default multi-user.target \\
 && systemctl enable ssh cloud-init-local cloud-init cloud-config cloud-final tt-machine-apt-sources tt-first-boot-upgrades \\
 && : >/etc/apt/sources.list && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \\
 && rm -f /etc/ssh/ssh_host_* /etc/machine-id /var/lib/dbus/machine-id && : >/etc/machine-id \\
 && rm -rf /tmp/tt-files /var/lib/cloud/* /var/log/cloud-init*
STOPSIGNAL SIGRTMIN+3
LABEL tt.machine.base-key=$KEY tt.machine.recipe=$RECIPE
CMD ["/usr/local/sbin/tt-machine-init"]
DOCKERFILE

blog=$LOG_DIR/build.log
log "building $TAG, log: $blog"
no_cache=()
[ "$REBUILD" = 0 ] || no_cache=(--no-cache)
docker build "${no_cache[@]}" --network host -t "$TAG" "$CTX" >"$blog" 2>&1 || fail_with_log "docker build" "$blog"
# drop images of older recipes (fails harmlessly while a machine still runs one); images of
# this recipe with other settings (mirror port, lock seconds) may serve another run right now
docker image ls --format '{{.Repository}}:{{.Tag}}' tt-machine/base | { grep -vxF "$TAG" || true; } |
  while read -r old; do
    [ "$(docker image inspect --format '{{ index .Config.Labels "tt.machine.recipe" }}' "$old" 2>/dev/null)" = "$RECIPE" ] ||
      docker image rm "$old" >/dev/null 2>&1 || true
  done
log "built $TAG in $(($(date +%s) - start))s"
echo "$TAG"
