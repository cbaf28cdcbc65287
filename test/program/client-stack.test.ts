import { describe, expect, it, vi } from "vitest";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";

// A client stack defined only by a name and a domain, as `npm run new-client` would start it,
// plus a copy whose database password has been rotated once.
const client = { name: "zz-test-client", domain: "timetracker.zz-client.test.example" } satisfies EnvironmentDefinition;
const rotated = {
  name: "zz-test-rotated",
  domain: "timetracker.zz-rotated.test.example",
  database: { password: { rotation: 1 } },
} satisfies EnvironmentDefinition;

const withDns = {
  name: "zz-test-dns",
  domain: "timetracker.zz-dns.test.example",
  extraDomains: ["zz-dns.test.example"],
  host: { dns: "lightsail" },
} satisfies EnvironmentDefinition;
const withRoute53 = { name: "zz-test-route53", domain: "tt.zz-route53.test.example", host: { dns: "route53" } } satisfies EnvironmentDefinition;

vi.mock("../../stacks/catalog.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../stacks/catalog.js")>();
  return { catalog: [...original.catalog, client, rotated, withDns, withRoute53] };
});

const { planFor } = await import("../../infra/model/catalog.js");
const { STANDBY_PORT_OFFSET } = await import("../../infra/model/schema.js");
const { renderDbCredentialsScript } = await import("../../infra/render/db-credentials.js");
const { catalog } = await import("../../stacks/catalog.js");
const { runProgram } = await import("../../tools/mock-engine.js");
const { mockConfig } = await import("../../tools/mock-config.js");
const { expectWellFormedStack, CONTAINER } = await import("./expectations.js");

/** The program's run for each stack, once: the tests only read what it declared. */
const runs = new Map<string, ReturnType<typeof runProgram>>();
const run = (stack: string) => {
  const { config, secretKeys } = mockConfig(planFor(catalog, stack));
  return runs.get(stack) ?? runs.set(stack, runProgram(stack, config, secretKeys)).get(stack)!;
};

describe("a client-shaped stack under Pulumi mocks (no Pulumi CLI here)", () => {
  it("gets the next free ports and its own names, and is well-formed", async () => {
    const plan = planFor(catalog, "zz-test-client");
    // The lowest ports from 3000 / 8080 whose two slots (the port and its standby twin) no stack
    // listed before it publishes, whatever clients the catalog holds (3002 / 8082 beside prod and staging alone).
    const before = catalog.slice(0, catalog.findIndex((d) => d.name === "zz-test-client"));
    const published = before.flatMap((d) => Object.values(planFor(catalog, d.name).containers).flatMap((c) => c.ports.map((p) => p.external)));
    const lowestFree = (from: number) =>
      Array.from({ length: 500 }, (_, i) => from + i).find((p) => !published.includes(p) && !published.includes(p + STANDBY_PORT_OFFSET));
    expect(plan.containers.frontend.ports[0]?.external).toBe(lowestFree(3000));
    expect(plan.containers.backend.ports[0]?.external).toBe(lowestFree(8080));
    const result = await run("zz-test-client");
    await expectWellFormedStack(plan, result);
    expect(String(result.one("command:remote:Command", "app-release-backend").inputs.create)).toMatch(
      /^sudo -n \/usr\/local\/bin\/timetracker-release deploy backend timetracker-zz-test-client-backend:[0-9a-f]{12} [0-9a-f]{12}$/,
    );
    expect((result.outputs.containers as { service: string; name: string }[]).find((c) => c.service === "backend")?.name).toBe("timetracker-zz-test-client-backend");
    expect(result.one(CONTAINER, "app-db").inputs.name).toBe("timetracker-zz-test-client-db");
    // A client's data is production data: protected by default.
    expect(plan.protect).toBe(true);
  });

  it("rotates the database password through the counter: a new keeper, and the check is rendered for the new counter with the new password on stdin", async () => {
    const result = await run("zz-test-rotated");
    const password = result.one("random:index/randomPassword:RandomPassword", "secrets-dbPassword");
    expect(password.inputs.keepers).toEqual({ rotation: "1" });
    const credentials = result.one("command:remote:Command", "app-db-credentials");
    // The host runs the script rendered for the counter (what it does with it: test/core/db-credentials.test.ts),
    // and gets the new password on stdin only.
    expect(credentials.inputs.create).toBe(renderDbCredentialsScript(planFor(catalog, "zz-test-rotated"), 1));
    expect(credentials.inputs.stdin).toBe(`${String(password.state?.result)}\n`);
    expect(credentials.secretPaths).toContain("stdin");
    const unrotated = (await run("zz-test-client")).one("command:remote:Command", "app-db-credentials").inputs.create;
    expect(unrotated).toBe(renderDbCredentialsScript(planFor(catalog, "zz-test-client"), 0));
  });

  it("creates no DNS record by default, A records in Lightsail DNS or Route 53 when asked", async () => {
    expect((await run("zz-test-client")).byType("aws:lightsail/domainEntry:DomainEntry")).toEqual([]);
    const lightsail = (await run("zz-test-dns")).byType("aws:lightsail/domainEntry:DomainEntry").map((r) => r.inputs);
    expect(lightsail).toEqual([
      { domainName: "zz-dns.test.example", name: "timetracker", type: "A", target: "198.51.100.7" },
      { domainName: "zz-dns.test.example", name: "", type: "A", target: "198.51.100.7" },
    ]);
    const route53 = (await run("zz-test-route53")).byType("aws:route53/record:Record").map((r) => r.inputs);
    expect(route53).toEqual([{ zoneId: "Z123", name: "tt.zz-route53.test.example", type: "A", ttl: 300, records: ["198.51.100.7"] }]);
  });
});
