import { randomInt } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { BLUEPRINT_USER } from "../../infra/model/schema.js";
import { attachDisk, bootMachine, destroyMachine, restartMachine } from "../machine/machine.js";
import type { Action, Decision } from "../changes/decide.js";
import type { DeclaredResource } from "../mock-engine.js";
import { containerBody, waitHealthy, type ContainerInputs } from "./containers.js";
import type { ReportedHostKey } from "../../infra/components/known-hosts.js";
import { daemonEnv, dockerApi, dockerOk, exec, execOk, useDaemon } from "./docker.js";
import { openDockerTunnel, runRemote, type Connection, type Tunnel } from "./ssh.js";
import { emptyState, StepEngine, type EngineState, type Entry, type Providers, type Registration } from "./step-engine.js";
import { writeFirewall, readFirewall, type PortInfo, type World } from "./world.js";

/** Official images that Docker Hub would serve, by repository and major, and the local stand-ins built from Debian. */
const STAND_INS: Record<string, string> = {
  "postgres:15": "tt-standin/postgres:15",
  "postgres:17": "tt-standin/postgres:17",
  "redis:7": "tt-standin/redis:7",
  "caddy:2": "tt-standin/caddy:2",
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
  "command:remote:Command": ["connection", "create", "delete", "stdin", "triggers", "addPreviousOutputInEnv"],
  "docker:index/network:Network": ["name", "driver", "labels"],
  "docker:index/volume:Volume": ["name", "driver", "driverOpts", "labels"],
  "docker:index/remoteImage:RemoteImage": ["name", "keepLocally", "build", "triggers"],
  "docker:index/container:Container": [
    "name", "image", "restart", "envs", "command", "networkMode", "networksAdvanced", "ports", "volumes",
    "uploads", "healthcheck", "wait", "waitTimeout", "logDriver", "logOpts", "labels", "mustRun", "attach",
    "logs", "rm", "start", "destroyGraceSeconds",
  ],
};

interface State extends EngineState {
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
  /** Every provider call in the order the engine made it, with the Docker host a delete went through. */
  calls: string[];
  errors: string[];
  /** Milliseconds since the epoch at milestones: an instance booted, the host became ready. */
  timings: Record<string, number>;
}

const key = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

type DockerSettings = { host: string; sshOpts: string[] };

/** The provider's settings as the engine hands them over: non-string settings JSON-encoded. */
function dockerSettings(provider: Entry | undefined): DockerSettings {
  if (!provider) throw new Error("a Docker resource without its explicit provider");
  const raw = provider.inputs.sshOpts;
  const sshOpts = typeof raw === "string" ? (JSON.parse(raw) as string[]) : ((raw as string[] | undefined) ?? []);
  return { host: String(provider.inputs.host), sshOpts };
}

/** A Docker provider's settings in a line: its host, and the end of the host key its ssh accepts. */
function describeSettings(settings: Record<string, unknown>): string {
  const { host, sshOpts } = dockerSettings({ inputs: settings } as Entry);
  const pinned = sshOpts.find((o) => o.startsWith("KnownHostsCommand="))?.split(" ").at(-1) ?? "";
  return `${host} pinning …${pinned.slice(-8)}`;
}

/**
 * Stands in for the providers so the program's resources are created for real: the
 * instance is a machine (tools/machine) booted from the declared user data, reached only
 * over SSH; the Docker resources go to that machine's own daemon, through the settings of
 * the provider the registry holds at that moment (an old host's objects through the old
 * settings); the disk is a block device that outlives it. Which call comes when is the
 * step engine's (step-engine.ts, Pulumi's order); what each call does is here.
 */
/** An ed25519 key no machine of the rehearsal has (its blob's 32 key bytes are zeros). */
const ANOTHER_MACHINES_KEY = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32)]).toString("base64");

export class RehearsalEngine implements Providers {
  private readonly state: State;
  public progress: DeployProgress = { changes: {}, calls: [], errors: [], timings: {} };
  private readonly steps: StepEngine;
  private tunnel?: { settings: string; tunnel: Tunnel };

