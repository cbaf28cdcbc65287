// The rehearsal: one stack's real program deployed onto a local machine stand-in, then probed.
// This file only sets up (arguments, engine and images, the stand-ins for the cloud), runs the
// probe files of probes/ in order, cleans up and prints the figures and the summary line.
// The probes themselves, one file per concern, take the context built in context.ts; a deploy
// is one operator's `pulumi up` (operator.ts).
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { flagsOrExit } from "../../infra/cli/run.js";
import { planFor } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { catalog } from "../../stacks/catalog.js";
import { startFirewallProxy } from "../machine/firewall-proxy.js";
import { destroyMachine, listMachines, machinesNetwork } from "../machine/machine.js";
import { mockConfig } from "../mock-config.js";
import { startBucketServer } from "./bucket-server.js";
import { CLIENTS, makeRehearsal } from "./context.js";
import { exec, execOk, useDaemon } from "./docker.js";
import { HostAccess } from "./host-access.js";
import { startPackageMirror } from "./package-mirror.js";
import { localize, SAMPLE_START_DELAY_SECONDS, withDefinition } from "./localize.js";
import { check, ProbeLog } from "./probes.js";
import { copySampleApp } from "./sample-app.js";
import type { World } from "./world.js";
// The probes, one file per concern, run in this order (each takes the Rehearsal context).
// A new probe file goes in probes/ and gets its line in the sequence below.
import { firstBoot } from "./probes/first-boot.js";
import { theApp } from "./probes/app.js";
import { incidents } from "./probes/incidents.js";
import { rowsWritten } from "./probes/rows.js";
import { releases } from "./probes/releases.js";
import { releaseCrash } from "./probes/release-crash.js";
import { opsCommands } from "./probes/ops.js";
import { backups } from "./probes/backups.js";
import { edits } from "./probes/edits.js";
import { databasePatch } from "./probes/database-patch.js";
import { postgresUpgrade } from "./probes/postgres-upgrade.js";
import { buildArg } from "./probes/build-arg.js";
import { hostKey } from "./probes/host-key.js";
import { assetBridging } from "./probes/asset-bridging.js";
import { lockAndMaintenance } from "./probes/lock-and-maintenance.js";
import { hostStatus } from "./probes/host-status.js";
import { hostReplacement } from "./probes/host-replacement.js";
import { teardown } from "./probes/teardown.js";
import { firstBootLock } from "./probes/first-boot-lock.js";

const USAGE = `usage: npm run rehearse -- [--stack <name>] [--redeploys <n>]
  deploys the stack's real program on a local stand-in for its Lightsail instance (a machine
  booted from its user data, reached over SSH), runs every probe, prints PASS/FAIL and the
  figures, and removes what it made. Needs root and a Docker engine (tools/machine/README.md).
options:
  --stack <name>    the stack to rehearse (default staging)
  --redeploys <n>   backend redeploys in the password-survival probe (default 3)
  -h, --help        print this and exit`;
const values = flagsOrExit(USAGE, { stack: { type: "string", default: "staging" }, redeploys: { type: "string", default: "3" } });
const stackName = values.stack as string;
const redeploys = Number(values.redeploys);
const index = catalog.findIndex((d) => d.name === stackName);
const base = catalog[index];
if (!base) {
  console.error(`no stack "${stackName}"; the catalog has: ${catalog.map((d) => d.name).join(", ")}`);
  process.exit(1);
}

const workdir = resolve(".rehearsal", stackName);
const appSource = join(workdir, "app");
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const say = (text: string) => console.log(`\n== [${elapsed()}] ${text}`);
// The engine the machines run on: DOCKER_HOST when set (CI's fresh engine, app-images/standins/engine.sh fresh).
const LOCAL_ENGINE = process.env.DOCKER_HOST?.startsWith("unix://") ? process.env.DOCKER_HOST.slice("unix://".length) : "/var/run/docker.sock";

say("prerequisites: Docker engine, stand-in images and the machine base image (nothing is pulled)");
await execOk("bash", ["app-images/standins/engine.sh"]).then((r) => process.stdout.write(r.stdout));
process.stdout.write((await execOk("bash", ["app-images/standins/build.sh"])).stdout);
process.stdout.write((await execOk("bash", ["tools/machine/base-image.sh"])).stdout);

const local = localize(base);
const plan: Plan = planFor(withDefinition(catalog, local), stackName);
// The static IP: a loopback address of its own per stack, so two rehearsals never share one.
const staticIp = `127.0.1.${10 + index}`;
const disksDir = join(workdir, "disks");
const keyPath = join(workdir, "id_ed25519");
const probes = new ProbeLog();
const stateFile = join(workdir, "state.json");

/** Loop devices an earlier run of this stack left behind (their files may be gone already).
 *  A device still held by a lazily unmounted filesystem is only marked for auto-clear by
 *  `losetup --detach`; it goes once the kernel lets go, so this waits for that (up to 60 s). */
