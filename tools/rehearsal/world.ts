import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { BucketWorld } from "./bucket-server.js";

/**
 * The rehearsal's stand-in for the cloud around one stack: the static IP (a loopback
 * address whose ports 22/80/443 a firewall proxy forwards to the attached machine), the
 * proxy's rules, where Lightsail disks keep their bytes, and the bucket's stand-in. Shared by the rehearsal and
 * each deploy process.
 */
export interface World {
  staticIp: string;
  /** tools/machine/firewall-proxy.ts reads this at every connection. */
  rulesFile: string;
  disksDir: string;
  /** The S3-compatible server that stands in for the stack's Lightsail bucket. */
  bucket: BucketWorld;
  /**
   * What the stand-in Lightsail API (lightsail-api.ts) reports as an instance's host keys: its
   * machine's own (the default), or another key, as if another machine answered at its address.
   */
  reportedHostKeys?: "machine" | "another";
}

export interface PortInfo {
  protocol?: string;
  fromPort: number;
  toPort: number;
  cidrs?: string[];
}

export interface Firewall {
  /** The machine the static IP is attached to. */
  target: string | null;
  portInfos: PortInfo[];
}

export function readFirewall(world: World): Firewall {
  return existsSync(world.rulesFile) ? JSON.parse(readFileSync(world.rulesFile, "utf8")) : { target: null, portInfos: [] };
}

export function writeFirewall(world: World, firewall: Firewall): void {
  writeFileSync(world.rulesFile, JSON.stringify(firewall, null, 2));
}
