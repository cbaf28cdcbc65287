import { readFileSync } from "node:fs";
import type { Rehearsal } from "../context.js";
import { daemonEnv, exec, execOk } from "../docker.js";
import { httpRequest, websocketEcho } from "../http.js";
import { check } from "../probes.js";

/** The running app through Caddy (API, frontend, websocket), its containers' health and
 *  names, what listens where on the host, and no secret in any log or command line. */
export async function theApp(r: Rehearsal): Promise<void> {
  const { say, probes, host, apiHealth, web, plan, backendName, admin, containerInfo, stateFile } = r;
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
}
