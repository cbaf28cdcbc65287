import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { allocatePorts, validateCatalog } from "../../infra/model/catalog.js";
import { derive } from "../../infra/model/derive.js";
import type { Plan, Service } from "../../infra/model/plan.js";
import { formatProblem } from "../../infra/model/problems.js";
import { EnvironmentSchema, STANDBY_PORT_OFFSET, type EnvironmentDefinition } from "../../infra/model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { prod as prodDefinition } from "../../stacks/prod.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { allowedHostsEnv, planOf, plansOf, REPO_ROOT, SECRET_NAMES, secretReferences } from "./helpers.js";

const README = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

const SERVICES: Service[] = ["db", "redis", "backend", "frontend", "caddy"];
const names = (plan: Plan) => SERVICES.map((s) => plan.containers[s].name);
const hostPort = (plan: Plan, service: "backend" | "frontend") => plan.containers[service].ports.map((p) => [p.ip, p.external]);

describe("derive: every app service has two loopback slots", () => {
  it.each(plansOf().map((p) => [p.stack, p] as const))("%s: the definition's port and the one STANDBY_PORT_OFFSET above, both for its release", (_stack, plan) => {
    // The README tells the user which ports a release uses.
    expect(README).toContain(`its port and the one ${STANDBY_PORT_OFFSET} above`);
    for (const service of ["backend", "frontend"] as const) {
      const c = plan.containers[service];
      const [live, standby] = c.ports;
      expect(c.ports).toHaveLength(2);
      expect(standby).toEqual({ ...live, external: live!.external + STANDBY_PORT_OFFSET });
      expect(standby!.external).toBeGreaterThan(live!.external);
      expect(standby!.external).toBeLessThanOrEqual(65535);
      expect(live).toMatchObject({ internal: c.listenPort, ip: "127.0.0.1", origin: `ports.${service}` });
      expect(c.release).toEqual({
        slots: [live!.external, standby!.external],
        candidateName: `${c.name}-candidate`,
        previousName: `${c.name}-previous`,
        readyPath: service === "backend" ? "/api/health" : "/healthz",
        command: service === "backend" ? "alembic upgrade head" : "",
      });
      expect(plan.caddy.routes.filter((r) => r.service === service).map((r) => r.upstreams)).toEqual(
        plan.caddy.routes.filter((r) => r.service === service).map(() => [`127.0.0.1:${live!.external}`, `127.0.0.1:${standby!.external}`]),
      );
    }
    for (const service of ["db", "redis", "caddy"] as const) expect(plan.containers[service].release).toBeUndefined();
  });

  it("builds app images into a repository named after the container (the program tags them with the content hash)", () => {
    const plan = planOf("staging");
    for (const service of ["backend", "frontend"] as const) {
      expect(plan.containers[service].image).toMatchObject({ source: "build", repository: plan.containers[service].name });
      expect(plan.containers[service].image).not.toHaveProperty("tag");
    }
  });
});

describe("derive: production keeps today's conventions", () => {
  const prod = planOf("prod");

  it("names the containers timetracker-frontend/backend/db/redis (and timetracker-caddy)", () => {
    expect(new Set(names(prod))).toEqual(
      new Set(["timetracker-db", "timetracker-redis", "timetracker-backend", "timetracker-frontend", "timetracker-caddy"]),
    );
    expect(Object.keys(prod.containers).sort()).toEqual([...SERVICES].sort());
  });

  it("publishes the frontend on 127.0.0.1:3000 and the backend on 127.0.0.1:8080 (and their standby slots), nothing else", () => {
    expect(hostPort(prod, "frontend")).toEqual([["127.0.0.1", 3000], ["127.0.0.1", 13000]]);
    expect(hostPort(prod, "backend")).toEqual([["127.0.0.1", 8080], ["127.0.0.1", 18080]]);
    expect(prod.containers.db.ports).toEqual([]);
    expect(prod.containers.redis.ports).toEqual([]);
    expect(prod.containers.caddy.network).toBe("host");
  });

  it("uses database time_tracker, ENVIRONMENT=production and DEBUG=false", () => {
    const env = prod.containers.backend.env;
    expect(prod.database.name).toBe("time_tracker");
    expect(env.DB_NAME).toBe("time_tracker");
    expect(prod.containers.db.env.POSTGRES_DB).toBe("time_tracker");
    expect(env.ENVIRONMENT).toBe("production");
    expect(env.DEBUG).toBe("false");
  });

  it("adopts the existing production volumes by name", () => {
    expect(prod.volumes.database).toBe("timetracker_postgres_data");
    expect(prod.containers.db.volumes).toEqual([{ volume: "timetracker_postgres_data", path: "/var/lib/postgresql/data" }]);
  });
});

