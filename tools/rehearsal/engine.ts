import { randomInt } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { BLUEPRINT_USER } from "../../infra/model/schema.js";
import { attachDisk, bootMachine, destroyMachine } from "../machine/machine.js";
import { decide, decideDelete, type Action, type Decision, type ResourceOptions } from "../changes/decide.js";
import type { DeclaredResource } from "../mock-engine.js";
import { containerBody, waitHealthy, type ContainerInputs } from "./containers.js";
import { daemonEnv, dockerApi, dockerOk, execOk } from "./docker.js";
import { openDockerTunnel, runRemote, type Connection, type Tunnel } from "./ssh.js";
import { writeFirewall, readFirewall, type World } from "./world.js";

/** Official images that Docker Hub would serve, and the local stand-ins built from Debian. */
const STAND_INS: Record<string, string> = {
  postgres: "tt-standin/postgres:15",
  redis: "tt-standin/redis:7",
  caddy: "tt-standin/caddy:2",
};

/** The inputs each resource type may carry; anything else is refused, never dropped. */
const IMPLEMENTED: Record<string, string[]> = {
  "pulumi:pulumi:Stack": [],
  "pulumi:providers:docker": ["host", "sshOpts", "version", "disableDockerDaemonCheck"],
  "aws:lightsail/keyPair:KeyPair": ["name", "publicKey", "tags"],
  "aws:lightsail/instance:Instance": ["name", "availabilityZone", "blueprintId", "bundleId", "keyPairName", "userData", "addOn", "tags"],
  "aws:lightsail/staticIp:StaticIp": ["name"],
  "aws:lightsail/staticIpAttachment:StaticIpAttachment": ["staticIpName", "instanceName"],
  "aws:lightsail/disk:Disk": ["name", "availabilityZone", "sizeInGb", "tags"],
  "aws:lightsail/disk_attachment:Disk_attachment": ["diskName", "instanceName", "diskPath"],
  "aws:lightsail/instancePublicPorts:InstancePublicPorts": ["instanceName", "portInfos"],
  "aws:lightsail/bucket:Bucket": ["name", "bundleId", "tags"],
  "aws:lightsail/bucketAccessKey:BucketAccessKey": ["bucketName"],
  "aws:lightsail/bucketResourceAccess:BucketResourceAccess": ["bucketName", "resourceName"],
  "random:index/randomPassword:RandomPassword": ["length", "special", "keepers"],
  "random:index/randomString:RandomString": ["length", "special", "upper"],
  "command:remote:Command": ["connection", "create", "stdin", "triggers", "addPreviousOutputInEnv"],
  "docker:index/network:Network": ["name", "driver", "labels"],
  "docker:index/volume:Volume": ["name", "driver", "driverOpts", "labels"],
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
  inputDeps: Record<string, string[]>;
  options: ResourceOptions;
  state: Record<string, unknown>;
}

interface State {
  order: string[];
  entries: Record<string, Entry>;
  /** Every image id a build produced, so a rehearsal can remove what it made. */
  built: string[];
}

/** What one deploy did to one resource, and why: the rehearsal's own preview of a change. */
export interface Step {
  action: Action | "failed";
  causes: string[];
}

export interface DeployProgress {
  changes: Record<string, Step>;
  errors: string[];
  /** Milliseconds since the epoch at milestones: an instance booted, the host became ready. */
  timings: Record<string, number>;
}

const key = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

/**
 * Stands in for the providers so the program's resources are created for real: the
 * instance is a machine (tools/machine) booted from the declared user data, reached only
 * over SSH; the Docker resources go to that machine's own daemon; the disk is a block
 * device that outlives it. Every change follows the providers' replace rules
 * (tools/changes/provider-rules.ts), so a replaced instance is a new, empty machine.
 */
export class RehearsalEngine {
  private readonly state: State;
  public progress: DeployProgress = { changes: {}, errors: [], timings: {} };
  private readonly replaced = new Map<string, Decision>();
  private tunnel?: Tunnel;

  constructor(
    private readonly stateFile: string,
    private readonly world: World,
    private readonly progressFile?: string,
  ) {
    this.state = { order: [], entries: {}, built: [], ...(existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : {}) };
  }

  /** The state a resource had after the last deploy (for probes). */
  entry(type: string, name: string): Entry | undefined {
    return this.state.entries[`${type}::${name}`];
  }

