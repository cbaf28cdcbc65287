// End-to-end check of the machine stand-in with the real pieces: base image, the package
// mirror, a booted machine running the real launch script while the first-boot stand-in for
// unattended-upgrades holds the dpkg lock, SSH through the firewall proxy, docker over SSH, a
// first boot that fails (mirror down) recovered by the real ready check, and a disk that
// survives its machine. Prints PASS/FAIL per step with timings; exit 1 on failure.
// Removes everything it made, also on failure.
//
//   npx tsx tools/machine/smoke.ts
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { READY_MARKER, renderLaunchScript } from "../../infra/render/launch-script.js";
import { renderReadyCheck } from "../../infra/render/ready-check.js";
import { startPackageMirror, type PackageMirror } from "../rehearsal/package-mirror.js";
import { startFirewallProxy, type FirewallProxy } from "./firewall-proxy.js";
import { writeRules, type FirewallRules } from "./firewall-rules.js";
import { attachDisk, baseImage, bootMachine, destroyMachine, detachDisk, machinesNetwork, releaseDisk, type Machine } from "./machine.js";
import { docker, run, runOk } from "./run.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "../..");
const PUBLIC_IP = "127.0.1.5";
const OUTSIDER = "127.0.0.2"; // a source address the firewall does not allow on port 22
const DEVICE = "/dev/xvdf";
const INNER_IMAGE = "tt-standin/debian:bookworm";

// The real launch script (rendered/<stack>/launch.sh): apt from the package mirror, waiting for the dpkg lock.
const USER_DATA = renderLaunchScript();

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

  const mirror: PackageMirror = await step("package mirror on the machines' gateway", async () => startPackageMirror((await machinesNetwork()).gateway), (m) => `${m.url}: ${m.packages} packages`);
  cleanups.push(() => mirror.stop());

  const boot = async (id: string): Promise<{ machine: Machine; bootedAt: number }> => {
    const bootedAt = performance.now();
    const machine = await bootMachine({ id, userData: USER_DATA, sshUser: "ubuntu", authorizedKeys: [publicKey], image });
    cleanups.push(() => destroyMachine(machine.container));
    return { machine, bootedAt };
  };
  /** SSH answers and cloud-init (with the launch script) is done: its exit code, whether the marker exists, seconds since boot. */
  const waitCloudInit = async (bootedAt: number): Promise<{ code: number; marker: boolean; seconds: number }> => {
    for (;;) {
      const r = await ssh(`cloud-init status --wait >/dev/null; echo cloud-init=$?; if test -f ${READY_MARKER}; then echo marker; fi`);
      if (r.code === 0) {
        const code = Number(r.stdout.match(/cloud-init=(\d+)/)?.[1] ?? -1);
        return { code, marker: r.stdout.includes("marker"), seconds: (performance.now() - bootedAt) / 1000 };
      }
      if (performance.now() - bootedAt > 300_000) throw new Error(`no SSH after 300 s: ${r.stderr.trim()}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  };
  /** What the first-boot lock holder and apt said: the lock was held, and apt waited for it. */
  const lockEvidence = async (): Promise<string> => {
    const holder = await sshOk("sudo -n journalctl -u tt-first-boot-upgrades -o cat --no-pager | grep -E 'holding|released' | tr '\\n' ' '");
    check(/holding .* dpkg locks for \d+ s/.test(holder), `the lock holder did not hold the lock: ${holder}`);
    const waited = await sshOk("sudo -n grep -cE 'Waiting for cache lock|Could not get lock' /var/log/cloud-init-output.log || true");
    return `${holder.trim()}; apt reported the held lock ${waited} times`;
  };

  const first = await step("boot machine 1", () => boot("smoke-1"), (b) => `${b.machine.container} at ${b.machine.address}`);
  writeRules(rulesFile, rules(first.machine.address, ["127.0.0.1/32"]));
  const proxy: FirewallProxy = await step(`firewall proxy on ${PUBLIC_IP}`, () => startFirewallProxy({ address: PUBLIC_IP, rulesFile }), (p) => `pid ${p.pid}`);
  cleanups.push(() => proxy.stop());

  await step("SSH through the proxy; the launch script installed docker.io, cron and rclone from the mirror while the dpkg lock was held", async () => {
    const { code, marker, seconds } = await waitCloudInit(first.bootedAt);
    check(code === 0 || code === 2, `cloud-init exited ${code}: ${await ssh("sudo -n tail -n 20 /var/log/cloud-init-output.log").then((r) => r.stdout)}`);
    check(marker, "launch script marker missing");
    await sshOk("command -v rclone && systemctl is-active docker cron");
    return `${seconds.toFixed(1)} s from boot to the marker; ${await lockEvidence()}`;
  }, (t) => t);
  await step("the ready check (host-ready) passes and prints the host key", async () => {
    const out = await sshOk(renderReadyCheck());
    check(/^ssh-ed25519 /.test(out.split("\n").pop() ?? ""), `last line: ${out}`);
    return out.slice(0, 40);
  }, (v) => v);
  // as host setup does (the launch script leaves the user's groups alone)
  await step("ubuntu joins the docker group; a second SSH session: docker info as ubuntu", async () => {
    await sshOk("sudo -n usermod -aG docker ubuntu");
    return sshOk("docker info --format '{{.ServerVersion}} {{.Driver}}'");
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

  await mirror.stop();
  const second = await step("boot machine 2 (the replacement) with the package mirror down", () => boot("smoke-2"), (b) => `${b.machine.container} at ${b.machine.address}`);
  writeRules(rulesFile, rules(second.machine.address, ["127.0.0.1/32"]));
  await step("machine 2: its first boot failed (launch script retried apt, gave up, no marker)", async () => {
    const { code, marker, seconds } = await waitCloudInit(second.bootedAt);
    check(code !== 0 && code !== 2, `cloud-init exited ${code}`);
    check(!marker, "the marker exists although the mirror was down");
    const log = await sshOk("sudo -n grep -E '^launch: ' /var/log/cloud-init-output.log | tail -n 2 | tr '\\n' ' '");
    check(/failed 5 times/.test(log), `launch script log: ${log}`);
    return `cloud-init exit ${code} at ${seconds.toFixed(1)} s: ${log.trim()}`;
  }, (v) => v);
  await step("machine 2: with the mirror back, the ready check re-runs the launch script and recovers it (same machine)", async () => {
    await mirror.start();
    const t0 = performance.now();
    const r = await ssh(renderReadyCheck());
    check(r.code === 0, `ready check exit ${r.code}: ${r.stderr.trim().split("\n").slice(-5).join(" | ")}`);
    check(/^ssh-ed25519 /.test(r.stdout.trim().split("\n").pop() ?? ""), `last line: ${r.stdout}`);
    check(r.stderr.includes("running it again"), `the ready check did not say it re-ran the script: ${r.stderr.slice(0, 300)}`);
    await sshOk(`test -f ${READY_MARKER} && command -v rclone && systemctl is-active docker cron && sudo -n usermod -aG docker ubuntu`);
    const same = (await docker("ps", "-q", "--filter", `name=${second.machine.container}`)) !== "";
    check(same, "machine 2 is gone");
    return `recovered in ${((performance.now() - t0) / 1000).toFixed(1)} s (${((performance.now() - second.bootedAt) / 1000).toFixed(1)} s from boot), marker written, docker and cron active`;
  }, (v) => v);
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
