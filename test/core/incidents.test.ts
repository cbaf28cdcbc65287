import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nextFreePort } from "../../infra/model/catalog.js";
import { HEALTH_HOST } from "../../infra/model/derive.js";
import { checkPlan } from "../../infra/model/invariants.js";
import type { Plan } from "../../infra/model/plan.js";
import { checkPostgresUpgrade, databaseOf } from "../../infra/model/postgres-upgrade.js";
import { DISK_CHECK } from "../../infra/render/host-setup.js";
import { DAEMON_JSON } from "../../infra/render/launch-script.js";
import { renderAll } from "../../infra/render/index.js";
import { prod as prodDefinition } from "../../stacks/prod.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { allowedHostsEnv, block, copyOf, planOf, plansOf, problemAt, problemsOf, REPO_ROOT } from "./helpers.js";

const plans = plansOf();
const eachStack = plans.map((p) => [p.stack, p] as const);
const prod = planOf("prod");

/** Replaces the Host header the backend's Docker health check sends. */
function withHealthCheckHost(plan: Plan, host: string): Plan {
  const drifted = copyOf(plan);
  const test = drifted.containers.backend.healthCheck.test;
  const at = test.indexOf("-H");
  expect(at, "the backend health check sets a header").toBeGreaterThanOrEqual(0);
  test[at + 1] = `Host: ${host}`;
  return drifted;
}

/** Removes `host` from the plan's allowed hosts and from the backend's ALLOWED_HOSTS, consistently. */
function withoutAllowedHost(plan: Plan, host: string): Plan {
  const drifted = copyOf(plan);
  drifted.allowedHosts = drifted.allowedHosts.filter((h) => h !== host);
  drifted.containers.backend.env.ALLOWED_HOSTS = JSON.stringify(drifted.allowedHosts);
  return drifted;
}

