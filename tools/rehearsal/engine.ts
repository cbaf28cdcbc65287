import { randomInt } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import type { DeclaredResource } from "../mock-engine.js";
import { dockerApi, dockerOk, exec, execOk, nanoseconds } from "./docker.js";

/** Official images that Docker Hub would serve, and the local stand-ins built from Debian. */
const STAND_INS: Record<string, string> = {
  postgres: "tt-standin/postgres:15",
  redis: "tt-standin/redis:7",
  caddy: "tt-standin/caddy:2",
};

/** The inputs each resource type may carry; anything else is refused, never dropped. */
const IMPLEMENTED: Record<string, string[]> = {
  "pulumi:pulumi:Stack": [],
  "pulumi:providers:docker": ["host", "sshOpts", "version"],
  "aws:lightsail/keyPair:KeyPair": ["name", "publicKey", "tags"],
  "aws:lightsail/instance:Instance": ["name", "availabilityZone", "blueprintId", "bundleId", "keyPairName", "userData", "addOn", "tags"],
  "aws:lightsail/staticIp:StaticIp": ["name"],
  "aws:lightsail/staticIpAttachment:StaticIpAttachment": ["staticIpName", "instanceName"],
  "aws:lightsail/instancePublicPorts:InstancePublicPorts": ["instanceName", "portInfos"],
  "random:index/randomPassword:RandomPassword": ["length", "special", "keepers"],
  "command:remote:Command": ["connection", "create", "stdin", "triggers", "addPreviousOutputInEnv"],
  "docker:index/network:Network": ["name", "driver"],
  "docker:index/volume:Volume": ["name"],
  "docker:index/remoteImage:RemoteImage": ["name", "keepLocally", "build", "triggers"],
  "docker:index/container:Container": [
    "name", "image", "restart", "envs", "command", "networkMode", "networksAdvanced", "ports", "volumes",
    "uploads", "healthcheck", "wait", "waitTimeout", "logDriver", "logOpts", "labels", "mustRun", "attach",
    "logs", "rm", "start", "destroyGraceSeconds",
  ],
};

interface Entry {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  state: Record<string, unknown>;
  retainOnDelete: boolean;
}

interface State {
  order: string[];
  entries: Record<string, Entry>;
  /** Every image id a build produced, so a rehearsal can remove what it made. */
  built: string[];
}

/** What happened to each resource in one deploy, for the run's report. */
export type Change = "created" | "replaced" | "updated" | "unchanged" | "failed";

export interface DeployProgress {
  changes: Record<string, Change>;
  errors: string[];
}

const key = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

/**
 * Stands in for the providers so the program's resources are created for real on the
 * local Docker engine, from exactly the inputs the program declares. Keeps a state file
 * as the Pulumi engine would, so an unchanged resource is left alone on the next deploy.
 */
export class RehearsalEngine {
  private readonly state: State;
  public changes = new Map<string, Change>();
  public errors: string[] = [];
  private readonly shims: string;

  /** `progressFile`, if given, gets the changes and errors after each step, so a crashed deploy still reports. */
  constructor(
    private readonly stateFile: string,
    private readonly progressFile?: string,
  ) {
    this.state = { order: [], entries: {}, built: [], ...(existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : {}) };
    this.shims = mkdtempSync(join(tmpdir(), "tt-rehearsal-shims-"));
    // The local host has no cloud-init: its launch has already happened.
    writeFileSync(join(this.shims, "cloud-init"), "#!/bin/sh\necho 'status: done'\n");
    chmodSync(join(this.shims, "cloud-init"), 0o755);
  }

  /** The state a resource had after the last deploy (for probes). */
  entry(type: string, name: string): Entry | undefined {
    return this.state.entries[`${type}::${name}`];
  }

  beginDeploy(): void {
    this.changes = new Map();
    this.errors = [];
  }

  private save(): void {
    mkdirSync(dirname(this.stateFile), { recursive: true });
    writeFileSync(this.stateFile, JSON.stringify(this.state, null, 2), { mode: 0o600 });
    this.report();
  }

  report(): void {
    if (!this.progressFile) return;
    const progress: DeployProgress = { changes: Object.fromEntries(this.changes), errors: this.errors };
    writeFileSync(this.progressFile, JSON.stringify(progress, null, 2));
  }

