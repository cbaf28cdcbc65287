import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { planFor } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { mockConfig } from "../mock-config.js";
import { dockerApi, dockerOk, exec, execOk } from "./docker.js";
import { RehearsalEngine, type DeployProgress } from "./engine.js";
import { httpRequest, requestLoop, websocketEcho } from "./http.js";
import { copySampleApp, provisionLocalHost, unprovisionLocalHost } from "./local-host.js";
import { localize, REHEARSAL_HTTP_PORT, withDefinition } from "./localize.js";
import { check, ProbeLog } from "./probes.js";

const { values } = parseArgs({ options: { stack: { type: "string", default: "staging" }, redeploys: { type: "string", default: "10" } } });
const stackName = values.stack ?? "staging";
const redeploys = Number(values.redeploys);
const base = catalog.find((d) => d.name === stackName);
if (!base) {
  console.error(`no stack "${stackName}"; the catalog has: ${catalog.map((d) => d.name).join(", ")}`);
  process.exit(1);
}

const workdir = join(".rehearsal", stackName);
const appSource = join(workdir, "app");
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const say = (text: string) => console.log(`\n== [${elapsed()}] ${text}`);

say("prerequisites: Docker engine and stand-in images (nothing is pulled)");
await execOk("bash", ["app-images/standins/engine.sh"]).then((r) => process.stdout.write(r.stdout));
const images = await execOk("bash", ["app-images/standins/build.sh"]);
process.stdout.write(images.stdout);

const local = localize(base);
const plan: Plan = planFor(withDefinition(catalog, local), stackName);
const host = plan.domains[0] ?? "";
const { config, secretKeys } = mockConfig(plan);
const probes = new ProbeLog();

const stateFile = join(workdir, "state.json");
const progressFile = join(workdir, "progress.json");