  constructor(
    private readonly stateFile: string,
    private readonly world: World,
    private readonly progressFile?: string,
  ) {
    this.state = { ...emptyState(), built: [], ...(existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : {}) };
    this.steps = new StepEngine(this.state, this, () => this.save());
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
    if (!this.progressFile) return;
    this.progress.calls = this.steps.calls.map((c) => `${c.op} ${c.name}${c.via ? ` via ${describeSettings(c.via)}` : ""}`);
    writeFileSync(this.progressFile, JSON.stringify(this.progress, null, 2));
  }

  /** The mocks' `newResource`: the step engine decides and orders; the calls below do it for real. */
  respond = async (resource: DeclaredResource): Promise<Record<string, unknown>> => {
    const k = key(resource);
    try {
      refuseUnimplemented(resource);
      const state = await this.steps.register(resource as Registration);
      const decision = this.steps.decisions.get(k);
      if (decision && decision !== "failed") {
        this.progress.changes[k] = { action: decision.action, causes: [...decision.causes, ...decision.ignored.map((i) => `${i} (recorded, never applied)`)] };
      }
      this.report();
      return state;
    } catch (error) {
      this.progress.changes[k] = { action: "failed", causes: [] };
      this.progress.errors.push(`${resource.type} ${resource.name}: ${(error as Error).message}`);
      this.report();
      throw error;
    }
  };

  /** The end of a successful `up`: the deletes Pulumi leaves for last. */
  async finish(): Promise<void> {
    try {
      await this.steps.finish();
    } catch (error) {
      this.progress.errors.push(`finishing the update: ${(error as Error).message}`);
      throw error;
    } finally {
      this.report();
    }
  }

  async create(resource: Registration, provider: Entry | undefined): Promise<Record<string, unknown>> {
    const { type, inputs } = resource;
    switch (type) {
      case "pulumi:pulumi:Stack":
      case "aws:lightsail/keyPair:KeyPair":
        return { arn: `arn:rehearsal:${resource.name}` };
      case "aws:lightsail/instance:Instance":
        return this.instance(resource);
      case "aws:lightsail/staticIp:StaticIp":
        return { ipAddress: this.world.staticIp, arn: `arn:rehearsal:${inputs.name}` };
      case "aws:lightsail/staticIpAttachment:StaticIpAttachment":
        writeFirewall(this.world, { ...readFirewall(this.world), target: this.machineNamed(String(inputs.instanceName)).address });
        return {};
      case "aws:lightsail/disk:Disk":
        return { imageFile: join(this.world.disksDir, `${String(inputs.name)}.img`), arn: `arn:rehearsal:lightsail:Disk/${String(inputs.name)}` };
      case "aws:lightsail/disk_attachment:Disk_attachment":
        return this.diskAttachment(inputs);
      case "aws:lightsail/instancePublicPorts:InstancePublicPorts":
        // PutInstancePublicPorts sets the whole list: what it omits is closed.
        writeFirewall(this.world, { ...readFirewall(this.world), portInfos: inputs.portInfos as PortInfo[] });
        return {};
      case "aws:lightsail/bucket:Bucket":
        return this.bucket(resource);
      case "aws:lightsail/bucketAccessKey:BucketAccessKey":
        return this.bucketKey(inputs);
      case "aws:lightsail/bucketResourceAccess:BucketResourceAccess":
        // Lightsail's grant lets the instance's own role reach the bucket; the stand-in has no
        // roles, and the host uses the access key either way. Checked, recorded, nothing to realise.
        this.machineNamed(String(inputs.resourceName));
        return {};
      case "random:index/randomPassword:RandomPassword":
        return { result: randomPassword(Number(inputs.length)) };
      case "random:index/randomString:RandomString":
        return { result: randomString(Number(inputs.length), inputs.upper !== false) };
      case "command:remote:Command":
        return this.command(resource, String(inputs.create));
      case "pulumi:providers:docker":
        // A provider holds settings; it reaches the daemon when a resource needs it.
        return {};
      case "docker:index/network:Network":
        await this.docker(provider);
        return this.network(inputs);
      case "docker:index/volume:Volume":
        await this.docker(provider);
        return this.volume(inputs);
      case "docker:index/remoteImage:RemoteImage":
        await this.docker(provider);
        return this.image(inputs);
      case "docker:index/container:Container":
        await this.docker(provider);
        return this.container(resource);
      default:
        throw new Error(`the rehearsal does not implement resource type ${type}`);
    }
  }

