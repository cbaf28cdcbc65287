// A stand-in for one Lightsail instance: a privileged "system container" on the outer
// Docker engine, running systemd as PID 1, cloud-init (NoCloud), sshd and its own dockerd
// whose storage is a docker volume of its own. It is reached like a real instance: over
// SSH at its address (through firewall-proxy.ts for the public side).
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { docker, run, runOk, type RunResult } from "./run.js";

export { attachDisk, detachDisk, releaseDisk, type AttachedDisk } from "./disk.js";

export interface MachineSpec {
  /** Stable name of the instance (e.g. the Lightsail instance name); recorded as label tt.machine. */
  id: string;
  /** The launch script, passed byte for byte as NoCloud user-data. */
  userData: string;
  /** Must be the blueprint's default user, "ubuntu" (the only one the base image creates). */
  sshUser: string;
  /** OpenSSH public keys installed for sshUser (NoCloud meta-data public-keys). */
  authorizedKeys: string[];
  /** Base image tag; default: what base-image.sh builds or finds. */
  image?: string;
  /** Outer engine network to attach to; default the machines' own (machinesNetwork()). */
  network?: string;
}

export interface Machine {
  container: string;
  /** Its IP on the outer engine's network. */
  address: string;
  id: string;
  /** Docker volume holding the inner dockerd's /var/lib/docker. */
  volume: string;
}

export const LABEL = "tt.machine";
const VOLUME_LABEL = "tt.machine.volume";
const DEFAULT_USER = "ubuntu";
const HERE = dirname(fileURLToPath(import.meta.url));

let baseImageTag: Promise<string> | undefined;

/** The outer engine's network the machines attach to, and where it reaches the outer host. */
export interface MachinesNetwork {
  name: string;
  subnet: string;
  /** The outer host's address on it: the one address of this side every machine reaches. */
  gateway: string;
}

const MACHINES_NETWORK = process.env.TT_MACHINES_NETWORK ?? "tt-machines";
/** Tried in order when TT_MACHINES_SUBNET is not set: the first no interface of this host routes. */
const FREE_SUBNET_CANDIDATES = Array.from({ length: 40 }, (_, i) => `10.213.${213 + i}.0/24`);
let machinesNetworkReady: Promise<MachinesNetwork> | undefined;

/**
 * The machines' network: user-defined, with a subnet and gateway written here, made when the
 * engine lacks it (once per process). Not the default bridge: on Debian's Docker 20.10 its IPAM
 * config has no Gateway until dockerd has been restarted once, so an engine's first start gave
 * no address for the outer host (the rehearsal's bucket listens there). Its subnet is
 * TT_MACHINES_SUBNET when set (refused when routed already), else the first free one of
 * 10.213.213-252.0/24: another engine's bridge, even a stopped one's, keeps its route in the
 * kernel, and two of them on one subnet would shadow each other.
 */
export function machinesNetwork(): Promise<MachinesNetwork> {
  machinesNetworkReady ??= ensureMachinesNetwork(MACHINES_NETWORK, process.env.TT_MACHINES_SUBNET);
  return machinesNetworkReady;
}

/** The routes of this host that cover `subnet`'s gateway (the default route aside). */
async function routesOver(subnet: string): Promise<string[]> {
  const { stdout } = await runOk("ip", ["-4", "route", "show", "to", "match", firstHost(subnet)]);
  return stdout.split("\n").filter((l) => l.trim() && !l.startsWith("default"));
}

async function freeSubnet(wanted: string | undefined): Promise<string> {
  if (wanted) {
    const routed = await routesOver(wanted);
    if (routed.length > 0) throw new Error(`machinesNetwork: TT_MACHINES_SUBNET ${wanted} is already routed on this host (${routed.join("; ")}); pick another, or unset it to have a free one chosen`);
    return wanted;
  }
  for (const candidate of FREE_SUBNET_CANDIDATES) if ((await routesOver(candidate)).length === 0) return candidate;
  throw new Error(`machinesNetwork: every subnet from ${FREE_SUBNET_CANDIDATES[0]} to ${FREE_SUBNET_CANDIDATES.at(-1)} is routed on this host; set TT_MACHINES_SUBNET to a free one`);
}

