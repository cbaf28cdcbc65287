import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { BACKUP_TOOL } from "../../infra/render/backup.js";
import { listMachines } from "../machine/machine.js";
import { dockerOk } from "./docker.js";
import { RehearsalEngine } from "./engine.js";
import type { HostAccess } from "./host-access.js";
import { httpRequest, requestLoop, type Endpoint, type Traffic } from "./http.js";
import { deploy, destroy, hostCommand, type AgentKeys, type DeployResult, type Operator } from "./operator.js";
import { check, type ProbeLog } from "./probes.js";

/** Clients looping through Caddy while a deploy swaps a service. */
export const CLIENTS = 4;

/** The figures printed after the probes; each probe file fills in its own. */
export interface Measurements {
  secondsToHealthy: number;
  bootToReady: number;
  growSeconds: number;
  failedDuringRedeploy: number;
  /** Requests through Caddy during each swap, by what was swapped. */
  swaps: Record<string, Traffic & { seconds: number }>;
  nightlyObject: string;
  restoreSeconds: number;
  restoreWall: number;
  /** "table before -> after" lines of the restore drill. */
  drill: string[];
}

/** What the rehearsal sets up before the first probe (rehearse.ts). */
export interface Setup extends Operator {
  index: number;
  redeploys: number;
  plan: Plan;
  /** The stack's definition made local (localize.ts): what the first deploy uses. */
  local: EnvironmentDefinition;
  localEngine: string;
  probes: ProbeLog;
  say(text: string): void;
}

/**
 * Everything a probe file needs, built once: the stack's plan and world, Caddy's address,
 * the admin's way onto the host, the probe log, one operator's `pulumi up` (deploy), and the
 * small reads most probes share. Probe files (probes/*.ts) each take this and nothing else.
 */
export interface Rehearsal extends Setup {
  /** Caddy's plain-HTTP address on the static IP. */
  web: Endpoint;
  /** The Host header the stack's site answers. */
  host: string;
  backendName: string;
  /** The definition as the everyday edits leave it; host replacement and teardown deploy it. */
  current: EnvironmentDefinition;
  /** Rows written through Caddy (probes/rows.ts); every later probe finds them again. */
  items: string[];
  measurements: Measurements;

  /** One `pulumi up` as a fresh operator (`agent.keys`: the keys in its agent, during a key change). */
  deploy(definition: EnvironmentDefinition, secretConfig?: Record<string, string>, agent?: AgentKeys): Promise<DeployResult>;
  /** `pulumi destroy` as a fresh operator. */
  destroy(options: { unprotect: boolean }): Promise<{ removed: string[]; kept: string[] }>;
  /** `npx tsx <script> <args>` (an ops, rollback or restore command) as a fresh operator: `keyPath` in args becomes its own copy. */
  hostCommand(script: string, args: string[]): ReturnType<typeof hostCommand>;
  /** What a deploy replaced and why, as the preview prints it. */
  replacedWhy(result: DeployResult): string[];
  /** The stack's state as the last deploy left it. */
  engineState(): RehearsalEngine;
  containerInfo(name: string): Promise<any>;
  /** A short hash of one environment variable of a running container (never the value). */
  envHash(name: string, variable: string): Promise<string>;
  /** /api/health through Caddy: 200 with database and Redis healthy, or throws. */
  apiHealth(): Promise<any>;
  /** Changes the sample backend so its image, and so its container, must be replaced. */
  touchBackend(n: number): void;
  runId: string;
  /** The stack's machine containers on the outer engine. */
  machineNow(): Promise<string[]>;
  backendId(): Promise<string>;
  /** The host key the instance shows (type and key). */
  machineHostKey(): Promise<string>;
  /** The host key the Docker provider's ssh accepts: the one its options in the state carry. */
  pinnedHostKey(): string;
  /** The item names GET /api/items returns through Caddy. */
  readItems(): Promise<string[]>;
  /** An action while CLIENTS loop on `path` through Caddy. */
  underTraffic<T>(path: string, action: () => Promise<T>): Promise<{ result: T; traffic: Traffic; seconds: number }>;
  trafficSummary(t: Traffic): string;
  /** Throws unless no request failed and none took over 0.5 s. */
  noGap(t: Traffic): void;
  /** The host's backup tool, as root. */
  backupTool(args: string): ReturnType<HostAccess["ssh"]>;
  /** Indents a command's output under its probe line. */
  indented(text: string): string;
}