  async update(resource: Registration, old: Entry, _decision: Decision, provider: Entry | undefined): Promise<Record<string, unknown>> {
    const { type, inputs } = resource;
    switch (type) {
      case "command:remote:Command":
        // An update runs `update`, or `create` again when no `update` is given.
        return this.command(resource, String(inputs.update ?? inputs.create));
      case "docker:index/container:Container":
        // The provider updates only the restart policy and resource limits in place.
        await this.docker(provider);
        await dockerOk("POST", `/containers/${String(inputs.name)}/update`, { RestartPolicy: { Name: inputs.restart ?? "no" } });
        return old.state;
      case "aws:lightsail/instancePublicPorts:InstancePublicPorts":
        writeFirewall(this.world, { ...readFirewall(this.world), portInfos: inputs.portInfos as PortInfo[] });
        return old.state;
      default:
        // Tags, add-ons, provider settings: state only for the stand-ins.
        return old.state;
    }
  }

  async delete(old: Entry, provider: Entry | undefined): Promise<void> {
    const { type, inputs } = old;
    switch (type) {
      case "aws:lightsail/instance:Instance":
        if (this.tunnel) this.closeTunnel();
        await destroyMachine(String(old.state.container));
        return;
      case "aws:lightsail/staticIpAttachment:StaticIpAttachment":
        writeFirewall(this.world, { ...readFirewall(this.world), target: null });
        return;
      case "aws:lightsail/disk_attachment:Disk_attachment":
        return this.detachDisk(inputs);
      case "aws:lightsail/instancePublicPorts:InstancePublicPorts": {
        // The delete closes every port it listed, also ones a newer list opened (pulumi/pulumi-aws#1511).
        const closed = inputs.portInfos as PortInfo[];
        const firewall = readFirewall(this.world);
        writeFirewall(this.world, { ...firewall, portInfos: firewall.portInfos.filter((p) => !closed.some((c) => c.fromPort === p.fromPort && c.toPort === p.toPort)) });
        return;
      }
      case "aws:lightsail/disk:Disk":
        rmSync(String(old.state.imageFile), { force: true });
        return;
      case "aws:lightsail/bucket:Bucket":
        rmSync(join(this.world.bucket.directory, String(inputs.name)), { recursive: true, force: true });
        return;
      case "command:remote:Command":
        // Without `delete`, a command's delete does nothing (pulumi-command remote/commandController.go).
        if (typeof inputs.delete === "string") await this.command(old as unknown as Registration, inputs.delete);
        return;
      case "docker:index/network:Network":
        await this.docker(provider);
        return removeNetwork(String(inputs.name));
      case "docker:index/volume:Volume":
        await this.docker(provider);
        await dockerOk("DELETE", `/volumes/${String(inputs.name)}`, undefined, [404]);
        return;
      case "docker:index/remoteImage:RemoteImage":
        if (inputs.keepLocally) return;
        await this.docker(provider);
        await dockerOk("DELETE", `/images/${encodeURIComponent(String(inputs.name))}`, undefined, [404]);
        return;
      case "docker:index/container:Container":
        await this.docker(provider);
        return removeContainer(String(inputs.name), Number(inputs.destroyGraceSeconds ?? 0));
      default:
        // Key pairs, static IPs, grants, access keys, random values, providers: nothing on a machine.
        return;
    }
  }

