import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deployProblems, deployRefusal, documentationRange, exampleDomain, FIXTURE_PREFIX, reservedName } from "../../infra/model/deployable.js";
import { formatProblem } from "../../infra/model/problems.js";
import { EnvironmentSchema } from "../../infra/model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { localize, withDefinition } from "../../tools/rehearsal/localize.js";
import { plansOf, REPO_ROOT, run, tempDir } from "./helpers.js";

/**
 * What may reach a test or a rehearsal but never a real deploy: documentation addresses,
 * example domains, an unset host.adminCidrs and the fixtures' names. `validate` and the Pulumi
 * entry point refuse them; the model accepts them.
 */

const { dir, cleanup } = tempDir("deployable");
afterAll(cleanup);

/** A client stack with real-looking values (100.64.0.0/10 is shared address space, not documentation). */
const real = {
  name: "northwind",
  domain: "time.northwind.co.uk",
  host: { adminCidrs: ["100.64.12.7/32"] },
  tls: { mode: "acme", email: "ops@northwind.co.uk" },
  alerts: { email: "pager@northwind.co.uk" },
} as const;
const problems = (definition: unknown) => deployProblems(EnvironmentSchema.parse(definition)).map(formatProblem);

describe("the tables: RFC 5737 addresses, RFC 2606 / 6761 names, the fixtures' prefix", () => {
  it.each([
    ["192.0.2.1/32", "192.0.2.0/24, TEST-NET-1"],
    ["198.51.100.0/24", "198.51.100.0/24, TEST-NET-2"],
    ["203.0.113.10/32", "203.0.113.0/24, TEST-NET-3"],
    ["203.0.113.128/25", "203.0.113.0/24, TEST-NET-3"],
  ])("%s lies in %s", (cidr, range) => {
    expect(documentationRange(cidr)).toBe(range);
  });

  it.each(["203.0.112.255/32", "203.0.114.0/32", "203.0.0.0/16", "198.51.101.7/32", "192.0.3.1/32", "10.0.0.0/8", "0.0.0.0/0"])(
    "%s is no documentation range (a wider range only contains one)",
    (cidr) => {
      expect(documentationRange(cidr)).toBeUndefined();
    },
  );

  it.each(["example.com", "time.example.com", "a.b.example.net", "example.org", "timetracker.acme.example", "x.test", "nowhere.invalid", "app.localhost", "EXAMPLE.COM."])(
    "%s is an example domain",
    (domain) => {
      expect(exampleDomain(domain)).toMatch(/RFC (2606|6761)/);
    },
  );

  it.each(["notexample.com", "example.co.uk", "example.com.au", "testing.io", "timetracker.shaemarcus.com", "examples.org"])("%s is not", (domain) => {
    expect(exampleDomain(domain)).toBeUndefined();
  });

  it("reserves names starting fixture- and no other", () => {
    expect(FIXTURE_PREFIX).toBe("fixture-");
    expect(reservedName("fixture-acme")).toContain('names starting "fixture-" are reserved for the package\'s test fixtures');
    for (const name of ["acme", "fixtures", "my-fixture-1", "prod"]) expect(reservedName(name), name).toBeUndefined();
  });
});

describe("deployProblems: every placeholder by its field, with what to put there", () => {
  it("passes a stack with real values", () => {
    expect(problems(real)).toEqual([]);
  });

  it("names each placeholder field of a stack full of them", () => {
    const placeholder = {
      name: "fixture-full",
      domain: "timetracker.acme.example",
      extraDomains: ["www.northwind.co.uk", "www.example.org"],
      host: { adminCidrs: ["100.64.12.7/32", "203.0.113.7/32"], dns: "route53", dnsZone: "acme.example" },
      tls: { mode: "acme", email: "ops@acme.example" },
      alerts: { email: "ops@example.com" },
    };
    expect(problems(placeholder)).toEqual([
      'fixture-full.name: names starting "fixture-" are reserved for the package\'s test fixtures (tests add them beside your stacks): pick another name',
      "fixture-full.domain: timetracker.acme.example is an example domain (RFC 2606 reserves the .example top-level domain for documentation), a placeholder: put the site's own domain (its A record points at the stack's static IP)",
      "fixture-full.extraDomains.1: www.example.org is an example domain (RFC 2606 reserves example.org for documentation), a placeholder: put another domain of the site, or remove it",
      "fixture-full.host.dnsZone: acme.example is an example domain (RFC 2606 reserves the .example top-level domain for documentation), a placeholder: put the DNS zone that holds the domain, or remove the field",
      "fixture-full.tls.email: ops@acme.example is at an example domain (RFC 2606 reserves the .example top-level domain for documentation), a placeholder: put a mailbox you read (Let's Encrypt writes there before a certificate expires), or remove the field",
      "fixture-full.alerts.email: ops@example.com is at an example domain (RFC 2606 reserves example.com for documentation), a placeholder: put the mailbox that should hear when the site is down",
      "fixture-full.host.adminCidrs.1: 203.0.113.7/32 is a documentation address (RFC 5737: 203.0.113.0/24, TEST-NET-3, never routed), a placeholder: put the addresses you deploy from, as <ip>/32 (yours: curl -s https://checkip.amazonaws.com)",
    ]);
  });

  it("refuses an unset host.adminCidrs (port 22 closed to every deploy), but not one closed on purpose", () => {
    const { host: _host, ...unset } = real;
    expect(problems(unset)).toEqual([
      "northwind.host.adminCidrs: is not set, so port 22 is closed to every deploy (Pulumi reaches Docker on the host over SSH): list the addresses you deploy from, as <ip>/32 (yours: curl -s https://checkip.amazonaws.com), or set host.sshClosed: true for a host frozen on purpose",
    ]);
    expect(problems({ ...real, host: { adminCidrs: [], sshClosed: true } })).toEqual([]);
  });

  it("says nothing of tls.email when TLS is not ACME's", () => {
    expect(problems({ ...real, tls: { mode: "internal" } })).toEqual([]);
  });

  it("the model accepts all of it: the tests and the rehearsal run with placeholders", () => {
    const placeholder = { name: "fixture-model", domain: "fixture-model.example.com", host: { adminCidrs: ["192.0.2.7/32"] } };
    expect(plansOf([...catalog, placeholder]).map((p) => p.stack)).toContain("fixture-model");
  });

  it("the rehearsal's localised stacks validate whatever their placeholders (localize keeps adminCidrs and adds its own)", () => {
    for (const stack of catalog) expect(plansOf(withDefinition(catalog, localize(stack))).map((p) => p.stack)).toContain(stack.name);
  });
});

