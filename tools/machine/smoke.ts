// End-to-end check of the machine stand-in with the real pieces: base image, a booted
// machine running a launch script, SSH through the firewall proxy, docker over SSH, and a
// disk that survives its machine. Prints PASS/FAIL per step with timings; exit 1 on failure.
// Removes everything it made, also on failure.
//
//   npx tsx tools/machine/smoke.ts
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startFirewallProxy, type FirewallProxy } from "./firewall-proxy.js";
import { writeRules, type FirewallRules } from "./firewall-rules.js";
import { attachDisk, baseImage, bootMachine, destroyMachine, detachDisk, releaseDisk, type Machine } from "./machine.js";
import { docker, run, runOk } from "./run.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "../..");
const PUBLIC_IP = "127.0.1.5";
const OUTSIDER = "127.0.0.2"; // a source address the firewall does not allow on port 22
const DEVICE = "/dev/xvdf";
const INNER_IMAGE = "tt-standin/debian:bookworm";

// Like our real launch script (rendered/<stack>/launch.sh), in miniature.
const USER_DATA = `#!/bin/bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -o Dpkg::Options::=--force-confold docker.io cron
install -d -m 0755 /etc/docker
cat > /etc/docker/daemon.json <<'JSON'
{ "log-driver": "json-file", "log-opts": { "max-size": "10m", "max-file": "3" } }
JSON
systemctl enable docker cron
systemctl restart docker
usermod -aG docker ubuntu
install -d -m 0755 -o ubuntu -g ubuntu /var/lib/timetracker
touch /var/lib/timetracker/launch-done
`;

let failed = false;
const cleanups: Array<() => Promise<unknown>> = [];