async function releaseLeftoverDisks(): Promise<void> {
  const ours = async () =>
    (await exec("losetup", ["--noheadings", "--list", "--output", "NAME,BACK-FILE"])).stdout
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter(([device, file]) => device && file?.startsWith(disksDir))
      .map(([device]) => device!);
  for (let attempt = 0; attempt < 60; attempt++) {
    const devices = await ours();
    if (devices.length === 0) return;
    for (const device of devices) await exec("losetup", ["--detach", device]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

say(`clean slate for ${stackName}`);
await releaseLeftoverDisks();
for (const machine of await listMachines()) if (machine.id === plan.host.name) await destroyMachine(machine.container);
rmSync(workdir, { recursive: true, force: true });
mkdirSync(disksDir, { recursive: true });
// The bucket's stand-in listens where the machines reach the outer host: the gateway of their own
// network, which machine.ts makes with a fixed subnet and gateway (the default bridge has no
// gateway in its IPAM config on a Docker engine's first start).
const machinesGateway = (await machinesNetwork()).gateway;
const bucketServer = await startBucketServer(machinesGateway, 4560 + index, join(workdir, "bucket"));
// The machines' apt sources (tools/machine/base-image.sh): the launch script installs docker.io,
// cron and rclone from here at first boot, as a Lightsail instance does from Ubuntu's archive.
const packageMirror = await startPackageMirror(machinesGateway);
const world: World = { staticIp, rulesFile: join(workdir, "firewall.json"), disksDir, bucket: bucketServer.world };
await execOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `rehearsal@${stackName}`, "-f", keyPath]);
copySampleApp(appSource);
const { config, secretKeys } = mockConfig(plan);
const admin = new HostAccess(world.staticIp, plan.host.sshUser, keyPath);
const proxy = await startFirewallProxy({ address: world.staticIp, rulesFile: world.rulesFile });
useDaemon(LOCAL_ENGINE);

const r = makeRehearsal({
  stackName, index, redeploys, plan, local, workdir, appSource, keyPath, stateFile, world, config, secretKeys, admin, probes, say,
  localEngine: LOCAL_ENGINE,
});
const { machineNow, measurements: m } = r;

await firstBoot(r);
await theApp(r);
await incidents(r);
await rowsWritten(r);
await releases(r);
await releaseCrash(r);
await opsCommands(r);
await backups(r);
await edits(r);
await databasePatch(r);
await postgresUpgrade(r);
await buildArg(r);
await assetBridging(r);
await lockAndMaintenance(r);
await hostStatus(r);
await hostKey(r);
await hostReplacement(r);
await firstBootLock(r, packageMirror);
await teardown(r);

say("clean up");
admin.close();
useDaemon(LOCAL_ENGINE);
await r.destroy({ unprotect: true }).catch((error) => console.log(`destroy: ${(error as Error).message}`));
await proxy.stop();
await bucketServer.stop();
await packageMirror.stop();
for (const container of await machineNow()) await destroyMachine(container);
await releaseLeftoverDisks();
rmSync(workdir, { recursive: true, force: true });
await probes.run("clean-up left no machine, disk or stack object on the local engine", async () => {
  check((await machineNow()).length === 0, "machines left");
  const leftovers = await exec("docker", ["ps", "-a", "--filter", `label=timetracker.stack=${stackName}`, "-q"]);
  check(leftovers.stdout.trim() === "", `containers left: ${leftovers.stdout}`);
  // Only this run's: a device another run left (in another clone's folder) is not this one's to judge.
  const loops = (await exec("losetup", ["--noheadings", "--list", "--output", "NAME,BACK-FILE,AUTOCLEAR"])).stdout.split("\n").filter((l) => l.includes(disksDir));
  check(loops.length === 0, `loop devices left (NAME BACK-FILE AUTOCLEAR): ${loops.join("; ")}`);
  return "none left";
});

console.log(`
== measurements (stack ${stackName})
seconds from start to all healthy (first deploy, machine boot included): ${m.secondsToHealthy.toFixed(1)}
seconds from Instance created to the ready check passing:               ${m.bootToReady.toFixed(1)}
seconds from the bundle-grow 'up' to the site answering again:          ${m.growSeconds.toFixed(1)}
requests failed during a backend redeploy:                              ${m.failedDuringRedeploy}
swaps with ${CLIENTS} clients through Caddy, backend starting in ${SAMPLE_START_DELAY_SECONDS} s (requests, failed, worst, p99, deploy seconds):
${Object.entries(m.swaps).map(([what, t]) => `  ${what.padEnd(9)} ${t.sent} requests, ${t.failed} failed, worst ${t.worst.toFixed(3)} s, p99 ${t.p99.toFixed(3)} s, ${t.seconds.toFixed(1)} s`).join("\n")}
restore drill from the bucket copy ${m.nightlyObject}: restored in ${m.restoreSeconds} s (npm run restore took ${m.restoreWall.toFixed(1)} s); rows per table, before -> after:
${m.drill.map((line) => `  ${line}`).join("\n")}
rehearsal wall time: ${elapsed()}
`);
const passed = probes.results.length - probes.failed;
console.log(`rehearsal: ${passed} passed, ${probes.failed} failed`);
process.exitCode = probes.failed === 0 ? 0 : 1;