  /**
   * The host keys Lightsail reports for an instance, read from its machine directly (as
   * Lightsail reads them from the instance, not over SSH); none until sshd has made them.
   */
  async reportedHostKeys(instanceName: string): Promise<ReportedHostKey[] | undefined> {
    const entry = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/instance:Instance" && e.inputs.name === instanceName);
    if (!entry) return undefined;
    if (this.world.reportedHostKeys === "another") return [{ algorithm: "ssh-ed25519", publicKey: ANOTHER_MACHINES_KEY }];
    const read = await exec("docker", ["exec", String(entry.state.container), "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
    if (read.code !== 0) return [];
    const [algorithm, publicKey] = read.stdout.trim().split(/\s+/);
    return [{ algorithm, publicKey }];
  }

  private machineNamed(instanceName: string): { container: string; address: string } {
    const entry = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/instance:Instance" && e.inputs.name === instanceName);
    if (!entry) throw new Error(`no instance named ${instanceName} in the stack`);
    return entry.state as { container: string; address: string };
  }

  /** A new instance is a new machine, booted from the user data with the key pair's public key. */
  private async instance(resource: Registration): Promise<Record<string, unknown>> {
    const inputs = resource.inputs;
    const keyPair = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/keyPair:KeyPair" && e.inputs.name === inputs.keyPairName);
    if (!keyPair) throw new Error(`key pair ${String(inputs.keyPairName)} does not exist`);
    const user = BLUEPRINT_USER[String(inputs.blueprintId) as keyof typeof BLUEPRINT_USER];
    if (!user) throw new Error(`blueprint ${String(inputs.blueprintId)} has no stand-in`);
    this.progress.timings.instanceCreating = Date.now();
    const machine = await bootMachine({ id: String(inputs.name), userData: String(inputs.userData), sshUser: user, authorizedKeys: [String(keyPair.inputs.publicKey)] });
    this.progress.timings.instanceCreated = Date.now();
    return { arn: `arn:rehearsal:lightsail:Instance/${machine.container}`, container: machine.container, address: machine.address };
  }

  /** A bucket is a folder of the stand-in server's store. */
  private bucket(resource: Registration): Record<string, unknown> {
    const name = String(resource.inputs.name);
    if (!/^[a-z0-9][a-z0-9-]{1,52}[a-z0-9]$/.test(name)) throw new Error(`InvalidInputException: bucket name ${name} is not valid`);
    mkdirSync(join(this.world.bucket.directory, name), { recursive: true });
    return { arn: `arn:rehearsal:lightsail:Bucket/${name}`, url: `${this.world.bucket.endpoint}/${name}/` };
  }

  /** The one key the stand-in server accepts: what CreateBucketAccessKey would return. */
  private bucketKey(inputs: Record<string, unknown>): Record<string, unknown> {
    if (!existsSync(join(this.world.bucket.directory, String(inputs.bucketName)))) throw new Error(`NotFoundException: bucket ${String(inputs.bucketName)} does not exist`);
    const key = JSON.parse(readFileSync(this.world.bucket.keyFile, "utf8")) as { accessKeyId: string; secretAccessKey: string };
    return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, status: "Active" };
  }

  private diskOf(inputs: Record<string, unknown>): Entry {
    const disk = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/disk:Disk" && e.inputs.name === inputs.diskName);
    if (!disk) throw new Error(`disk ${String(inputs.diskName)} does not exist`);
    return disk;
  }

  private async diskAttachment(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const disk = this.diskOf(inputs);
    const machine = this.machineNamed(String(inputs.instanceName));
    await attachDisk(machine, String(disk.state.imageFile), String(inputs.diskPath), Number(disk.inputs.sizeInGb));
    return {};
  }

  /**
   * DetachDisk on a running instance: Lightsail stops the instance, detaches, starts it
   * (terraform-provider-aws lightsail/disk_attachment.go). The stand-in shuts its machine
   * down cleanly, and a machine that starts again has no device node for the disk.
   */
  private async detachDisk(inputs: Record<string, unknown>): Promise<void> {
    const instance = Object.values(this.state.entries).find((e) => e.type === "aws:lightsail/instance:Instance" && e.inputs.name === inputs.instanceName);
    if (!instance) return;
    const address = await restartMachine(String(instance.state.container));
    const firewall = readFirewall(this.world);
    if (firewall.target === instance.state.address) writeFirewall(this.world, { ...firewall, target: address });
    instance.state = { ...instance.state, address };
  }

  private async command(resource: Registration, script: string): Promise<Record<string, unknown>> {
    const inputs = resource.inputs;
    const result = await runRemote(inputs.connection as Connection, script, typeof inputs.stdin === "string" ? inputs.stdin : "");
    if (result.code !== 0) throw new Error(`command exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    if (resource.name === "host-ready") this.progress.timings.hostReady = Date.now();
    return { stdout: result.stdout.trim(), stderr: result.stderr.trim() };
  }

  /** The provider's `ssh://` transport with the settings it holds now, opened once per settings. */
  private async docker(provider: Entry | undefined): Promise<void> {
    const settings = dockerSettings(provider);
    const id = JSON.stringify(settings);
    if (this.tunnel?.settings === id) return useDaemon(this.tunnel.tunnel.socket);
    this.closeTunnel();
    this.tunnel = { settings: id, tunnel: await openDockerTunnel(settings.host, settings.sshOpts) };
  }

  private closeTunnel(): void {
    this.tunnel?.tunnel.close();
    this.tunnel = undefined;
  }

  close(): void {
    this.closeTunnel();
  }

  private async network(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    const created = await dockerOk("POST", "/networks/create", {
      Name: inputs.name,
      Driver: inputs.driver ?? "bridge",
      CheckDuplicate: true,
      Labels: labels(inputs.labels),
    });
    return { name: inputs.name, id: created.Id };
  }

  private async volume(inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
    // A retained volume's delete was skipped; Docker then hands back the same-named volume.
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
      const [repository = name, tag = ""] = name.split("/").pop()?.split("@")[0]?.split(":") ?? [];
      const standIn = STAND_INS[`${repository}:${/^\d+/.exec(tag)?.[0] ?? ""}`];
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

  /** A new container; one of the same name still there fails the create, as it does with the provider. */
  private async container(resource: Registration): Promise<Record<string, unknown>> {
    const inputs = resource.inputs as unknown as ContainerInputs;
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

  /** Tears the stack down as `pulumi destroy` would (step-engine.ts), every delete done for real. */
  async destroy(options: { unprotect: boolean }): Promise<{ removed: string[]; kept: string[] }> {
    try {
      return await this.steps.destroy(options);
    } finally {
      this.report();
    }
  }
}

/** Refuses a type or input the stand-ins do not implement: never silently dropped. */
function refuseUnimplemented(resource: DeclaredResource): void {
  if (resource.type.startsWith("timetracker:")) return;
  const allowed = IMPLEMENTED[resource.type];
  if (!allowed) throw new Error(`the rehearsal does not implement resource type ${resource.type}`);
  const unknown = Object.keys(resource.inputs).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new Error(`the rehearsal does not implement input(s) ${unknown.join(", ")} of ${resource.type}`);
}

/** kreuzwerker v4.5.0 resource_docker_container_funcs.go: stop with destroy_grace_seconds (0: killed), then remove. */
async function removeContainer(name: string, graceSeconds: number): Promise<void> {
  if (graceSeconds > 0) await dockerOk("POST", `/containers/${name}/stop?t=${graceSeconds}`, undefined, [304, 404]);
  await dockerOk("DELETE", `/containers/${name}?force=true&v=false`, undefined, [404]);
}

/** kreuzwerker v4.5.0 resource_docker_network_funcs.go: "has active endpoints" is retried for 30 s, then the delete fails. */
async function removeNetwork(name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await dockerApi("DELETE", `/networks/${name}`);
    if (res.status < 300 || res.status === 404) return;
    const message = typeof res.body === "object" ? String(res.body?.message) : String(res.body);
    if (!/active endpoints/.test(message) || Date.now() > deadline) throw new Error(`Error removing network ${name}: ${message}`);
    await new Promise((r) => setTimeout(r, 1000));
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