  private record(resource: DeclaredResource, state: Record<string, unknown>, change: Change): Record<string, unknown> {
    const k = key(resource);
    if (!this.state.order.includes(k)) this.state.order.push(k);
    this.state.entries[k] = {
      type: resource.type,
      name: resource.name,
      inputs: resource.inputs,
      state,
      retainOnDelete: Boolean(resource.options.retainOnDelete),
    };
    this.changes.set(k, change);
    this.save();
    return state;
  }

  /** The mocks' `newResource`: create, replace or keep one resource, for real. */
  respond = async (resource: DeclaredResource): Promise<Record<string, unknown>> => {
    try {
      return await this.apply(resource);
    } catch (error) {
      this.changes.set(key(resource), "failed");
      this.errors.push(`${resource.type} ${resource.name}: ${(error as Error).message}`);
      this.report();
      throw error;
    }
  };

  private async apply(resource: DeclaredResource): Promise<Record<string, unknown>> {
    const { type, inputs } = resource;
    if (type.startsWith("timetracker:")) return {};
    const allowed = IMPLEMENTED[type];
    if (!allowed) throw new Error(`the rehearsal does not implement resource type ${type}`);
    const unknown = Object.keys(inputs).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) throw new Error(`the rehearsal does not implement input(s) ${unknown.join(", ")} of ${type}`);

    const previous = this.state.entries[key(resource)];
    const same = previous !== undefined && isDeepStrictEqual(previous.inputs, inputs);
    const declared: Change = same ? "unchanged" : previous ? "updated" : "created";