describe("derive: staging sits beside production", () => {
  const staging = planOf("staging");
  const prod = planOf("prod");

  it("publishes 3001 / 8081 (and 13001 / 18081 for a new version) on loopback", () => {
    expect(hostPort(staging, "frontend")).toEqual([["127.0.0.1", 3001], ["127.0.0.1", 13001]]);
    expect(hostPort(staging, "backend")).toEqual([["127.0.0.1", 8081], ["127.0.0.1", 18081]]);
  });

  it("uses database timetracker_v2_dev", () => {
    expect(staging.database.name).toBe("timetracker_v2_dev");
    expect(staging.containers.backend.env.DB_NAME).toBe("timetracker_v2_dev");
  });

  it("has its own container, volume and network names", () => {
    expect(names(staging)).toEqual(SERVICES.map((s) => `timetracker-staging-${s}`));
    for (const name of names(staging)) expect(names(prod)).not.toContain(name);
    for (const volume of Object.values(staging.volumes)) expect(Object.values(prod.volumes)).not.toContain(volume);
    expect(staging.network).not.toBe(prod.network);
  });

  it("runs ENVIRONMENT=staging with DEBUG=false", () => {
    expect(staging.containers.backend.env.ENVIRONMENT).toBe("staging");
    expect(staging.containers.backend.env.DEBUG).toBe("false");
  });
});

describe("derive: hosts and secrets", () => {
  const plans = plansOf();

  it.each(plans.map((p) => [p.stack, p] as const))(
    "%s: ALLOWED_HOSTS is the domains, localhost, 127.0.0.1 and the backend container name (its only name on the network)",
    (_stack, plan) => {
      const expected = [...plan.domains, "localhost", "127.0.0.1", plan.containers.backend.name];
      expect(allowedHostsEnv(plan)).toEqual(expected);
      expect(plan.allowedHosts).toEqual(expected);
      expect(plan.containers.backend.aliases).toEqual([]);
    },
  );

  it("adds every extra domain to ALLOWED_HOSTS and CORS origins", () => {
    const plan = plansOf([{ ...stagingDefinition, extraDomains: ["www.staging.example.com", "alt.staging.example.com"] }])[0]!;
    expect(allowedHostsEnv(plan).slice(0, 3)).toEqual([stagingDefinition.domain, "www.staging.example.com", "alt.staging.example.com"]);
    expect(plan.corsOrigins).toEqual([
      `https://${stagingDefinition.domain}`,
      "https://www.staging.example.com",
      "https://alt.staging.example.com",
    ]);
  });

  it.each(plans.map((p) => [p.stack, p] as const))("%s: secrets appear in env only as {secret} references", (_stack, plan) => {
    const declared = plan.secrets.map((s) => s.name);
    expect(declared.sort()).toEqual([...SECRET_NAMES].sort());
    for (const container of Object.values(plan.containers)) {
      for (const [key, value] of Object.entries(container.env)) {
        if (/PASSWORD|SECRET|AUTH|TOKEN/.test(key)) {
          expect(value, `${container.name} ${key}`).toEqual({ secret: expect.any(String) });
        }
        if (typeof value !== "string") {
          expect(Object.keys(value), `${container.name} ${key}`).toEqual(["secret"]);
          expect(declared, `${container.name} ${key}`).toContain(value.secret);
        }
      }
    }
    const backend = plan.containers.backend.env;
    expect(backend.DB_PASSWORD).toEqual({ secret: "dbPassword" });
    expect(backend.REDIS_PASSWORD).toEqual({ secret: "redisPassword" });
    expect(backend.SECRET_KEY).toEqual({ secret: "appSecretKey" });
    // Every reference anywhere in the plan points at a declared secret.
    for (const ref of secretReferences(plan)) expect(declared).toContain((ref as { secret: string }).secret);
  });
});

