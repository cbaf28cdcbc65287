import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { validateCatalog } from "../../infra/model/catalog.js";
import { checkPlan, hostHeadersSent, RESERVED_HOST_PORTS } from "../../infra/model/invariants.js";
import type { Plan } from "../../infra/model/plan.js";
import { formatProblem } from "../../infra/model/problems.js";
import { BUNDLE_MEMORY_GB, STANDBY_PORT_OFFSET, type EnvironmentDefinition } from "../../infra/model/schema.js";

const VOLUME_KEYS = ["database", "redis", "caddyData", "caddyConfig"] as const;
type VolumeKey = (typeof VOLUME_KEYS)[number];

const word = fc.stringMatching(/^[a-z]{1,8}$/);
/** A port the schema accepts for an app service: its standby twin STANDBY_PORT_OFFSET above must exist too. */
const hostPort = fc.integer({ min: 1, max: 65535 - STANDBY_PORT_OFFSET }).filter((p) => !RESERVED_HOST_PORTS.has(p));
/** Written ports that no other written port's standby twin lands on (that would be a collision, not a valid catalog). */
const twinsFree = (ports: number[]) => new Set([...ports, ...ports.map((p) => p + STANDBY_PORT_OFFSET)]).size === 2 * ports.length;

const options = fc.record({
  writePorts: fc.boolean(),
  explicitPrefix: fc.boolean(),
  extraDomains: fc.integer({ min: 0, max: 2 }),
  environment: fc.constantFrom("production", "staging", "development"),
  debug: fc.boolean(),
  tls: fc.constantFrom<EnvironmentDefinition["tls"]>({ mode: "acme" }, { mode: "acme", email: "ops@example.com" }, { mode: "internal" }, { mode: "off" }),
  bundle: fc.constantFrom(...Object.keys(BUNDLE_MEMORY_GB).map((size) => `${size}_3_0`)),
  volumeOverrides: fc.subarray([...VOLUME_KEYS]),
});

/**
 * A valid catalog: distinct names (letters + index digit), domains, prefixes and
 * written ports; the rest left to defaults and to port allocation.
 */
const validCatalog = (minLength: number) =>
  fc.integer({ min: minLength, max: 6 }).chain((n) =>
    fc
      .record({
        words: fc.array(word, { minLength: n, maxLength: n }),
        ports: fc.uniqueArray(hostPort, { minLength: 2 * n, maxLength: 2 * n }).filter(twinsFree),
        options: fc.array(options, { minLength: n, maxLength: n }),
      })
      .map(({ words, ports, options }) =>
        options.map((o, i): EnvironmentDefinition => {
          const w = words[i]!;
          const base = `${w}-${i}.example.com`;
          return {
            name: `${w}${i}`,
            domain: base,
            extraDomains: Array.from({ length: o.extraDomains }, (_, k) => `alt${k}.${base.replace(".com", ".org")}`),
            ...(o.explicitPrefix ? { containerPrefix: `app-${w}-${i}` } : {}),
            ...(o.writePorts ? { ports: { frontend: ports[2 * i]!, backend: ports[2 * i + 1]! } } : {}),
            app: { environment: o.environment, debug: o.environment !== "production" && o.debug },
            tls: o.tls,
            host: { bundle: o.bundle },
            volumes: Object.fromEntries(o.volumeOverrides.map((key) => [key, `${w}_${i}_${key}`])),
          };
        }),
      ),
  );

function validPlans(definitions: EnvironmentDefinition[]): Plan[] {
  const result = validateCatalog(definitions);
  if (!result.ok) throw new Error(`valid catalog rejected:\n${result.problems.map(formatProblem).join("\n")}`);
  return result.plans;
}

const allUnique = (values: (string | number)[]) => new Set(values).size === values.length;

