import type { Decision, ResourceOptions } from "./decide.js";
import { DATA_DISK_MOUNT, PROVIDER_RULES } from "./provider-rules.js";

export type FlagKind = "DATA LOSS" | "BLOCKED BY PROTECT" | "OUTAGE" | "NOT APPLIED" | "DOWNTIME";

/** DOWNTIME is expected when the instance goes; the others are what an ordinary edit must never do. */
export const HARMFUL: readonly FlagKind[] = ["DATA LOSS", "BLOCKED BY PROTECT", "OUTAGE", "NOT APPLIED"];

export interface Flag {
  kind: FlagKind;
  reason: string;
}

/** The part of a resource (declared now, or in state before) the flags read. */
export interface Subject {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  options: ResourceOptions;
}

export const DOCKER_VOLUME = "docker:index/volume:Volume";

/** A Docker volume bound (`o: bind`) to a folder on the data disk keeps its data across a new instance. */
export function onDataDisk(volumeInputs: Record<string, unknown>): boolean {
  const driver = volumeInputs.driver ?? "local";
  const opts = (volumeInputs.driverOpts ?? {}) as Record<string, unknown>;
  const bind = String(opts.o ?? "").split(",").includes("bind");
  return driver === "local" && bind && String(opts.device ?? "").startsWith(`${DATA_DISK_MOUNT}/`);
}

/**
 * The flags of one decision. `now` is the resource as declared (undefined for a delete),
 * `before` what state holds (undefined for a create); `volumes` are the Docker volumes in
 * state, whose data a new instance loses unless it lives on the data disk.
 */
export function flagsFor(decision: Decision, now: Subject | undefined, before: Subject | undefined, volumes: readonly Subject[]): Flag[] {
  const subject = now ?? before;
  if (!subject) return [];
  const rule = PROVIDER_RULES[subject.type];
  const { action } = decision;
  const removesOld = action === "replace" || action === "delete";
  // The engine reads these from state; a resource not yet in state has only its declared options.
  const oldOptions = before?.options ?? subject.options;
  const flags: Flag[] = [];
  const flag = (kind: FlagKind, reason: string) => flags.push({ kind, reason });

  if (action === "replace" && oldOptions.protect && now?.options.protect) {
    flag("BLOCKED BY PROTECT", "protected in state and in the program: the engine refuses the replace and stops the whole run");
  }
  if (action === "delete" && oldOptions.protect) flag("BLOCKED BY PROTECT", "protected in state: the engine refuses the delete and stops the run");

  if (removesOld && rule?.holdsData === "always") {
    if (action === "replace") flag("DATA LOSS", "the replacement is a new, blank disk");
    else if (!oldOptions.retainOnDelete) flag("DATA LOSS", "the disk is deleted with its data");
  }
  if (removesOld && rule?.holdsData === "docker-volume" && !oldOptions.retainOnDelete && !onDataDisk((before ?? subject).inputs)) {
    flag("DATA LOSS", `its data lives on the instance, not under ${DATA_DISK_MOUNT}, and it is not retainOnDelete`);
  }
  if (removesOld && rule?.holdsData === "own-disk") {
    const onInstance = volumes.filter((v) => !onDataDisk(v.inputs)).map((v) => String(v.inputs.name ?? v.name));
    if (onInstance.length > 0) flag("DATA LOSS", `Docker volumes on the instance's own disk go with it: ${onInstance.join(", ")}`);
  }

  if (rule?.oldDeleteUndoesNew && !oldOptions.retainOnDelete) {
    if (action === "replace" && !decision.deleteFirst) flag("OUTAGE", `replaced create-then-delete: ${rule.oldDeleteUndoesNew}`);
    if (action === "delete") flag("OUTAGE", "its delete closes every port it listed, 80 and 443 included");
  }

  if (decision.ignored.length > 0 && action !== "replace") {
    flag("NOT APPLIED", `${decision.ignored.join(", ")} changed: recorded in state, never applied to the running object`);
  }
  if (removesOld && rule?.downtimeOnReplace) flag("DOWNTIME", rule.downtimeOnReplace);
  return flags;
}