describe("derive: host ports for definitions that leave them out", () => {
  const bare = (name: string): EnvironmentDefinition => ({ name, domain: `${name}.clients.example.com` });
  const parse = (definitions: EnvironmentDefinition[]) => definitions.map((d) => EnvironmentSchema.parse(d));
  /** prod and staging, found in the catalog by name, without the clients the catalog may also hold. */
  const prodAndStaging = ["prod", "staging"].map((name) => {
    const definition = catalog.find((d) => d.name === name);
    if (!definition) throw new Error(`no stack named ${name} in stacks/catalog.ts`);
    return definition;
  });

  it("gives a lone definition 3000 / 8080", () => {
    const [resolved] = allocatePorts(parse([bare("solo")]));
    expect(resolved?.ports).toEqual({ frontend: 3000, backend: 8080 });
  });

  it("gives a new client the lowest free pair beside prod and staging", () => {
    const plan = planOf("zz-test-client-a", [...prodAndStaging, bare("zz-test-client-a")]);
    expect(hostPort(plan, "frontend")).toEqual([["127.0.0.1", 3002], ["127.0.0.1", 13002]]);
    expect(hostPort(plan, "backend")).toEqual([["127.0.0.1", 8082], ["127.0.0.1", 18082]]);
  });

  it("gives a client appended to the whole catalog the lowest pair whose slots no stack publishes", () => {
    const published = new Set(plansOf().flatMap((p) => Object.values(p.containers).flatMap((c) => c.ports.map((port) => port.external))));
    const lowest = (from: number, taken: Set<number>) => {
      let port = from;
      while (taken.has(port) || taken.has(port + STANDBY_PORT_OFFSET)) port += 1;
      return port;
    };
    const frontend = lowest(3000, published);
    const backend = lowest(8080, new Set([...published, frontend, frontend + STANDBY_PORT_OFFSET]));
    const plan = planOf("zz-test-client-a", [...catalog, bare("zz-test-client-a")]);
    expect(hostPort(plan, "frontend")).toEqual([["127.0.0.1", frontend], ["127.0.0.1", frontend + STANDBY_PORT_OFFSET]]);
    expect(hostPort(plan, "backend")).toEqual([["127.0.0.1", backend], ["127.0.0.1", backend + STANDBY_PORT_OFFSET]]);
  });

  it("gives a definition without ports a pair whose standby slots are free too", () => {
    // 13002 and 18082 are the standby slots of the lowest free pair (3002 / 8082): another
    // stack already has them, so the pair after it is the lowest that is free.
    const written = { ...bare("written"), ports: { frontend: 13002, backend: 18082 } };
    const result = validateCatalog([...prodAndStaging, written, bare("zz-test-client-a")]);
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([]);
    const plan = planOf("zz-test-client-a", [...prodAndStaging, written, bare("zz-test-client-a")]);
    expect(hostPort(plan, "frontend")).toEqual([["127.0.0.1", 3003], ["127.0.0.1", 13003]]);
    expect(hostPort(plan, "backend")).toEqual([["127.0.0.1", 8083], ["127.0.0.1", 18083]]);
  });

  it("never moves written ports, even for a definition listed after an unported one", () => {
    const plans = plansOf([bare("first"), bare("second"), prodDefinition, stagingDefinition]);
    const ports = Object.fromEntries(plans.map((p) => [p.stack, [p.containers.frontend.ports[0]?.external, p.containers.backend.ports[0]?.external]]));
    expect(ports).toEqual({ first: [3002, 8082], second: [3003, 8083], prod: [3000, 8080], staging: [3001, 8081] });
  });

  it("skips ports that are written anywhere in the catalog, including the other role's", () => {
    const crossed = { ...bare("crossed"), ports: { frontend: 8080, backend: 3000 } };
    const [, resolved] = allocatePorts(parse([crossed, bare("next")]));
    expect(resolved?.ports).toEqual({ frontend: 3001, backend: 8081 });
  });

  it("keeps catalog ports stable when a client is appended", () => {
    const before = plansOf();
    const after = plansOf([...catalog, bare("zz-test-client-b")]);
    for (const plan of before) expect(after.find((p) => p.stack === plan.stack)).toEqual(plan);
  });
});

describe("derive is pure", () => {
  const resolved = allocatePorts(catalog.map((d) => EnvironmentSchema.parse(d)));

  // Another clock and another random source for the second call: a plan that depends on
  // either differs (a second call in the same instant, with the same Math.random, would not).
  it("returns deep-equal plans for the same input, whatever the time and the random source", () => {
    const first = resolved.map((env) => derive(env));
    vi.useFakeTimers({ now: new Date("2031-07-04T23:59:59Z") });
    const random = vi.spyOn(Math, "random").mockReturnValue(0.5);
    try {
      expect(resolved.map((env) => derive(structuredClone(env)))).toEqual(first);
    } finally {
      random.mockRestore();
      vi.useRealTimers();
    }
  });

  it("does not mutate its input (deep-frozen input, unchanged snapshot)", () => {
    const deepFreeze = <T>(value: T): T => {
      if (value !== null && typeof value === "object") {
        for (const inner of Object.values(value)) deepFreeze(inner);
        Object.freeze(value);
      }
      return value;
    };
    for (const env of resolved) {
      const snapshot = structuredClone(env);
      const frozen = deepFreeze(structuredClone(env));
      expect(() => derive(frozen)).not.toThrow();
      derive(env);
      expect(env).toEqual(snapshot);
    }
  });
});
