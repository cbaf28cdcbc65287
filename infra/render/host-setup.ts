import type { Plan } from "../model/plan.js";
import { DAEMON_JSON } from "./launch-script.js";
import { RELEASE_TOOL, releaseStateDir, renderReleaseTool } from "./release.js";

/** Script installed on the host that refuses a deploy when the disk is nearly full. */
export const DISK_CHECK = "/usr/local/bin/timetracker-disk-check";

/** The host's disk check: exits non-zero when / has less free space than the deploy needs. */
export function renderDiskCheck(plan: Plan): string {
  return `#!/bin/sh
need_gb="\${1:-${plan.host.minFreeDiskGb}}"
free_kb=$(df --output=avail -k / | tail -n 1)
if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  echo "only $((free_kb / 1024 / 1024)) GB free on /, the deploy needs $need_gb GB: run 'docker system df' and prune" >&2
  exit 1
fi
`;
}

const cronHour = (utc: string) => Number(utc.slice(0, 2));

function swap(plan: Plan): string {
  if (plan.host.swapGb === 0) return "";
  return `
# ${plan.host.bundle} has under 2 GB of memory: image builds need swap.
if [ ! -f /swapfile ]; then
  fallocate -l ${plan.host.swapGb}G /swapfile
  chmod 600 /swapfile
  mkswap /swapfile
  echo '/swapfile none swap sw 0 0' >> /etc/fstab
fi
swapon --show=NAME --noheadings | grep -qx /swapfile || swapon /swapfile
`;
}

/**
 * The host's configuration for one stack, applied as root over SSH on every deploy whose
 * script changed and on every new instance. Idempotent: it converges files, restarts
 * Docker only when its configuration changed, and never formats a disk that holds a
 * filesystem.
 */
export function renderHostSetup(plan: Plan): string {
  const disk = plan.host.dataDisk;
  const db = plan.containers.db;
  const { dumpDir } = plan.backup;
  const user = plan.host.sshUser;
  return `#!/bin/bash
# Generated from the stack's Plan by \`npm run render\`. Do not edit.
# Host setup for stack "${plan.stack}": run by every deploy (as root) whose content changed, and on every new instance.
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

# The data disk (${disk.name}): Lightsail attaches it as ${disk.devicePath}, Nitro instances show it as /dev/nvme1n1.
device=""
for _ in $(seq 1 90); do
  for candidate in ${disk.devicePath} /dev/nvme1n1; do
    if [ -b "$candidate" ]; then
      device=$candidate
      break 2
    fi
  done
  sleep 2
done
if [ -z "$device" ]; then
  echo "the data disk ${disk.name} is not attached: neither ${disk.devicePath} nor /dev/nvme1n1 exists" >&2
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
if ! grep -q "^UUID=$uuid ${disk.mount} " /etc/fstab; then
  sed -i '\\| ${disk.mount} |d' /etc/fstab
  echo "UUID=$uuid ${disk.mount} ext4 defaults,nofail 0 2" >> /etc/fstab
fi
install -d -m 0755 ${disk.mount}
mountpoint -q ${disk.mount} || mount ${disk.mount}

# Docker starts only once the disk is mounted: its volumes live there.
install -d -m 0755 /etc/systemd/system/docker.service.d
if put /etc/systemd/system/docker.service.d/timetracker-data.conf 0644 <<'UNIT'
[Unit]
RequiresMountsFor=${disk.mount}
UNIT
then
  systemctl daemon-reload
fi
${Object.values(plan.volumePaths).map((path) => `install -d -m 0755 ${path}`).join("\n")}
install -d -m 0700 ${dumpDir}
# Deploy steps run as ${user} and keep their state on the disk, so it survives the instance.
install -d -m 0755 -o ${user} -g ${user} ${plan.host.stateDir}
# The release tool's own state (root only): what is live, what was rolled back, the history.
install -d -m 0700 ${releaseStateDir(plan)}

# Docker rotates container logs.
install -d -m 0755 /etc/docker
if put /etc/docker/daemon.json 0644 <<'JSON'
${JSON.stringify(DAEMON_JSON, null, 2)}
JSON
then
  systemctl restart docker
fi
usermod -aG docker ${user}
${swap(plan)}
# Deploys leave old images and build cache behind: prune what is a week unused. The
# previous version's stopped container keeps its image for a rollback.
put /etc/cron.daily/timetracker-docker-prune 0755 <<'SH' || true
#!/bin/sh
docker image prune --all --force --filter until=168h
docker builder prune --all --force --filter until=168h
SH

put ${DISK_CHECK} 0755 <<'SH' || true
${renderDiskCheck(plan)}SH

# Every new backend or frontend version, rollback and pre-deploy dump goes through this tool.
put ${RELEASE_TOOL} 0755 <<'SH' || true
${renderReleaseTool(plan)}SH

# Nightly database dump onto the data disk, kept ${plan.backup.keepDays} days (the release tool keeps
# the newest ${plan.backup.preDeployKeep} pre-deploy and rollback dumps by count).
put /etc/cron.d/timetracker-db-dump 0644 <<'CRON' || true
0 ${cronHour(plan.backup.dumpTimeUtc)} * * * root docker exec ${db.name} pg_dump -U ${plan.database.user} -d ${plan.database.name} --format=custom > ${dumpDir}/${plan.database.name}-$(date -u +\\%Y\\%m\\%dT\\%H\\%M).dump && find ${dumpDir} -name '*.dump' ! -name '*-predeploy-*' ! -name '*-rollback-*' -mtime +${plan.backup.keepDays} -delete
CRON

echo "host set up: data disk $device (UUID $uuid) on ${disk.mount}"
`;
}