    switch (type) {
      case "pulumi:pulumi:Stack":
      case "aws:lightsail/keyPair:KeyPair":
      case "aws:lightsail/instance:Instance":
      case "aws:lightsail/staticIpAttachment:StaticIpAttachment":
      case "aws:lightsail/instancePublicPorts:InstancePublicPorts":
        return this.record(resource, { arn: `arn:rehearsal:${resource.name}` }, declared);
      case "aws:lightsail/staticIp:StaticIp":
        // The "host" is this machine.
        return this.record(resource, { ipAddress: "127.0.0.1", arn: "arn:rehearsal:ip" }, declared);
      case "pulumi:providers:docker":
        if (!String(inputs.host).startsWith("ssh://")) throw new Error(`unexpected Docker host ${String(inputs.host)}`);
        return this.record(resource, {}, declared);
      case "random:index/randomPassword:RandomPassword":
        if (same && previous) return this.record(resource, previous.state, "unchanged");
        return this.record(resource, { result: randomPassword(Number(inputs.length)) }, previous ? "replaced" : "created");
      case "command:remote:Command":
        if (same && previous) return this.record(resource, previous.state, "unchanged");
        return this.record(resource, await this.runCommand(inputs), previous ? "updated" : "created");
      case "docker:index/network:Network":
        return this.record(resource, await this.network(inputs), declared);
      case "docker:index/volume:Volume":
        await dockerOk("POST", "/volumes/create", { Name: inputs.name });
        return this.record(resource, { name: inputs.name }, declared);
      case "docker:index/remoteImage:RemoteImage":
        return this.image(resource, previous, same);
      case "docker:index/container:Container":
        return this.container(resource, previous, same);
      default:
        throw new Error(`the rehearsal does not implement resource type ${type}`);
    }
  }

  private async runCommand(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const connection = inputs.connection as { host?: string };
    if (connection.host !== "127.0.0.1") throw new Error(`remote command aimed at ${connection.host}, not the local host`);
    const result = await exec("bash", ["-c", String(inputs.create)], {
      input: typeof inputs.stdin === "string" ? inputs.stdin : "",
      env: { ...process.env, PATH: `${this.shims}:${process.env.PATH}` },
    });
    if (result.code !== 0) throw new Error(`command exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    return { stdout: result.stdout.trim(), stderr: result.stderr.trim() };
  }

  private async network(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const existing = await dockerApi("GET", `/networks/${inputs.name}`);
    if (existing.status === 200) return { name: inputs.name, id: existing.body.Id };
    const created = await dockerOk("POST", "/networks/create", { Name: inputs.name, Driver: inputs.driver ?? "bridge", CheckDuplicate: true });
    return { name: inputs.name, id: created.Id };
  }

  private async image(resource: DeclaredResource, previous: Entry | undefined, same: boolean): Promise<Record<string, unknown>> {
    const inputs = resource.inputs;
    const name = String(inputs.name);
    const inspect = await dockerApi("GET", `/images/${encodeURIComponent(name)}/json`);
    if (same && previous && inspect.status === 200 && inspect.body.Id === previous.state.imageId) {
      return this.record(resource, previous.state, "unchanged");
    }
    const build = inputs.build as { context: string; dockerfile?: string; buildArgs?: Record<string, string>; forceRemove?: boolean } | undefined;
    if (build) {
      const unknown = Object.keys(build).filter((k) => !["context", "dockerfile", "buildArgs", "forceRemove"].includes(k));
      if (unknown.length > 0) throw new Error(`the rehearsal does not implement build input(s) ${unknown.join(", ")}`);
      const args = Object.entries(build.buildArgs ?? {}).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
      if (build.forceRemove) args.push("--force-rm");
      await execOk("docker", ["build", "-q", "-t", name, "-f", join(build.context, build.dockerfile ?? "Dockerfile"), ...args, build.context], {
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
      });
    } else if (inspect.status !== 200) {
      const repository = name.split("/").pop()?.split(/[:@]/)[0] ?? name;
      const standIn = STAND_INS[repository];
      if (!standIn) throw new Error(`${name} is not on this engine and Docker Hub is not reachable; no stand-in is built for it`);
      await execOk("docker", ["tag", standIn, name]);
    }
    const built = await dockerOk("GET", `/images/${encodeURIComponent(name)}/json`);
    if (build && !this.state.built.includes(built.Id)) this.state.built.push(built.Id);
    return this.record(resource, { imageId: built.Id, repoDigest: "" }, previous ? (previous.state.imageId === built.Id ? "unchanged" : "replaced") : "created");
  }

  private async container(resource: DeclaredResource, previous: Entry | undefined, same: boolean): Promise<Record<string, unknown>> {
    const inputs = resource.inputs as unknown as ContainerInputs;
    const existing = await dockerApi("GET", `/containers/${inputs.name}/json`);
    if (same && previous && existing.status === 200 && existing.body.State?.Running) {
      return this.record(resource, previous.state, "unchanged");
    }
    // deleteBeforeReplace: the name is fixed, so the old one goes first.
    if (existing.status === 200) await dockerOk("DELETE", `/containers/${inputs.name}?force=true&v=false`);
    const created = await dockerOk("POST", `/containers/create?name=${encodeURIComponent(inputs.name)}`, containerBody(inputs));
    const id: string = created.Id;
    for (const upload of inputs.uploads ?? []) await this.upload(inputs.name, upload);
    await dockerOk("POST", `/containers/${id}/start`, undefined, [304]);
    if (inputs.wait) await waitHealthy(inputs.name, inputs.waitTimeout ?? 60);
    return this.record(resource, { id, name: inputs.name }, previous ? "replaced" : "created");
  }

  private async upload(container: string, upload: { file: string; content?: string }): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "tt-upload-"));
    try {
      const local = join(dir, "file");
      writeFileSync(local, upload.content ?? "");
      await execOk("docker", ["cp", local, `${container}:${upload.file}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Removes the images the deploys built (a rehearsal's own clean-up, not part of a destroy). */
  async removeBuiltImages(): Promise<number> {
    let removed = 0;
    for (const id of this.state.built) {
      const res = await dockerApi("DELETE", `/images/${id}?force=true`);
      if (res.status === 200) removed += 1;
    }
    this.state.built = [];
    this.save();
    return removed;
  }

  /** Tears the stack down as `pulumi destroy` would: in reverse order, keeping what must survive. */
  async destroy(): Promise<{ removed: string[]; kept: string[] }> {
    const removed: string[] = [];
    const kept: string[] = [];
    for (const k of [...this.state.order].reverse()) {
      const entry = this.state.entries[k];
      if (!entry) continue;
      const label = `${entry.type} ${String(entry.inputs.name ?? entry.name)}`;
      if (entry.retainOnDelete) {
        kept.push(label);
      } else if (entry.type === "docker:index/container:Container") {
        await dockerOk("DELETE", `/containers/${entry.inputs.name}?force=true`, undefined, [404]);
        removed.push(label);
      } else if (entry.type === "docker:index/network:Network") {
        await dockerOk("DELETE", `/networks/${entry.inputs.name}`, undefined, [404]);
        removed.push(label);
      } else if (entry.type === "docker:index/remoteImage:RemoteImage" && entry.inputs.keepLocally) {
        kept.push(label);
      } else {
        removed.push(label);
      }
      delete this.state.entries[k];
      this.state.order = this.state.order.filter((o) => o !== k);
    }
    this.save();
    return { removed, kept };
  }
}

interface ContainerInputs {
  name: string;
  image: string;
  restart?: string;
  envs?: string[];
  command?: string[];
  networkMode?: string;
  networksAdvanced?: { name: string; aliases?: string[] }[];
  ports?: { internal: number; external?: number; ip?: string; protocol?: string }[];
  volumes?: { volumeName?: string; containerPath?: string }[];
  uploads?: { file: string; content?: string }[];
  healthcheck?: { tests?: string[]; interval?: string; timeout?: string; retries?: number; startPeriod?: string };
  wait?: boolean;
  waitTimeout?: number;
  logDriver?: string;
  logOpts?: Record<string, string>;
  labels?: { label: string; value: string }[];
}

/** The Engine API body for a container, built only from the declared inputs. */
function containerBody(c: ContainerInputs): Record<string, unknown> {
  const portKey = (p: { internal: number; protocol?: string }) => `${p.internal}/${p.protocol ?? "tcp"}`;
  const networks = c.networksAdvanced ?? [];
  const health = c.healthcheck;
  return {
    Image: c.image,
    Env: c.envs ?? [],
    ...(c.command ? { Cmd: c.command } : {}),
    Labels: Object.fromEntries((c.labels ?? []).map((l) => [l.label, l.value])),
    ExposedPorts: Object.fromEntries((c.ports ?? []).map((p) => [portKey(p), {}])),
    ...(health
      ? {
          Healthcheck: {
            Test: health.tests,
            Interval: nanoseconds(health.interval ?? "30s"),
            Timeout: nanoseconds(health.timeout ?? "30s"),
            Retries: health.retries ?? 3,
            StartPeriod: nanoseconds(health.startPeriod ?? "0s"),
          },
        }
      : {}),
    HostConfig: {
      RestartPolicy: { Name: c.restart ?? "no" },
      NetworkMode: c.networkMode === "host" ? "host" : (networks[0]?.name ?? "bridge"),
      PortBindings: Object.fromEntries(
        (c.ports ?? []).map((p) => [portKey(p), [{ HostIp: p.ip ?? "", HostPort: String(p.external ?? "") }]]),
      ),
      Binds: (c.volumes ?? []).map((v) => `${v.volumeName}:${v.containerPath}`),
      LogConfig: { Type: c.logDriver ?? "json-file", Config: c.logOpts ?? {} },
    },
    NetworkingConfig: {
      EndpointsConfig: Object.fromEntries(networks.map((n) => [n.name, { Aliases: n.aliases ?? [] }])),
    },
  };
}

async function waitHealthy(name: string, timeoutSeconds: number): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const info = await dockerOk("GET", `/containers/${name}/json`);
    const health = info.State?.Health?.Status;
    if (health === "healthy" || (!info.State?.Health && info.State?.Running)) return;
    if (!info.State?.Running && info.State?.Status === "exited") {
      const logs = await exec("docker", ["logs", "--tail", "20", name]);
      throw new Error(`container ${name} exited (${info.State.ExitCode}):\n${(logs.stdout + logs.stderr).trim()}`);
    }
    if (Date.now() > deadline) {
      const last = info.State?.Health?.Log?.at(-1)?.Output?.trim() ?? "";
      throw new Error(`container ${name} is not healthy after ${timeoutSeconds}s (${health}): ${last}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function randomPassword(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join("");
}
