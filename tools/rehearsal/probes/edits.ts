import { BACKUP_TOOL } from "../../../infra/render/backup.js";
import { CLIENTS, type Rehearsal } from "../context.js";
import { tcpOpen } from "../host-access.js";
import { httpRequest, requestLoop } from "../http.js";
import { check } from "../probes.js";

/**
 * Everyday edits to the definition: each deploys safely, and the deploy names what it
 * replaces and why. Leaves the edited definition in r.current for the probes after it.
 */
export async function edits(r: Rehearsal): Promise<void> {
  const { say, probes, deploy, plan, admin, world, web, host, backendName, redeploys, items } = r;
  const { machineNow, replacedWhy, containerInfo, backendId, envHash, apiHealth, readItems, touchBackend, engineState, underTraffic, trafficSummary, noGap } = r;
  const swaps = r.measurements.swaps;
  say("everyday edits: each is safe, and the deploy names what it replaces and why");
  let current = r.current;
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
  await probes.run(`redeploy with a changed backend image while ${CLIENTS} clients loop through Caddy: no gap`, async () => {
    touchBackend(1);
    const before = await backendId();
    const { result, traffic, seconds } = await underTraffic("/api/health", () => deploy(current));
    r.measurements.failedDuringRedeploy = traffic.failed;
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
  r.current = current;
}