  private save(): void {
    mkdirSync(dirname(this.stateFile), { recursive: true });
    writeFileSync(this.stateFile, JSON.stringify(this.state, null, 2), { mode: 0o600 });
    this.report();
  }

  report(): void {
    if (this.progressFile) writeFileSync(this.progressFile, JSON.stringify(this.progress, null, 2));
  }

  private record(resource: DeclaredResource, state: Record<string, unknown>, decision: Decision): Record<string, unknown> {
    const k = key(resource);
    if (!this.state.order.includes(k)) this.state.order.push(k);
    this.state.entries[k] = {
      type: resource.type,
      name: resource.name,
      inputs: resource.inputs,
      inputDeps: resource.inputDeps,
      options: { protect: resource.options.protect, retainOnDelete: resource.options.retainOnDelete, deleteBeforeReplace: resource.options.deleteBeforeReplace },
      state,
    };
    this.progress.changes[k] = { action: decision.action, causes: [...decision.causes, ...decision.ignored.map((i) => `${i} (recorded, never applied)`)] };
    this.save();
    return state;
  }

  /** The mocks' `newResource`: decide as the engine would, then create, replace or keep one resource, for real. */
  respond = async (resource: DeclaredResource): Promise<Record<string, unknown>> => {
    try {
      return await this.apply(resource);
    } catch (error) {
      this.progress.changes[key(resource)] = { action: "failed", causes: [] };
      this.progress.errors.push(`${resource.type} ${resource.name}: ${(error as Error).message}`);
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
    const decision = decide(resource, previous, this.replaced);
    if (decision.action === "replace") {
      this.replaced.set(resource.name, decision);
      // Refused when both the old and the new resource are protected (pulumi/pulumi#8810).
      if (previous?.options.protect && resource.options.protect) {
        throw new Error(`unable to replace resource "${resource.name}" (${decision.causes.join(", ")}): it is marked for protection`);
      }
    }
    const kept = previous && (decision.action === "same" || (decision.action === "update" && decision.causes.length === 0));
    if (kept && type !== "pulumi:providers:docker") return this.record(resource, previous.state, decision);

    switch (type) {
      case "pulumi:pulumi:Stack":
      case "aws:lightsail/keyPair:KeyPair":
        return this.record(resource, { arn: `arn:rehearsal:${resource.name}` }, decision);
      case "aws:lightsail/instance:Instance":
        return this.record(resource, await this.instance(resource, previous, decision), decision);
      case "aws:lightsail/staticIp:StaticIp":
        return this.record(resource, { ipAddress: this.world.staticIp, arn: `arn:rehearsal:${inputs.name}` }, decision);
      case "aws:lightsail/staticIpAttachment:StaticIpAttachment":
        writeFirewall(this.world, { ...readFirewall(this.world), target: this.machineNamed(String(inputs.instanceName)).address });
        return this.record(resource, {}, decision);
      case "aws:lightsail/disk:Disk":
        return this.record(resource, this.disk(resource, decision), decision);
      case "aws:lightsail/disk_attachment:Disk_attachment":
        return this.record(resource, await this.diskAttachment(inputs), decision);
      case "aws:lightsail/instancePublicPorts:InstancePublicPorts":
        this.firewall(resource, previous, decision);
        return this.record(resource, {}, decision);
      case "aws:lightsail/bucket:Bucket":
        return this.record(resource, this.bucket(resource, decision), decision);
      case "aws:lightsail/bucketAccessKey:BucketAccessKey":
        return this.record(resource, this.bucketKey(inputs), decision);
      case "aws:lightsail/bucketResourceAccess:BucketResourceAccess":
        // Lightsail's grant lets the instance's own role reach the bucket; the stand-in has no
        // roles, and the host uses the access key either way. Checked, recorded, nothing to realise.
        this.machineNamed(String(inputs.resourceName));
        return this.record(resource, {}, decision);
      case "random:index/randomPassword:RandomPassword":
        return this.record(resource, { result: randomPassword(Number(inputs.length)) }, decision);
      case "random:index/randomString:RandomString":
        return this.record(resource, { result: randomString(Number(inputs.length), inputs.upper !== false) }, decision);
      case "command:remote:Command":
        return this.record(resource, await this.command(resource), decision);
      case "pulumi:providers:docker":
        await this.connectDocker(inputs);
        return this.record(resource, {}, decision);
      case "docker:index/network:Network":
        return this.record(resource, await this.network(inputs, decision), decision);
      case "docker:index/volume:Volume":
        return this.record(resource, await this.volume(inputs, decision), decision);
      case "docker:index/remoteImage:RemoteImage":
        return this.record(resource, await this.image(inputs), decision);
      case "docker:index/container:Container":
        return this.record(resource, await this.container(resource, previous, decision), decision);
      default:
        throw new Error(`the rehearsal does not implement resource type ${type}`);
    }
  }

  private machineNamed(instanceName: string): { container: string; address: string } {
    const entry = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/instance:Instance" && e.inputs.name === instanceName);
    if (!entry) throw new Error(`no instance named ${instanceName} in the stack`);
    return entry.state as { container: string; address: string };
  }

  /** A new instance is a new machine; a replaced one takes its whole disk with it (delete first: the name is fixed). */
  private async instance(resource: DeclaredResource, previous: Entry | undefined, decision: Decision): Promise<Record<string, unknown>> {
    const inputs = resource.inputs;
    if (decision.action === "update") return previous?.state ?? {};
    if (previous?.state.container) await destroyMachine(String(previous.state.container));
    const keyPair = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/keyPair:KeyPair" && e.inputs.name === inputs.keyPairName);
    if (!keyPair) throw new Error(`key pair ${String(inputs.keyPairName)} does not exist`);
    const user = BLUEPRINT_USER[String(inputs.blueprintId) as keyof typeof BLUEPRINT_USER];
    if (!user) throw new Error(`blueprint ${String(inputs.blueprintId)} has no stand-in`);
    this.progress.timings.instanceCreating = Date.now();
    const machine = await bootMachine({ id: String(inputs.name), userData: String(inputs.userData), sshUser: user, authorizedKeys: [String(keyPair.inputs.publicKey)] });
    this.progress.timings.instanceCreated = Date.now();
    return { arn: `arn:rehearsal:lightsail:Instance/${machine.container}`, container: machine.container, address: machine.address };
  }

  private disk(resource: DeclaredResource, decision: Decision): Record<string, unknown> {
    const imageFile = join(this.world.disksDir, `${String(resource.inputs.name)}.img`);
    // A new disk is blank: a replacement loses what the old one held (protect stops that first).
    if (decision.action === "replace") rmSync(imageFile, { force: true });
    return { imageFile, arn: `arn:rehearsal:lightsail:Disk/${String(resource.inputs.name)}` };
  }

  /** A bucket is a folder of the stand-in server's store; a replacement would start empty (protect stops that first). */
  private bucket(resource: DeclaredResource, decision: Decision): Record<string, unknown> {
    const name = String(resource.inputs.name);
    if (!/^[a-z0-9][a-z0-9-]{1,52}[a-z0-9]$/.test(name)) throw new Error(`InvalidInputException: bucket name ${name} is not valid`);
    const folder = join(this.world.bucket.directory, name);
    if (decision.action === "replace") rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder, { recursive: true });
    return { arn: `arn:rehearsal:lightsail:Bucket/${name}`, url: `${this.world.bucket.endpoint}/${name}/` };
  }

