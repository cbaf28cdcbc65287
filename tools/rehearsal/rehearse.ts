import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { planFor } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { READY_MARKER } from "../../infra/render/launch-script.js";
import { catalog } from "../../stacks/catalog.js";
import { destroyMachine, listMachines } from "../machine/machine.js";
import { mockConfig } from "../mock-config.js";
import { daemonEnv, dockerApi, dockerOk, exec, execOk, useDaemon } from "./docker.js";
import { RehearsalEngine, type DeployProgress } from "./engine.js";
import { startFirewallProxy } from "../machine/firewall-proxy.js";
import { HostAccess, tcpOpen } from "./host-access.js";
import { runRemote } from "./ssh.js";
import { httpRequest, requestLoop, websocketEcho, type Endpoint, type Traffic } from "./http.js";
import { copySampleApp } from "./sample-app.js";
import { BACKUP_TOOL } from "../../infra/render/backup.js";
import { S3RVER_OBJECT, startBucketServer } from "./bucket-server.js";
import { localize, REHEARSAL_ADMIN_CIDR, SAMPLE_START_DELAY_SECONDS, withDefinition } from "./localize.js";
import { releaseStateDir } from "../../infra/render/release.js";
import { check, ProbeLog } from "./probes.js";
import type { World } from "./world.js";

const USAGE = `usage: npm run rehearse -- [--stack <name>] [--redeploys <n>]
  deploys the stack's real program on a local stand-in for its Lightsail instance (a machine
  booted from its user data, reached over SSH), runs every probe, prints PASS/FAIL and the
  figures, and removes what it made. Needs root and a Docker engine (tools/machine/README.md).
options:
  --stack <name>    the stack to rehearse (default staging)
  --redeploys <n>   backend redeploys in the password-survival probe (default 3)
  -h, --help        print this and exit`;