describe("property: every random valid catalog satisfies every invariant", () => {
  it("validateCatalog accepts it and each plan keeps ports, names, routes and hosts consistent", () => {
    fc.assert(
      fc.property(validCatalog(1), (definitions) => {
        const plans = validPlans(definitions);
        expect(plans.map((p) => p.stack)).toEqual(definitions.map((d) => d.name));

        for (const plan of plans) {
          const containers = Object.values(plan.containers);
          const bindings = containers.flatMap((c) => c.ports);
          for (const binding of bindings) {
            expect(binding.ip).toBe("127.0.0.1");
            expect(RESERVED_HOST_PORTS.has(binding.external)).toBe(false);
          }
          for (const route of plan.caddy.routes) {
            const published = plan.containers[route.service].ports.map((p) => `${p.ip}:${p.external}`);
            for (const upstream of route.upstreams) expect(published).toContain(upstream);
          }
          const backend = plan.containers.backend;
          expect(plan.frontendUpstream.container).toBe(backend.name);
          expect(plan.frontendUpstream.port).toBe(backend.listenPort);
          expect(backend.network).toBe("bridge");
          expect(plan.containers.frontend.network).toBe("bridge");
          for (const { host } of hostHeadersSent(plan)) expect(plan.allowedHosts).toContain(host);
          expect(JSON.parse(backend.env.ALLOWED_HOSTS as string)).toEqual(plan.allowedHosts);
          if (plan.environment === "production") expect(backend.env.DEBUG).toBe("false");
          expect(checkPlan(plan)).toEqual([]);
        }

        const everywhere = (pick: (p: Plan) => (string | number)[]) => plans.flatMap(pick);
        expect(allUnique(everywhere((p) => Object.values(p.containers).map((c) => c.name)))).toBe(true);
        expect(allUnique(everywhere((p) => Object.values(p.volumes)))).toBe(true);
        expect(allUnique(everywhere((p) => [p.network]))).toBe(true);
        expect(allUnique(everywhere((p) => Object.values(p.containers).flatMap((c) => c.ports.map((b) => b.external))))).toBe(true);
        expect(allUnique(everywhere((p) => p.domains))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("written ports come through unchanged", () => {
    fc.assert(
      fc.property(validCatalog(1), (definitions) => {
        const plans = validPlans(definitions);
        definitions.forEach((definition, i) => {
          if (!definition.ports) return;
          expect(plans[i]!.containers.frontend.ports[0]!.external).toBe(definition.ports.frontend);
          expect(plans[i]!.containers.backend.ports[0]!.external).toBe(definition.ports.backend);
        });
      }),
      { numRuns: 50 },
    );
  });
});

type Collision = "backend port" | "backend port into frontend" | "containerPrefix" | "domain" | "volume";

const collisionCase = validCatalog(2).chain((definitions) =>
  fc.record({
    definitions: fc.constant(definitions),
    pair: fc
      .integer({ min: 1, max: definitions.length - 1 })
      .chain((target) => fc.tuple(fc.constant(target), fc.integer({ min: 0, max: target - 1 }))),
    kind: fc.constantFrom<Collision>("backend port", "backend port into frontend", "containerPrefix", "domain", "volume"),
    volumeKey: fc.constantFrom<VolumeKey>(...VOLUME_KEYS),
  }),
);

const portsOf = (plan: Plan) => ({
  frontend: plan.containers.frontend.ports[0]!.external,
  backend: plan.containers.backend.ports[0]!.external,
});

describe("property: copying one stack's value into another is rejected at the copying stack", () => {
  it("port, container prefix, domain or volume taken from an earlier stack", () => {
    fc.assert(
      fc.property(collisionCase, ({ definitions, pair: [t, s], kind, volumeKey }) => {
        const plans = validPlans(definitions);
        const target = plans[t]!;
        const source = plans[s]!;
        const mutated = definitions.map((d) => ({ ...d }));
        // The source's ports are written so that allocation cannot move them out of the way.
        mutated[s] = { ...mutated[s]!, ports: portsOf(source) };
        let path: string;
        let value: string | number;
        switch (kind) {
          case "backend port":
            value = portsOf(source).backend;
            mutated[t] = { ...mutated[t]!, ports: { frontend: portsOf(target).frontend, backend: value } };
            path = "ports.backend";
            break;
          case "backend port into frontend":
            value = portsOf(source).backend;
            mutated[t] = { ...mutated[t]!, ports: { frontend: value, backend: portsOf(target).backend } };
            path = "ports.frontend";
            break;
          case "containerPrefix":
            value = source.network.replace(/-net$/, "-backend");
            mutated[t] = { ...mutated[t]!, containerPrefix: source.network.replace(/-net$/, "") };
            path = "containerPrefix";
            break;
          case "domain":
            value = source.domains[0]!;
            mutated[t] = { ...mutated[t]!, domain: value };
            path = "domain";
            break;
          case "volume":
            value = source.volumes[volumeKey];
            mutated[t] = { ...mutated[t]!, volumes: { ...mutated[t]!.volumes, [volumeKey]: value } };
            path = `volumes.${volumeKey}`;
            break;
        }
        const result = validateCatalog(mutated);
        expect(result.ok).toBe(false);
        const problems = result.ok ? [] : result.problems;
        expect(problems).toContainEqual({
          path: `${target.stack}.${path}`,
          message: expect.stringContaining(`${value} is already used by ${source.stack}`),
        });
      }),
      { numRuns: 150 },
    );
  });
});
