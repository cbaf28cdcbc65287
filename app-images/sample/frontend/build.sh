#!/bin/sh
# The sample frontend's build, as Vite lays one out (no Node in the stand-in images): each
# source file is copied to assets/index-<first 8 hex of its sha256>.<ext>, and index.html is
# rewritten to name them. Same sources, same names: a changed script is a new file name.
#   build.sh <source folder> <output folder>
set -eu
src=$1
out=$2
mkdir -p "$out/assets"
page=$(cat "$src/index.html")
built_all=
for source in src/main.js src/style.css; do
  ext=${source##*.}
  hash=$(sha256sum "$src/$source" | cut -c1-8)
  built=assets/index-$hash.$ext
  cp "$src/$source" "$out/$built"
  built_all="$built_all $built"
  case $page in
    *"\"/$source\""*) page=$(printf '%s\n' "$page" | sed "s|\"/$source\"|\"/$built\"|") ;;
    *) echo "build.sh: index.html does not name /$source" >&2; exit 1 ;;
  esac
done
printf '%s\n' "$page" > "$out/index.html"
echo "built index.html and$built_all"
