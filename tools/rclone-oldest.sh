#!/usr/bin/env bash
# Fetches the oldest rclone a host runs: Ubuntu 22.04 (the default blueprint) ships 1.53.3,
# and Debian 11 builds the same release. The backup tool's tests run against it as well as
# against this machine's rclone (test/core/backup-tool.test.ts). Only Debian's archive is
# reachable from CI, so the binary comes from Debian 11's package, checked by its SHA-256.
# Prints the binary's path; does nothing when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.53.3
DEB=rclone_1.53.3-1+b6_amd64.deb
SHA256=1bef59770375a1b7cc98964a3fa77e186318ae4ac5174b30fa0a3d9962e5fdf7
DIR=.cache/rclone-$VERSION
BIN=$DIR/rclone

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Debian 11's packages move to archive.debian.org once it leaves the main mirror.
for mirror in http://deb.debian.org/debian http://archive.debian.org/debian; do
  if curl -fsSL --retry 3 --max-time 300 -o "$work/rclone.deb" "$mirror/pool/main/r/rclone/${DEB//+/%2B}"; then break; fi
done
[ -s "$work/rclone.deb" ] || { echo "could not download $DEB from Debian's archive" >&2; exit 1; }
echo "$SHA256  $work/rclone.deb" | sha256sum --check --quiet - || { echo "$DEB does not have the expected SHA-256" >&2; exit 1; }
dpkg-deb -x "$work/rclone.deb" "$work/root"
install -m 0755 "$work/root/usr/bin/rclone" "$BIN"
case "$("$BIN" version)" in
  "rclone v$VERSION"*) ;;
  *) echo "$BIN is not rclone $VERSION" >&2; rm -f "$BIN"; exit 1 ;;
esac
echo "$BIN"
