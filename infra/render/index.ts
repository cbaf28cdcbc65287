import type { Plan } from "../model/plan.js";
import { renderBackupTool } from "./backup.js";
import { renderCaddyfile } from "./caddyfile.js";
import { renderLockTool } from "./deploy-lock.js";
import { renderHostSetup } from "./host-setup.js";
import { renderStatusTool } from "./host-status.js";
import { renderLaunchScript } from "./launch-script.js";
import { renderNginxConf } from "./nginx-conf.js";
import { renderPostgresUpgradeTool } from "./postgres-upgrade.js";
import { renderReleaseTool } from "./release.js";
import { renderTopology } from "./topology.js";

/** The files `render` writes for a stack, in this order (its --help lists them from here). */
export const RENDERED_FILES = [
  "Caddyfile", "nginx.conf", "launch.sh", "host-setup.sh", "release.sh", "backup.sh", "lock.sh", "host-status.sh", "postgres-upgrade.sh", "topology.md", "plan.json",
] as const;

export type RenderedFiles = Record<(typeof RENDERED_FILES)[number], string>;

/** Every generated file of a stack. The Plan holds secrets by name only, so plan.json is safe to commit. */
export function renderAll(plan: Plan): RenderedFiles {
  return {
    Caddyfile: renderCaddyfile(plan),
    "nginx.conf": renderNginxConf(plan),
    "launch.sh": renderLaunchScript(),
    "host-setup.sh": renderHostSetup(plan),
    "release.sh": renderReleaseTool(plan),
    "backup.sh": renderBackupTool(plan),
    "lock.sh": renderLockTool(plan),
    "host-status.sh": renderStatusTool(plan),
    "postgres-upgrade.sh": renderPostgresUpgradeTool(plan),
    "topology.md": renderTopology(plan),
    "plan.json": `${JSON.stringify(plan, null, 2)}\n`,
  };
}
