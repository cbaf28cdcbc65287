#!/bin/bash
# Generated from the stack's Plan by `npm run render`. Do not edit.
# Host setup for stack "staging": run by every deploy (as root) whose content changed, and on every new instance.
set -euo pipefail

# Writes stdin to $1 with mode $2 when it differs; succeeds only if the file changed.
put() {
  local tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 1
  fi
  install -m "$2" "$tmp" "$1"
  rm -f "$tmp"
}

# The data disk (timetracker-staging-data): Lightsail attaches it as /dev/xvdf, Nitro instances show it as /dev/nvme1n1.
device=""
for _ in $(seq 1 90); do
  for candidate in /dev/xvdf /dev/nvme1n1; do
    if [ -b "$candidate" ]; then
      device=$candidate
      break 2
    fi
  done
  sleep 2
done
if [ -z "$device" ]; then
  echo "the data disk timetracker-staging-data is not attached: neither /dev/xvdf nor /dev/nvme1n1 exists" >&2
  exit 1
fi
# blkid exits 2 only when it finds no filesystem at all: anything else is never formatted.
probe=0
blkid -p "$device" >/dev/null 2>&1 || probe=$?
if [ "$probe" -eq 2 ]; then
  mkfs.ext4 -q -L timetracker-data "$device"
elif [ "$probe" -ne 0 ]; then
  echo "blkid could not read $device (exit $probe): not formatting it" >&2
  exit 1
fi
uuid=$(blkid -s UUID -o value "$device")
if ! grep -q "^UUID=$uuid /mnt/timetracker-data " /etc/fstab; then
  sed -i '\| /mnt/timetracker-data |d' /etc/fstab
  echo "UUID=$uuid /mnt/timetracker-data ext4 defaults,nofail 0 2" >> /etc/fstab
fi
install -d -m 0755 /mnt/timetracker-data
mountpoint -q /mnt/timetracker-data || mount /mnt/timetracker-data

# Docker starts only once the disk is mounted: its volumes live there.
install -d -m 0755 /etc/systemd/system/docker.service.d
if put /etc/systemd/system/docker.service.d/timetracker-data.conf 0644 <<'UNIT'
[Unit]
RequiresMountsFor=/mnt/timetracker-data
UNIT
then
  systemctl daemon-reload
fi
install -d -m 0755 /mnt/timetracker-data/volumes/timetracker-staging-db-data
install -d -m 0755 /mnt/timetracker-data/volumes/timetracker-staging-redis-data
install -d -m 0755 /mnt/timetracker-data/volumes/timetracker-staging-caddy-data
install -d -m 0755 /mnt/timetracker-data/volumes/timetracker-staging-caddy-config
install -d -m 0700 /mnt/timetracker-data/dumps
# Deploy steps run as ubuntu and keep their state on the disk, so it survives the instance.
install -d -m 0755 -o ubuntu -g ubuntu /mnt/timetracker-data/state

# Docker rotates container logs.
install -d -m 0755 /etc/docker
if put /etc/docker/daemon.json 0644 <<'JSON'
{
  "log-driver": "json-file",
  "log-opts": {
    "max-size": "10m",
    "max-file": "3"
  }
}
JSON
then
  systemctl restart docker
fi
usermod -aG docker ubuntu

# Deploys leave old images and build cache behind: prune what is a week unused.
put /etc/cron.daily/timetracker-docker-prune 0755 <<'SH' || true
#!/bin/sh
docker image prune --all --force --filter until=168h
docker builder prune --all --force --filter until=168h
SH

put /usr/local/bin/timetracker-disk-check 0755 <<'SH' || true
#!/bin/sh
need_gb="${1:-5}"
free_kb=$(df --output=avail -k / | tail -n 1)
if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  echo "only $((free_kb / 1024 / 1024)) GB free on /, the deploy needs $need_gb GB: run 'docker system df' and prune" >&2
  exit 1
fi
SH

# Nightly database dump onto the data disk, kept 7 days.
put /etc/cron.d/timetracker-db-dump 0644 <<'CRON' || true
0 3 * * * root docker exec timetracker-staging-db pg_dump -U timetracker -d timetracker_v2_dev --format=custom > /mnt/timetracker-data/dumps/timetracker_v2_dev-$(date -u +\%Y\%m\%dT\%H\%M).dump && find /mnt/timetracker-data/dumps -name '*.dump' -mtime +7 -delete
CRON

echo "host set up: data disk $device (UUID $uuid) on /mnt/timetracker-data"
