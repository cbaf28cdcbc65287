// The Lightsail firewall's decision, on the shape of aws.lightsail.InstancePublicPorts:
// a port is open only if a portInfo covers it, and then only to sources in its cidrs.
import { readFileSync, renameSync, writeFileSync } from "node:fs";

export interface PortInfo {
  protocol: string; // "tcp" | "all" | "udp" | "icmp" | ...
  fromPort: number;
  toPort: number;
  /** IPv4 sources; when absent, Lightsail opens the port to any IPv4 address. */
  cidrs?: string[];
}

export interface FirewallRules {
  /** The instance the static IP is attached to; null: nothing answers. */
  target: string | null;
  portInfos: PortInfo[];
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** True if ip (dotted IPv4, or IPv4-mapped IPv6) lies in cidr ("a.b.c.d/n" or a bare address). */
export function inCidr(ip: string, cidr: string): boolean {
  const addr = ipv4ToInt(ip.replace(/^::ffff:/i, ""));
  const [base = "", bitsText = "32"] = cidr.split("/");
  const net = ipv4ToInt(base);
  const bits = Number(bitsText);
  if (addr === undefined || net === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  // 2 ** (32 - bits) avoids JS's 32-bit signed shifts
  const size = 2 ** (32 - bits);
  return Math.floor(addr / size) === Math.floor(net / size);
}

/** Why a TCP connection from `source` to `port` is refused, or undefined when it may pass. */
export function refusal(rules: FirewallRules, port: number, source: string): string | undefined {
  if (!rules.target) return "no instance attached";
  const covering = rules.portInfos.filter((p) => (p.protocol === "tcp" || p.protocol === "all") && p.fromPort <= port && port <= p.toPort);
  if (covering.length === 0) return `port ${port}/tcp is closed`;
  if (covering.some((p) => (p.cidrs ?? ["0.0.0.0/0"]).some((c) => inCidr(source, c)))) return undefined;
  return `${source} is not in the cidrs of port ${port}/tcp`;
}

export function readRules(file: string): FirewallRules {
  const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<FirewallRules>;
  return { target: parsed.target ?? null, portInfos: Array.isArray(parsed.portInfos) ? parsed.portInfos : [] };
}

/** Replaces the rules file atomically, so the proxy never reads half of one. */
export function writeRules(file: string, rules: FirewallRules): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rules, null, 2) + "\n");
  renameSync(tmp, file);
}
