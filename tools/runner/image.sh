#!/usr/bin/env bash
# The runner-like image: a clean machine holding what GitHub's ubuntu-latest runner image
# lists of the tools `npm test` needs, and nothing else of them: Node 20 and npm, git, jq,
# nginx, shellcheck, OpenSSH's client, curl, sudo (runner-images' Ubuntu2404-Readme.md);
# no caddy, no rclone, which tools/prerequisites.sh installs in the job. Debian trixie (its
# nodejs is 20.x), from debootstrap: nothing comes from an image registry. A user `runner`
# (uid 1001) with passwordless sudo, as on GitHub's runner.
#
#   image.sh        prints the image's tag (tt-runner/ubuntu-like:<key>); progress on stderr
#
# <key> is a hash of this file, so the image changes exactly when the recipe does. The built
# image is kept as .cache/runner-image/<key>.tar (docker save): an engine that has never run
# (.ci/run's) loads it in seconds instead of building it again.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
cd "$HERE/../.."

MIRROR=${TT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
PACKAGES=(nodejs npm git jq nginx shellcheck openssh-client curl ca-certificates sudo xz-utils)
RUNNER_UID=1001

KEY=$(sha256sum "$SELF" | cut -c1-12)
TAG=tt-runner/ubuntu-like:$KEY
CACHE=.cache/runner-image
SAVED=$CACHE/$KEY.tar
export DOCKER_BUILDKIT=0 # the classic builder: FROM resolves the local tag, never pulls
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf 'runner-image: %s\n' "$*" >&2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi
mkdir -p "$CACHE"
if [ -s "$SAVED" ]; then
  log "loading $SAVED"
  docker load -q -i "$SAVED" >/dev/null
  echo "$TAG"
  exit 0
fi
[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }

work=$(mktemp -d /var/tmp/tt-runner-image.XXXXXX)
cleanup() {
  awk '{print $2}' /proc/mounts | { grep -E "^$work/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
start=$(date +%s)
log "debootstrap $SUITE (minbase) into $work/root"
if ! debootstrap --variant=minbase "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
fi
echo "deb $MIRROR $SUITE main" >"$work/root/etc/apt/sources.list"
rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/var/cache/apt/archives/*.deb
ROOT_TAG=tt-runner/rootfs:$KEY
tar --numeric-owner -C "$work/root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$ROOT_TAG" >/dev/null

mkdir -p "$work/context"
cat >"$work/context/Dockerfile" <<DOCKERFILE
FROM $ROOT_TAG
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# no service starts during the build (nginx's package would start one)
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \\
 && apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} >/dev/null \\
 && rm -f /usr/sbin/policy-rc.d \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \\
 && useradd --create-home --uid $RUNNER_UID --shell /bin/bash runner \\
 && echo 'runner ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/runner && chmod 0440 /etc/sudoers.d/runner
LABEL tt.runner.key=$KEY
USER runner
WORKDIR /home/runner
DOCKERFILE
log "installing ${PACKAGES[*]}"
if ! docker build --network host -t "$TAG" "$work/context" >"$work/build.log" 2>&1; then
  tail -n 30 "$work/build.log" >&2
  exit 1
fi
docker image rm "$ROOT_TAG" >/dev/null 2>&1 || true
docker save -o "$SAVED.partial" "$TAG"
mv "$SAVED.partial" "$SAVED"
find "$CACHE" -name '*.tar' ! -name "$KEY.tar" -delete
log "built $TAG in $(($(date +%s) - start)) s, saved as $SAVED"
echo "$TAG"
