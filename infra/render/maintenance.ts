import type { Plan } from "../model/plan.js";

/** What the page says when the operator gives no message. */
export const DEFAULT_MAINTENANCE_MESSAGE = "We are doing planned work on the site. It will be back shortly.";

/** What the page says while a restore replaces the database (the backup tool turns maintenance on for it). */
export const RESTORE_MAINTENANCE_MESSAGE = "The site's data is being restored from a backup. It will be back in a few minutes.";

/** Text as HTML: the five characters that could open a tag, an entity or an attribute, escaped. */
export const escapeHtml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");

/**
 * The page Caddy answers in maintenance mode, for any stack: its domain, the message (escaped:
 * whatever an operator types stays text), and a reload every `retryAfterSeconds`, so an open
 * tab comes back by itself. One file, no asset: every other path answers this page too.
 */
export function renderMaintenancePage(plan: Plan, message: string): string {
  const site = escapeHtml(plan.domains[0] ?? plan.stack);
  const seconds = plan.caddy.maintenance.retryAfterSeconds;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<meta http-equiv="refresh" content="${seconds}">
<title>Down for maintenance: ${site}</title>
<style>
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center; background: #f5f6f8; color: #1f2933; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 36rem; padding: 2rem; text-align: center; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
p { line-height: 1.5; margin: 0 0 1rem; }
.note { color: #52606d; font-size: 0.9rem; }
</style>
</head>
<body>
<main>
<h1>${site} is down for maintenance</h1>
<p>${escapeHtml(String(message))}</p>
<p class="note">This page reloads itself every ${seconds} seconds: the site is back as soon as the work is done.</p>
</main>
</body>
</html>
`;
}

/**
 * Maintenance mode's bash functions, shared by the backup tool (a restore) and the remote
 * commands of `npm run ops -- maintenance`. The caller sets `maintenance_dir` (the Plan's
 * hostDir, under the backup tool's test root when it has one) first.
 */
export function maintenanceFunctions(plan: Plan): string {
  const m = plan.caddy.maintenance;
  return `# Maintenance mode (infra/render/maintenance.ts): while $maintenance_page exists, Caddy answers
# every route but ${m.operatorPath} with it (503, Retry-After: ${m.retryAfterSeconds}). Caddy looks for the file on
# each request: writing or removing it is the switch, no reload. The info beside it is for status.
maintenance_page="$maintenance_dir/${m.page}"
maintenance_info="$maintenance_dir/${m.info}"

# maintenance_on <page file> <by> <message>: the info first, then the page; each whole (a temp
# file renamed into place), so Caddy never serves half a page.
maintenance_on() {
  local tmp
  install -d -m 0755 "$maintenance_dir"
  tmp=$(mktemp "$maintenance_dir/.${m.info}.XXXXXX")
  printf 'since=%s\\nby=%s\\nmessage=%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" "$3" | tr -d '\\r' > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$maintenance_info"
  tmp=$(mktemp "$maintenance_dir/.${m.page}.XXXXXX")
  cat "$1" > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$maintenance_page"
}

# The page first: once it is gone, the site answers again.
maintenance_off() { rm -f "$maintenance_page" "$maintenance_info"; }

maintenance_status() {
  if [ ! -f "$maintenance_page" ]; then
    printf 'maintenance: off\\n'
    return 0
  fi
  printf 'maintenance: on since %s by %s\\n' "$(sed -n 's/^since=//p' "$maintenance_info" 2>/dev/null || true)" "$(sed -n 's/^by=//p' "$maintenance_info" 2>/dev/null || true)"
  printf '  message: %s\\n' "$(sed -n 's/^message=//p' "$maintenance_info" 2>/dev/null || true)"
  printf '  every route but %s answers 503 with %s (Retry-After: %s)\\n' ${m.operatorPath} "$maintenance_page" ${m.retryAfterSeconds}
}
`;
}
