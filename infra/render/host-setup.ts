import { posix } from "node:path";
import type { Plan } from "../model/plan.js";
import { BACKUP_TOOL, renderBackupTool } from "./backup.js";
import { renderDataDiskFinder } from "./data-disk.js";
import { LOCK_TOOL, renderLockTool } from "./deploy-lock.js";
import { renderStatusCron, renderStatusTool, STATUS_CRON, STATUS_TOOL } from "./host-status.js";
import { POSTGRES_UPGRADE_TOOL, renderPostgresUpgradeTool } from "./postgres-upgrade.js";
import { PRUNE_ASSETS_COMMAND, PRUNE_ASSETS_CRON } from "./kept-assets.js";
import { DAEMON_JSON } from "./launch-script.js";
import { RELEASE_TOOL, releaseStateDir, renderReleaseTool } from "./release.js";

/** Script installed on the host that refuses a deploy when the disk is nearly full, and warns daily before it does. */
export const DISK_CHECK = "/usr/local/bin/timetracker-disk-check";

/**
 * What the daily disk check writes when a disk is filling up, one line per problem; absent
 * when all is well. `npm run ops -- health` prints it first (infra/cli/ops.ts). It lives on
 * the instance (not the data disk): a new instance has none until its host setup checks.
 */
export const DISK_WARNING_FILE = "/var/lib/timetracker/disk-warning";

/** The daily job that runs the disk check in its warning mode. */
export const DISK_WARNING_CRON = "/etc/cron.daily/timetracker-disk-warning";

/**
 * The host's disk check (POSIX sh), in two modes:
 * - `timetracker-disk-check [<gb>]`, the deploy's guard (infra/components/app.ts): exits 1
 *   when / has less than <gb> GB free, before anything is pulled or built;
 * - `timetracker-disk-check --warn [<percent>]`, daily (DISK_WARNING_CRON) and at the end of
 *   host setup: writes DISK_WARNING_FILE (temp file + mv, so `ops health` never reads half
 *   of it) and syslog (tag timetracker-disk) when / or the data disk is at least <percent>
 *   full, or / has less free than the deploy's guard needs; removes the file when all is well.
 *   Exits 1 when it warned, 0 when all is well, 2 when it could not write the warning.
 * - `timetracker-disk-check --check [<percent>]`, the host status's disk rule (infra/render/host-status.ts,
 *   every few minutes): the same problems, one per line on stdout and nowhere else; exit 1 when
 *   there is one, 0 when all is well, 2 for a bad percentage.
 * The warning file can be moved with TIMETRACKER_DISK_WARNING_FILE (the tests do).
 */
