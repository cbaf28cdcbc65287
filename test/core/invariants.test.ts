import { describe, expect, it } from "vitest";
import { checkCatalog, checkPlan, hostHeadersSent, RESERVED_HOST_PORTS } from "../../infra/model/invariants.js";
import { catalog } from "../../stacks/catalog.js";
import { prod as prodDefinition } from "../../stacks/prod.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { copyOf, planOf, plansOf, problemAt, problemsOf } from "./helpers.js";

describe("invariants hold for the committed catalog", () => {
  const plans = plansOf();

  it.each(plans.map((p) => [p.stack, p] as const))("%s: checkPlan finds nothing", (_stack, plan) => {
    expect(checkPlan(plan)).toEqual([]);
  });

  it("checkCatalog finds nothing across every stack of the catalog", () => {
    expect(checkCatalog(plans)).toEqual([]);
  });

  it("reserves SSH and Caddy's ports, its admin API included", () => {
    expect([...RESERVED_HOST_PORTS.keys()].sort((a, b) => a - b)).toEqual([22, 80, 443, 2019]);
  });

  it("lists every Host the stack sends: backend health check, Caddy health checks, nginx, each domain", () => {
    const prod = planOf("prod");
    expect(hostHeadersSent(prod).map((u) => u.host)).toEqual(["localhost", "localhost", "timetracker-backend", "timetracker.shaemarcus.com"]);
  });
});

