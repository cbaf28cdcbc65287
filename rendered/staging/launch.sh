#!/bin/bash
# Generated from the stack's Plan by `npm run render`. Do not edit.
# Lightsail launch script for stack "staging": runs once at first boot.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=a

apt-get update
apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold docker.io cron

install -d -m 0755 /etc/docker
cat > /etc/docker/daemon.json <<'JSON'
{
  "log-driver": "json-file",
  "log-opts": {
    "max-size": "10m",
    "max-file": "3"
  }
}
JSON
systemctl enable docker cron
systemctl restart docker
usermod -aG docker ubuntu

# Deploys leave old images and build cache behind: prune what is a week unused.
cat > /etc/cron.daily/timetracker-docker-prune <<'SH'
#!/bin/sh
docker image prune --all --force --filter until=168h
docker builder prune --all --force --filter until=168h
SH
chmod 0755 /etc/cron.daily/timetracker-docker-prune

cat > /usr/local/bin/timetracker-disk-check <<'SH'
#!/bin/sh
need_gb="${1:-5}"
free_kb=$(df --output=avail -k / | tail -n 1)
if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  echo "only $((free_kb / 1024 / 1024)) GB free on /, the deploy needs $need_gb GB: run 'docker system df' and prune" >&2
  exit 1
fi
SH
chmod 0755 /usr/local/bin/timetracker-disk-check

# Nightly database dump, kept 7 days (the instance snapshot is the second copy).
install -d -m 0700 /var/backups/timetracker-staging
cat > /etc/cron.d/timetracker-db-dump <<'CRON'
0 3 * * * root docker exec timetracker-staging-db pg_dump -U timetracker -d timetracker_v2_dev --format=custom > /var/backups/timetracker-staging/timetracker_v2_dev-$(date -u +\%Y\%m\%dT\%H\%M).dump && find /var/backups/timetracker-staging -name '*.dump' -mtime +7 -delete
CRON
chmod 0644 /etc/cron.d/timetracker-db-dump

# Deploy steps run as ubuntu and keep their state here.
install -d -m 0755 -o ubuntu -g ubuntu /var/lib/timetracker
touch /var/lib/timetracker/launch-done