export function makeRehearsal(setup: Setup): Rehearsal {
  const { plan, admin, stateFile, world } = setup;
  const host = plan.domains[0] ?? "";
  const web: Endpoint = { address: world.staticIp, port: plan.caddy.httpPort };
  const backendName = plan.containers.backend.name;
  const runId = Date.now().toString(36);
  const containerInfo = (name: string) => dockerOk("GET", `/containers/${name}/json`);
  return {
    ...setup,
    web,
    host,
    backendName,
    current: setup.local,
    items: ["alpha", "beta", "gamma"],
    measurements: {
      secondsToHealthy: Number.NaN,
      bootToReady: Number.NaN,
      growSeconds: Number.NaN,
      failedDuringRedeploy: Number.NaN,
      swaps: {},
      nightlyObject: "",
      restoreSeconds: Number.NaN,
      restoreWall: Number.NaN,
      drill: [],
    },
    deploy: (definition, secretConfig = {}, agent = {}) => deploy(setup, definition, secretConfig, agent),
    destroy: (options) => destroy(setup, options),
    hostCommand: (script, args) => hostCommand(setup, script, args),
    replacedWhy: (result) =>
      Object.entries(result.progress.changes)
        .filter(([, s]) => s.action === "replace")
        .map(([k, s]) => `${k.split("::")[1]} (${s.causes.join("; ")})`),
    engineState: () => new RehearsalEngine(stateFile, world),
    containerInfo,
    envHash: async (name, variable) => {
      const info = await containerInfo(name);
      const entry = (info.Config.Env as string[]).find((e) => e.startsWith(`${variable}=`)) ?? "";
      return createHash("sha256").update(entry).digest("hex").slice(0, 12);
    },
    apiHealth: async () => {
      const res = await httpRequest(web, "/api/health", host);
      check(res.status === 200, `/api/health answered ${res.status}: ${res.body.slice(0, 200)}`);
      const body = JSON.parse(res.body);
      check(body.checks?.database === "healthy" && body.checks?.redis === "healthy", `checks: ${JSON.stringify(body.checks)}`);
      return body;
    },
    touchBackend: (n) => writeFileSync(join(setup.appSource, "backend", "app", "build_id.txt"), `${runId}-${n}\n`),
    runId,
    machineNow: async () => (await listMachines()).filter((m) => m.id === plan.host.name).map((m) => m.container),
    backendId: async () => (await containerInfo(backendName)).Id as string,
    machineHostKey: async () => (await admin.ssh("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).stdout.trim(),
    pinnedHostKey: () => {
      const raw = new RehearsalEngine(stateFile, world).entry("pulumi:providers:docker", "host-docker")?.inputs.sshOpts;
      const options = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? [])) as string[];
      return (options.find((o) => o.startsWith("KnownHostsCommand=")) ?? "").split(" ").slice(2).join(" ");
    },
    readItems: async () => {
      const res = await httpRequest(web, "/api/items", host);
      check(res.status === 200, `GET answered ${res.status}`);
      return (JSON.parse(res.body) as { name: string }[]).map((i) => i.name);
    },
    underTraffic: async (path, action) => {
      const loop = requestLoop(web, path, host, { clients: CLIENTS });
      const start = Date.now();
      const result = await action();
      const seconds = (Date.now() - start) / 1000;
      return { result, traffic: await loop.stop(), seconds };
    },
    trafficSummary: (t) => `${t.sent} requests from ${CLIENTS} clients, ${t.failed} failed, worst ${t.worst.toFixed(3)} s (at +${t.worstAt.toFixed(1)} s), p99 ${t.p99.toFixed(3)} s`,
    noGap: (t) => {
      check(t.failed === 0, `${t.failed} of ${t.sent} requests failed: ${t.failures.slice(0, 3).join("; ")}`);
      check(t.worst <= 0.5, `the slowest request took ${t.worst.toFixed(3)} s at +${t.worstAt.toFixed(1)} s (limit 0.5 s)`);
    },
    backupTool: (args) => admin.ssh(`sudo -n ${BACKUP_TOOL} ${args}`),
    indented: (text) => text.trimEnd().split("\n").map((l) => `       ${l}`).join("\n"),
  };
}