  /** The one key the stand-in server accepts: what CreateBucketAccessKey would return. */
  private bucketKey(inputs: Record<string, unknown>): Record<string, unknown> {
    if (!existsSync(join(this.world.bucket.directory, String(inputs.bucketName)))) throw new Error(`NotFoundException: bucket ${String(inputs.bucketName)} does not exist`);
    const key = JSON.parse(readFileSync(this.world.bucket.keyFile, "utf8")) as { accessKeyId: string; secretAccessKey: string };
    return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, status: "Active" };
  }

  private async diskAttachment(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const disk = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/disk:Disk" && e.inputs.name === inputs.diskName);
    if (!disk) throw new Error(`disk ${String(inputs.diskName)} does not exist`);
    const machine = this.machineNamed(String(inputs.instanceName));
    await attachDisk(machine, String(disk.state.imageFile), String(inputs.diskPath), Number(disk.inputs.sizeInGb));
    return {};
  }

  /**
   * PutInstancePublicPorts sets the whole list. A replacement is create-then-delete, and the
   * old one's delete closes every port it listed (pulumi/pulumi-aws#1511) unless it is retained.
   */
  private firewall(resource: DeclaredResource, previous: Entry | undefined, decision: Decision): void {
    type PortInfo = { fromPort: number; toPort: number };
    const next = resource.inputs.portInfos as PortInfo[];
    let open = next;
    if (decision.action === "replace" && previous && !previous.options.retainOnDelete && !decision.deleteFirst) {
      const closed = previous.inputs.portInfos as PortInfo[];
      open = next.filter((p) => !closed.some((c) => c.fromPort === p.fromPort && c.toPort === p.toPort));
    }
    writeFirewall(this.world, { ...readFirewall(this.world), portInfos: open });
  }

  private async command(resource: DeclaredResource): Promise<Record<string, unknown>> {
    const inputs = resource.inputs;
    const result = await runRemote(inputs.connection as Connection, String(inputs.create), typeof inputs.stdin === "string" ? inputs.stdin : "");
    if (result.code !== 0) throw new Error(`command exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    if (resource.name === "host-ready") this.progress.timings.hostReady = Date.now();
    return { stdout: result.stdout.trim(), stderr: result.stderr.trim() };
  }

  /** The provider's `ssh://` transport, opened once per deploy, with the declared `sshOpts`. */
  private async connectDocker(inputs: Record<string, unknown>): Promise<void> {
    // The engine hands a provider its non-string settings JSON-encoded.
    const sshOpts = typeof inputs.sshOpts === "string" ? (JSON.parse(inputs.sshOpts) as string[]) : ((inputs.sshOpts as string[] | undefined) ?? []);
    this.tunnel?.close();
    this.tunnel = await openDockerTunnel(String(inputs.host), sshOpts);
  }

  close(): void {
    this.tunnel?.close();
  }

  private async network(inputs: Record<string, unknown>, decision: Decision): Promise<Record<string, unknown>> {
    if (decision.action === "replace") await dockerOk("DELETE", `/networks/${inputs.name}`, undefined, [404]);
    const created = await dockerOk("POST", "/networks/create", {
      Name: inputs.name,
      Driver: inputs.driver ?? "bridge",
      CheckDuplicate: true,
      Labels: labels(inputs.labels),
    });
    return { name: inputs.name, id: created.Id };
  }

  private async volume(inputs: Record<string, unknown>, decision: Decision): Promise<Record<string, unknown>> {
    // A retained volume's delete is skipped; Docker then hands back the same-named volume.
    if (decision.action === "replace") await dockerOk("DELETE", `/volumes/${inputs.name}`, undefined, [404, 409]).catch(() => undefined);
    await dockerOk("POST", "/volumes/create", {
      Name: inputs.name,
      Driver: inputs.driver ?? "local",
      DriverOpts: inputs.driverOpts ?? {},
      Labels: labels(inputs.labels),
    });
    return { name: inputs.name };
  }

  private async image(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const name = String(inputs.name);
    const build = inputs.build as
      | { context: string; dockerfile?: string; buildArgs?: Record<string, string>; forceRemove?: boolean; label?: Record<string, string> }
      | undefined;
    if (build) {
      const unknown = Object.keys(build).filter((k) => !["context", "dockerfile", "buildArgs", "forceRemove", "label"].includes(k));
      if (unknown.length > 0) throw new Error(`the rehearsal does not implement build input(s) ${unknown.join(", ")}`);
      const dockerfile = join(build.context, build.dockerfile ?? "Dockerfile");
      for (const base of fromImages(readFileSync(dockerfile, "utf8"))) await this.load(base, base);
      const args = Object.entries(build.buildArgs ?? {}).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
      // The provider's build.label is the Docker build's labels (ImageBuildOptions.Labels): `docker build --label`.
      args.push(...Object.entries(build.label ?? {}).flatMap(([k, v]) => ["--label", `${k}=${v}`]));
      if (build.forceRemove) args.push("--force-rm");
      await execOk("docker", ["build", "-q", "-t", name, "-f", dockerfile, ...args, build.context], {
        env: { ...daemonEnv(), DOCKER_BUILDKIT: "0" },
      });
    } else {
      const repository = name.split("/").pop()?.split(/[:@]/)[0] ?? name;
      const standIn = STAND_INS[repository];
      if (!standIn) throw new Error(`${name} is not on this host and Docker Hub is not reachable; no stand-in is built for it`);
      await this.load(standIn, name);
    }
    const built = await dockerOk("GET", `/images/${encodeURIComponent(name)}/json`);
    if (build && !this.state.built.includes(built.Id)) this.state.built.push(built.Id);
    return { imageId: built.Id, repoDigest: "" };
  }

  /** What a registry pull would do: the stand-in image, saved from the local engine and loaded on the host over SSH. */
  private async load(localTag: string, as: string): Promise<void> {
    if ((await dockerApi("GET", `/images/${encodeURIComponent(as)}/json`)).status === 200) return;
    if ((await dockerApi("GET", `/images/${encodeURIComponent(localTag)}/json`)).status !== 200) {
      await execOk("bash", ["-c", 'set -o pipefail; docker save "$1" | DOCKER_HOST="$2" docker load -q', "load", localTag, String(daemonEnv().DOCKER_HOST)]);
    }
    if (localTag !== as) await execOk("docker", ["tag", localTag, as], { env: daemonEnv() });
  }

  private async container(resource: DeclaredResource, previous: Entry | undefined, decision: Decision): Promise<Record<string, unknown>> {
    const inputs = resource.inputs as unknown as ContainerInputs;
    // The provider updates only the restart policy and resource limits in place.
    if (decision.action === "update" && previous) {
      await dockerOk("POST", `/containers/${inputs.name}/update`, { RestartPolicy: { Name: inputs.restart ?? "no" } });
      return previous.state;
    }
    // Delete before replace: the name is fixed, so the old one goes first.
    await dockerOk("DELETE", `/containers/${inputs.name}?force=true&v=false`, undefined, [404]);
    const created = await dockerOk("POST", `/containers/create?name=${encodeURIComponent(inputs.name)}`, containerBody(inputs));
    const id: string = created.Id;
    for (const upload of inputs.uploads ?? []) await this.upload(inputs.name, upload);
    await dockerOk("POST", `/containers/${id}/start`, undefined, [304]);
    if (inputs.wait) await waitHealthy(inputs.name, inputs.waitTimeout ?? 60);
    return { id, name: inputs.name };
  }

  private async upload(container: string, upload: { file: string; content?: string }): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "tt-upload-"));
    try {
      const local = join(dir, "file");
      writeFileSync(local, upload.content ?? "");
      await execOk("docker", ["cp", local, `${container}:${upload.file}`], { env: daemonEnv() });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Removes the images the deploys built (a rehearsal's own clean-up, not part of a destroy). */
  async removeBuiltImages(): Promise<number> {
    let removed = 0;
    for (const id of this.state.built) if ((await dockerApi("DELETE", `/images/${id}?force=true`)).status === 200) removed += 1;
    this.state.built = [];
    this.save();
    return removed;
  }

  private forget(k: string): void {
    delete this.state.entries[k];
    this.state.order = this.state.order.filter((o) => o !== k);
    this.save();
  }

  /**
   * Tears the stack down as `pulumi destroy` would: in reverse order, keeping what is
   * retained. `unprotect` first, as an operator must before destroying protected resources.
   */
  async destroy(options: { unprotect: boolean }): Promise<{ removed: string[]; kept: string[] }> {
    const removed: string[] = [];
    const kept: string[] = [];
    for (const k of [...this.state.order].reverse()) {
      const entry = this.state.entries[k];
      if (!entry) continue;
      if (entry.options.protect && !options.unprotect) throw new Error(`${entry.name} is protected: unprotect it first`);
      const label = `${entry.type} ${String(entry.inputs.name ?? entry.name)}`;
      if (entry.options.retainOnDelete) kept.push(label);
      else if (entry.type === "aws:lightsail/instance:Instance") {
        await destroyMachine(String(entry.state.container));
        removed.push(label);
      } else removed.push(label);
      this.progress.changes[k] = decideDelete();
      this.forget(k);
    }
    return { removed, kept };
  }
}

const labels = (list: unknown) => Object.fromEntries(((list as { label: string; value: string }[] | undefined) ?? []).map((l) => [l.label, l.value]));

/** The images a Dockerfile builds FROM (a build on the host needs them there). */
function fromImages(dockerfile: string): string[] {
  return [...dockerfile.matchAll(/^FROM\s+(\S+)/gim)].map((m) => m[1] ?? "").filter((ref) => ref !== "" && ref !== "scratch");
}

function randomString(length: number, upper: boolean): string {
  const alphabet = `abcdefghijklmnopqrstuvwxyz0123456789${upper ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ" : ""}`;
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join("");
}

function randomPassword(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join("");
}
