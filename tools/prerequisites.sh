#!/usr/bin/env bash
# What `npm test` needs besides Node 20 and `npm ci`, on Debian or Ubuntu: the real tools the
# generated files and scripts go through, and rclone 1.53.3 (the oldest a host runs), fetched
# into .cache/ by tools/rclone-oldest.sh.
#
#   sudo bash tools/prerequisites.sh     install what is missing (idempotent: nothing to do, no apt)
#   bash tools/prerequisites.sh --check  install nothing; name what is missing and the command
#                                        that installs it, exit 1 (npm test runs this first)
#
# System packages need root: run without it, the script says what is missing and stops.
# Under sudo, rclone 1.53.3 is fetched as the user who ran sudo, so .cache/ stays theirs.
set -euo pipefail
# (no dirname: the check must work on a PATH that lacks coreutils' folder)
here=${BASH_SOURCE[0]%/*}
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
cd "$here/.."

# The commands the tests run, and the Debian/Ubuntu package of each (same names on both).
TOOLS=(
  bash:bash
  git:git
  jq:jq
  caddy:caddy
  nginx:nginx
  shellcheck:shellcheck
  rclone:rclone
  ssh:openssh-client
  ssh-keygen:openssh-client
  ssh-agent:openssh-client
  ssh-add:openssh-client
  getent:libc-bin
  script:bsdutils
  # tools/rclone-oldest.sh: the download and the package's unpacking
  curl:curl
  dpkg-deb:dpkg
)
OLDEST_RCLONE=.cache/rclone-1.53.3/rclone
SELF=tools/prerequisites.sh

# The tests find each command on PATH. A user's PATH on Debian leaves out sbin, where nginx
# is: installed there, a command is reported as off PATH, not as a package to install.
missing_commands=()
missing_packages=()
off_path=()
for entry in "${TOOLS[@]}"; do
  command=${entry%%:*} package=${entry#*:}
  command -v "$command" >/dev/null 2>&1 && continue
  found=
  for dir in /usr/local/sbin /usr/sbin /sbin; do [ -x "$dir/$command" ] && found=$dir && break; done
  if [ -n "$found" ]; then
    off_path+=("$found/$command")
    continue
  fi
  missing_commands+=("$command")
  [[ " ${missing_packages[*]} " == *" $package "* ]] || missing_packages+=("$package")
done
oldest_missing=0
[ -x "$OLDEST_RCLONE" ] || oldest_missing=1

if [ "${1:-}" = --check ]; then
  what=()
  [ ${#missing_commands[@]} -eq 0 ] || what+=("${missing_commands[*]} (packages: ${missing_packages[*]})")
  [ "$oldest_missing" = 0 ] || what+=("rclone 1.53.3 ($OLDEST_RCLONE)")
  fixes=()
  if [ ${#missing_packages[@]} -gt 0 ] && [ "$EUID" != 0 ]; then
    fixes+=("run \`sudo bash $SELF\` (Debian or Ubuntu)")
  elif [ ${#what[@]} -gt 0 ]; then
    fixes+=("run \`bash $SELF\` (Debian or Ubuntu)")
  fi
  [ ${#off_path[@]} -eq 0 ] || fixes+=("add the folder of ${off_path[*]} to PATH")
  [ ${#fixes[@]} -gt 0 ] || exit 0
  lacks=
  [ ${#what[@]} -eq 0 ] || lacks=$(printf '%s and ' "${what[@]}")
  [ ${#off_path[@]} -eq 0 ] || lacks+="${off_path[*]##*/} on PATH and "
  fixed=$(printf '%s, and ' "${fixes[@]}")
  echo "npm test needs ${lacks% and }, which this machine lacks: ${fixed%, and }" >&2
  exit 1
elif [ $# -gt 0 ]; then
  echo "$SELF: unknown argument $1 (only --check)" >&2
  exit 2
fi

if [ ${#missing_packages[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$SELF: missing ${missing_commands[*]}; this is not Debian or Ubuntu, install them with the system's packages" >&2
    exit 1
  fi
  if [ "$EUID" != 0 ]; then
    echo "$SELF: missing ${missing_commands[*]} (packages: ${missing_packages[*]}); installing them needs root: run \`sudo bash $SELF\`" >&2
    exit 1
  fi
  echo "installing ${missing_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ca-certificates "${missing_packages[@]}" >/dev/null
fi

if [ "$oldest_missing" = 1 ]; then
  if [ "$EUID" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    sudo -u "$SUDO_USER" bash tools/rclone-oldest.sh
  else
    bash tools/rclone-oldest.sh
  fi
fi

bash "$SELF" --check
echo "npm test has what it needs"
