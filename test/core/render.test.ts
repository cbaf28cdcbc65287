import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import { validateCatalog } from "../../infra/model/catalog.js";
import { derive } from "../../infra/model/derive.js";
import { BUNDLE_MEMORY_GB, EnvironmentSchema, type EnvironmentDefinition } from "../../infra/model/schema.js";
import { renderCaddyfile } from "../../infra/render/caddyfile.js";
import { renderAll } from "../../infra/render/index.js";
import { DISK_CHECK, renderHostSetup } from "../../infra/render/host-setup.js";
import { renderLaunchScript } from "../../infra/render/launch-script.js";
import { rotationStateFile } from "../../infra/render/db-credentials.js";
import { renderNginxConf } from "../../infra/render/nginx-conf.js";
import { renderReleaseTool } from "../../infra/render/release.js";
import { renderBackupTool } from "../../infra/render/backup.js";
import { renderPostgresUpgradeTool } from "../../infra/render/postgres-upgrade.js";
import { renderTopology } from "../../infra/render/topology.js";
import { prod as prodDefinition } from "../../stacks/prod.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { catalog } from "../../stacks/catalog.js";
import { mockConfig } from "../../tools/mock-config.js";
import { runProgram } from "../../tools/mock-engine.js";
import { block, planFromDefinition, planOf, plansOf, REPO_ROOT, run, SECRET_NAMES, secretReferences, tempDir } from "./helpers.js";

const execFileAsync = promisify(execFile);
/** tsx's loader by its path: `--import tsx` resolves from the working folder, here outside the repository. */
const TSX_LOADER = pathToFileURL(createRequire(join(REPO_ROOT, "package.json")).resolve("tsx")).href;
const { dir, cleanup } = tempDir("render");
afterAll(cleanup);

const variant = (overrides: Partial<EnvironmentDefinition>): Plan => planFromDefinition({ ...stagingDefinition, ...overrides });

describe("rendering is deterministic", () => {
  // Another process, later, in time zones 25 hours apart, another locale and working folder: a
  // clock, a random value, the locale or the environment in a rendered file makes them differ.
  it("renders byte-identical files in other processes, time zones, locales and working folders", async () => {
    const elsewhere = [
      { TZ: "Pacific/Kiritimati", LANG: "tr_TR.UTF-8", LC_ALL: "tr_TR.UTF-8" },
      { TZ: "Pacific/Pago_Pago", LANG: "C", LC_ALL: "C" },
    ];
    const rendered = await Promise.all(
      elsewhere.map(async (env, i) => {
        const cwd = join(dir, `elsewhere-${i}`);
        mkdirSync(cwd);
        const result = await execFileAsync(process.execPath, ["--import", TSX_LOADER, join(REPO_ROOT, "infra/cli/render.ts"), "--all"], {
          cwd,
          env: { ...process.env, ...env, HOME: cwd, USER: `someone-${i}` },
          timeout: 60_000,
        });
        expect(result.stderr).toBe("");
        return join(cwd, "rendered");
      }),
    );
    for (const plan of plansOf()) {
      const here = renderAll(plan);
      for (const folder of rendered) {
        const there = Object.fromEntries(readdirSync(join(folder, plan.stack)).map((name) => [name, readFileSync(join(folder, plan.stack, name), "utf8")]));
        expect(there, `${folder}/${plan.stack}`).toEqual(here);
      }
    }
  });

  it("renders identical files from two independently derived plans", () => {
    const first = plansOf().map(renderAll);
    const second = plansOf(catalog.map((definition) => structuredClone(definition))).map(renderAll);
    expect(second).toEqual(first);
  });

  it("keeps plan.json's key order whatever order the definition's keys are written in", () => {
    const reversed = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reversed)
        : value !== null && typeof value === "object"
          ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]))
          : value;
    for (const definition of [prodDefinition, stagingDefinition]) {
      const written = renderAll(planFromDefinition(definition))["plan.json"];
      const shuffled = renderAll(planFromDefinition(reversed(definition) as EnvironmentDefinition))["plan.json"];
      expect(shuffled).toBe(written);
    }
  });
});