export function renderDiskCheck(plan: Plan): string {
  const { minFreeDiskGb, diskWarningPercent } = plan.host;
  const data = plan.host.dataDisk.mount;
  return `#!/bin/sh
# timetracker-disk-check [<gb>]: refuses a deploy (exit 1) when / has less than <gb> GB free (default ${minFreeDiskGb}).
# timetracker-disk-check --warn [<percent>]: the daily check (${DISK_WARNING_CRON}): when / or
# ${data} is at least <percent>% full (default ${diskWarningPercent}), or / has less than ${minFreeDiskGb} GB free,
# writes one line per problem to ${DISK_WARNING_FILE} (shown by \`npm run ops -- health\`)
# and to syslog (tag timetracker-disk); removes the file when all is well.
# Exits 1 when it warned (an unreadable disk is a warning too), 0 when all is well, 2 when it
# could not write the warning.
# timetracker-disk-check --check [<percent>]: the same problems on stdout only (the host status
# reads them); exit 1 when there is one, 0 when all is well.
mode=\${1:-}
if [ "$mode" != --warn ] && [ "$mode" != --check ]; then
  need_gb="\${1:-${minFreeDiskGb}}"
  free_kb=$(df --output=avail -k / | tail -n 1)
  if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
    echo "only $((free_kb / 1024 / 1024)) GB free on /, the deploy needs $need_gb GB: run 'docker system df' and prune" >&2
    exit 1
  fi
  exit 0
fi

percent="\${2:-${diskWarningPercent}}"
need_gb=${minFreeDiskGb}
warning_file="\${TIMETRACKER_DISK_WARNING_FILE:-${DISK_WARNING_FILE}}"
case $percent in
  '' | *[!0-9]*)
    echo "usage: timetracker-disk-check $mode [<percent>]: '$percent' is not a whole percentage" >&2
    exit 2
    ;;
esac
now=$(date -u +%Y-%m-%dT%H:%MZ)
nl='
'
problems=
for mount in / ${data}; do
  usage=$(df --output=target,pcent,avail -k "$mount" 2>&1)
  last=$(printf '%s\\n' "$usage" | tail -n 1)
  read -r target used free_kb <<EOF
$last
EOF
  used=\${used%"%"}
  case $used:$free_kb in
    *[!0-9:]* | :* | *:)
      problems="\${problems}could not read the usage of $mount: $(printf '%s' "$usage" | tr '\\n' ' ')$nl"
      continue
      ;;
  esac
  if [ "$target" != "$mount" ]; then
    # / is always its own: this is the data disk's folder on another filesystem, the disk not mounted.
    problems="$problems$mount is not mounted (df finds it on $target): Docker does not start without it; see 'findmnt $mount' and /etc/fstab$nl"
    continue
  fi
  free_gb=$((free_kb / 1024 / 1024))
  if [ "$mount" = / ]; then
    if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
      problems="$problems/ is $used% full ($free_gb GB free, under the $need_gb GB a deploy needs: the next deploy will be refused): run 'docker system df' and prune$nl"
    elif [ "$used" -ge "$percent" ]; then
      problems="$problems/ is $used% full ($free_gb GB free; the deploy needs $need_gb GB): run 'docker system df' and prune$nl"
    fi
  elif [ "$used" -ge "$percent" ]; then
    problems="$problems$mount is $used% full ($free_gb GB free): it holds the database, Redis, Caddy's certificates and the dumps (${plan.backup.dumpDir}); run 'sudo du -xsh $mount/*'$nl"
  fi
done

if [ "$mode" = --check ]; then
  printf '%s' "$problems"
  [ -z "$problems" ] || exit 1
  exit 0
fi
if [ -z "$problems" ]; then
  if [ -e "$warning_file" ]; then
    rm -f "$warning_file"
    logger -t timetracker-disk "disk warning cleared: / and ${data} are under $percent% full and / has $need_gb GB free or more; removed $warning_file" || true
  fi
  exit 0
fi
# The warning's lines say when they were written.
problems=$(printf '%s' "$problems" | sed "s/^/$now: /")$nl
mkdir -p "$(dirname "$warning_file")"
tmp=$(mktemp "$warning_file.XXXXXX") || exit 2
if ! { printf '%s' "$problems" > "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$warning_file"; }; then
  rm -f "$tmp"
  echo "could not write $warning_file" >&2
  exit 2
fi
printf '%s' "$problems" | logger -t timetracker-disk -p user.warning || true
printf '%s' "$problems"
exit 1
`;
}