async function step<T>(name: string, fn: () => Promise<T>, detail?: (v: T) => string): Promise<T> {
  const t0 = performance.now();
  try {
    const value = await fn();
    const extra = detail ? ` ${detail(value)}` : "";
    console.log(`PASS ${name} (${((performance.now() - t0) / 1000).toFixed(1)}s)${extra}`);
    return value;
  } catch (err) {
    failed = true;
    console.log(`FAIL ${name} (${((performance.now() - t0) / 1000).toFixed(1)}s): ${(err as Error).message}`);
    throw err;
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "tt-machine-smoke-"));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  const key = join(work, "id_ed25519");
  const rulesFile = join(work, "rules.json");
  const diskFile = join(work, "disk.img");
  cleanups.push(() => releaseDisk(diskFile));

  const sshOpts = ["-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"];
  const ssh = (command: string, extra: string[] = []) => run("ssh", [...sshOpts, ...extra, `ubuntu@${PUBLIC_IP}`, command]);
  const sshOk = async (command: string) => {
    const r = await ssh(command);
    check(r.code === 0, `ssh ${command}: exit ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ")}`);
    return r.stdout.trim();
  };
  const rules = (target: string | null, sshFrom: string[] | null): FirewallRules => ({
    target,
    portInfos: [
      { protocol: "tcp", fromPort: 80, toPort: 80, cidrs: ["0.0.0.0/0"] },
      { protocol: "tcp", fromPort: 443, toPort: 443, cidrs: ["0.0.0.0/0"] },
      ...(sshFrom ? [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrs: sshFrom }] : []),
    ],
  });

  const image = await step("base image built or reused", () => baseImage(), (tag) => tag);
  const publicKey = await step("ed25519 key pair", async () => {
    await runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "tt-machine-smoke", "-f", key]);
    return (await readFile(`${key}.pub`, "utf8")).trim();
  });

  const boot = async (id: string): Promise<{ machine: Machine; bootedAt: number }> => {
    const bootedAt = performance.now();
    const machine = await bootMachine({ id, userData: USER_DATA, sshUser: "ubuntu", authorizedKeys: [publicKey], image });
    cleanups.push(() => destroyMachine(machine.container));
    return { machine, bootedAt };
  };
  /** SSH answers and cloud-init (with the launch script) is done; seconds since boot. */
  const waitReady = async (bootedAt: number): Promise<string> => {
    for (;;) {
      const r = await ssh("cloud-init status --wait >/dev/null; echo cloud-init=$?; test -f /var/lib/timetracker/launch-done && echo marker");
      if (r.code === 0) {
        check(/cloud-init=[02]\b/.test(r.stdout), `cloud-init status: ${r.stdout.trim()}`);
        check(r.stdout.includes("marker"), "launch script marker missing");
        return `${((performance.now() - bootedAt) / 1000).toFixed(1)}s from boot`;
      }
      if (performance.now() - bootedAt > 180_000) throw new Error(`no SSH after 180 s: ${r.stderr.trim()}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  };

  const first = await step("boot machine 1", () => boot("smoke-1"), (b) => `${b.machine.container} at ${b.machine.address}`);
  writeRules(rulesFile, rules(first.machine.address, ["127.0.0.1/32"]));
  const proxy: FirewallProxy = await step(`firewall proxy on ${PUBLIC_IP}`, () => startFirewallProxy({ address: PUBLIC_IP, rulesFile }), (p) => `pid ${p.pid}`);
  cleanups.push(() => proxy.stop());

  await step("SSH through the proxy; cloud-init done, launch script ran", () => waitReady(first.bootedAt), (t) => t);
  await step("second SSH session: docker info as ubuntu", async () => {
    const out = await sshOk("docker info --format '{{.ServerVersion}} {{.Driver}}'");
    return out;
  }, (v) => v);
  await step("HTTP on port 80 from any source reaches the machine", async () => {
    await sshOk("sudo systemd-run --unit tt-smoke-http python3 -m http.server 80 --directory /var/lib/timetracker >/dev/null");
    for (let i = 0; ; i++) {
      const r = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--interface", OUTSIDER, `http://${PUBLIC_IP}/launch-done`]);
      if (r.stdout === "200") return;
      if (i > 40) throw new Error(`curl: ${r.stdout} ${r.stderr.trim()}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  });
  await step(`SSH from ${OUTSIDER} is refused`, async () => {
    const r = await ssh("true", ["-b", OUTSIDER]);
    check(r.code === 255 && !/denied/i.test(r.stderr), `expected a refused connection, got exit ${r.code}: ${r.stderr.trim()}`);
  });
  await step("port 22 closed when the rules omit it", async () => {
    writeRules(rulesFile, rules(first.machine.address, null));
    const r = await ssh("true");
    writeRules(rulesFile, rules(first.machine.address, ["127.0.0.1/32"]));
    check(r.code === 255, `expected a refused connection, got exit ${r.code}`);
    await sshOk("true");
  });

  await step("docker over SSH: load an image and run it on the machine's daemon", async () => {
    if ((await run("docker", ["image", "inspect", INNER_IMAGE])).code !== 0) {
      await runOk("bash", [join(REPO, "app-images/standins/build.sh"), "debian"]);
    }
    const tar = join(work, "image.tar");
    await docker("save", "-o", tar, INNER_IMAGE);
    const sock = join(work, "docker.sock");
    const forward: ChildProcess = spawn("ssh", [...sshOpts, "-nNT", "-o", "ExitOnForwardFailure=yes", "-L", `${sock}:/var/run/docker.sock`, `ubuntu@${PUBLIC_IP}`], { stdio: "ignore" });
    cleanups.push(async () => forward.kill());
    for (let i = 0; !existsSync(sock); i++) {
      if (i > 100 || forward.exitCode !== null) throw new Error("SSH socket forward did not come up");
      await new Promise((res) => setTimeout(res, 100));
    }
    const env = { ...process.env, DOCKER_HOST: `unix://${sock}` };
    const loadStart = performance.now();
    await runOk("docker", ["load", "-i", tar], { env });
    const loadSeconds = ((performance.now() - loadStart) / 1000).toFixed(1);
    const hello = (await runOk("docker", ["run", "--rm", INNER_IMAGE, "sh", "-c", "echo hello from $(hostname)"], { env })).stdout.trim();
    await runOk("docker", ["run", "-d", "--name", "tt-smoke-inner", INNER_IMAGE, "sleep", "600"], { env });
    const inner = (await runOk("docker", ["ps", "-q", "--filter", "name=tt-smoke-inner"], { env })).stdout.trim();
    const outer = await docker("ps", "-aq", "--filter", "name=tt-smoke-inner");
    check(inner !== "" && outer === "", `inner ps: '${inner}', outer ps: '${outer}'`);
    forward.kill();
    return { hello, loadSeconds };
  }, (r) => `"${r.hello}" (docker load ${r.loadSeconds}s); not on the outer engine`);

  await step(`disk at ${DEVICE}: formatted once, mounted, written`, async () => {
    await attachDisk(first.machine, diskFile, DEVICE, 1);
    return sshOk(`sudo sh -c 'blkid ${DEVICE} >/dev/null || mkfs.ext4 -q ${DEVICE}; mkdir -p /data && mount ${DEVICE} /data && echo kept-across-machines > /data/proof && sync && blkid -o value -s TYPE ${DEVICE}'`);
  }, (fs) => fs);

  await step("destroy machine 1: container and inner storage gone", async () => {
    await destroyMachine(first.machine.container);
    check((await run("docker", ["inspect", first.machine.container])).code !== 0, "container still exists");
    check((await run("docker", ["volume", "inspect", first.machine.volume])).code !== 0, "inner storage volume still exists");
  });

  const second = await step("boot machine 2 (the replacement)", () => boot("smoke-2"), (b) => `${b.machine.container} at ${b.machine.address}`);
  writeRules(rulesFile, rules(second.machine.address, ["127.0.0.1/32"]));
  await step("machine 2: SSH, cloud-init done", () => waitReady(second.bootedAt), (t) => t);
  await step("machine 2: fresh disk of its own (no image, no container from machine 1)", async () => {
    const out = await sshOk("docker images -q | wc -l; docker ps -aq | wc -l");
    check(out.replace(/\s+/g, " ") === "0 0", `images/containers: ${out}`);
  });
  await step("re-attach the same disk: the file is there", async () => {
    await attachDisk(second.machine, diskFile, DEVICE, 1);
    const out = await sshOk(`sudo sh -c 'blkid ${DEVICE} >/dev/null || echo UNFORMATTED; mkdir -p /data && mount ${DEVICE} /data && cat /data/proof'`);
    check(out === "kept-across-machines", `read: ${out}`);
    return out;
  }, (v) => v);
  await step(`detach the disk: unmounted, ${DEVICE} gone`, async () => {
    await detachDisk(second.machine, DEVICE);
    await sshOk(`! findmnt /data >/dev/null && test ! -e ${DEVICE}`);
  });
}

try {
  await main();
} catch {
  // reported by step(); cleanup follows
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      failed = true;
      console.log(`FAIL cleanup: ${(err as Error).message}`);
    }
  }
  // only ours: other runs may have machines of their own
  const leftovers = [await docker("ps", "-aq", "--filter", "label=tt.machine=smoke-1"), await docker("ps", "-aq", "--filter", "label=tt.machine=smoke-2")].join(" ").trim();
  if (leftovers) {
    failed = true;
    console.log(`FAIL leftover machines: ${leftovers.replace(/\n/g, " ")}`);
  }
}
console.log(failed ? "FAIL machine stand-in smoke" : "PASS machine stand-in smoke");
process.exit(failed ? 1 : 0);
