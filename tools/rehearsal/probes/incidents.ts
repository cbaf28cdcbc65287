import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EnvironmentDefinition } from "../../../infra/model/schema.js";
import { catalog } from "../../../stacks/catalog.js";
import type { Rehearsal } from "../context.js";
import { daemonEnv, dockerApi, exec, execOk } from "../docker.js";
import { check } from "../probes.js";
import { copySampleApp } from "../sample-app.js";

/**
 * Each incident in seeds/, its drift reintroduced on a copy of the definition: refused
 * before anything changes, or refused on the host with the live backend untouched.
 */
export async function incidents(r: Rehearsal): Promise<void> {
  const { say, probes, deploy, local, plan, host, stackName, backendName, backendId, apiHealth, appSource, workdir } = r;
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
}
