import type { Plan } from "../model/plan.js";
import { shellQuote as q } from "./shell.js";

/** The release tool's command that prunes the kept frontend files (hourly, and after each frontend release). */
export const PRUNE_ASSETS_COMMAND = "prune-assets";

/** The hourly job that prunes them (run-parts takes no dot in the name). */
export const PRUNE_ASSETS_CRON = "/etc/cron.hourly/timetracker-frontend-assets";

/**
 * The release tool's part that keeps each frontend release's hashed files on the data disk
 * (plan.frontendAssets), so a page loaded before a swap still finds its scripts in the new
 * frontend (nginx falls back to them, infra/render/nginx-conf.ts). Asset bridging as Kamal's
 * `asset_path` does it (basecamp/kamal lib/kamal/commands/app/assets.rb: `docker container cp
 * -L <container>:<asset_path>/.` out of a created container), kept by time rather than by
 * version count.
 *
 * One record per release in `releasesDir`, named by a hash of its image: `image <ref>`, then
 * `file <path>` per file, and `superseded <epoch seconds>` once a newer release went live.
 * A record is dropped keepHours after its `superseded`; a file goes once no record names it.
 * The time is the one the tool wrote at the swap, never a file's atime or mtime.
 *
 * Functions, for the tool's `service` and `name`:
 *   keep_assets <container> <image>  copies the image's files out of the container and records them
 *   keep_live_assets                 the same for the live container, when its image has no record
 *                                    (a frontend released before this tool kept files)
 *   assets_went_live <image>         <image>'s record is live; every other live one superseded now
 *   prune_assets <hours>             drops what was superseded at least <hours> ago
 */
export function renderKeptAssets(plan: Plan): string {
  const assets = plan.frontendAssets;
  return `# The frontend's hashed files, kept across releases for a page loaded before a swap
# (infra/render/kept-assets.ts).
assets_service=${q(plan.containers.frontend.service)}
assets_image_dir=${q(assets.imageDir)}
assets_dir=${q(assets.hostDir)}
assets_files=${q(assets.filesDir)}
assets_releases=${q(assets.releasesDir)}
keep_assets_hours=${assets.keepHours}

assets_record() { printf '%s/%s' "$assets_releases" "$(printf '%s' "$1" | sha256sum | cut -c1-16)"; }

keep_assets() {
  local container=$1 image=$2 incoming record out
  [ "$service" = "$assets_service" ] || return 0
  install -d -m 0755 "$assets_dir" "$assets_files"
  install -d -m 0700 "$assets_releases"
  incoming=$(mktemp -d "$assets_dir/incoming.XXXXXX")
  if ! out=$(docker cp -L "$container:$assets_image_dir/." "$incoming" 2>&1); then
    rm -rf "$incoming"
    say "$service: nothing kept of $image: no $assets_image_dir in it ($out)"
    return 0
  fi
  # nginx's workers read them, whoever owned them in the image.
  chmod -R u=rwX,go=rX "$incoming"
  record=$(assets_record "$image")
  {
    printf 'image %s\\n' "$image"
    (cd "$incoming" && find . -type f -printf 'file %P\\n' | LC_ALL=C sort)
  } > "$record.new"
  cp -R "$incoming/." "$assets_files/"
  rm -rf "$incoming"
  # The record only once its files are in place: a prune never keeps a name without its file.
  mv -f "$record.new" "$record"
  say "$service: kept the $(grep -c '^file ' "$record" || true) hashed files of $image in $assets_files, served $keep_assets_hours h after a newer release"
}

keep_live_assets() {
  local image
  [ "$service" = "$assets_service" ] || return 0
  exists "$name" || return 0
  image=$(docker inspect -f '{{.Config.Image}}' "$name")
  [ -f "$(assets_record "$image")" ] || keep_assets "$name" "$image"
}

assets_went_live() {
  local live record now
  live=$(assets_record "$1")
  now=$(date +%s)
  for record in "$assets_releases"/*; do
    case "$record" in *.new | *'/*') continue ;; esac
    if [ "$record" = "$live" ]; then
      grep -v '^superseded ' "$record" > "$record.new" || true
    elif grep -q '^superseded ' "$record"; then
      continue
    else
      { cat "$record"; printf 'superseded %s\\n' "$now"; } > "$record.new"
    fi
    mv -f "$record.new" "$record"
  done
}

prune_assets() {
  local hours=$1 now record line superseded file relative dropped=0 removed=0
  local -A named=()
  case "$hours" in
    '' | *[!0-9]*) refuse "usage: timetracker-release ${PRUNE_ASSETS_COMMAND} [<hours>]: '$hours' is not a whole number of hours" ;;
  esac
  [ -d "$assets_releases" ] || { say "frontend assets: none kept"; return 0; }
  # What a killed run left half-done: a copy not yet recorded, a record not yet in place.
  rm -rf "$assets_dir"/incoming.* "$assets_releases"/*.new
  now=$(date +%s)
  for record in "$assets_releases"/*; do
    [ -f "$record" ] || continue
    superseded=$(sed -n 's/^superseded //p' "$record")
    if [ -n "$superseded" ] && [ $((now - superseded)) -ge $((hours * 3600)) ]; then
      say "frontend assets: $(sed -n 's/^image //p' "$record") was replaced $(((now - superseded) / 3600)) h ago: its files go"
      rm -f "$record"
      dropped=$((dropped + 1))
      continue
    fi
    while IFS= read -r line; do
      if [ "\${line%% *}" = file ]; then named["\${line#file }"]=1; fi
    done < "$record"
  done
  while IFS= read -r -d '' file; do
    relative=\${file#"$assets_files"/}
    if [ -z "\${named[$relative]:-}" ]; then
      rm -f "$file"
      removed=$((removed + 1))
    fi
  done < <(find "$assets_files" -type f -print0 2>/dev/null)
  find "$assets_files" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  say "frontend assets: $dropped releases and $removed files pruned (replaced at least $hours h ago); \${#named[@]} files kept"
}`;
}
