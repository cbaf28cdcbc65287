import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Plan } from "../../infra/model/plan.js";
import { rotationStateFile } from "../../infra/render/db-credentials.js";
import { DISK_CHECK, renderDiskCheck } from "../../infra/render/host-setup.js";
import { READY_MARKER } from "../../infra/render/launch-script.js";

/**
 * Makes this machine stand in for the stack's Lightsail host: the parts of the launch
 * script the deploy relies on (the disk check and the ready marker). Docker itself is
 * the local engine, started by app-images/standins/engine.sh.
 */
export function provisionLocalHost(plan: Plan): void {
  mkdirSync(dirname(DISK_CHECK), { recursive: true });
  writeFileSync(DISK_CHECK, renderDiskCheck(plan));
  chmodSync(DISK_CHECK, 0o755);
  mkdirSync(dirname(READY_MARKER), { recursive: true });
  writeFileSync(READY_MARKER, "");
  rmSync(dirname(rotationStateFile(plan)), { recursive: true, force: true });
}

/** Removes what provisionLocalHost and the deploys left on this machine. */
export function unprovisionLocalHost(plan: Plan): void {
  rmSync(dirname(rotationStateFile(plan)), { recursive: true, force: true });
  rmSync(READY_MARKER, { force: true });
  rmSync(DISK_CHECK, { force: true });
}

/** A private copy of the sample app, so a rehearsal can change it (new image, broken import). */
export function copySampleApp(to: string): void {
  rmSync(to, { recursive: true, force: true });
  cpSync("app-images/sample", to, { recursive: true });
}