async function ensureMachinesNetwork(name: string, wantedSubnet: string | undefined): Promise<MachinesNetwork> {
  const inspect = () => run("docker", ["network", "inspect", name, "--format", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}"]);
  let found = await inspect();
  if (found.code !== 0) {
    const subnet = await freeSubnet(wantedSubnet);
    const gateway = firstHost(subnet);
    // The bridge link's name: 15 characters at most, the network's name cut short (engine.sh
    // stop-fresh finds a fresh engine's by its prefix) and a hash of the whole, so two
    // networks whose names share a beginning get two links.
    const bridge = `${name.slice(0, 10)}${createHash("sha256").update(name).digest("hex").slice(0, 4)}`;
    const created = await run("docker", [
      "network", "create", "--driver", "bridge", "--subnet", subnet, "--gateway", gateway,
      "--opt", `com.docker.network.bridge.name=${bridge}`, "--label", `${LABEL}.network=1`, name,
    ]);
    found = await inspect();
    if (found.code !== 0) throw new Error(`machinesNetwork: could not create ${name}: ${created.stderr.trim()}`);
  }
  const [haveSubnet = "", gateway = ""] = found.stdout.trim().split(" ");
  if (!gateway) throw new Error(`machinesNetwork: network ${name} has no gateway in its IPAM config; remove it (docker network rm ${name}) to have it made again`);
  return { name, subnet: haveSubnet, gateway };
}

/** "10.213.213.0/24" -> "10.213.213.1". */
function firstHost(subnet: string): string {
  const [address = "", bits = "32"] = subnet.split("/");
  const octets = address.split(".").map(Number);
  const value = (octets.reduce((n, o) => n * 256 + o, 0) & ~(2 ** (32 - Number(bits)) - 1)) >>> 0;
  return [24, 16, 8, 0].map((shift) => ((value + 1) >>> shift) & 255).join(".");
}

/** Builds the base image or finds it cached (once per process); returns its tag. */
export function baseImage(): Promise<string> {
  baseImageTag ??= runOk("bash", [join(HERE, "base-image.sh")]).then((r) => r.stdout.trim().split("\n").pop() ?? "");
  return baseImageTag;
}

// Why each flag (cgroup v1 host, systemd 252 as PID 1, dockerd inside):
//  not --privileged       it asks runc for every capability, and fails ("unable to apply
//                         caps") on hosts whose bounding set lacks one (CAP_SYS_RESOURCE here)
//  --cap-add ALL --cap-drop SYS_RESOURCE
//                         everything else --privileged would grant (mount, mknod, net admin
//                         for the inner dockerd's iptables and bridges)
//  seccomp/systempaths=unconfined
//                         inner runc and dockerd need the syscalls and writable /proc/sys
//  --device-cgroup-rule a *:* rwm
//                         block devices made with mknod (attached disks) may be opened
//  --cgroupns=private     systemd sees its own cgroup as the root of each hierarchy, and
//                         tt-machine-init can make those mounts writable without touching
//                         the host's tree
//  --tmpfs /run,/run/lock systemd expects tmpfs there (as on a VM)
//  SIGRTMIN+3 (the image's STOPSIGNAL) makes `docker stop` a clean systemd shutdown
const RUN_FLAGS = [
  "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
  "--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined",
  "--device-cgroup-rule", "a *:* rwm",
  "--cgroupns=private",
  "--tmpfs", "/run", "--tmpfs", "/run/lock",
];

/** Boots a machine: returns once its container runs and has an address (sshd and
 *  cloud-init come up within seconds after; wait for them over SSH as with a real instance). */
export async function bootMachine(spec: MachineSpec): Promise<Machine> {
  if (spec.sshUser !== DEFAULT_USER) {
    throw new Error(`bootMachine: sshUser ${spec.sshUser}: the base image's default user is ${DEFAULT_USER}`);
  }
  const image = spec.image ?? (await baseImage());
  // unique per boot: a replacement (create-before-delete) boots while the old one still runs
  const name = `tt-machine-${spec.id.replace(/[^a-zA-Z0-9_.-]/g, "-")}-${Date.now().toString(36)}`;
  const volume = `${name}-docker`;
  await docker("volume", "create", "--label", `${LABEL}=${spec.id}`, volume);
  try {
    await docker(
      "create",
      "--name", name,
      "--hostname", spec.id.replace(/[^a-zA-Z0-9-]/g, "-").slice(0, 63),
      "--label", `${LABEL}=${spec.id}`,
      "--label", `${VOLUME_LABEL}=${volume}`,
      "--network", spec.network ?? (await machinesNetwork()).name,
      ...RUN_FLAGS,
      // the inner dockerd's storage: a real filesystem (overlay2 cannot sit on overlay2)
      "-v", `${volume}:/var/lib/docker`,
      image,
    );
    await writeSeed(name, spec);
    await docker("start", name);
    const address = await docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name);
    const first = address.split(" ")[0];
    if (!first) throw new Error(`bootMachine: container ${name} has no address`);
    return { container: name, address: first, id: spec.id, volume };
  } catch (err) {
    await run("docker", ["rm", "-f", name]);
    await run("docker", ["volume", "rm", "-f", volume]);
    throw err;
  }
}