describe("health check 400 from TrustedHostMiddleware", () => {
  it("a backend health check sending Host: timetracker-backend-typo is reported", () => {
    expect(checkPlan(withHealthCheckHost(prod, "timetracker-backend-typo"))).toContainEqual(
      problemAt("prod.domain", `the backend's Docker health check sends Host "timetracker-backend-typo"`),
    );
  });

  it("a health check without a Host header is reported", () => {
    const drifted = copyOf(prod);
    drifted.containers.backend.healthCheck.test = ["CMD", "curl", "-f", "http://127.0.0.1:8080/health"];
    expect(checkPlan(drifted)).toContainEqual(problemAt("prod.domain", "sends no Host header"));
  });

  it("ALLOWED_HOSTS without localhost is reported for the Docker and the Caddy health checks", () => {
    const problems = checkPlan(withoutAllowedHost(prod, "localhost"));
    expect(problems).toContainEqual(problemAt("prod.domain", `the backend's Docker health check sends Host "localhost"`));
    expect(problems).toContainEqual(problemAt("prod.domain", `Caddy's active health checks sends Host "localhost"`));
    expect(problems).toContainEqual(problemAt("prod.domain", 'ALLOWED_HOSTS lacks "localhost"'));
  });

  it.each(eachStack)("%s: the rendered Caddyfile's health_headers Host is in ALLOWED_HOSTS", (_stack, plan) => {
    const caddyfile = renderAll(plan).Caddyfile;
    const hosts = [...caddyfile.matchAll(/health_headers \{\n\s*Host (\S+)\n/g)].map((m) => m[1]);
    expect(hosts).toHaveLength(plan.caddy.routes.length);
    for (const host of hosts) expect(allowedHostsEnv(plan)).toContain(host);
  });

  it.each(eachStack)("%s: the backend's Docker health check sends Host: localhost, which is allowed", (_stack, plan) => {
    expect(plan.containers.backend.healthCheck.test).toContain(`Host: ${HEALTH_HOST}`);
    expect(allowedHostsEnv(plan)).toContain(HEALTH_HOST);
  });
});

describe("frontend port clashed with Caddy on 80", () => {
  it.each([80, 443, 22])("a frontend on host port %i is rejected at <stack>.ports.frontend", (port) => {
    const problems = problemsOf([{ ...prodDefinition, ports: { frontend: port, backend: 8080 } }, stagingDefinition]);
    expect(problems).toContainEqual(problemAt("prod.ports.frontend", `${port} is reserved for the host`));
  });

  it("a backend on host port 80 is rejected at <stack>.ports.backend", () => {
    expect(problemsOf([prodDefinition, { ...stagingDefinition, ports: { frontend: 3001, backend: 80 } }])).toContainEqual(
      problemAt("staging.ports.backend", "80 is reserved for the host"),
    );
  });

  it("port allocation skips 22, 80 and 443", () => {
    expect(nextFreePort(22, new Set())).toBe(23);
    expect(nextFreePort(79, new Set([79]))).toBe(81);
    expect(nextFreePort(442, new Set([442, 444]))).toBe(445);
  });
});

describe("DB credentials did not match the existing volume", () => {
  it.each(eachStack)("%s: plan.json carries no password value", (_stack, plan) => {
    const json = renderAll(plan)["plan.json"];
    const passwordValues = [...json.matchAll(/"(\w*(?:PASSWORD|password|AUTH|SECRET_KEY)\w*)": ("[^"]*")/g)];
    expect(passwordValues.map((m) => `${m[1]}: ${m[2]}`)).toEqual([]);
  });

  it.each(eachStack)("%s: POSTGRES_PASSWORD and DB_PASSWORD reference the one dbPassword secret", (_stack, plan) => {
    expect(plan.containers.db.env.POSTGRES_PASSWORD).toEqual({ secret: "dbPassword" });
    expect(plan.containers.backend.env.DB_PASSWORD).toEqual({ secret: "dbPassword" });
    expect(plan.containers.backend.env.DB_USER).toBe(plan.containers.db.env.POSTGRES_USER);
    expect(plan.containers.backend.env.DB_NAME).toBe(plan.containers.db.env.POSTGRES_DB);
    expect(plan.secrets.filter((s) => s.name === "dbPassword")).toHaveLength(1);
  });

  it("prod adopts the existing volume's password from the stack secret adoptedDbPassword", () => {
    expect(prod.secrets.find((s) => s.name === "dbPassword")).toEqual({ name: "dbPassword", length: 32, rotation: 0, adoptFrom: "adoptedDbPassword" });
    expect(prod.database.user).toBe("postgres");
    expect(renderAll(prod)["topology.md"]).toContain("adopted from stack secret `adoptedDbPassword`");
  });

  it("staging generates its own password (nothing to adopt)", () => {
    expect(planOf("staging").secrets.find((s) => s.name === "dbPassword")?.adoptFrom).toBeUndefined();
  });

  it.each(["postgres:14", "postgres:18.1-bookworm"])("prod on %s is refused: a major whose image keeps its data elsewhere, or older", (image) => {
    expect(problemsOf([{ ...prodDefinition, images: { postgres: image } }])).toContainEqual(
      problemAt("prod.images.postgres", "must be postgres 15.x, 16.x or 17.x"),
    );
  });

  it.each(["postgres:16", "postgres:17.6-bookworm"])("moving deployed prod's data volume to %s is refused without a postgresUpgrade", (image) => {
    const next = databaseOf(planOf("prod", [{ ...prodDefinition, images: { postgres: image } }, stagingDefinition]));
    const { problems } = checkPostgresUpgrade("prod", databaseOf(planOf("prod")), next, undefined, false);
    expect(problems).toEqual([problemAt("prod.images.postgres", "a data directory is tied to the major that wrote it")]);
  });
});

describe("nginx upstream time-tracker-backend vs timetracker-backend", () => {
  it.each(eachStack)("%s: nginx.conf proxies to exactly the plan's backend container name", (_stack, plan) => {
    const conf = renderAll(plan)["nginx.conf"];
    const targets = [...conf.matchAll(/set \$backend http:\/\/([^:;\s]+):(\d+);/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(targets).toEqual([`${plan.containers.backend.name}:${plan.containers.backend.listenPort}`]);
    expect(block(conf, "location /api/ {")).toContain("proxy_pass $backend;");
  });

  it("a plan whose nginx upstream is time-tracker-backend is rejected", () => {
    const drifted = copyOf(prod);
    drifted.frontendUpstream.container = "time-tracker-backend";
    expect(checkPlan(drifted)).toContainEqual(problemAt("prod.containerPrefix", 'nginx proxies /api/ to "time-tracker-backend", which is no container'));
  });
});

describe("ALLOWED_HOSTS missing container names", () => {
  it.each(eachStack)("%s: ALLOWED_HOSTS holds the backend container name and its alias", (_stack, plan) => {
    const hosts = allowedHostsEnv(plan);
    expect(hosts).toContain(plan.containers.backend.name);
    for (const alias of plan.containers.backend.aliases) expect(hosts).toContain(alias);
    expect(hosts).toEqual(expect.arrayContaining([...plan.domains, "localhost", "127.0.0.1"]));
  });

  it.each(["timetracker-backend", "localhost"])("a plan whose ALLOWED_HOSTS lacks %s is rejected", (host) => {
    expect(checkPlan(withoutAllowedHost(prod, host))).toContainEqual(problemAt("prod.domain", `ALLOWED_HOSTS lacks "${host}"`));
  });

  it("a backend env whose ALLOWED_HOSTS has only the external domain (the old compose file) is rejected", () => {
    const drifted = copyOf(prod);
    drifted.containers.backend.env.ALLOWED_HOSTS = JSON.stringify(["timetracker.shaemarcus.com"]);
    expect(checkPlan(drifted)).toContainEqual(problemAt("prod.app.extraEnv", "ALLOWED_HOSTS differs"));
  });

  it("an extraEnv ALLOWED_HOSTS cannot replace the derived one", () => {
    const problems = problemsOf([{ ...prodDefinition, app: { environment: "production", extraEnv: { ALLOWED_HOSTS: '["evil.example.com"]' } } }]);
    expect(problems).toContainEqual(problemAt("prod.app.extraEnv.ALLOWED_HOSTS", "cannot be overridden"));
  });
});

describe("backend port not reachable from host Caddy", () => {
  it.each(eachStack)("%s: every Caddy route goes to a port published on 127.0.0.1", (_stack, plan) => {
    expect(plan.containers.caddy.network).toBe("host");
    for (const route of plan.caddy.routes) {
      expect(route.upstreams).toHaveLength(2);
      const published = plan.containers[route.service].ports.map((p) => `${p.ip}:${p.external}`);
      for (const upstream of route.upstreams) {
        expect(upstream).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(published).toContain(upstream);
      }
    }
  });

  it("a plan whose backend publishes no port is rejected for both /api routes", () => {
    const drifted = copyOf(prod);
    drifted.containers.backend.ports = [];
    const problems = checkPlan(drifted);
    expect(problems).toContainEqual(problemAt("prod.ports", "Caddy route /api/* goes to 127.0.0.1:8080"));
    expect(problems).toContainEqual(problemAt("prod.ports", "Caddy route /api/ws/* goes to 127.0.0.1:8080"));
  });

  it("a plan publishing the backend on a different container port than it listens on is rejected", () => {
    const drifted = copyOf(prod);
    drifted.containers.backend.ports[0]!.internal = 8000;
    expect(checkPlan(drifted)).toContainEqual(problemAt("prod.ports", "Caddy route /api/* goes to 127.0.0.1:8080"));
  });
});

describe("ImportError found only in production", () => {
  const path = join(REPO_ROOT, "app-images/backend/Dockerfile");

  it("app-images/backend/Dockerfile imports the app at build time and health-checks with Host: localhost", () => {
    expect(existsSync(path), `${path} is missing: the backend image must import its entry module at build time`).toBe(true);
    const dockerfile = readFileSync(path, "utf8");
    // Join continuation lines so a multi-line instruction reads as one.
    const instructions = dockerfile.replace(/\\\n/g, " ").split("\n").map((l) => l.trim());
    const importCheck = instructions.filter((l) => /^RUN\s+python3?\s+-c\s+["'][^"']*\bimport\b/.test(l));
    expect(importCheck, "a RUN python -c \"import ...\" line").not.toEqual([]);
    const healthchecks = instructions.filter((l) => l.startsWith("HEALTHCHECK"));
    expect(healthchecks).toHaveLength(1);
    expect(healthchecks[0]).toMatch(new RegExp(`-H\\s+["']Host: ${HEALTH_HOST}["']`));
    expect(allowedHostsEnv(prod)).toContain(HEALTH_HOST);
  });
});

describe("disk full", () => {
  it.each(eachStack)("%s: host-setup.sh rotates Docker logs via daemon.json (string options)", (_stack, plan) => {
    const script = renderAll(plan)["host-setup.sh"];
    const daemon = script.match(/put \/etc\/docker\/daemon\.json 0644 <<'JSON'\n([\s\S]*?)\nJSON\n/)?.[1];
    expect(daemon, "daemon.json heredoc").toBeDefined();
    const parsed = JSON.parse(daemon!) as typeof DAEMON_JSON;
    expect(parsed["log-driver"]).toBe("json-file");
    expect(parsed["log-opts"]).toEqual({ "max-size": expect.any(String), "max-file": expect.any(String) });
    expect(daemon).toContain('"max-size": "10m"');
    expect(daemon).toContain('"max-file": "3"');
  });

  it.each(eachStack)("%s: host-setup.sh installs a periodic image and builder prune", (_stack, plan) => {
    const script = renderAll(plan)["host-setup.sh"];
    const cron = script.match(/put \/etc\/cron\.(daily|weekly|hourly)\/\S+ 0755 <<'SH' \|\| true\n([\s\S]*?)\nSH\n/)?.[2];
    expect(cron, "a cron job").toBeDefined();
    expect(cron).toMatch(/docker image prune (--all|-a) --force/);
    expect(cron).toMatch(/docker builder prune (--all|-a) --force/);
  });

  it.each(eachStack)("%s: host-setup.sh installs the disk check script", (_stack, plan) => {
    const script = renderAll(plan)["host-setup.sh"];
    expect(script).toContain(`put ${DISK_CHECK} 0755 <<'SH' || true`);
    expect(script).toContain("df --output=avail -k /");
    expect(script).toContain(`\${1:-${plan.host.minFreeDiskGb}}`);
  });
});
