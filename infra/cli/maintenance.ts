import type { Plan } from "../model/plan.js";
import { maintenanceFunctions, renderMaintenancePage } from "../render/maintenance.js";
import { shellQuote as q } from "../render/shell.js";

export const MAINTENANCE_ACTIONS = ["on", "off", "status"] as const;
export type MaintenanceAction = (typeof MAINTENANCE_ACTIONS)[number];

/**
 * The script `maintenance <action>` runs on the host as root (`sudo -n bash -c <script>`): the
 * shared functions (infra/render/maintenance.ts), the action, then the status. `on` carries the
 * page, rendered here from the Plan and the message, and first checks that the host's Caddy has
 * the maintenance matcher: a host deployed before it would never show the page.
 */
export function maintenanceScript(plan: Plan, action: MaintenanceAction, on?: { message: string; by: string }): string {
  const m = plan.caddy.maintenance;
  const caddy = plan.containers.caddy.name;
  const lines = ["set -euo pipefail", `maintenance_dir=${q(m.hostDir)}`, maintenanceFunctions(plan)];
  if (action === "on") {
    if (!on) throw new Error("maintenance on needs its message");
    const page = Buffer.from(renderMaintenancePage(plan, on.message)).toString("base64");
    lines.push(
      // Read whole before grep looks: `grep -q` stops at the first match, and under pipefail the
      // writer that then meets a closed pipe would fail the check on a Caddy that has the mode.
      `caddyfile=$(docker exec ${q(caddy)} cat /etc/caddy/Caddyfile 2>/dev/null) || caddyfile=`,
      `if ! grep -qF ${q(`root ${m.dir}`)} <<< "$caddyfile"; then`,
      `  echo ${q(`refused: the Caddy on this host (${caddy}) has no maintenance mode: deploy this version first (pulumi up); nothing was changed`)} >&2`,
      "  exit 1",
      "fi",
      "page=$(mktemp)",
      `trap 'rm -f "$page"' EXIT`,
      `printf '%s' ${q(page)} | base64 -d > "$page"`,
      `maintenance_on "$page" ${q(on.by)} ${q(on.message)}`,
    );
  }
  if (action === "off") lines.push("maintenance_off");
  lines.push("maintenance_status");
  return `${lines.join("\n")}\n`;
}