describe("checkPlan rejects a drifted plan", () => {
  const prod = planOf("prod");

  it("an app port published on 0.0.0.0", () => {
    const plan = copyOf(prod);
    plan.containers.backend.ports[0]!.ip = "0.0.0.0";
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.ports.backend", "127.0.0.1 only"));
  });

  it("a port reserved for the host", () => {
    const plan = copyOf(prod);
    plan.containers.frontend.ports[0]!.external = 443;
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.ports.frontend", "443 is reserved for the host (Caddy's HTTPS)"));
  });

  it("Caddy's admin port, named at the service's port", () => {
    const plan = copyOf(prod);
    plan.containers.backend.ports[0]!.external = 2019;
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.ports.backend", "2019 is reserved for the host (Caddy's admin API)"));
  });

  it("two containers on one host port", () => {
    const plan = copyOf(prod);
    plan.containers.frontend.ports[0]!.external = 8080;
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.ports.frontend", "8080 is already used by timetracker-backend"));
  });

  it("two containers with one name", () => {
    const plan = copyOf(prod);
    plan.containers.redis.name = plan.containers.db.name;
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.containerPrefix", 'container name "timetracker-db" is used twice'));
  });

  it("a Caddy route to a port nobody publishes", () => {
    const plan = copyOf(prod);
    plan.caddy.routes[2]!.upstreams = ["127.0.0.1:3000", "127.0.0.1:3999"];
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.ports", "Caddy route /* goes to 127.0.0.1:3999"));
  });

  it("nginx proxying to the wrong port of the backend", () => {
    const plan = copyOf(prod);
    plan.frontendUpstream.port = 8000;
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.containerPrefix", "listens on 8080"));
  });

  it("nginx proxying to a container off the frontend's network", () => {
    const plan = copyOf(prod);
    plan.frontendUpstream.container = plan.containers.caddy.name;
    plan.frontendUpstream.port = plan.containers.caddy.listenPort;
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.containerPrefix", "not on the frontend's network"));
  });

  it("production with DEBUG=true", () => {
    const plan = copyOf(prod);
    plan.containers.backend.env.DEBUG = "true";
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.app.debug", "DEBUG=false"));
  });

  it("the backend's ALLOWED_HOSTS variable differing from the plan's list", () => {
    const plan = copyOf(prod);
    plan.containers.backend.env.ALLOWED_HOSTS = JSON.stringify(["timetracker.shaemarcus.com"]);
    expect(checkPlan(plan)).toContainEqual(problemAt("prod.app.extraEnv", "ALLOWED_HOSTS differs"));
  });
});

describe("validateCatalog rejects definitions that break an invariant", () => {
  it("production with debug on", () => {
    expect(problemsOf([{ ...prodDefinition, app: { environment: "production", debug: true } }])).toContainEqual(
      problemAt("prod.app.debug", "DEBUG=false"),
    );
  });

  it("staging on prod's backend port, blamed on staging", () => {
    const problems = problemsOf([prodDefinition, { ...stagingDefinition, ports: { frontend: 3001, backend: 8080 } }]);
    expect(problems).toContainEqual(problemAt("staging.ports.backend", "8080 is already used by prod"));
    expect(problems.every((p) => p.path.startsWith("staging."))).toBe(true);
  });

  it("one stack's frontend and backend on the same port", () => {
    expect(problemsOf([{ ...stagingDefinition, ports: { frontend: 8081, backend: 8081 } }])).toContainEqual(
      problemAt("staging.ports.frontend", "8081 is already used by timetracker-staging-backend"),
    );
  });

  it("a stack defined twice", () => {
    expect(problemsOf([...catalog, { ...stagingDefinition }])).toContainEqual(problemAt("staging.name", 'stack "staging" is defined twice'));
  });

  it("a stack reusing prod's domain as an extra domain", () => {
    expect(problemsOf([prodDefinition, { ...stagingDefinition, extraDomains: [prodDefinition.domain] }])).toContainEqual(
      problemAt("staging.extraDomains.0", "already used by prod (domain)"),
    );
  });

  it("a stack adopting prod's database volume", () => {
    expect(problemsOf([prodDefinition, { ...stagingDefinition, volumes: { database: "timetracker_postgres_data" } }])).toContainEqual(
      problemAt("staging.volumes.database", "timetracker_postgres_data is already used by prod (volume name)"),
    );
  });

  it("a stack reusing prod's container prefix (containers and network)", () => {
    const problems = problemsOf([prodDefinition, { ...stagingDefinition, containerPrefix: "timetracker" }]);
    expect(problems).toContainEqual(problemAt("staging.containerPrefix", "timetracker-backend is already used by prod (container name)"));
    expect(problems).toContainEqual(problemAt("staging.containerPrefix", "timetracker-net is already used by prod (network name)"));
  });
});

describe("validateCatalog rejects hand-set values the package derives", () => {
  it("an extraEnv entry overriding a derived variable (ALLOWED_HOSTS, DB_PASSWORD)", () => {
    const problems = problemsOf([
      { ...stagingDefinition, app: { environment: "staging", extraEnv: { ALLOWED_HOSTS: '["x"]', DB_PASSWORD: "postgres", LOG_LEVEL: "info" } } },
    ]);
    expect(problems).toContainEqual(problemAt("staging.app.extraEnv.ALLOWED_HOSTS", "cannot be overridden"));
    expect(problems).toContainEqual(problemAt("staging.app.extraEnv.DB_PASSWORD", "cannot be overridden"));
    expect(problems.some((p) => p.path.endsWith("LOG_LEVEL"))).toBe(false);
  });

  it("Caddy listening on a port an app container publishes", () => {
    const problems = problemsOf([{ ...stagingDefinition, tls: { mode: "off" }, caddy: { httpPort: 3001 } }]);
    expect(problems).toContainEqual(problemAt("staging.caddy", "Caddy listens on 3001 on the host, which timetracker-staging-frontend also publishes"));
  });

  it("a Caddy bind address that is not an IPv4 address", () => {
    expect(problemsOf([{ ...stagingDefinition, caddy: { bind: "not an address" } }])).toContainEqual(
      problemAt("staging.caddy.bind", "IPv4 address"),
    );
  });

  it("a domain outside its DNS zone", () => {
    const problems = problemsOf([{ ...stagingDefinition, host: { ...stagingDefinition.host, dns: "route53", dnsZone: "example.org" } }]);
    expect(problems).toContainEqual(problemAt("staging.host.dnsZone", "not inside the DNS zone example.org"));
  });
});