/** Runs the real program for the stack on the local engine, in its own process; never throws. */
async function deploy(definition: EnvironmentDefinition, secretConfig: Record<string, string> = {}) {
  writeFileSync(join(workdir, "definitions.json"), JSON.stringify(withDefinition(catalog, definition)));
  writeFileSync(
    join(workdir, "config.json"),
    JSON.stringify({
      config: { ...config, ...secretConfig, "timetracker:appSource": appSource },
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
    "--progress", progressFile,
  ]);
  const progress: DeployProgress = existsSync(progressFile) ? JSON.parse(readFileSync(progressFile, "utf8")) : { changes: {}, errors: [] };
  const changed = Object.entries(progress.changes).filter(([, c]) => c !== "unchanged").map(([k, c]) => `${k.split("::")[1]} ${c}`);
  const failed = run.code !== 0 || progress.errors.length > 0;
  const error = progress.errors[0] ?? (run.code !== 0 ? `deploy exited ${run.code}: ${run.stderr.trim().split("\n").slice(-5).join("\n")}` : "");
  return { ok: !failed, error, changed };
}
/** The engine's view of the stack after the last deploy. */
const engineState = () => new RehearsalEngine(stateFile);

async function removeVolumes(): Promise<void> {
  for (const volume of Object.values(plan.volumes)) await dockerOk("DELETE", `/volumes/${volume}?force=true`, undefined, [404]);
}

const containerInfo = (name: string) => dockerOk("GET", `/containers/${name}/json`);
const backendName = plan.containers.backend.name;
const envHash = async (name: string, variable: string) => {
  const info = await containerInfo(name);
  const entry = (info.Config.Env as string[]).find((e) => e.startsWith(`${variable}=`)) ?? "";
  return createHash("sha256").update(entry).digest("hex").slice(0, 12);
};
async function apiHealth() {
  const res = await httpRequest(REHEARSAL_HTTP_PORT, "/api/health", host);
  check(res.status === 200, `/api/health answered ${res.status}: ${res.body.slice(0, 200)}`);
  const body = JSON.parse(res.body);
  check(body.checks?.database === "healthy" && body.checks?.redis === "healthy", `checks: ${JSON.stringify(body.checks)}`);
  return body;
}
/** Changes the sample backend so its image, and so its container, must be replaced. */
const runId = Date.now().toString(36);
const touchBackend = (n: number) => writeFileSync(join(appSource, "backend", "app", "build_id.txt"), `${runId}-${n}\n`);
/** Docker's disk use: unique layer bytes plus build cache, and how many old images linger untagged. */
async function dockerDisk(): Promise<{ bytes: number; dangling: number }> {
  const df = await dockerOk("GET", "/system/df");
  const cache = ((df.BuildCache ?? []) as { Size: number }[]).reduce((n, b) => n + b.Size, 0);
  const dangling = ((df.Images ?? []) as { RepoTags: string[] | null }[]).filter(
    (i) => !i.RepoTags || i.RepoTags.every((t) => t === "<none>:<none>"),
  ).length;
  return { bytes: Number(df.LayersSize ?? 0) + cache, dangling };
}
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

const allContainers = async () => new Set((await exec("docker", ["ps", "-aq", "--no-trunc"])).stdout.split("\n").filter(Boolean));
const containersBefore = await allContainers();

say(`clean slate for ${stackName}`);
mkdirSync(workdir, { recursive: true });
await engineState().destroy();
await engineState().removeBuiltImages();
await removeVolumes();
copySampleApp(appSource);
provisionLocalHost(plan);

say("first deploy, images already built");
const firstStart = Date.now();
const first = await deploy(local);
const secondsToHealthy = (Date.now() - firstStart) / 1000;
await probes.run("deploy: every resource created and every container healthy", async () => {
  check(first.ok, first.error);
  return `${first.changed.length} resources in ${secondsToHealthy.toFixed(1)} s`;
});

say("probes");
await probes.run(`/api/health through Caddy with Host ${host}: 200, database and Redis healthy`, async () => {
  const body = await apiHealth();
  return `environment ${body.environment}`;
});
await probes.run("/ through Caddy serves the frontend", async () => {
  const res = await httpRequest(REHEARSAL_HTTP_PORT, "/", host);
  check(res.status === 200 && res.body.includes("TimeTracker"), `answered ${res.status}`);
  return "200, TimeTracker page";
});
await probes.run("a websocket under /api/ws/ echoes through Caddy", async () => {
  const reply = await websocketEcho(REHEARSAL_HTTP_PORT, "/api/ws/echo", host, "ping-42");
  check(reply.includes("ping-42"), `got ${reply}`);
  return `echoed "${reply}"`;
});
await probes.run(`the frontend reaches the backend by its container name (${backendName})`, async () => {
  const frontend = plan.containers.frontend.name;
  const viaNginx = await execOk("docker", ["exec", frontend, "wget", "-q", "-O-", "http://127.0.0.1/api/health"]);
  check(viaNginx.stdout.includes('"healthy"'), `nginx /api/health: ${viaNginx.stdout}`);
  const direct = await execOk("docker", ["exec", frontend, "wget", "-q", "-O-", `http://${backendName}:${plan.containers.backend.listenPort}/health`]);
  check(direct.stdout.includes("ok"), `direct: ${direct.stdout}`);
  return "nginx /api/ and direct by name";
});
await probes.run("the backend refuses a Host it does not allow (TrustedHostMiddleware is on)", async () => {
  const res = await httpRequest(plan.containers.backend.ports[0]?.external ?? 0, "/health", "evil.example.com");
  check(res.status === 400, `answered ${res.status}`);
  return "400";
});
await probes.run("every container reports healthy", async () => {
  const states = await Promise.all(Object.values(plan.containers).map(async (c) => [c.name, (await containerInfo(c.name)).State.Health?.Status] as const));
  const unhealthy = states.filter(([, s]) => s !== "healthy");
  check(unhealthy.length === 0, unhealthy.map(([n, s]) => `${n}: ${s}`).join(", "));
  return states.map(([n]) => n).join(", ");
});
await probes.run("no published port listens off loopback (Caddy included, bound to 127.0.0.1 here)", async () => {
  const bindings = await Promise.all(
    Object.values(plan.containers).map(async (c) => Object.values((await containerInfo(c.name)).HostConfig.PortBindings ?? {}).flat() as { HostIp: string }[]),
  );
  const off = bindings.flat().filter((b) => b.HostIp !== "127.0.0.1");
  check(off.length === 0, `bindings off loopback: ${JSON.stringify(off)}`);
  const ports = [...Object.values(plan.containers).flatMap((c) => c.ports.map((p) => p.external)), REHEARSAL_HTTP_PORT];
  const listening = (await execOk("ss", ["-ltnH"])).stdout.split("\n").map((l) => l.trim().split(/\s+/)[3] ?? "");
  const exposed = listening.filter((addr) => ports.some((p) => addr.endsWith(`:${p}`)) && !addr.startsWith("127.0.0.1:"));
  check(exposed.length === 0, `listening off loopback: ${exposed.join(", ")}`);
  return `ports ${ports.join(", ")} on 127.0.0.1 only`;
});

await probes.run("no secret appears in any container's logs or command line", async () => {
  const entries = Object.values(JSON.parse(readFileSync(stateFile, "utf8")).entries) as { type: string; state: { result?: string } }[];
  const secrets = entries.filter((e) => e.type === "random:index/randomPassword:RandomPassword").map((e) => String(e.state.result));
  check(secrets.length > 0, "no generated secret in the stack's state");
  for (const c of Object.values(plan.containers)) {
    const logs = await exec("docker", ["logs", c.name]);
    const info = await containerInfo(c.name);
    const visible = `${logs.stdout}${logs.stderr}${JSON.stringify(info.Config.Cmd)}${JSON.stringify(info.Config.Entrypoint)}`;
    check(!secrets.some((secret) => visible.includes(secret)), `${c.name} shows a secret`);
  }
  return `${secrets.length} secrets, ${Object.keys(plan.containers).length} containers checked`;
});

say("each seed incident's drift, reintroduced on a copy of the definition");
const backendIdBefore = async () => (await containerInfo(backendName)).Id as string;
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
    const before = await backendIdBefore();
    prepare();
    const result = await deploy(drifted);
    restore();
    check(!result.ok, "the drifted deploy succeeded");
    check(expected.test(result.error), `unexpected failure: ${result.error}`);
    check((await backendIdBefore()) === before, "the backend container was replaced");
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
  const conf = await execOk("docker", ["exec", plan.containers.frontend.name, "cat", "/etc/nginx/nginx.conf"]);
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
await refusedBackendUntouched(
  "DB credentials that do not match the existing volume (another user)",
  { ...local, database: { ...local.database, user: "someone_else" } },
  /refused: volume .* has no role 'someone_else'/,
);
await probes.run("after the refusals, the unchanged definition deploys cleanly again", async () => {
  const result = await deploy(local);
  check(result.ok, result.error);
  await apiHealth();
  return result.changed.join(", ") || "no change";
});

await probes.run("a config change reaches the running service (a new domain: Caddyfile and ALLOWED_HOSTS)", async () => {
  const extra = `www.${host}`;
  const widened = { ...local, extraDomains: [extra] };
  // Caddy answers an unknown Host with an empty 200: only the backend's JSON shows the route.
  const reachesBackend = (res: { status: number; body: string }) => res.status === 200 && res.body.includes('"healthy"');
  const before = await httpRequest(REHEARSAL_HTTP_PORT, "/api/health", extra);
  check(!reachesBackend(before), `the new domain reached the backend before the change`);
  const result = await deploy(widened);
  check(result.ok, result.error);
  const after = await httpRequest(REHEARSAL_HTTP_PORT, "/api/health", extra);
  check(reachesBackend(after), `the new domain answered ${after.status} ${after.body.slice(0, 80)} after the change`);
  const restored = await deploy(local);
  check(restored.ok, restored.error);
  return `${extra}: not routed before, backend healthy after (${result.changed.filter((c) => c.includes("app-")).join(", ")})`;
});

say("nothing is lost");
const items = ["alpha", "beta", "gamma"];
await probes.run("rows written through Caddy", async () => {
  for (const name of items) {
    const res = await httpRequest(REHEARSAL_HTTP_PORT, "/api/items", host, { method: "POST", body: { name } });
    check(res.status === 200 || res.status === 201, `POST answered ${res.status}: ${res.body}`);
  }
  return items.join(", ");
});
const readItems = async () => {
  const res = await httpRequest(REHEARSAL_HTTP_PORT, "/api/items", host);
  check(res.status === 200, `GET answered ${res.status}`);
  return (JSON.parse(res.body) as { name: string }[]).map((i) => i.name);
};
let failedDuringRedeploy = Number.NaN;
let diskAfterOne = { bytes: 0, dangling: 0 };
let diskAfterAll = { bytes: 0, dangling: 0 };
await probes.run("redeploy with a changed backend image while requests flow through Caddy", async () => {
  touchBackend(1);
  const loop = requestLoop(REHEARSAL_HTTP_PORT, "/api/health", host);
  const before = await backendIdBefore();
  const result = await deploy(local);
  const traffic = await loop.stop();
  failedDuringRedeploy = traffic.failed;
  check(result.ok, result.error);
  check((await backendIdBefore()) !== before, "the backend container was not replaced");
  diskAfterOne = await dockerDisk();
  check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed: ${traffic.failures.slice(0, 3).join("; ")}`);
  return `${traffic.sent} requests, ${traffic.failed} failed`;
});
await probes.run("rows read back after the redeploy", async () => {
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `read ${names.join(", ")}`);
  return names.join(", ");
});
await probes.run(`the database password survives ${redeploys} redeploys`, async () => {
  const password = await envHash(backendName, "DB_PASSWORD");
  for (let n = 2; n <= redeploys; n += 1) {
    touchBackend(n);
    const result = await deploy(local);
    check(result.ok, `redeploy ${n}: ${result.error}`);
    check((await envHash(backendName, "DB_PASSWORD")) === password, `redeploy ${n} changed the password`);
    await apiHealth();
  }
  diskAfterAll = await dockerDisk();
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
  return `same password hash ${password} after ${redeploys} redeploys`;
});
await probes.run("a rotation through the counter keeps the backend healthy", async () => {
  const before = await envHash(backendName, "DB_PASSWORD");
  const rotation = (local.database?.password?.rotation ?? 0) + 1;
  const rotated = { ...local, database: { ...local.database, password: { ...local.database?.password, rotation } } };
  const result = await deploy(rotated);
  check(result.ok, result.error);
  check((await envHash(backendName, "DB_PASSWORD")) !== before, "the password did not change");
  await apiHealth();
  const names = await readItems();
  check(items.every((i) => names.includes(i)), "rows lost");
  const stdout = String(engineState().entry("command:remote:Command", "app-db-credentials")?.state.stdout ?? "");
  check(/rotated/.test(stdout), `credential step said: ${stdout}`);
  return stdout;
});
await probes.run("tearing the stack down keeps the database volume and its rows", async () => {
  // What an operator keeps before a teardown: `pulumi stack output --show-secrets databasePassword`.
  const kept = String(engineState().entry("random:index/randomPassword:RandomPassword", "secrets-dbPassword")?.state.result ?? "");
  check(kept !== "", "no database password in the stack's state");
  const { removed } = await engineState().destroy();
  check((await dockerApi("GET", `/volumes/${plan.volumes.database}`)).status === 200, "the database volume is gone");
  check((await dockerApi("GET", `/containers/${backendName}/json`)).status === 404, "the backend survived the teardown");
  provisionLocalHost(plan);

  // A new stack generates a new password, which the kept volume does not have: refused.
  const fresh = await deploy(local);
  check(!fresh.ok && /does not accept the stack's password/.test(fresh.error), `a new password on the kept volume was not refused: ${fresh.error}`);
  check((await dockerApi("GET", `/containers/${backendName}/json`)).status === 404, "a backend started with credentials the database refuses");

  // As the refusal says: adopt the volume's password from an encrypted stack secret.
  const adopted = { ...local, database: { ...local.database, password: { adoptFrom: "adoptedDbPassword", rotation: 0 } } };
  const again = await deploy(adopted, { "timetracker:adoptedDbPassword": kept });
  check(again.ok, again.error);
  const names = await readItems();
  check(items.every((i) => names.includes(i)), `read ${names.join(", ")}`);
  return `removed ${removed.length} resources, kept the volume; a new password was refused; adopted, rows back: ${names.join(", ")}`;
});

say("clean up");
await engineState().destroy();
const removedImages = await engineState().removeBuiltImages();
await removeVolumes();
unprovisionLocalHost(plan);
rmSync(workdir, { recursive: true, force: true });
const leftovers = await exec("docker", ["ps", "-a", "--filter", `label=timetracker.stack=${stackName}`, "-q"]);
await probes.run("clean-up left no container, network or volume of the rehearsal", async () => {
  check(leftovers.stdout.trim() === "", `containers left: ${leftovers.stdout}`);
  const strays = [...(await allContainers())].filter((id) => !containersBefore.has(id));
  check(strays.length === 0, `${strays.length} other containers left (failed builds?)`);
  check((await dockerApi("GET", `/networks/${plan.network}`)).status === 404, `network ${plan.network} left`);
  for (const v of Object.values(plan.volumes)) check((await dockerApi("GET", `/volumes/${v}`)).status === 404, `volume ${v} left`);
  return `none left; removed ${removedImages} images the deploys built`;
});

console.log(`
== measurements (stack ${stackName})
seconds from start to all healthy (images built): ${secondsToHealthy.toFixed(1)}
requests failed during a backend redeploy:        ${failedDuringRedeploy}
Docker disk (unique layers + build cache) after 1 redeploy: ${mb(diskAfterOne.bytes)}, ${diskAfterOne.dangling} untagged old images;
  after ${redeploys}: ${mb(diskAfterAll.bytes)} (${(diskAfterAll.bytes - diskAfterOne.bytes) / 1e3 >= 0 ? "+" : ""}${((diskAfterAll.bytes - diskAfterOne.bytes) / 1e3).toFixed(1)} kB), ${diskAfterAll.dangling} untagged old images (the host's daily prune removes them after a week)
rehearsal wall time: ${elapsed()}
`);
const passed = probes.results.length - probes.failed;
console.log(`rehearsal: ${passed} passed, ${probes.failed} failed`);
process.exitCode = probes.failed === 0 ? 0 : 1;