/** The daily job (DISK_WARNING_CRON): the disk check's warning mode with the plan's threshold. */
export function renderDiskWarningCron(plan: Plan): string {
  return `#!/bin/sh
# Warns (${DISK_WARNING_FILE}, syslog) before a deploy is refused for a full disk.
exec ${DISK_CHECK} --warn ${plan.host.diskWarningPercent}
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

${renderDataDiskFinder(plan)}
device=$(data_disk)
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
# The deploy lock's records (root only): the run that holds it, a hold taken on purpose.
install -d -m 0700 ${plan.host.lockDir}
# The Postgres upgrade tool's records (root only): each upgrade, and the old volume it kept.
install -d -m 0700 ${plan.host.postgresUpgradesDir}
# The backup tool's records the host status reads (the newest copy, the last nightly job), and the
# status's folder in Caddy's config volume (Caddy serves it on the status's unguessable path).
install -d -m 0755 ${plan.hostStatus.recordsDir} ${plan.hostStatus.hostDir}
# Every frontend release's hashed files (readable: the frontend serves them) and what each release brought.
install -d -m 0755 ${plan.frontendAssets.hostDir} ${plan.frontendAssets.filesDir}
install -d -m 0700 ${plan.frontendAssets.releasesDir}

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

# Disks fill over days: every day, and at the end of this setup, a warning (which
# \`npm run ops -- health\` shows) when / or ${disk.mount} is ${plan.host.diskWarningPercent}% full or more, or / has less than
# ${plan.host.minFreeDiskGb} GB free, long before the deploy's guard refuses a deploy.
put ${DISK_WARNING_CRON} 0755 <<'SH' || true
${renderDiskWarningCron(plan)}SH

# Every new backend or frontend version, rollback and pre-deploy dump goes through this tool.
put ${RELEASE_TOOL} 0755 <<'SH' || true
${renderReleaseTool(plan)}SH

# Who holds the deploy lock and why; a hold taken on purpose (\`npm run ops -- lock\`).
put ${LOCK_TOOL} 0755 <<'SH' || true
${renderLockTool(plan)}SH

# A Postgres major upgrade the definition declares (the deploy runs it before the database
# container is replaced), and the old volumes upgrades kept (docs/postgres-upgrade.md).
put ${POSTGRES_UPGRADE_TOOL} 0755 <<'SH' || true
${renderPostgresUpgradeTool(plan)}SH

# A replaced frontend release's files are served ${plan.frontendAssets.keepHours} h more (app.frontend.keepAssetsHours), then go.
put ${PRUNE_ASSETS_CRON} 0755 <<'SH' || true
#!/bin/sh
${RELEASE_TOOL} ${PRUNE_ASSETS_COMMAND} 2>&1 | logger -t timetracker-release
SH

# The backup tool copies every dump off the host with rclone, which the launch script installs.
command -v rclone >/dev/null || { echo "rclone is missing: the launch script (user data) installs it" >&2; exit 1; }
# The bucket's credentials (written by \`${BACKUP_TOOL} set-credentials\`): root only.
install -d -m 0700 ${posix.dirname(plan.backup.bucket.credentialsFile)}

# Every dump (nightly, pre-deploy, rollback, pre-restore) and every restore goes through this tool.
put ${BACKUP_TOOL} 0755 <<'SH' || true
${renderBackupTool(plan)}SH

# Nightly database dump onto the data disk, copied to the bucket: the tool keeps nightly dumps
# ${plan.backup.keepDays} days on the host and the newest ${plan.backup.preDeployKeep} pre-deploy and rollback dumps; it waits
# for a deploy or a restore to finish (their lock), and its output goes to syslog.
put /etc/cron.d/timetracker-db-dump 0644 <<'CRON' || true
0 ${cronHour(plan.backup.dumpTimeUtc)} * * * root ${BACKUP_TOOL} nightly 2>&1 | logger -t timetracker-backup; ${STATUS_TOOL} >/dev/null 2>&1
CRON

# The host's own status (disks, the newest bucket copy, the last nightly job) for the second alert
# check, every ${plan.hostStatus.intervalMinutes} min and after each nightly job (the line above).
put ${STATUS_TOOL} 0755 <<'SH' || true
${renderStatusTool(plan)}SH
put ${STATUS_CRON} 0644 <<'CRON' || true
${renderStatusCron(plan)}CRON

# The disk warning and the status reflect this host now, not tomorrow: neither fails the setup.
${DISK_WARNING_CRON} || true
${STATUS_TOOL} >/dev/null || true

echo "host set up: data disk $device (UUID $uuid) on ${disk.mount}"
`;
}