const { values } = (() => {
  try {
    return parseArgs({
      options: { stack: { type: "string", default: "staging" }, redeploys: { type: "string", default: "3" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(1);
  }
})();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const stackName = values.stack ?? "staging";
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
const LOCAL_ENGINE = "/var/run/docker.sock";

say("prerequisites: Docker engine, stand-in images and the machine base image (nothing is pulled)");
await execOk("bash", ["app-images/standins/engine.sh"]).then((r) => process.stdout.write(r.stdout));
process.stdout.write((await execOk("bash", ["app-images/standins/build.sh"])).stdout);
process.stdout.write((await execOk("bash", ["tools/machine/base-image.sh"])).stdout);

const local = localize(base);
const plan: Plan = planFor(withDefinition(catalog, local), stackName);
const host = plan.domains[0] ?? "";
// The static IP: a loopback address of its own per stack, so two rehearsals never share one.
const staticIp = `127.0.1.${10 + index}`;
const disksDir = join(workdir, "disks");
const web: Endpoint = { address: staticIp, port: plan.caddy.httpPort };
const keyPath = join(workdir, "id_ed25519");
const probes = new ProbeLog();
const stateFile = join(workdir, "state.json");
const progressFile = join(workdir, "progress.json");

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
for (const m of await listMachines()) if (m.id === plan.host.name) await destroyMachine(m.container);
rmSync(workdir, { recursive: true, force: true });
mkdirSync(disksDir, { recursive: true });
// The bucket's stand-in listens where the machines can reach the outer host: the gateway of their network.
const machinesGateway = (await execOk("docker", ["-H", `unix://${LOCAL_ENGINE}`, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"])).stdout.trim();
const bucketServer = await startBucketServer(machinesGateway, 4560 + index, join(workdir, "bucket"));
const world: World = { staticIp, rulesFile: join(workdir, "firewall.json"), disksDir, bucket: bucketServer.world };
await execOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `rehearsal@${stackName}`, "-f", keyPath]);
copySampleApp(appSource);
const { config, secretKeys } = mockConfig(plan);
const admin = new HostAccess(world.staticIp, plan.host.sshUser, readFileSync(keyPath, "utf8"), keyPath);
const proxy = await startFirewallProxy({ address: world.staticIp, rulesFile: world.rulesFile });

/** Runs the real program for the stack, in its own process as `pulumi up` would be; never throws. */
async function deploy(definition: EnvironmentDefinition, secretConfig: Record<string, string> = {}) {
  writeFileSync(join(workdir, "definitions.json"), JSON.stringify(withDefinition(catalog, definition)));
  writeFileSync(join(workdir, "world.json"), JSON.stringify(world));
  writeFileSync(
    join(workdir, "config.json"),
    JSON.stringify({
      config: {
        ...config,
        ...secretConfig,
        "timetracker:appSource": appSource,
        "timetracker:buildDir": join(workdir, "build"),
        "timetracker:sshPublicKeyPath": `${keyPath}.pub`,
        "timetracker:sshPrivateKeyPath": keyPath,
        "timetracker:bucketEndpoint": world.bucket.endpoint,
      },
      secretKeys: [...secretKeys, ...Object.keys(secretConfig)],
    }),
    { mode: 0o600 },
  );
  rmSync(progressFile, { force: true });
  const run = await exec("npx", [
    "tsx", "tools/rehearsal/deploy-once.ts",
    "--stack", stackName,
    "--definitions", join(workdir, "definitions.json"),
    "--config", join(workdir, "config.json"),
    "--state", stateFile,
    "--world", join(workdir, "world.json"),
    "--progress", progressFile,
  ]);
  const progress: DeployProgress = existsSync(progressFile) ? JSON.parse(readFileSync(progressFile, "utf8")) : { changes: {}, errors: [], timings: {} };
  const steps = Object.entries(progress.changes).filter(([, s]) => s.action !== "same");
  const changed = steps.map(([k, s]) => `${k.split("::")[1]} ${s.action}`);
  const failed = run.code !== 0 || progress.errors.length > 0;
  const error = progress.errors[0] ?? (run.code !== 0 ? `deploy exited ${run.code}: ${run.stderr.trim().split("\n").slice(-5).join("\n")}` : "");
  const action = (name: string) => steps.find(([k]) => k.endsWith(`::${name}`))?.[1];
  await admin.docker().catch(() => undefined);
  return { ok: !failed, error, changed, action, progress };
}
/** What a deploy replaced and why, as the preview prints it. */
const replacedWhy = (result: Awaited<ReturnType<typeof deploy>>) =>
  Object.entries(result.progress.changes)
    .filter(([, s]) => s.action === "replace")
    .map(([k, s]) => `${k.split("::")[1]} (${s.causes.join("; ")})`);
const engineState = () => new RehearsalEngine(stateFile, world);

const containerInfo = (name: string) => dockerOk("GET", `/containers/${name}/json`);
const backendName = plan.containers.backend.name;
const envHash = async (name: string, variable: string) => {
  const info = await containerInfo(name);
  const entry = (info.Config.Env as string[]).find((e) => e.startsWith(`${variable}=`)) ?? "";
  return createHash("sha256").update(entry).digest("hex").slice(0, 12);
};
async function apiHealth() {
  const res = await httpRequest(web, "/api/health", host);
  check(res.status === 200, `/api/health answered ${res.status}: ${res.body.slice(0, 200)}`);
  const body = JSON.parse(res.body);
  check(body.checks?.database === "healthy" && body.checks?.redis === "healthy", `checks: ${JSON.stringify(body.checks)}`);
  return body;
}
const runId = Date.now().toString(36);
/** Changes the sample backend so its image, and so its container, must be replaced. */
const touchBackend = (n: number) => writeFileSync(join(appSource, "backend", "app", "build_id.txt"), `${runId}-${n}\n`);
const destroyStackMachines = async () => {
  for (const container of await machineNow()) await destroyMachine(container);
};
const machineNow = async () => (await listMachines()).filter((m) => m.id === plan.host.name).map((m) => m.container);
const backendId = async () => (await containerInfo(backendName)).Id as string;

say("first deploy: a new machine boots from the user data, then everything over SSH");
const firstStart = Date.now();
const first = await deploy(local);
const secondsToHealthy = (Date.now() - firstStart) / 1000;
const bootToReady = ((first.progress.timings.hostReady ?? 0) - (first.progress.timings.instanceCreated ?? 0)) / 1000;
await probes.run("deploy: every resource created and every container healthy", async () => {
  check(first.ok, first.error);
  return `${first.changed.length} resources in ${secondsToHealthy.toFixed(1)} s`;
});
await probes.run("first boot: cloud-init done, the launch script's marker exists, the ready check passed", async () => {
  const status = await admin.ssh(`cloud-init status; test -f ${READY_MARKER} && echo marker`);
  check(/status: done/.test(status.stdout), `cloud-init: ${status.stdout} ${status.stderr}`);
  check(/marker/.test(status.stdout), "no launch marker");
  check(first.action("host-ready")?.action === "create", "the ready check did not run");
  return `Instance created -> ready check passed: ${bootToReady.toFixed(1)} s`;
});
await probes.run("every remote command ran over SSH; no Docker call reached the rehearsal's own engine", async () => {
  const auth = await admin.ssh("sudo -n journalctl -u ssh --no-pager -o cat 2>/dev/null | grep -c 'Accepted publickey' || true");
  const sessions = Number(auth.stdout.trim());
  const commands = Object.keys(first.progress.changes).filter((k) => k.startsWith("command:remote:Command::")).length;
  check(sessions >= commands + 1, `${sessions} SSH sessions in the host's auth log for ${commands} commands and the Docker provider`);
  useDaemon(LOCAL_ENGINE);
  const strays = await dockerOk("GET", `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`timetracker.stack=${stackName}`] }))}`);
  const volumes = await dockerOk("GET", "/volumes");
  const strayVolumes = (volumes.Volumes ?? []).filter((v: { Name: string }) => Object.values(plan.volumes).includes(v.Name));
  await admin.docker();
  check(strays.length === 0 && strayVolumes.length === 0, `the local engine has ${strays.length} containers and ${strayVolumes.length} volumes of the stack`);
  const onHost = await dockerOk("GET", `/containers/json?filters=${encodeURIComponent(JSON.stringify({ label: [`timetracker.stack=${stackName}`] }))}`);
  check(onHost.length === Object.keys(plan.containers).length, `the host runs ${onHost.length} containers`);
  return `${sessions} SSH sessions accepted for ${commands} commands + Docker; ${onHost.length} containers on the host's daemon, none on the local engine`;
});
const machineHostKey = async () => (await admin.ssh("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")).stdout.trim();
const pinnedHostKey = () => readFileSync(`${keyPath}.known_hosts`, "utf8").trim().split(" ").slice(1).join(" ");
await probes.run("the instance's host key is pinned: remote commands and the Docker provider's ssh accept only it", async () => {
  const key = await machineHostKey();
  check(key.startsWith("ssh-ed25519 "), `the host shows ${key}`);
  check(pinnedHostKey() === key, `the Docker provider's known_hosts pins ${pinnedHostKey()}`);
  const connection = engineState().entry("command:remote:Command", "host-setup")?.inputs.connection as { hostKey?: string } | undefined;
  check(connection?.hostKey === key, `host-setup connects with host key ${connection?.hostKey}`);
  const other = (await execOk("bash", ["-c", `k=$(mktemp -u); ssh-keygen -q -t ed25519 -N '' -f "$k" && cut -d' ' -f1,2 "$k.pub"; rm -f "$k" "$k.pub"`])).stdout.trim();
  const refused = await runRemote({ host: world.staticIp, user: plan.host.sshUser, privateKey: readFileSync(keyPath, "utf8"), hostKey: other, dialErrorLimit: 1 }, "true");
  check(refused.code !== 0, "a connection pinned to another host key was accepted");
  return `${key.slice(0, 40)}…; another key refused`;
});
await probes.run(`firewall: 22 closed to an address outside adminCidrs, open inside; 80 open to anyone`, async () => {
  check(!(await tcpOpen(world.staticIp, 22, "127.0.0.2")), "22 answered 127.0.0.2");
  check(await tcpOpen(world.staticIp, 22, "127.0.0.1"), `22 refused ${REHEARSAL_ADMIN_CIDR}`);
  const outside = await httpRequest({ ...web, from: "127.0.0.2" }, "/api/health", host);
  check(outside.status === 200, `80 from outside answered ${outside.status}`);
  return `adminCidrs ${plan.host.adminCidrs.join(", ")}`;
});

say("probes");
await probes.run(`/api/health through Caddy with Host ${host}: 200, database and Redis healthy`, async () => `environment ${(await apiHealth()).environment}`);
await probes.run("/ through Caddy serves the frontend", async () => {
  const res = await httpRequest(web, "/", host);
  check(res.status === 200 && res.body.includes("TimeTracker"), `answered ${res.status}`);
  return "200, TimeTracker page";
});
await probes.run("a websocket under /api/ws/ echoes through Caddy", async () => {
  const reply = await websocketEcho(web, "/api/ws/echo", host, "ping-42");
  check(reply.includes("ping-42"), `got ${reply}`);
  return `echoed "${reply}"`;
});
await probes.run(`the frontend reaches the backend by its container name (${backendName})`, async () => {
  const frontend = plan.containers.frontend.name;
  const viaNginx = await execOk("docker", ["exec", frontend, "wget", "-q", "-O-", "http://127.0.0.1/api/health"], { env: daemonEnv() });
  check(viaNginx.stdout.includes('"healthy"'), `nginx /api/health: ${viaNginx.stdout}`);
  const direct = await execOk("docker", ["exec", frontend, "wget", "-q", "-O-", `http://${backendName}:${plan.containers.backend.listenPort}/health`], { env: daemonEnv() });
  check(direct.stdout.includes("ok"), `direct: ${direct.stdout}`);
  return "nginx /api/ and direct by name";
});
await probes.run("the backend refuses a Host it does not allow (TrustedHostMiddleware is on)", async () => {
  const port = plan.containers.backend.ports[0]?.external ?? 0;
  const res = await admin.ssh(`curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example.com' http://127.0.0.1:${port}/health`);
  check(res.stdout.trim() === "400", `answered ${res.stdout}`);
  return "400";
});
await probes.run("every container reports healthy (a released one within its first Docker health interval)", async () => {
  const status = async () => Promise.all(Object.values(plan.containers).map(async (c) => [c.name, (await containerInfo(c.name)).State.Health?.Status] as const));
  let states = await status();
  for (let waited = 0; waited < 30 && states.some(([, s]) => s === "starting"); waited += 1) {
    await new Promise((r) => setTimeout(r, 1000));
    states = await status();
  }
  const unhealthy = states.filter(([, s]) => s !== "healthy");
  check(unhealthy.length === 0, unhealthy.map(([n, s]) => `${n}: ${s}`).join(", "));
  return states.map(([n]) => n).join(", ");
});
await probes.run("on the host, no app port listens off loopback (only Caddy's 80/443); one slot of each app service listens", async () => {
  const ports = Object.values(plan.containers).flatMap((c) => c.ports.map((p) => p.external));
  const listening = (await admin.ssh("ss -ltnH")).stdout.split("\n").map((l) => l.trim().split(/\s+/)[3] ?? "");
  const exposed = listening.filter((addr) => ports.some((p) => addr.endsWith(`:${p}`)) && !addr.startsWith("127.0.0.1:"));
  check(exposed.length === 0, `listening off loopback: ${exposed.join(", ")}`);
  const live = Object.values(plan.containers).flatMap((c) => (c.release ? [c.release.slots.filter((p) => listening.includes(`127.0.0.1:${p}`))] : []));
  check(live.every((slots) => slots.length === 1), `live slots: ${JSON.stringify(live)} (listening: ${listening.join(" ")})`);
  return `listening on 127.0.0.1: ${live.flat().join(", ")}`;
});
await probes.run("Caddy's log stays quiet about the empty standby slots it checks every 2 s", async () => {
  const logs = await exec("docker", ["logs", "--since", "20s", plan.containers.caddy.name], { env: daemonEnv() });
  const lines = `${logs.stdout}${logs.stderr}`.split("\n").filter((l) => l.includes("health_checker"));
  check(lines.length === 0, `${lines.length} health-check lines in 20 s: ${lines[0]?.slice(0, 200)}`);
  return "no health-check line in the last 20 s";
});
await probes.run("no secret appears in any container's logs or command line", async () => {
  const entries = Object.values(JSON.parse(readFileSync(stateFile, "utf8")).entries) as { type: string; state: { result?: string } }[];
  const secrets = entries.filter((e) => e.type === "random:index/randomPassword:RandomPassword").map((e) => String(e.state.result));
  check(secrets.length > 0, "no generated secret in the stack's state");
  for (const c of Object.values(plan.containers)) {
    const logs = await exec("docker", ["logs", c.name], { env: daemonEnv() });
    const info = await containerInfo(c.name);
    const visible = `${logs.stdout}${logs.stderr}${JSON.stringify(info.Config.Cmd)}${JSON.stringify(info.Config.Entrypoint)}`;
    check(!secrets.some((secret) => visible.includes(secret)), `${c.name} shows a secret`);
  }
  return `${secrets.length} secrets, ${Object.keys(plan.containers).length} containers checked`;
});

say("each seed incident's drift, reintroduced on a copy of the definition");
async function refusedBeforeAnything(name: string, drifted: EnvironmentDefinition, expected: RegExp) {
  await probes.run(name, async () => {
    const result = await deploy(drifted);
    check(!result.ok, "the drifted definition was deployed");
    check(expected.test(result.error), `unexpected refusal: ${result.error}`);
    check(result.changed.length === 0, `resources changed: ${result.changed.join(", ")}`);
    return `refused, nothing touched: ${result.error.split("\n").find((l) => expected.test(l))?.trim()}`;
  });
}
async function refusedBackendUntouched(name: string, drifted: EnvironmentDefinition, expected: RegExp, prepare = () => {}, restore = () => {}) {
  await probes.run(name, async () => {
    const before = await backendId();
    prepare();
    const result = await deploy(drifted);
    restore();
    check(!result.ok, "the drifted deploy succeeded");
    check(expected.test(result.error), `unexpected failure: ${result.error}`);
    check((await backendId()) === before, "the backend container was replaced");
    await apiHealth();
    return `refused; backend untouched and healthy: ${result.error.split("\n").find((l) => expected.test(l))?.trim().slice(0, 160)}`;
  });
}
const otherStack = catalog.find((d) => d.name !== stackName);
await refusedBeforeAnything(
  "health check 400 / ALLOWED_HOSTS without container names: a hand-set ALLOWED_HOSTS",
  { ...local, app: { ...local.app, extraEnv: { ALLOWED_HOSTS: `["${host}"]` } } },
  /app\.extraEnv\.ALLOWED_HOSTS: is set by the package/,
);
await refusedBeforeAnything("frontend port clashing with Caddy on 80", { ...local, ports: { frontend: 80, backend: plan.containers.backend.ports[0]?.external ?? 0 } }, /ports\.frontend: 80 is reserved/);
if (otherStack?.ports) {
  await refusedBeforeAnything(
    `backend port drifting onto ${otherStack.name}'s`,
    { ...local, ports: { frontend: plan.containers.frontend.ports[0]?.external ?? 0, backend: otherStack.ports.backend } },
    // The catalog blames whichever of the two comes later; either way it is refused.
    new RegExp(`ports\\.backend: ${otherStack.ports.backend} is already used by (${otherStack.name}|${stackName})`),
  );
}
await refusedBeforeAnything(
  "nginx upstream typed by hand (time-tracker-backend): no such field exists",
  { ...local, nginxUpstream: "time-tracker-backend" } as EnvironmentDefinition,
  /unknown field 'nginxUpstream'/,
);
await probes.run("nginx upstream: the running frontend's config names the running backend container", async () => {
  const conf = await execOk("docker", ["exec", plan.containers.frontend.name, "cat", "/etc/nginx/nginx.conf"], { env: daemonEnv() });
  const upstream = `http://${plan.frontendUpstream.container}:${plan.frontendUpstream.port}`;
  check(plan.frontendUpstream.container === backendName, "the plan's nginx upstream is not the backend container");
  check(conf.stdout.includes(`set $backend ${upstream};`), "nginx.conf names another backend");
  check((await dockerApi("GET", `/containers/${backendName}/json`)).status === 200, `${backendName} is not running`);
  return `set $backend ${upstream}`;
});
await refusedBackendUntouched(
  "ImportError (async_engine) fails the image build, not /api/health",
  local,
  /cannot import name 'async_engine' from 'app.database'/,
  () => {
    // The seed's drift: code imports a name the module does not export.
    writeFileSync(join(appSource, "backend", "app", "database.py"), "engine = None\n");
    appendFileSync(join(appSource, "backend", "app", "main.py"), "\nfrom app.database import async_engine  # rehearsal drift\n");
  },
  () => copySampleApp(appSource),
);
await refusedBackendUntouched("disk nearly full: the deploy stops before pulling or building", { ...local, host: { ...local.host, minFreeDiskGb: 100000 } }, /GB free on \/, the deploy needs 100000 GB/);
await probes.run("DB credentials that do not match the existing volume (seed #4): validate refuses prod's database.user change before anything runs", async () => {
  const prod = catalog.find((d) => d.name === "prod");
  check(prod, "no prod stack");
  const file = join(workdir, "prod-other-user.json");
  writeFileSync(file, JSON.stringify({ ...prod, database: { ...prod.database, user: "someone_else" } }));
  const result = await exec("npx", ["tsx", "infra/cli/validate.ts", "--file", file, "--base", "HEAD"]);
  check(result.code !== 0, `validate accepted it: ${result.stdout}`);
  const line = `${result.stdout}\n${result.stderr}`.split("\n").find((l) => l.includes("database.user"));
  check(line, `no database.user in: ${result.stdout} ${result.stderr}`);
  return line.trim().slice(0, 180);
});
await refusedBackendUntouched(
  "DB credentials that do not match the existing volume, deployed anyway: the host refuses, backend untouched",
  { ...local, database: { ...local.database, user: "someone_else" } },
  /refused: volume .* has no role 'someone_else'/,
);
await probes.run("after the refusals, the unchanged definition deploys cleanly again", async () => {
  const result = await deploy(local);
  check(result.ok, result.error);
  await apiHealth();
  return result.changed.join(", ") || "no change";
});

say("nothing is lost");
const items = ["alpha", "beta", "gamma"];
await probes.run("rows written through Caddy", async () => {
  for (const name of items) {
    const res = await httpRequest(web, "/api/items", host, { method: "POST", body: { name } });
    check(res.status === 200 || res.status === 201, `POST answered ${res.status}: ${res.body}`);
  }
  return items.join(", ");
});
const readItems = async () => {
  const res = await httpRequest(web, "/api/items", host);
  check(res.status === 200, `GET answered ${res.status}`);
  return (JSON.parse(res.body) as { name: string }[]).map((i) => i.name);
};

say(`deploys that fail safe (the sample backend starts in ${SAMPLE_START_DELAY_SECONDS} s)`);
const CLIENTS = 4;
const swaps: Record<string, Traffic & { seconds: number }> = {};
/** A deploy (or any action) while CLIENTS loop on `path` through Caddy. */
async function underTraffic<T>(path: string, action: () => Promise<T>): Promise<{ result: T; traffic: Traffic; seconds: number }> {
  const loop = requestLoop(web, path, host, { clients: CLIENTS });
  const start = Date.now();
  const result = await action();
  const seconds = (Date.now() - start) / 1000;
  return { result, traffic: await loop.stop(), seconds };
}
const trafficSummary = (t: Traffic) => `${t.sent} requests from ${CLIENTS} clients, ${t.failed} failed, worst ${t.worst.toFixed(3)} s (at +${t.worstAt.toFixed(1)} s), p99 ${t.p99.toFixed(3)} s`;
const noGap = (t: Traffic) => {
  check(t.failed === 0, `${t.failed} of ${t.sent} requests failed: ${t.failures.slice(0, 3).join("; ")}`);
  check(t.worst <= 0.5, `the slowest request took ${t.worst.toFixed(3)} s at +${t.worstAt.toFixed(1)} s (limit 0.5 s)`);
};
const sql = async (query: string) =>
  (await execOk("docker", ["exec", plan.containers.db.name, "psql", "-U", plan.database.user, "-d", plan.database.name, "-tAc", query], { env: daemonEnv() })).stdout.trim();
const schemaRevision = () => sql("SELECT version_num FROM alembic_version");
const itemColumns = () => sql("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'items'");
const liveVersion = async () => JSON.parse((await httpRequest(web, "/api/version", host)).body) as { image: string; schema: string | null };
const releaseHistory = async () => (await admin.ssh(`sudo -n cat ${releaseStateDir(plan)}/history`)).stdout.trim().split("\n");
const candidateGone = async () => (await dockerApi("GET", `/containers/${plan.containers.backend.release?.candidateName}/json`)).status === 404;
const migrations = join(appSource, "backend", "migrations", "versions");
const migration = (revision: string, down: string, upgrade: string[]) =>
  [`"""rehearsal: ${revision}"""`, "import sqlalchemy as sa", "from alembic import op", "", `revision = "${revision}"`, `down_revision = "${down}"`,
    "branch_labels = None", "depends_on = None", "", "", "def upgrade() -> None:", ...upgrade.map((l) => `    ${l}`), "", "", "def downgrade() -> None:", "    pass", ""].join("\n");

await probes.run("an image that builds but never becomes ready: refused twice (a re-run checks again), no failed request, live backend untouched, no candidate left", async () => {
  const before = await backendId();
  const main = join(appSource, "backend", "app", "main.py");
  const source = readFileSync(main, "utf8");
  const drifted = source.replace('_env("DB_HOST", "localhost")', '_env("DB_HOSTNAME", "localhost")');
  check(drifted !== source, "the sample backend no longer reads DB_HOST as expected");
  // A renamed setting: the process starts and /health answers, but the database is never found.
  writeFileSync(main, drifted);
  const { result: [first, again], traffic } = await underTraffic("/api/health", async () => [await deploy(local), await deploy(local)]);
  copySampleApp(appSource);
  for (const run of [first, again]) {
    check(!run.ok, "the unready image went live");
    check(/failed its check: GET \/api\/health with Host localhost answered 503/.test(run.error), `unexpected failure: ${run.error.slice(0, 300)}`);
  }
  check(/Its last log lines/.test(first.error), "the refusal shows no log lines of the candidate");
  check((await backendId()) === before, "the live backend was replaced");
  check(await candidateGone(), "a candidate was left behind");
  check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed: ${traffic.failures.slice(0, 3).join("; ")}`);
  await apiHealth();
  return `${first.error.split("\n").find((l) => l.includes("failed its check"))?.slice(0, 200)}; ${trafficSummary(traffic)}`;
});
const headBefore = await schemaRevision().catch(() => "");
await probes.run("a migration that fails: refused with its output, the schema unchanged, the live backend untouched", async () => {
  check(headBefore !== "", "no alembic_version in the database: the release command never ran");
  const columns = await itemColumns();
  const before = await backendId();
  writeFileSync(join(migrations, "9001_rehearsal_broken.py"), migration("9001", headBefore, ['op.add_column("items", sa.Column("half_done", sa.Text()))', 'op.execute("ALTER TABLE no_such_table ADD COLUMN x integer")']));
  const { result, traffic } = await underTraffic("/api/health", () => deploy(local));
  copySampleApp(appSource);
  check(!result.ok, "the broken migration was deployed");
  check(/the release command 'alembic upgrade head' failed/.test(result.error) && /no_such_table/.test(result.error), `unexpected failure: ${result.error.slice(0, 400)}`);
  check((await schemaRevision()) === headBefore, `the schema moved to ${await schemaRevision()}`);
  check((await itemColumns()) === columns, `the items table changed: ${await itemColumns()}`);
  check((await backendId()) === before, "the live backend was replaced");
  check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed`);
  return `schema stays ${headBefore} (${columns}); ${trafficSummary(traffic)}`;
});
let previousImage = "";
let migratedImage = "";
await probes.run(`a good migration: applied exactly once, before the swap; the new backend serves; the pre-deploy dump holds the schema before it; no gap with ${CLIENTS} clients`, async () => {
  previousImage = (await liveVersion()).image;
  const dumpsBefore = (await admin.ssh(`sudo -n ls ${plan.backup.dumpDir}`)).stdout.split("\n");
  writeFileSync(join(migrations, "9002_rehearsal_note.py"), migration("9002", headBefore, ['op.add_column("items", sa.Column("note", sa.Text(), nullable=True))']));
  const { result, traffic, seconds } = await underTraffic("/api/health", () => deploy(local));
  check(result.ok, result.error);
  swaps.backend = { ...traffic, seconds };
  noGap(traffic);
  migratedImage = (await liveVersion()).image;
  check(migratedImage !== previousImage, `still ${previousImage}`);
  check((await schemaRevision()) === "9002" && (await itemColumns()).includes("note"), `schema ${await schemaRevision()}: ${await itemColumns()}`);
  const again = await deploy(local);
  check(again.ok, again.error);
  const runs = (await releaseHistory()).filter((l) => l.includes(`release-command backend ${migratedImage}`));
  check(runs.length === 1, `the release command ran ${runs.length} times for ${migratedImage}`);
  const dumps = (await admin.ssh(`sudo -n ls ${plan.backup.dumpDir}`)).stdout.split("\n").filter((f) => f.includes("-predeploy-") && !dumpsBefore.includes(f));
  check(dumps.length >= 1, "no new pre-deploy dump on the data disk");
  const newest = dumps.sort().at(-1);
  const schema = await admin.ssh(`sudo -n sh -c 'docker exec -i ${plan.containers.db.name} pg_restore --schema-only -f - < ${plan.backup.dumpDir}/${newest}'`);
  check(/CREATE TABLE public\.items/.test(schema.stdout) && !/\bnote\b/.test(schema.stdout), `the dump's schema: ${schema.stdout.slice(0, 200)}`);
  return `${migratedImage} live with schema 9002; ${newest} holds the schema before it; ${trafficSummary(traffic)}; ${seconds.toFixed(1)} s`;
});
await probes.run(`a frontend swap: no gap with ${CLIENTS} clients on /`, async () => {
  const before = (await containerInfo(plan.containers.frontend.name)).Id;
  appendFileSync(join(appSource, "frontend", "index.html"), `\n<!-- rehearsal ${runId} -->\n`);
  const { result, traffic, seconds } = await underTraffic("/", () => deploy(local));
  check(result.ok, result.error);
  swaps.frontend = { ...traffic, seconds };
  check((await containerInfo(plan.containers.frontend.name)).Id !== before, "the frontend was not released");
  noGap(traffic);
  return `${trafficSummary(traffic)}; ${seconds.toFixed(1)} s`;
});
const rollback = (...extra: string[]) =>
  underTraffic("/api/health", async () =>
    exec("npx", ["tsx", "infra/cli/rollback.ts", "--stack", stackName, "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", await machineHostKey(), ...extra]),
  );
await probes.run("rollback in one command: the previous version serves again within 60 s, no gap, rows intact", async () => {
  const { result, traffic, seconds } = await rollback();
  check(result.code === 0, `rollback exited ${result.code}: ${result.stderr.trim().slice(-400)}`);
  swaps.rollback = { ...traffic, seconds };
  check(seconds < 60, `took ${seconds.toFixed(1)} s`);
  check((await liveVersion()).image === previousImage, `live: ${(await liveVersion()).image}, expected ${previousImage}`);
  noGap(traffic);
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
  return `${migratedImage} -> ${previousImage} in ${seconds.toFixed(1)} s; ${trafficSummary(traffic)}; rows ${names.join(", ")}`;
});
await probes.run("after a rollback, a deploy that would bring the rolled-back image back is refused; a second rollback returns to it", async () => {
  const refused = await deploy({ ...local, app: { ...local.app, extraEnv: { ...local.app?.extraEnv, REHEARSAL_EDIT: "1" } } });
  check(!refused.ok && /was rolled back on this host/.test(refused.error), `the rolled-back image was deployed again: ${refused.error}`);
  check((await liveVersion()).image === previousImage, "the live version changed");
  const { result } = await rollback();
  check(result.code === 0, `the second rollback exited ${result.code}: ${result.stderr.trim().slice(-300)}`);
  check((await liveVersion()).image === migratedImage, `live: ${(await liveVersion()).image}`);
  const deployed = await deploy(local);
  check(deployed.ok, deployed.error);
  return `refused: ${refused.error.split("\n").find((l) => l.includes("rolled back"))?.slice(0, 120)}; back on ${migratedImage}`;
});

say("the operator's commands (npm run ops) against this host");
const ops = async (...command: string[]) =>
  exec("npx", ["tsx", "infra/cli/ops.ts", "--stack", stackName, "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", await machineHostKey(), ...command]);
const indented = (text: string) => text.trimEnd().split("\n").map((l) => `       ${l}`).join("\n");
await probes.run("npm run ops -- ps: every container of the Plan, and the previous versions a rollback brings back", async () => {
  const result = await ops("ps");
  check(result.code === 0, `exited ${result.code}: ${result.stderr.trim().slice(-300)}`);
  const lines = result.stdout.split("\n");
  for (const c of Object.values(plan.containers)) check(lines.some((l) => l.startsWith(`${c.name} `)), `no line for ${c.name}`);
  check(lines.some((l) => l.startsWith(`${plan.containers.backend.release?.previousName} `)), "no previous backend");
  console.log(indented(result.stdout));
  return `${Object.keys(plan.containers).length} containers and the previous versions listed`;
});
await probes.run("npm run ops -- logs backend --tail 20: the live backend's log", async () => {
  const result = await ops("logs", "backend", "--tail", "20");
  check(result.code === 0, `exited ${result.code}: ${result.stderr.trim().slice(-300)}`);
  check(/GET \/api\/health|Uvicorn running|Application startup complete/.test(`${result.stdout}${result.stderr}`), `unexpected log: ${result.stdout.slice(0, 200)}`);
  console.log(indented(`${result.stdout}${result.stderr}`));
  return `${`${result.stdout}${result.stderr}`.trim().split("\n").length} lines`;
});
await probes.run("npm run ops -- health: every container healthy, /api/health 200 through Caddy, disks and the newest dump", async () => {
  const result = await ops("health");
  check(result.code === 0, `exited ${result.code}: ${result.stdout.slice(-300)} ${result.stderr.slice(-200)}`);
  const lines = result.stdout.split("\n");
  for (const c of Object.values(plan.containers)) check(lines.includes(`${c.name}: healthy`), `no "${c.name}: healthy" line`);
  check(lines.includes("api: 200"), "no 'api: 200' line");
  check(lines.some((l) => l.startsWith("newest dump: ") && /-(predeploy|rollback)-\d{8}T\d{6}Z\.dump/.test(l)), `the newest dump is not shown: ${lines.find((l) => l.startsWith("newest dump"))}`);
  return lines.filter((l) => /^(api|disk|newest dump|health):/.test(l)).join("; ").slice(0, 300);
});
await probes.run("npm run ops with a host key that is not the host's: refused, nothing runs", async () => {
  const other = (await execOk("bash", ["-c", `k=$(mktemp -u); ssh-keygen -q -t ed25519 -N '' -f "$k" && cut -d' ' -f1,2 "$k.pub"; rm -f "$k" "$k.pub"`])).stdout.trim();
  const result = await exec("npx", ["tsx", "infra/cli/ops.ts", "--stack", stackName, "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", other, "ps"]);
  check(result.code !== 0, "ps ran against a host whose key is not the pinned one");
  return `exit ${result.code}`;
});

say("backups: every dump copied off the host, and a restore from the copy");
const backupTool = (args: string) => admin.ssh(`sudo -n ${BACKUP_TOOL} ${args}`);
const bucketName = () => String(engineState().entry("aws:lightsail/bucket:Bucket", "backups-bucket")?.inputs.name ?? "");
/** What the stand-in bucket holds under the dumps' prefix, read from its store on this side, off the host. */
const bucketObjects = () => {
  const folder = join(world.bucket.directory, bucketName(), plan.backup.bucket.prefix);
  return existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith(S3RVER_OBJECT)).map((f) => f.slice(0, -S3RVER_OBJECT.length)).sort() : [];
};
const hostDumps = async () => (await admin.ssh(`sudo -n ls -1 ${plan.backup.dumpDir}`)).stdout.split("\n").filter((f) => f.endsWith(".dump"));
const bucketKey = JSON.parse(readFileSync(world.bucket.keyFile, "utf8")) as { accessKeyId: string; secretAccessKey: string };
const countsOf = (text: string) => new Map(text.split("\n").filter((l) => /^\w+\t\d+$/.test(l)).map((l) => l.split("\t") as [string, string]).map(([t, n]) => [t, Number(n)]));
await probes.run("every pre-deploy and rollback dump is in the bucket, under a name that sorts by time", async () => {
  const objects = bucketObjects();
  const taken = (await hostDumps()).filter((f) => /-(predeploy|rollback)-/.test(f));
  check(taken.length > 0, "no pre-deploy dump on the host");
  for (const file of taken) {
    const [, kind, stamp] = /-(predeploy|rollback)-(\d{8}T\d{6}Z)\.dump$/.exec(file) ?? [];
    check(objects.includes(`${stamp}-${kind}.dump`), `${file} has no copy in the bucket (${objects.join(", ")})`);
  }
  const byTime = [...objects].sort((a, b) => a.slice(0, 16).localeCompare(b.slice(0, 16)));
  check(JSON.stringify(byTime) === JSON.stringify(objects), "the names do not sort by time");
  return `${taken.length} dumps on the host, ${objects.length} copies in ${bucketName()}: ${objects.slice(-3).join(", ")}`;
});
let rowsBefore = new Map<string, number>();
await probes.run("production-shaped data written: 14 tables, 6 users, 3 teams, thousands of time entries", async () => {
  const db = plan.containers.db.name;
  const seeded = await admin.ssh(`sudo -n docker exec -i ${db} psql -v ON_ERROR_STOP=1 -q -U ${plan.database.user} -d ${plan.database.name}`, readFileSync("tools/rehearsal/production-shape.sql", "utf8"));
  check(seeded.code === 0, `seeding failed: ${seeded.stderr.trim().slice(-300)}`);
  const counts = await backupTool("counts");
  check(counts.code === 0, counts.stderr);
  rowsBefore = countsOf(counts.stdout);
  check(rowsBefore.size === 14, `${rowsBefore.size} tables: ${[...rowsBefore.keys()].join(", ")}`);
  check(rowsBefore.get("users") === 6 && rowsBefore.get("teams") === 3, "not 6 users and 3 teams");
  return [...rowsBefore].map(([t, n]) => `${t} ${n}`).join(", ");
});
let nightlyObject = "";
await probes.run("the nightly job dumps and copies off the host; the bucket key is never in clear (process list, logs, files) and only root reads it", async () => {
  const secret = bucketKey.secretAccessKey;
  // Sample the host's process list while the job runs: rclone's command line must not carry the key.
  const run = await admin.ssh(
    `sudo -n ${BACKUP_TOOL} nightly > /tmp/nightly.out 2>&1 & job=$!; : > /tmp/ps.samples; while [ -d /proc/$job ]; do ps -eo args >> /tmp/ps.samples; sleep 0.05; done; wait $job; echo "exit $?"; cat /tmp/nightly.out`,
  );
  check(/exit 0/.test(run.stdout), `the nightly job failed: ${run.stdout.slice(-400)}`);
  const samples = (await admin.ssh("cat /tmp/ps.samples; sudo -n rm -f /tmp/ps.samples /tmp/nightly.out")).stdout;
  const rcloneSeen = samples.split("\n").filter((l) => l.includes("rclone")).length;
  const logs = (await admin.ssh("sudo -n journalctl --no-pager -q 2>/dev/null; sudo -n cat /var/log/syslog 2>/dev/null; for c in $(sudo -n docker ps -aq); do sudo -n docker logs $c 2>&1; done")).stdout;
  const rendered = readdirSync(join("rendered", stackName)).map((f) => readFileSync(join("rendered", stackName, f), "utf8")).join("\n");
  for (const [where, text] of [["the process list", samples], ["the host's logs", logs], ["the rendered files", rendered], ["the job's output", run.stdout]] as const) {
    check(!text.includes(secret), `the bucket's secret key is in ${where}`);
  }
  const file = await admin.ssh(`sudo -n stat -c '%a %U' ${plan.backup.bucket.credentialsFile}; sudo -n sed -n 's/^secret_access_key = //p' ${plan.backup.bucket.credentialsFile} | sha256sum`);
  const [mode, digest] = file.stdout.trim().split("\n");
  check(mode === "600 root", `credentials file is ${mode}`);
  // The stand-in checks only the key id: the secret the host holds must be the one the program was given.
  check(digest?.startsWith(createHash("sha256").update(`${secret}\n`).digest("hex")) === true, "the host holds another secret than the bucket's key");
  nightlyObject = bucketObjects().filter((o) => o.endsWith("-nightly.dump")).at(-1) ?? "";
  check(nightlyObject !== "", `no nightly copy in the bucket: ${bucketObjects().join(", ")}`);
  return `copied as ${nightlyObject}; ${samples.split("\n").length} process-list lines sampled (${rcloneSeen} of rclone), logs and ${readdirSync(join("rendered", stackName)).length} rendered files checked; credentials 600 root`;
});
let restoreSeconds = Number.NaN;
let drill: string[] = [];
let restoreWall = Number.NaN;
await probes.run("restore drill: the database volume destroyed and the host's dumps gone, npm run restore brings every table back from the bucket copy", async () => {
  const db = plan.containers.db.name;
  const volume = plan.volumePaths.database;
  // The disk loses the database and every dump on it; the bucket still has its copies.
  const wiped = await admin.ssh(
    `sudo -n docker stop -t 10 ${db} >/dev/null && sudo -n find ${volume} -mindepth 1 -delete && sudo -n sh -c 'rm -f ${plan.backup.dumpDir}/*.dump' && sudo -n docker start ${db} >/dev/null`,
  );
  check(wiped.code === 0, `could not destroy the volume: ${wiped.stderr}`);
  const deadline = Date.now() + 120_000;
  while ((await admin.ssh(`sudo -n docker inspect -f '{{.State.Health.Status}}' ${db}`)).stdout.trim() !== "healthy" && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1000));
  const empty = countsOf((await backupTool("counts")).stdout);
  check(empty.size === 0, `the database still has ${empty.size} tables`);
  check((await hostDumps()).length === 0, "dumps left on the host");
  const start = Date.now();
  const restored = await exec("npx", [
    "tsx", "infra/cli/restore.ts", "--stack", stackName, "--from", nightlyObject, "--yes",
    "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", await machineHostKey(),
  ]);
  restoreWall = (Date.now() - start) / 1000;
  console.log(indented(restored.stdout));
  check(restored.code === 0, `restore exited ${restored.code}: ${restored.stderr.trim().slice(-400)}`);
  restoreSeconds = Number(/restored \S+ into \S+ in ([\d.]+) s/.exec(restored.stdout)?.[1] ?? Number.NaN);
  const after = countsOf((await backupTool("counts")).stdout);
  const table = [...rowsBefore].map(([t, n]) => `${t} ${n} -> ${after.get(t) ?? "missing"}`);
  console.log(indented(`rows per table, before -> after:\n${table.join("\n")}`));
  for (const [t, n] of rowsBefore) check(after.get(t) === n, `${t}: ${n} rows before, ${after.get(t) ?? "no table"} after`);
  await apiHealth();
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `items through Caddy: ${names.join(", ")}`);
  drill = table;
  return `${rowsBefore.size} tables equal; restored in ${restoreSeconds} s (the command took ${restoreWall.toFixed(1)} s); the site answers with its rows`;
});

say("everyday edits: each is safe, and the deploy names what it replaces and why");
let current: EnvironmentDefinition = local;
await probes.run("raise the dump keep-days: the instance is not replaced and the host has the new job", async () => {
  const machine = await machineNow();
  const keepDays = (plan.backup.keepDays % 90) + 1;
  current = { ...current, backup: { ...current.backup, databaseDumpKeepDays: keepDays } };
  const result = await deploy(current);
  check(result.ok, result.error);
  check(JSON.stringify(await machineNow()) === JSON.stringify(machine), "the machine changed");
  check(replacedWhy(result).length === 0, `replaced: ${replacedWhy(result).join(", ")}`);
  const tool = await admin.ssh(`grep -x 'keep_days=[0-9]*' ${BACKUP_TOOL}`);
  check(tool.stdout.trim() === `keep_days=${keepDays}`, `the nightly job's tool says: ${tool.stdout.trim()}`);
  return `host-setup ${result.action("host-setup")?.action} (${result.action("host-setup")?.causes.join(", ")}); nothing replaced; job keeps ${keepDays} days`;
});
await probes.run("change the backend's health-check interval: the running container has the new one", async () => {
  const interval = (current.app?.healthCheckIntervalSeconds ?? 10) + 5;
  current = { ...current, app: { ...current.app, healthCheckIntervalSeconds: interval } };
  const result = await deploy(current);
  check(result.ok, result.error);
  const running = (await containerInfo(backendName)).Config.Healthcheck.Interval;
  check(running === interval * 1e9, `the running backend checks every ${running / 1e9} s`);
  return `every ${interval} s; replaced: ${replacedWhy(result).join(", ")}`;
});
await probes.run("add an admin CIDR: requests through Caddy keep answering during the deploy", async () => {
  current = { ...current, host: { ...current.host, adminCidrs: [...(current.host?.adminCidrs ?? []), "198.51.100.0/24"] } };
  const loop = requestLoop(web, "/api/health", host);
  const result = await deploy(current);
  const traffic = await loop.stop();
  check(result.ok, result.error);
  check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed: ${traffic.failures.slice(0, 3).join("; ")}`);
  check(await tcpOpen(world.staticIp, 22, "127.0.0.1"), "22 closed to the admin after the edit");
  return `${traffic.sent} requests, 0 failed; replaced: ${replacedWhy(result).join(", ")}`;
});
await probes.run("a config change reaches the running service (a new domain: Caddyfile and ALLOWED_HOSTS)", async () => {
  const extra = `www.${host}`;
  // Caddy answers an unknown Host with an empty 200: only the backend's JSON shows the route.
  const reachesBackend = (res: { status: number; body: string }) => res.status === 200 && res.body.includes('"healthy"');
  check(!reachesBackend(await httpRequest(web, "/api/health", extra)), "the new domain reached the backend before the change");
  const result = await deploy({ ...current, extraDomains: [extra] });
  check(result.ok, result.error);
  const after = await httpRequest(web, "/api/health", extra);
  check(reachesBackend(after), `the new domain answered ${after.status} ${after.body.slice(0, 80)} after the change`);
  const restored = await deploy(current);
  check(restored.ok, restored.error);
  return `${extra}: not routed before, backend healthy after (${result.changed.filter((c) => c.includes("app-")).join(", ")})`;
});
let failedDuringRedeploy = Number.NaN;
await probes.run(`redeploy with a changed backend image while ${CLIENTS} clients loop through Caddy: no gap`, async () => {
  touchBackend(1);
  const before = await backendId();
  const { result, traffic, seconds } = await underTraffic("/api/health", () => deploy(current));
  failedDuringRedeploy = traffic.failed;
  swaps.redeploy = { ...traffic, seconds };
  check(result.ok, result.error);
  check((await backendId()) !== before, "the backend was not released");
  noGap(traffic);
  return `${trafficSummary(traffic)}; ${seconds.toFixed(1)} s`;
});
await probes.run(`the database password survives ${redeploys} redeploys, rows intact`, async () => {
  const password = await envHash(backendName, "DB_PASSWORD");
  for (let n = 2; n <= redeploys; n += 1) {
    touchBackend(n);
    const result = await deploy(current);
    check(result.ok, `redeploy ${n}: ${result.error}`);
    check((await envHash(backendName, "DB_PASSWORD")) === password, `redeploy ${n} changed the password`);
    await apiHealth();
  }
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
  return `same password hash ${password}`;
});
await probes.run("a rotation through the counter keeps the backend healthy", async () => {
  const before = await envHash(backendName, "DB_PASSWORD");
  const rotation = (current.database?.password?.rotation ?? 0) + 1;
  current = { ...current, database: { ...current.database, password: { ...current.database?.password, rotation } } };
  const result = await deploy(current);
  check(result.ok, result.error);
  check((await envHash(backendName, "DB_PASSWORD")) !== before, "the password did not change");
  await apiHealth();
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
  const stdout = String(engineState().entry("command:remote:Command", "app-db-credentials")?.state.stdout ?? "");
  check(/rotated/.test(stdout), `credential step said: ${stdout}`);
  return stdout;
});
let growSeconds = Number.NaN;
/** A file on the old instance's own disk, beside the launch marker: a new instance must not have it. */
const OLD_HOST_FILE = `${dirname(READY_MARKER)}/old-host-was-here`;
await probes.run("grow the bundle: the instance IS replaced (old host wiped), the disk comes back, rows intact, site answers", async () => {
  const [oldMachine] = await machineNow();
  const oldKey = await machineHostKey();
  await admin.ssh(`sudo -n touch ${OLD_HOST_FILE}`);
  const bundle = current.host?.bundle ?? "small_3_0";
  const sizes = ["nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"];
  const grown = bundle.replace(/^[a-z0-9]+/, (size) => sizes[sizes.indexOf(size) + 1] ?? size);
  current = { ...current, host: { ...current.host, bundle: grown } };
  const start = Date.now();
  const result = await deploy(current);
  check(result.ok, result.error);
  let answered = false;
  while (!answered && Date.now() - start < 300_000) answered = (await httpRequest(web, "/api/health", host).catch(() => ({ status: 0 }))).status === 200;
  growSeconds = (Date.now() - start) / 1000;
  const machines = await machineNow();
  check(oldMachine && !machines.includes(oldMachine), `the old machine ${oldMachine} still exists`);
  check(result.action("host-instance")?.action === "replace", "the instance was not replaced");
  check((await admin.ssh(`test -e ${OLD_HOST_FILE} && echo kept || echo wiped`)).stdout.trim() === "wiped", "the old host's files are on the new one");
  const newKey = await machineHostKey();
  check(newKey !== oldKey && pinnedHostKey() === newKey, "the new instance's host key is not the one pinned");
  await apiHealth();
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
  // The new instance gets the bucket's key again (and Lightsail's grant with it): it can copy and restore from day one.
  check(result.action("backups-credentials")?.action === "replace", "the new host was not sent the bucket's credentials");
  check(result.action("backups-bucket-access")?.action === "replace", "the bucket's access grant was not replaced with the instance");
  const status = (await backupTool("status")).stdout;
  check(/^newest bucket copy: \S+-\w+\.dump/m.test(status), `the new host does not reach the bucket: ${status.trim()}`);
  console.log(`     replaced: ${replacedWhy(result).join("\n               ")}`);
  return `${bundle} -> ${grown}: ${growSeconds.toFixed(1)} s from up to the site answering; rows ${names.join(", ")}; the new host key pinned; the new host reaches the bucket`;
});
await probes.run("tearing the stack down keeps the data disk and its rows", async () => {
  // What an operator keeps before a teardown: `pulumi stack output --show-secrets databasePassword`.
  const kept = String(engineState().entry("random:index/randomPassword:RandomPassword", "secrets-dbPassword")?.state.result ?? "");
  check(kept !== "", "no database password in the stack's state");
  admin.close();
  const { removed, kept: retained } = await engineState().destroy({ unprotect: true });
  check(retained.some((r) => r.includes(plan.host.dataDisk.name)), `the disk was not kept: ${retained.join(", ")}`);
  check((await machineNow()).length === 0, "the machine survived the teardown");
  // A new stack generates a new password, which the kept data does not have: refused.
  const fresh = await deploy(current);
  check(!fresh.ok && /does not accept the stack's password/.test(fresh.error), `a new password on the kept data was not refused: ${fresh.error}`);
  check((await dockerApi("GET", `/containers/${backendName}/json`)).status === 404, "a backend started with credentials the database refuses");
  // As the refusal says: adopt the data's password from an encrypted stack secret.
  const adopted = { ...current, database: { ...current.database, password: { adoptFrom: "adoptedDbPassword", rotation: 0 } } };
  const again = await deploy(adopted, { "timetracker:adoptedDbPassword": kept });
  check(again.ok, again.error);
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `read ${names.join(", ")}`);
  return `removed ${removed.length} resources, kept ${retained.length}; a new password was refused; adopted, rows back: ${names.join(", ")}`;
});

say("clean up");
admin.close();
useDaemon(LOCAL_ENGINE);
await engineState().destroy({ unprotect: true }).catch((error) => console.log(`destroy: ${(error as Error).message}`));
await proxy.stop();
await bucketServer.stop();
await destroyStackMachines();
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
seconds from start to all healthy (first deploy, machine boot included): ${secondsToHealthy.toFixed(1)}
seconds from Instance created to the ready check passing:               ${bootToReady.toFixed(1)}
seconds from the bundle-grow 'up' to the site answering again:          ${growSeconds.toFixed(1)}
requests failed during a backend redeploy:                              ${failedDuringRedeploy}
swaps with ${CLIENTS} clients through Caddy, backend starting in ${SAMPLE_START_DELAY_SECONDS} s (requests, failed, worst, p99, deploy seconds):
${Object.entries(swaps).map(([what, t]) => `  ${what.padEnd(9)} ${t.sent} requests, ${t.failed} failed, worst ${t.worst.toFixed(3)} s, p99 ${t.p99.toFixed(3)} s, ${t.seconds.toFixed(1)} s`).join("\n")}
restore drill from the bucket copy ${nightlyObject}: restored in ${restoreSeconds} s (npm run restore took ${restoreWall.toFixed(1)} s); rows per table, before -> after:
${drill.map((line) => `  ${line}`).join("\n")}
rehearsal wall time: ${elapsed()}
`);
const passed = probes.results.length - probes.failed;
console.log(`rehearsal: ${passed} passed, ${probes.failed} failed`);
process.exitCode = probes.failed === 0 ? 0 : 1;
