import type { Plan } from "../model/plan.js";

/** Docker's log rotation; log options must be strings. */
export const DAEMON_JSON = {
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "3" },
};

/** The host's folder for deploy state, owned by the SSH user the deploy steps run as. */
export const HOST_STATE_DIR = "/var/lib/timetracker";
/** Where the launch script records that the host is ready; the deploy waits for it. */
export const READY_MARKER = `${HOST_STATE_DIR}/launch-done`;
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

/**
 * The Lightsail launch script (user data): runs once, as root, with no one to answer
 * a prompt. Installs Docker from the distribution, rotates container logs, prunes
 * what deploys leave behind, adds swap on small bundles and dumps the database nightly.
 */
export function renderLaunchScript(plan: Plan): string {
  const db = plan.containers.db;
  const swap =
    plan.host.swapGb > 0
      ? `
# ${plan.host.bundle} has under 2 GB of memory: image builds need swap.
if [ ! -f /swapfile ]; then
  fallocate -l ${plan.host.swapGb}G /swapfile
  chmod 600 /swapfile
  mkswap /swapfile
  swapon /swapfile
  echo '/swapfile none swap sw 0 0' >> /etc/fstab
fi
`
      : "";
  return `#!/bin/bash
# Generated from the stack's Plan by \`npm run render\`. Do not edit.
# Lightsail launch script for stack "${plan.stack}": runs once at first boot.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=a
${swap}
apt-get update
apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold docker.io cron

install -d -m 0755 /etc/docker
cat > /etc/docker/daemon.json <<'JSON'
${JSON.stringify(DAEMON_JSON, null, 2)}
JSON
systemctl enable docker cron
systemctl restart docker
usermod -aG docker ${plan.host.sshUser}

# Deploys leave old images and build cache behind: prune what is a week unused.
cat > /etc/cron.daily/timetracker-docker-prune <<'SH'
#!/bin/sh
docker image prune --all --force --filter until=168h
docker builder prune --all --force --filter until=168h
SH
chmod 0755 /etc/cron.daily/timetracker-docker-prune

cat > ${DISK_CHECK} <<'SH'
${renderDiskCheck(plan)}SH
chmod 0755 ${DISK_CHECK}

# Nightly database dump, kept ${plan.backup.keepDays} days (the instance snapshot is the second copy).
install -d -m 0700 ${plan.backup.dumpDir}
cat > /etc/cron.d/timetracker-db-dump <<'CRON'
0 ${cronHour(plan.backup.dumpTimeUtc)} * * * root docker exec ${db.name} pg_dump -U ${plan.database.user} -d ${plan.database.name} --format=custom > ${plan.backup.dumpDir}/${plan.database.name}-$(date -u +\\%Y\\%m\\%dT\\%H\\%M).dump && find ${plan.backup.dumpDir} -name '*.dump' -mtime +${plan.backup.keepDays} -delete
CRON
chmod 0644 /etc/cron.d/timetracker-db-dump

# Deploy steps run as ${plan.host.sshUser} and keep their state here.
install -d -m 0755 -o ${plan.host.sshUser} -g ${plan.host.sshUser} ${HOST_STATE_DIR}
touch ${READY_MARKER}
`;
}