/** Writes the NoCloud seed (user-data byte for byte, meta-data) into the created container. */
async function writeSeed(container: string, spec: MachineSpec): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tt-machine-seed-"));
  try {
    const seed = join(dir, "var/lib/cloud/seed/nocloud");
    await mkdir(seed, { recursive: true });
    await writeFile(join(seed, "user-data"), spec.userData);
    // JSON is YAML: no quoting surprises in keys or ids
    const meta = { "instance-id": container, "local-hostname": spec.id, "public-keys": spec.authorizedKeys };
    await writeFile(join(seed, "meta-data"), JSON.stringify(meta, null, 2) + "\n");
    // docker cp extracts the tree into / and merges with what is there
    await docker("cp", join(dir, "var"), `${container}:/`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Removes the machine and its inner storage: everything on its own disk is gone
 *  (attached disks are not: their image files and loop devices live on the outer host). */
export async function destroyMachine(container: string): Promise<void> {
  const volume = (await run("docker", ["inspect", "--format", `{{ index .Config.Labels "${VOLUME_LABEL}" }}`, container])).stdout.trim();
  await run("docker", ["rm", "-f", "-v", container]);
  if (volume) await runOk("docker", ["volume", "rm", "-f", volume]);
}

export interface MachineInfo {
  container: string;
  id: string;
  state: string;
}

/** Every machine container on the outer engine, running or not. */
export async function listMachines(): Promise<MachineInfo[]> {
  const out = await docker("ps", "-a", "--filter", `label=${LABEL}`, "--format", `{{.Names}}\t{{.Label "${LABEL}"}}\t{{.State}}`);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [container = "", id = "", state = ""] = line.split("\t");
      return { container, id, state };
    });
}

/** Removes every machine and every machine storage volume left behind. Returns what it removed. */
export async function destroyAllMachines(): Promise<string[]> {
  const removed: string[] = [];
  for (const m of await listMachines()) {
    await destroyMachine(m.container);
    removed.push(m.container);
  }
  const volumes = await docker("volume", "ls", "-q", "--filter", `label=${LABEL}`);
  for (const v of volumes.split("\n").filter(Boolean)) {
    await run("docker", ["volume", "rm", "-f", v]);
    removed.push(v);
  }
  return removed;
}

/** Runs a command inside the machine as root (outer-engine access, for diagnostics and disk
 *  plumbing; deploy steps must use SSH like on a real instance). */
export function machineExec(machine: Pick<Machine, "container">, command: string): Promise<RunResult> {
  return run("docker", ["exec", machine.container, "sh", "-c", command]);
}

/** Stops the machine as an instance stop does (a clean systemd shutdown), starts it again and returns its address. */
export async function restartMachine(container: string): Promise<string> {
  await docker("stop", "--time", "60", container);
  await docker("start", container);
  const address = (await docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container)).split(" ")[0];
  if (!address) throw new Error(`restartMachine: container ${container} has no address`);
  return address;
}