describe("Caddyfile", () => {
  const prod = planOf("prod");
  const caddyfile = renderCaddyfile(prod);
  const routes = block(caddyfile, "(timetracker_routes) {");

  it("has one site per domain, each importing the shared routes", () => {
    const plan = variant({ extraDomains: ["www.staging.example.com", "alt.staging.example.com"] });
    const text = renderCaddyfile(plan);
    const sites = text.split("\n").filter((line) => /^\S+ \{$/.test(line) && !line.startsWith("("));
    expect(sites).toEqual(plan.domains.map((d) => `${d} {`));
    expect(plan.domains).toHaveLength(3);
    for (const domain of plan.domains) expect(block(text, `${domain} {`)).toContain("import timetracker_routes");
  });

  it("routes /api/ws/* and /api/* to both of the backend's loopback slots, keeping the path", () => {
    for (const path of ["/api/ws/*", "/api/*"]) {
      expect(block(routes, `handle ${path} {`)).toContain("reverse_proxy 127.0.0.1:8080 127.0.0.1:18080 {");
    }
    expect(caddyfile).not.toMatch(/handle_path|strip_prefix|uri strip/);
  });

  it("routes everything else to both of the frontend's loopback slots", () => {
    expect(block(routes, "handle {")).toContain("reverse_proxy 127.0.0.1:3000 127.0.0.1:13000 {");
    expect(routes.match(/reverse_proxy /g)).toHaveLength(3);
  });

  it("retries a restarting upstream and sends Host: localhost in health checks on every route", () => {
    for (const header of ["handle /api/ws/* {", "handle /api/* {", "handle {"]) {
      const proxy = block(routes, header);
      expect(proxy).toMatch(/\blb_try_duration \d+s\b/);
      expect(block(proxy, "health_headers {")).toMatch(/^\s*Host localhost$/m);
    }
    // Readiness, not liveness: a slot takes traffic only once the database and Redis answer.
    expect(block(routes, "handle /api/* {")).toContain("health_uri /api/health");
    expect(block(routes, "handle {")).toContain("health_uri /healthz");
  });

  it("takes the first healthy slot, retries a refused one at once, and checks each slot every 2s", () => {
    expect(prod.caddy.healthIntervalSeconds).toBe(2);
    for (const header of ["handle /api/ws/* {", "handle /api/* {", "handle {"]) {
      const proxy = block(routes, header);
      expect(proxy).toMatch(/^\s*lb_policy first$/m);
      expect(proxy).toMatch(/^\s*lb_try_duration 30s$/m);
      expect(proxy).toMatch(/^\s*lb_try_interval 50ms$/m);
      expect(proxy).toMatch(new RegExp(`^\\s*health_interval ${prod.caddy.healthIntervalSeconds}s$`, "m"));
      expect(proxy).toMatch(new RegExp(`^\\s*health_timeout ${prod.caddy.healthIntervalSeconds}s$`, "m"));
    }
  });

  it("acme: bare domain site addresses and the contact email, no local certs", () => {
    const globals = block(caddyfile, "{");
    expect(globals).toContain("email ops@shaemarcus.com");
    expect(globals).not.toMatch(/local_certs|auto_https|default_bind|http_port|https_port/);
    expect(caddyfile).toMatch(/^timetracker\.shaemarcus\.com \{$/m);
  });

  it("tls off: http:// site addresses and auto_https off", () => {
    const text = renderCaddyfile(variant({ tls: { mode: "off" } }));
    expect(block(text, "{")).toContain("auto_https off");
    expect(text).toMatch(/^http:\/\/timetracker-staging\.shaemarcus\.com \{$/m);
  });

  it("tls internal: local_certs", () => {
    const text = renderCaddyfile(variant({ tls: { mode: "internal" } }));
    expect(block(text, "{")).toContain("local_certs");
    expect(text).toMatch(/^timetracker-staging\.shaemarcus\.com \{$/m);
  });

  it("caddy.bind and ports become default_bind, http_port and https_port", () => {
    const text = renderCaddyfile(variant({ caddy: { bind: "127.0.0.1", httpPort: 18080, httpsPort: 18443 } }));
    const globals = block(text, "{");
    expect(globals).toMatch(/^\s*default_bind 127\.0\.0\.1$/m);
    expect(globals).toMatch(/^\s*http_port 18080$/m);
    expect(globals).toMatch(/^\s*https_port 18443$/m);
  });
});

describe("nginx.conf", () => {
  it.each(plansOf().map((p) => [p.stack, p] as const))("%s: resolves the backend by its container name per request", (_stack, plan) => {
    const conf = renderNginxConf(plan);
    const api = block(conf, "location /api/ {");
    // A swapped-in backend (same name, new container) is found within the DNS cache time.
    expect(conf).toMatch(new RegExp(`^\\s*resolver 127\\.0\\.0\\.11 valid=${plan.frontendUpstream.dnsCacheSeconds}s\\b`, "m"));
    expect(plan.frontendUpstream.dnsCacheSeconds).toBe(5);
    expect(api).toContain(`set $backend http://${plan.containers.backend.name}:8080;`);
    expect(conf.match(/proxy_pass [^;]*;/g)).toEqual(["proxy_pass $backend;"]);
  });

  it("passes websocket upgrades through to the backend", () => {
    const conf = renderNginxConf(planOf("prod"));
    const api = block(conf, "location /api/ {");
    expect(api).toContain("proxy_http_version 1.1;");
    expect(api).toContain("proxy_set_header Upgrade $http_upgrade;");
    expect(api).toContain("proxy_set_header Connection $connection_upgrade;");
    expect(block(conf, "map $http_upgrade $connection_upgrade {")).toMatch(/default upgrade;[\s\S]*'' close;/);
  });

  it("answers /healthz itself and listens on the frontend's container port", () => {
    const plan = planOf("prod");
    const conf = renderNginxConf(plan);
    expect(block(conf, "location = /healthz {")).toContain("return 200");
    expect(conf).toMatch(new RegExp(`^\\s*listen ${plan.containers.frontend.listenPort};$`, "m"));
  });
});

describe("launch.sh (user data)", () => {
  // Lightsail replaces an instance whose user data changes: what the program gives the instance
  // must be one text for every stack and every definition field, naming none of them.
  it("is the same user data for the instance of every stack and every definition field, so no edit replaces an instance", async () => {
    const withStaging = (overrides: Partial<EnvironmentDefinition>) => catalog.map((d) => (d.name === "staging" ? { ...d, ...overrides } : d));
    const deployments: [readonly unknown[], string][] = [
      ...catalog.map((d): [readonly unknown[], string] => [catalog, d.name]),
      [withStaging({ host: { bundle: "nano_3_0", minFreeDiskGb: 9 } }), "staging"],
      [withStaging({ backup: { databaseDumpKeepDays: 30 } }), "staging"],
    ];
    const userData = new Set<string>();
    for (const [definitions, stack] of deployments) {
      const plan = planOf(stack, definitions);
      const { config, secretKeys } = mockConfig(plan);
      const program = await runProgram(stack, config, secretKeys, { definitions });
      const text = String(program.one("aws:lightsail/instance:Instance", "host-instance").inputs.userData);
      for (const word of [plan.stack, plan.host.name, ...plan.domains]) expect(text, `user data of ${stack}`).not.toContain(word);
      userData.add(text);
    }
    expect(userData.size).toBe(1);
    expect([...userData][0]).toMatch(/^#!\/bin\/bash\n/);
  });
});

describe("host-setup.sh", () => {
  it("gives the deploy user its state folder on the data disk (the credential check writes there over SSH)", () => {
    const plan = variant({});
    const script = renderHostSetup(plan);
    expect(script).toContain(`install -d -m 0755 -o ${plan.host.sshUser} -g ${plan.host.sshUser} ${plan.host.stateDir}`);
    expect(plan.host.stateDir.startsWith(`${plan.host.dataDisk.mount}/`)).toBe(true);
    expect(rotationStateFile(plan).startsWith(`${plan.host.stateDir}/`)).toBe(true);
  });

  // Which disk is found and when it is formatted: test/core/data-disk.test.ts runs it.
  it("finds the data disk with the finder, and mounts it by UUID before Docker starts", () => {
    const plan = variant({});
    const script = renderHostSetup(plan);
    expect(script).toContain("device=$(data_disk)");
    expect(script.indexOf("device=$(data_disk)")).toBeLessThan(script.indexOf("/etc/fstab"));
    expect(script).toContain(`echo "UUID=$uuid ${plan.host.dataDisk.mount} ext4 defaults,nofail 0 2" >> /etc/fstab`);
    expect(script).toContain(`RequiresMountsFor=${plan.host.dataDisk.mount}`);
    for (const path of Object.values(plan.volumePaths)) expect(script).toContain(`install -d -m 0755 ${path}`);
  });

  it.each(Object.keys(BUNDLE_MEMORY_GB))("adds swap only on nano and micro bundles: %s", (size) => {
    const script = renderHostSetup(variant({ host: { bundle: `${size}_3_0` } }));
    expect(script.includes("/swapfile")).toBe(size === "nano" || size === "micro");
  });

  it("holds no secret and no password outside the release and backup tools, which name secret variables only", () => {
    for (const plan of plansOf()) {
      const setup = renderHostSetup(plan);
      const tool = renderReleaseTool(plan);
      const backup = renderBackupTool(plan);
      const upgrade = renderPostgresUpgradeTool(plan);
      expect(setup).toContain(tool);
      expect(setup).toContain(backup);
      expect(setup).toContain(upgrade);
      // Host setup itself handles no secret: only the tools it installs read them, by name, from stdin or a root-only file.
      expect(setup.replace(tool, "").replace(backup, "").replace(upgrade, "")).not.toMatch(/secret|password|SECRET_KEY/i);
      // The backup tool reads the bucket's key from its file only to keep it out of its own messages.
      const backupNaming = backup.split("\n").filter((line) => /secret|password/i.test(line) && !line.trim().startsWith("#"));
      expect(backupNaming.every((line) => /\bsecret\b|\$secret|secret_access_key/.test(line))).toBe(true);
      expect(backup).not.toMatch(/PASSWORD|SECRET_KEY/);
      expect(renderLaunchScript()).not.toMatch(/secret|password|SECRET_KEY/i);
      // The variable names, upper case, once; the tool's own code says secret_keys, never a value.
      const naming = tool.split("\n").filter((line) => /PASSWORD|SECRET_KEY/.test(line));
      expect(naming.map((line) => line.trim())).toEqual(["secret_keys=(DB_PASSWORD REDIS_PASSWORD SECRET_KEY)"]);
    }
  });

  it("installs the disk check with the plan's threshold", () => {
    const script = renderHostSetup(variant({ host: { minFreeDiskGb: 9 } }));
    expect(script).toContain(`put ${DISK_CHECK} 0755 <<'SH' || true`);
    expect(script).toContain('need_gb="${1:-9}"');
  });

  it("passes bash -n for every stack of the catalog and a nano host (host setup, the release tool, the launch script)", async () => {
    const plans = [...plansOf(), variant({ name: "tiny", containerPrefix: "tiny", host: { bundle: "nano_3_0" } })];
    for (const plan of plans) {
      for (const [name, text] of [["setup", renderHostSetup(plan)], ["release", renderReleaseTool(plan)], ["launch", renderLaunchScript()]] as const) {
        const file = join(dir, `${plan.stack}-${name}.sh`);
        writeFileSync(file, text);
        const result = await run("bash", ["-n", file]);
        expect(result.spawnError).toBeUndefined();
        expect({ stack: plan.stack, code: result.code, stderr: result.stderr }).toEqual({ stack: plan.stack, code: 0, stderr: "" });
      }
    }
  });
});

describe("topology.md", () => {
  it.each(plansOf().map((p) => [p.stack, p] as const))("%s: a mermaid diagram of every container and route; every volume listed", (_stack, plan) => {
    const doc = renderTopology(plan);
    const mermaid = doc.match(/```mermaid\n([\s\S]*?)\n```/)?.[1];
    expect(mermaid, "a ```mermaid block").toBeDefined();
    for (const container of Object.values(plan.containers)) expect(mermaid).toContain(`"${container.name}"`);
    for (const route of plan.caddy.routes) expect(mermaid).toContain(`${route.path} → ${route.upstreams.join(" or ")}`);
    for (const volume of Object.values(plan.volumes)) expect(doc).toContain(`\`${volume}\``);
  });
});

describe("no secret value reaches a generated file", () => {
  it("plan.json holds secrets only as {secret: <declared name>} references", () => {
    for (const plan of plansOf()) {
      const parsed = JSON.parse(renderAll(plan)["plan.json"]) as unknown;
      const refs = secretReferences(parsed);
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) {
        expect(Object.keys(ref as object)).toEqual(["secret"]);
        expect(SECRET_NAMES).toContain((ref as { secret: string }).secret);
      }
    }
  });

  it("only plan.json mentions secrets at all, and only as references", () => {
    for (const plan of plansOf()) {
      const files = renderAll(plan);
      const refs = files["plan.json"].match(/"secret": "[^"]*"/g) ?? [];
      expect(files["plan.json"].match(/"secret"/g)?.length).toBe(refs.length);
      const others = Object.keys(files).filter((name) => name !== "plan.json");
      expect(others.sort()).toEqual(["Caddyfile", "backup.sh", "host-setup.sh", "host-status.sh", "launch.sh", "lock.sh", "nginx.conf", "postgres-upgrade.sh", "release.sh", "topology.md"]);
      // No `{secret: ...}` reference in any other file (the release tool's "${secret_keys[@]}" is a bash array).
      for (const name of others) expect(files[name as keyof typeof files], name).not.toMatch(/\{\s*"?secret"?\s*:/);
    }
  });

  it.each(plansOf().map((p) => [p.stack, p] as const))(
    "%s: none of the secret values the program handles (under Pulumi mocks) is in a rendered or committed file",
    async (stack, plan) => {
      const { config, secretKeys } = mockConfig(plan);
      const program = await runProgram(stack, config, secretKeys);
      // The generated passwords, the adopted one and the SSH private key.
      expect(program.secretValues.length).toBeGreaterThanOrEqual(3);
      const committed = readdirSync(join(REPO_ROOT, "rendered", stack)).map((name) => [`rendered/${stack}/${name}`, readFileSync(join(REPO_ROOT, "rendered", stack, name), "utf8")]);
      for (const [name, text] of [...Object.entries(renderAll(plan)), ...committed] as [string, string][]) {
        for (const secret of program.secretValues) expect(text.includes(secret), `${name} holds a secret value`).toBe(false);
      }
    },
  );

  it("a password typed into extraEnv under a secret's name is refused, and even unvalidated never rendered", () => {
    const fake = randomBytes(24).toString("base64url");
    const definition = { ...stagingDefinition, app: { environment: "staging", extraEnv: { DB_PASSWORD: fake, SECRET_KEY: fake, REDIS_PASSWORD: fake } } };
    const result = validateCatalog([definition]);
    expect(result.ok ? [] : result.problems.map((p) => p.path)).toEqual([
      "staging.app.extraEnv.DB_PASSWORD",
      "staging.app.extraEnv.SECRET_KEY",
      "staging.app.extraEnv.REDIS_PASSWORD",
    ]);
    const plan = derive({ ...EnvironmentSchema.parse(definition), ports: { frontend: 3001, backend: 8081 } });
    expect(plan.containers.backend.env.DB_PASSWORD).toEqual({ secret: "dbPassword" });
    expect(plan.containers.backend.env.SECRET_KEY).toEqual({ secret: "appSecretKey" });
    expect(plan.containers.backend.env.REDIS_PASSWORD).toEqual({ secret: "redisPassword" });
    for (const [name, text] of Object.entries(renderAll(plan))) expect(text.includes(fake), name).toBe(false);
  });
});