describe("deployRefusal: what infra/index.ts throws before any resource", () => {
  it("is undefined for a stack with real values, and for one the schema refuses (the program reports that one)", () => {
    expect(deployRefusal([real], "northwind")).toBeUndefined();
    expect(deployRefusal([{ ...real, domain: "NOT A DOMAIN" }], "northwind")).toBeUndefined();
  });

  it("names the stack, the command that checks the fix, and every placeholder on a line of its own", () => {
    const refusal = deployRefusal([real, { ...real, name: "other", domain: "x.example.com" }], "other");
    expect(refusal).toBe(
      [
        'stack "other" cannot be deployed: its definition still holds what only a test or a rehearsal may (stacks/, then npm run validate -- --stack other):',
        "other.domain: x.example.com is an example domain (RFC 2606 reserves example.com for documentation), a placeholder: put the site's own domain (its A record points at the stack's static IP)",
      ].join("\n"),
    );
  });
});

describe("the Pulumi entry point refuses a placeholder before any resource (Pulumi engine mocked: no Pulumi CLI here)", () => {
  it("infra/index.ts for a stack whose adminCidrs is a documentation address throws the refusal as a RunError; no resource is registered", async () => {
    // A checkout whose first stack file carries a documentation address, whatever the user's catalog holds now.
    const root = join(dir, "checkout");
    mkdirSync(root);
    for (const entry of ["infra", "stacks", "tools", "package.json", "tsconfig.json", "app-version.json"]) cpSync(join(REPO_ROOT, entry), join(root, entry), { recursive: true });
    symlinkSync(join(REPO_ROOT, "node_modules"), join(root, "node_modules"), "dir");
    const stack = catalog[0]!.name;
    const stackFile = join(root, "stacks", `${stack}.ts`);
    const source = readFileSync(stackFile, "utf8");
    expect(source, `stacks/${stack}.ts writes host.adminCidrs`).toMatch(/adminCidrs: \[[^\]]*\]/);
    writeFileSync(stackFile, source.replace(/adminCidrs: \[[^\]]*\]/, 'adminCidrs: ["192.0.2.44/32"]'));
    writeFileSync(
      join(root, "entry.ts"),
      `import * as pulumi from "@pulumi/pulumi";
let registered = 0;
await pulumi.runtime.setMocks({ newResource: (args) => { registered += 1; return { id: args.name, state: args.inputs }; }, call: () => ({}) }, "timetracker", ${JSON.stringify(stack)}, false);
try {
  await import("./infra/index.ts");
  console.log("NOT REFUSED");
} catch (error) {
  console.log(JSON.stringify({ runError: pulumi.RunError.isInstance(error), message: (error as Error).message, registered }));
}
`,
    );
    const result = await run(join(REPO_ROOT, "node_modules", ".bin", "tsx"), ["entry.ts"], { cwd: root, timeoutMs: 60_000 });
    expect(result.stdout, result.stderr).not.toContain("NOT REFUSED");
    const outcome = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as { runError: boolean; message: string; registered: number };
    expect(outcome.runError).toBe(true);
    expect(outcome.registered).toBe(0);
    expect(outcome.message).toContain(`stack "${stack}" cannot be deployed`);
    expect(outcome.message).toContain(
      `${stack}.host.adminCidrs.0: 192.0.2.44/32 is a documentation address (RFC 5737: 192.0.2.0/24, TEST-NET-1, never routed), a placeholder: put the addresses you deploy from`,
    );
  });
});
