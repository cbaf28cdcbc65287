import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { loadDefinitionFile, MAX_DEFINITION_BYTES } from "../../infra/cli/load-definition.js";
import { InputError } from "../../infra/cli/run.js";
import { CatalogError, planFor, validateCatalog } from "../../infra/model/catalog.js";
import { deployProblems, deployRefusal, documentationRange, exampleDomain, FIXTURE_PREFIX, reservedName } from "../../infra/model/deployable.js";
import { PRODUCTION_STACK } from "../../infra/model/invariants.js";
import type { Plan } from "../../infra/model/plan.js";
import { formatProblem } from "../../infra/model/problems.js";
import { BLUEPRINT_USER, CADDY_ADMIN_PORT, EnvironmentSchema, MAX_EXTRA_DOMAINS, type EnvironmentDefinition } from "../../infra/model/schema.js";
import { markdownCode, markdownText, mermaidText, renderTopology } from "../../infra/render/topology.js";
import { catalog } from "../../stacks/catalog.js";
import { localize, withDefinition } from "../../tools/rehearsal/localize.js";
import { copyOf, planOf, plansOf, problemAt, REPO_ROOT, run, tempDir } from "./helpers.js";
import { tsxCommand } from "../tsx-command.js";

/**
 * Bad input a user can hand to `npm run validate` (or to the program, through planFor):
 * each is refused with the field's path and the reason, never accepted or thrown.
 * The definitions join the committed catalog, as `validate --file` does.
 */

const { dir, cleanup } = tempDir("bad-definitions");
afterAll(cleanup);

/**
 * A new client as a user writes one, with the deploying address in adminCidrs. Named in the
 * fixtures' own namespace (`fixture-…`, refused for a user's stack), so it never takes the name
 * of a stack the catalog has, whatever clients the user added.
 */
const fixture = { name: "fixture-acme", domain: "time.acme.example.com", host: { adminCidrs: ["203.0.113.7/32"] } } satisfies EnvironmentDefinition;
type Definition = Record<string, unknown>;
const withHost = (host: Definition): Definition => ({ ...fixture, host: { ...fixture.host, ...host } });
const withApp = (app: Definition): Definition => ({ ...fixture, app });
const withImages = (images: Definition): Definition => ({ ...fixture, images });
const withCaddy = (caddy: Definition): Definition => ({ ...fixture, tls: { mode: "off" }, caddy });

/** The problems of `definition` beside the committed catalog (empty when it is valid). */
function problemsWith(definition: unknown): string[] {
  const result = validateCatalog([...catalog, definition]);
  return result.ok ? [] : result.problems.map(formatProblem);
}
const expectRefused = (definition: unknown, path: string, ...fragments: string[]) => {
  const result = validateCatalog([...catalog, definition]);
  expect(result.ok, `expected ${path} to be refused`).toBe(false);
  if (result.ok) return;
  for (const fragment of fragments) expect(result.problems).toContainEqual(problemAt(path, fragment));
};
const expectAccepted = (definition: unknown) => expect(problemsWith(definition)).toEqual([]);
const fixturePlan = (definition: unknown): Plan => planFor([...catalog, definition], "fixture-acme");

/** `npm run validate -- --file <path>` as a user runs it, from the repository root. */
async function validateFile(name: string, text: string) {
  const path = join(dir, name);
  writeFileSync(path, text);
  // HEAD: every clone has it (main may be absent from a pull request's checkout); the fixtures' names
  // and example values are what --allow-placeholders lets through.
  const result = await run(...tsxCommand("infra/cli/validate.ts", "--file", path, "--base", "HEAD", "--allow-placeholders"), { timeoutMs: 45_000 });
  expect(result.spawnError).toBeUndefined();
  const stderr = result.stderr
    .split("\n")
    .filter((line) => !line.startsWith("npm warn"))
    .join("\n");
  // A user's mistake is a message, never a stack trace.
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toMatch(/\b\w*Error:/);
  expect(stderr).not.toContain("node:internal");
  return { code: result.code, stdout: result.stdout, stderr, path };
}

const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

describe("1. SSH open to the world, or closed to everyone, only when the definition says so", () => {
  it("refuses an adminCidrs entry ending in /0, saying why and how to opt in", () => {
    expectRefused(withHost({ adminCidrs: ["0.0.0.0/0"] }), "fixture-acme.host.adminCidrs.0", "opens SSH (port 22) to the whole internet", "host.sshOpenToWorld: true");
    // Any address with /0 is the whole internet.
    expectRefused(withHost({ adminCidrs: ["203.0.113.7/32", "10.1.2.3/0"] }), "fixture-acme.host.adminCidrs.1", "whole internet");
  });

  it("accepts a /0 with host.sshOpenToWorld: true, and refuses the opt-in when nothing needs it", () => {
    expectAccepted(withHost({ adminCidrs: ["0.0.0.0/0"], sshOpenToWorld: true }));
    expect(fixturePlan(withHost({ adminCidrs: ["0.0.0.0/0"], sshOpenToWorld: true })).host.adminCidrs).toEqual(["0.0.0.0/0"]);
    expectRefused(withHost({ sshOpenToWorld: true }), "fixture-acme.host.sshOpenToWorld", "no adminCidrs entry ends in /0");
  });

  it("does not take /10, /20 or /30 for /0", () => {
    expectAccepted(withHost({ adminCidrs: ["10.0.0.0/10", "172.16.0.0/20", "203.0.113.4/30"] }));
  });

  it("refuses adminCidrs: [] (no one can deploy), saying why and how to opt in", () => {
    expectRefused(withHost({ adminCidrs: [] }), "fixture-acme.host.adminCidrs", "closes SSH (port 22) to everyone", "neither CI nor you can deploy", "host.sshClosed: true");
  });

  it("accepts adminCidrs: [] with host.sshClosed: true, and refuses sshClosed beside open ranges", () => {
    const plan = fixturePlan(withHost({ adminCidrs: [], sshClosed: true }));
    expect(plan.host.adminCidrs).toEqual([]);
    expect(renderTopology(plan)).toContain("SSH from nowhere");
    expectRefused(withHost({ sshClosed: true }), "fixture-acme.host.sshClosed", "adminCidrs opens SSH to 203.0.113.7/32");
  });

  it("keeps the documented minimum: a definition that leaves adminCidrs out (only name and domain) is accepted", () => {
    // Only a written `[]` is refused; docs/design.md's "Only name and domain are required" stands.
    expectAccepted({ name: "fixture-acme", domain: "time.acme.example.com" });
  });

  it("validate --file prints the /0 refusal with its path, exit 1", async () => {
    const result = await validateFile("ssh-world.yaml", "name: fixture-acme\ndomain: time.acme.example.com\nhost:\n  adminCidrs: [0.0.0.0/0]\n");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("fixture-acme.host.adminCidrs.0: opens SSH (port 22) to the whole internet");
    expect(result.stderr).toContain("host.sshOpenToWorld: true");
    expect(result.stdout).not.toContain("valid");
  });
});

describe("2. Caddy's ports", () => {
  it.each([
    { caddy: { httpPort: 22, httpsPort: 18443 }, path: "fixture-acme.caddy.httpPort", reason: "must not be 22: the host's SSH" },
    { caddy: { httpPort: 18080, httpsPort: 22 }, path: "fixture-acme.caddy.httpsPort", reason: "must not be 22" },
    { caddy: { httpPort: 2019, httpsPort: 18443 }, path: "fixture-acme.caddy.httpPort", reason: "must not be 2019: Caddy's own admin API" },
    { caddy: { httpPort: 18080, httpsPort: 2019 }, path: "fixture-acme.caddy.httpsPort", reason: "must not be 2019" },
    { caddy: { httpPort: 18080, httpsPort: 18080 }, path: "fixture-acme.caddy.httpsPort", reason: "must differ from caddy.httpPort (18080)" },
    { caddy: { httpPort: 443 }, path: "fixture-acme.caddy.httpsPort", reason: "must differ from caddy.httpPort (443)" },
  ])("refuses $caddy at $path", ({ caddy, path, reason }) => {
    expectRefused(withCaddy(caddy), path, reason);
  });

  it("accepts the local ports the tools use, and the admin port checked is the one derive binds", () => {
    const plan = fixturePlan(withCaddy({ bind: "127.0.0.1", httpPort: 18080, httpsPort: 18443 }));
    expect(plan.caddy.adminAddress).toBe(`localhost:${CADDY_ADMIN_PORT}`);
  });
});

describe("3. A region Lightsail does not run in, and a zone outside the region", () => {
  it("refuses us-east-1 with eu-west-1a at host.availabilityZone, listing the region's zones", () => {
    expectRefused(
      withHost({ region: "us-east-1", availabilityZone: "eu-west-1a" }),
      "fixture-acme.host.availabilityZone",
      "must be a Lightsail zone of host.region us-east-1: us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f",
    );
    expectRefused(withHost({ region: "eu-west-2", availabilityZone: "eu-west-1b" }), "fixture-acme.host.availabilityZone", "eu-west-2a, eu-west-2b, eu-west-2c");
  });

  it("refuses a zone letter the region does not have (us-east-1z, ca-central-1c)", () => {
    expectRefused(withHost({ region: "us-east-1", availabilityZone: "us-east-1z" }), "fixture-acme.host.availabilityZone", "us-east-1f");
    expectRefused(withHost({ region: "ca-central-1", availabilityZone: "ca-central-1c" }), "fixture-acme.host.availabilityZone", "ca-central-1a, ca-central-1b, ca-central-1d");
  });

  it("refuses a region outside Lightsail's, naming the likeliest one and the list, and says nothing more of its zone", () => {
    const result = validateCatalog([...catalog, withHost({ region: "eu-west-9", availabilityZone: "eu-west-9a" })]);
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([
      expect.stringMatching(/^fixture-acme\.host\.region: must be an AWS region where Lightsail runs \(did you mean eu-west-1\?\): us-east-1, .*eu-west-3, .*ap-southeast-3$/),
    ]);
    // us-west-1 is an AWS region, and a RegionName of Lightsail's API, but no Lightsail guide offers it.
    expectRefused(withHost({ region: "us-west-1" }), "fixture-acme.host.region", "where Lightsail runs");
    expectRefused(withHost({ region: "moon" }), "fixture-acme.host.region", "us-east-1, us-east-2");
  });

  it("accepts another zone of the same region", () => {
    expect(fixturePlan(withHost({ region: "eu-west-2", availabilityZone: "eu-west-2c" })).host.availabilityZone).toBe("eu-west-2c");
    expect(fixturePlan(withHost({ region: "ap-northeast-1", availabilityZone: "ap-northeast-1d" })).host.availabilityZone).toBe("ap-northeast-1d");
  });

  it("validate --file prints it", async () => {
    const result = await validateFile(
      "zone.json",
      JSON.stringify({ ...fixture, host: { ...fixture.host, region: "us-east-1", availabilityZone: "us-east-1z" } }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("fixture-acme.host.availabilityZone: must be a Lightsail zone of host.region us-east-1: us-east-1a,");
  });
});

describe("4. Image references", () => {
  it.each([
    { images: { postgres: "postgres:LATEST" }, path: "fixture-acme.images.postgres" },
    { images: { postgres: "postgres:Latest" }, path: "fixture-acme.images.postgres" },
    { images: { redis: "redis:latest" }, path: "fixture-acme.images.redis" },
    { images: { backend: { source: "registry", ref: "ghcr.io/acme/backend:LATEST" } }, path: "fixture-acme.images.backend.ref" },
    { images: { frontend: { source: "registry", ref: "registry.example.com:5000/team/web:LaTeSt" } }, path: "fixture-acme.images.frontend.ref" },
  ])("refuses a latest tag in any case: $images", ({ images, path }) => {
    expectRefused(withImages(images), path, "must be pinned", "'latest' in any case");
  });

  it("accepts a registry host with a port, and a tag with a digest, for images.backend and images.postgres", () => {
    const cases = [
      { images: { backend: { source: "registry", ref: "registry.example.com:5000/team/app:1.4.2" } }, service: "backend" },
      { images: { backend: { source: "registry", ref: `registry.example.com:5000/team/app:1.4.2@${DIGEST}` } }, service: "backend" },
      { images: { postgres: `postgres:15.10-bookworm@${DIGEST}` }, service: "db" },
      { images: { postgres: "registry.example.com:5000/library/postgres:15.10-bookworm" }, service: "db" },
      { images: { postgres: `registry.example.com:5000/library/postgres:17.6@${DIGEST}` }, service: "db" },
    ] as const;
    for (const { images, service } of cases) {
      const ref = "postgres" in images ? images.postgres : images.backend.ref;
      expect(problemsWith(withImages(images)), ref).toEqual([]);
      const image = fixturePlan(withImages(images)).containers[service].image;
      expect(image.source === "registry" ? image.ref : undefined).toBe(ref);
    }
  });

  it("a digest pins whatever tag stands beside it, but the major version still counts", () => {
    expectAccepted(withImages({ backend: { source: "registry", ref: `ghcr.io/acme/backend:latest@${DIGEST}` } }));
    expectRefused(withImages({ postgres: `postgres:18.1@${DIGEST}` }), "fixture-acme.images.postgres", "postgres 15.x, 16.x or 17.x");
    expectRefused(withImages({ postgres: "registry.example.com:5000/library/postgres:14" }), "fixture-acme.images.postgres", "postgres 15.x, 16.x or 17.x");
    expectRefused(withImages({ postgres: `registry.example.com:5000/library/postgres@${DIGEST}` }), "fixture-acme.images.postgres", "its major named by its tag");
    expectRefused(withImages({ postgres: "registry.example.com:5000/library/mysql:15" }), "fixture-acme.images.postgres", "postgres 15.x");
  });

  it.each([
    ["an upper-case repository", "Registry.example.com/Team/App:1"],
    ["a short digest", "ghcr.io/acme/backend@sha256:abc"],
    ["a port that is not a number", "registry.example.com:http/team/app:1"],
    ["an empty tag", "ghcr.io/acme/backend:"],
    ["a space", "ghcr.io/acme/backend :1"],
  ])("refuses %s as no image reference", (_, ref) => {
    expectRefused(withImages({ backend: { source: "registry", ref } }), "fixture-acme.images.backend.ref", "must be an image reference");
  });

  it("still refuses an untagged image", () => {
    expectRefused(withImages({ backend: { source: "registry", ref: "registry.example.com:5000/team/app" } }), "fixture-acme.images.backend.ref", "must name a tag or digest");
  });
});

describe("5. Secret-looking plain variables (they are committed in rendered/<stack>/plan.json)", () => {
  it.each(["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "STRIPE_API_KEY", "SMTP_PASSWD", "JWT_PRIVATE_KEY", "MAIL_PASSWORD", "AWS_ACCESS_KEY", "GPG_PASSPHRASE"])(
    "refuses a variable named %s",
    (key) => {
      expectRefused(withApp({ extraEnv: { [key]: "x" } }), `fixture-acme.app.extraEnv.${key}`, "names a secret", "keep secrets out of the definition", "generates the database, Redis and app secrets");
    },
  );

  it.each([
    ["DATABASE_URL", "postgresql://u:p@host/db"],
    ["REDIS_URL", "redis://:hunter2@redis:6379/0"],
    ["UPSTREAM", "see https://admin:s3cret@internal.example.com/api"],
  ])("refuses %s=%s: a URL with a password", (key, value) => {
    expectRefused(withApp({ extraEnv: { [key]: value } }), `fixture-acme.app.extraEnv.${key}`, "holds a URL with a password", "keep secrets out of the definition");
  });

  it("the message says it is committed in plain text, in the stack's plan", () => {
    const problems = problemsWith(withApp({ extraEnv: { DB_PASS_TOKEN: "x" } }));
    expect(problems).toEqual([
      "fixture-acme.app.extraEnv.DB_PASS_TOKEN: names a secret, and is committed in plain text (rendered/fixture-acme/plan.json): keep secrets out of the definition (the package generates the database, Redis and app secrets and keeps them encrypted in the stack)",
    ]);
  });

  it("a variable the package sets (DB_PASSWORD) is reported once, as not overridable", () => {
    const problems = problemsWith({ ...fixture, app: { extraEnv: { DB_PASSWORD: "x" } } });
    expect(problems).toEqual(["fixture-acme.app.extraEnv.DB_PASSWORD: is set by the package from the Plan and cannot be overridden"]);
  });

  it("refuses a secret-looking build argument too (it lands in the plan and the image)", () => {
    const images = { backend: { source: "build", context: "backend", dockerfile: "app-images/backend/Dockerfile", args: { NPM_TOKEN: "x" } } };
    expectRefused(withImages(images), "fixture-acme.images.backend.args.NPM_TOKEN", "names a secret");
  });

  it("accepts plain settings, including settings about secrets and URLs without a password", () => {
    expectAccepted(
      withApp({
        extraEnv: {
          LOG_LEVEL: "info",
          FEATURE_X: "on",
          ACCESS_TOKEN_EXPIRE_MINUTES: "30",
          PASSWORD_MIN_LENGTH: "12",
          PUBLIC_URL: "https://time.acme.example.com:8443/a@b",
          SENTRY_ENVIRONMENT: "acme",
          UPSTREAM_URL: "https://user@example.com/",
        },
      }),
    );
  });

  it("keeps the committed stacks and the rehearsal's variables valid (SAMPLE_START_DELAY_SECONDS, REHEARSAL_EDIT)", () => {
    expect(validateCatalog(catalog).ok).toBe(true);
    for (const stack of catalog) {
      const local = localize(stack);
      const edited = { ...local, app: { ...local.app, extraEnv: { ...local.app?.extraEnv, REHEARSAL_EDIT: "1" } } };
      for (const definition of [local, edited]) {
        const result = validateCatalog(withDefinition(catalog, definition));
        expect(result.ok ? [] : result.problems.map(formatProblem), stack.name).toEqual([]);
      }
    }
  });

  it("refuses a value over two lines (Docker's --env-file cannot carry it)", () => {
    expectRefused(withApp({ extraEnv: { PEM: "line one\nline two" } }), "fixture-acme.app.extraEnv.PEM", "must be one line");
  });

  it("validate --file prints a DATABASE_URL with a password, exit 1", async () => {
    const result = await validateFile("secret.json", JSON.stringify(withApp({ extraEnv: { DATABASE_URL: "postgresql://u:p@host/db" } })));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("fixture-acme.app.extraEnv.DATABASE_URL: holds a URL with a password (user:password@)");
    expect(result.stderr).toContain("generates the database, Redis and app secrets");
  });
});

describe("6. Build paths that leave the app's checkout or this repository", () => {
  const build = (field: "context" | "dockerfile", value: string, service: "backend" | "frontend" = "backend") =>
    withImages({
      [service]: { source: "build", context: "backend", dockerfile: `app-images/${service}/Dockerfile`, [field]: value },
    });

  it.each([
    ["context", "/etc", "not absolute"],
    ["context", "../../home/ubuntu/.ssh", "no '..'"],
    ["context", "backend/../../secrets", "no '..'"],
    ["context", "..", "no '..'"],
    ["context", "backend\\..\\..\\x", "not '\\'"],
    ["context", "C:/Users/x", "not absolute"],
    ["context", "backend\nsrc", "relative path of letters"],
    ["dockerfile", "/etc/passwd", "not absolute"],
    ["dockerfile", "app-images/../../../Dockerfile", "no '..'"],
    ["dockerfile", "app-images\\backend\\Dockerfile", "not '\\'"],
  ] as const)("refuses %s %j", (field, value, reason) => {
    expectRefused(build(field, value), `fixture-acme.images.backend.${field}`, reason);
    expectRefused(build(field, value, "frontend"), `fixture-acme.images.frontend.${field}`, reason);
  });

  it("names the root in the message", () => {
    expectRefused(build("context", "/etc"), "fixture-acme.images.backend.context", "the app's checkout");
    expectRefused(build("dockerfile", "/etc/passwd"), "fixture-acme.images.backend.dockerfile", "this repository");
  });

  it("accepts folders inside, including the checkout itself and names with dots", () => {
    for (const context of [".", "backend", "./services/api", "web.v2"]) expectAccepted(build("context", context));
    expectAccepted(build("dockerfile", "app-images/backend/Dockerfile.prod"));
  });
});

describe("7. Blueprints the launch script runs, and Markdown that definitions cannot break", () => {
  it("refuses a blueprint that is not Ubuntu, listing the allowed ones", () => {
    expectRefused(withHost({ blueprint: "debian_12" }), "fixture-acme.host.blueprint", Object.keys(BLUEPRINT_USER).join(", "));
    expectRefused(withHost({ blueprint: "amazon_linux_2023" }), "fixture-acme.host.blueprint", "launch script");
  });

  it("the schema already keeps | ` < > and line breaks out of every definition field topology.md prints", () => {
    // So a hostile value cannot even reach the renderer through a definition; each of these
    // fields is printed in topology.md (domains, names, images, build context, volumes, the host).
    const hostile = ["a|b", "a`b", "a<b", "a>b", "a\nb"];
    const fields: [string, (value: string) => Definition][] = [
      ["name", (v) => ({ ...fixture, name: v })],
      ["domain", (v) => ({ ...fixture, domain: `${v}.example.com` })],
      ["extraDomains.0", (v) => ({ ...fixture, extraDomains: [`${v}.example.com`] })],
      ["containerPrefix", (v) => ({ ...fixture, containerPrefix: v })],
      ["images.postgres", (v) => withImages({ postgres: `postgres:15-${v}` })],
      ["images.backend.ref", (v) => withImages({ backend: { source: "registry", ref: `ghcr.io/acme/${v}:1` } })],
      ["images.backend.context", (v) => withImages({ backend: { source: "build", context: v, dockerfile: "app-images/backend/Dockerfile" } })],
      ["volumes.database", (v) => ({ ...fixture, volumes: { database: v } })],
      ["host.adminCidrs.0", (v) => withHost({ adminCidrs: [`${v}/32`] })],
      ["host.bundle", (v) => withHost({ bundle: `small_3_0${v}` })],
      ["host.availabilityZone", (v) => withHost({ availabilityZone: `us-east-1${v}` })],
      ["database.password.adoptFrom", (v) => ({ ...fixture, database: { password: { adoptFrom: `key${v}` } } })],
    ];
    for (const [field, definition] of fields) {
      for (const value of hostile) {
        const parsed = EnvironmentSchema.safeParse(definition(value));
        expect(parsed.success, `${field} = ${JSON.stringify(value)}`).toBe(false);
      }
    }
  });

  it("escapes | ` < > and line breaks, in Markdown, code and Mermaid labels", () => {
    expect(markdownText("a|b`c<d>e\nf\rg")).toBe("a&#124;b&#96;c&lt;d&gt;e f g");
    expect(markdownCode("timetracker-db")).toBe("`timetracker-db`");
    expect(markdownCode("x`y|z")).toBe("x&#96;y&#124;z");
    expect(mermaidText('say "hi"|<b>`x`\n')).toBe("say #quot;hi#quot;#124;#lt;b#gt;#96;x#96; ");
  });

  it("a hostile Plan (one that never went through the schema) cannot break topology.md's tables or its diagram", () => {
    const plan = copyOf(planOf("staging"));
    const evil = "x | y ` z <script>\n# heading";
    plan.domains = [...plan.domains, evil];
    plan.containers.backend.image = { source: "build", context: evil, dockerfile: "Dockerfile", args: {}, repository: "r" } as typeof plan.containers.backend.image;
    plan.containers.db.name = evil;
    plan.containers.db.volumes = [{ volume: evil, path: "/var/lib/postgresql/data" }];
    plan.host.adminCidrs = [evil];
    plan.allowedHosts = [...plan.allowedHosts, evil];
    const text = renderTopology(plan);
    const lines = text.split("\n");

    expect(text).not.toContain("<script>");
    expect(lines.filter((line) => line.startsWith("# "))).toEqual(["# Stack `staging`"]);
    // Every row of every table keeps its number of cells: no unescaped | inside a cell.
    const tables = text.split(/\n\n/).filter((block) => block.startsWith("|"));
    expect(tables.length).toBeGreaterThanOrEqual(4);
    for (const table of tables) {
      const counts = table.split("\n").filter(Boolean).map((row) => row.split("|").length);
      expect(new Set(counts).size, table).toBe(1);
    }
    // Code spans stay paired on every line.
    for (const line of lines.filter((l) => !l.startsWith("```"))) expect((line.match(/`/g) ?? []).length % 2, line).toBe(0);
    // The Mermaid block still closes where it should, and every label's quotes pair up.
    const start = lines.indexOf("```mermaid");
    const end = lines.indexOf("```", start + 1);
    expect(lines.slice(start + 1, end).every((line) => line === "flowchart LR" || line.startsWith("  "))).toBe(true);
    for (const line of lines.slice(start + 2, end)) expect((line.match(/"/g) ?? []).length % 2, line).toBe(0);
    expect(lines[end + 2]).toBe("## Containers");
  });

  it("renders the committed stacks exactly as before (nothing in them needs escaping)", () => {
    for (const stack of ["prod", "staging"]) {
      const text = renderTopology(planOf(stack));
      expect(text).not.toMatch(/&#|#quot;|&lt;|&gt;/);
    }
  });
});

describe("8. Keys JavaScript objects reserve: __proto__, constructor, prototype", () => {
  const json = (extraEnv: string) => JSON.parse(`{"name":"fixture-acme","domain":"time.acme.example.com","host":{"adminCidrs":["203.0.113.7/32"]},"app":{"extraEnv":${extraEnv}}}`) as unknown;

  it("JSON.parse and YAML keep __proto__ as an own key, and zod would drop it: refused at its path instead", () => {
    const fromJson = json('{"__proto__":"x","LOG_LEVEL":"info"}');
    expect(Object.keys((fromJson as { app: { extraEnv: object } }).app.extraEnv)).toEqual(["__proto__", "LOG_LEVEL"]);
    expectRefused(fromJson, "fixture-acme.app.extraEnv.__proto__", "JavaScript objects reserve");

    const fromYaml = parseYaml("name: fixture-acme\ndomain: time.acme.example.com\nhost:\n  adminCidrs: [203.0.113.7/32]\napp:\n  extraEnv:\n    __proto__: x\n");
    expect(Object.keys((fromYaml as { app: { extraEnv: object } }).app.extraEnv)).toEqual(["__proto__"]);
    expectRefused(fromYaml, "fixture-acme.app.extraEnv.__proto__", "JavaScript objects reserve");
  });

  it("refuses constructor and prototype, and the same keys among build arguments", () => {
    expectRefused(json('{"constructor":"x"}'), "fixture-acme.app.extraEnv.constructor", "JavaScript objects reserve");
    expectRefused(json('{"prototype":"x"}'), "fixture-acme.app.extraEnv.prototype", "JavaScript objects reserve");
    const args = JSON.parse('{"__proto__":"x"}') as unknown;
    expectRefused(withImages({ backend: { source: "build", context: "backend", dockerfile: "app-images/backend/Dockerfile", args } }), "fixture-acme.images.backend.args.__proto__", "JavaScript objects reserve");
  });

  it("refuses __proto__ as a field of the definition itself", () => {
    const top = JSON.parse('{"name":"fixture-acme","domain":"time.acme.example.com","__proto__":{"host":{}}}') as unknown;
    expectRefused(top, "fixture-acme", "unknown field '__proto__'");
  });

  it("planFor throws a CatalogError naming the path (what the Pulumi program reports)", () => {
    expect(() => planFor([...catalog, json('{"__proto__":"x"}')], "fixture-acme")).toThrow(CatalogError);
    expect(() => planFor([...catalog, json('{"__proto__":"x"}')], "fixture-acme")).toThrow(/^fixture-acme\.app\.extraEnv\.__proto__: /m);
  });

  it("validate --file prints it for a JSON file", async () => {
    const text = '{"name":"fixture-acme","domain":"time.acme.example.com","host":{"adminCidrs":["203.0.113.7/32"]},"app":{"extraEnv":{"__proto__":"x"}}}';
    const result = await validateFile("proto.json", text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("fixture-acme.app.extraEnv.__proto__: is a name JavaScript objects reserve");
  });
});

describe("Problem paths print on one line, whatever the keys", () => {
  it("quotes a key that is not plain, so it cannot fake a line of output", () => {
    const problems = problemsWith(withApp({ extraEnv: { "A\nacme.domain: fine": "x" } }));
    expect(problems).toEqual(['fixture-acme.app.extraEnv["A\\nacme.domain: fine"]: must be an UPPER_SNAKE variable name']);
    expect(problems.join("\n").split("\n")).toHaveLength(1);
  });

  it("labels a definition by its position when its name is not printable on one line", () => {
    const problems = problemsWith({ ...fixture, name: "evil\nprod.name: fine" });
    expect(problems).toContain(`catalog[${catalog.length}].name: must be 2-32 characters of a-z, 0-9 and '-', starting with a letter`);
  });

  it("lists ten unknown fields, then a count", () => {
    const definition = { ...fixture, ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`extra${i}`, 1])) };
    expect(problemsWith(definition)).toEqual([
      `fixture-acme: unknown fields ${Array.from({ length: 10 }, (_, i) => `'extra${i}'`).join(", ")} and 2 more`,
    ]);
  });
});

describe("9. A definition file that holds no definition is named by its file", () => {
  it.each([
    ["empty.json", "", "the file is empty"],
    ["blank.yaml", "  \n\t\n", "the file is empty"],
    ["comments.yml", "# nothing yet\n", "holds no definition"],
    ["null.json", "null", "holds no definition"],
    ["list.yaml", "- name: acme\n", "must hold one environment definition (a mapping with at least name and domain), not a list"],
    ["string.json", '"acme"', "must hold one environment definition (a mapping with at least name and domain), not a string"],
  ])("%s", (name, text, reason) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    expect(() => loadDefinitionFile(path)).toThrow(InputError);
    expect(() => loadDefinitionFile(path)).toThrow(`${path}: ${reason}`);
  });

  it("validate --file on an empty file says so by its name, not catalog[2]", async () => {
    const result = await validateFile("x.json", "");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${result.path}: the file is empty`);
    expect(result.stderr).not.toContain("catalog[");
  });

  it("validate --file on a whitespace-only YAML file too", async () => {
    const result = await validateFile("x.yaml", "\n   \n");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${result.path}: the file is empty`);
    expect(result.stderr).not.toContain("catalog[");
  });
});

describe("10. Size and time bounds", () => {
  const domains = (count: number, stack = "acme") => Array.from({ length: count }, (_, i) => `d${i}.${stack}.example.com`);

  it(`accepts ${MAX_EXTRA_DOMAINS} extra domains and refuses 100, citing Let's Encrypt's 100 names per certificate`, () => {
    expectAccepted({ ...fixture, extraDomains: domains(MAX_EXTRA_DOMAINS) });
    expectRefused({ ...fixture, extraDomains: domains(100) }, "fixture-acme.extraDomains", "at most 99", "Let's Encrypt puts at most 100 names on one certificate");
  });

  it("refuses 170,000 extra domains in under 2 s, with one problem", () => {
    const definition = { ...fixture, extraDomains: domains(170_000) };
    const start = performance.now();
    const result = validateCatalog([...catalog, definition]);
    const elapsed = performance.now() - start;
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([expect.stringMatching(/^fixture-acme\.extraDomains: must list at most 99/)]);
    expect(elapsed).toBeLessThan(2000);
  });

  it("validates a maximal catalog (30 stacks, each with 99 extra domains, 50 admin ranges, 100 variables) in under 2 s", () => {
    const stacks = Array.from({ length: 30 }, (_, i) => ({
      name: `fixture-client-${i}`,
      domain: `client-${i}.example.com`,
      extraDomains: domains(MAX_EXTRA_DOMAINS, `client-${i}`),
      host: { adminCidrs: Array.from({ length: 50 }, (_, j) => `198.51.${i}.${j}/32`) },
      app: { extraEnv: Object.fromEntries(Array.from({ length: 100 }, (_, j) => [`SETTING_${j}`, "x".repeat(4096)])) },
    }));
    const start = performance.now();
    const result = validateCatalog([...catalog, ...stacks]);
    const elapsed = performance.now() - start;
    expect(result.ok ? [] : result.problems.map(formatProblem).slice(0, 5)).toEqual([]);
    expect(result.ok && result.plans).toHaveLength(catalog.length + 30);
    expect(elapsed).toBeLessThan(2000);
  });

  it.each([
    { title: "51 admin ranges", definition: withHost({ adminCidrs: Array.from({ length: 51 }, (_, j) => `198.51.100.${j}/32`) }), path: "fixture-acme.host.adminCidrs", reason: "at most 50" },
    {
      title: "101 variables",
      definition: withApp({ extraEnv: Object.fromEntries(Array.from({ length: 101 }, (_, j) => [`SETTING_${j}`, "x"])) }),
      path: "fixture-acme.app.extraEnv",
      reason: "at most 100 variables, not 101",
    },
    { title: "a value of 4097 characters", definition: withApp({ extraEnv: { NOTE: "x".repeat(4097) } }), path: "fixture-acme.app.extraEnv.NOTE", reason: "at most 4096 characters" },
    { title: "a dataMove reason of 2001 characters", definition: { ...fixture, dataMove: { from: {}, how: "start-empty", reason: "x".repeat(2001) } }, path: "fixture-acme.dataMove.reason", reason: "" },
  ])("refuses $title at $path", ({ definition, path, reason }) => {
    expectRefused(definition, path, reason);
  });

  it("a variable named like a secret in a 100-variable catalog is still found (Sets, not scans)", () => {
    const extraEnv = Object.fromEntries(Array.from({ length: 99 }, (_, j) => [`SETTING_${j}`, "x"]));
    expectRefused(withApp({ extraEnv: { ...extraEnv, API_TOKEN: "x" } }), "fixture-acme.app.extraEnv.API_TOKEN", "names a secret");
  });

  it("validate --file refuses a file over 1 MB before parsing it (170,000 extra domains)", async () => {
    const text = JSON.stringify({ ...fixture, extraDomains: domains(170_000) });
    expect(text.length).toBeGreaterThan(MAX_DEFINITION_BYTES);
    const start = performance.now();
    const result = await validateFile("huge.json", text);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${result.path}: is ${text.length} bytes; a definition file is at most ${MAX_DEFINITION_BYTES} bytes (1 MB)`);
    expect(performance.now() - start).toBeLessThan(30_000);
  });
});

describe("11. What a reader may take another way: prod in development, a key given twice, a number with a leading zero", () => {
  /** The catalog with its production stack replaced by a minimal one in `environment` (the rule is about the name prod). */
  const prodIn = (environment: string) => [
    ...catalog.filter((d) => d.name !== PRODUCTION_STACK),
    { name: PRODUCTION_STACK, domain: "fixture-prod.example.com", app: { environment, debug: false } },
  ];

  it("refuses app.environment development or staging on prod, naming the field", () => {
    for (const environment of ["development", "staging"]) {
      const result = validateCatalog(prodIn(environment));
      expect(result.ok ? [] : result.problems, environment).toContainEqual(problemAt(`${PRODUCTION_STACK}.app.environment`, `is "${environment}", but prod is the production stack`));
    }
    expect(validateCatalog(prodIn("production")).ok).toBe(true);
  });

  it("accepts development on any other stack", () => {
    expectAccepted(withApp({ environment: "development", debug: true }));
  });

  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("refuses a JSON key given twice, naming the field and both lines (JSON.parse would keep the last in silence)", () => {
    const path = file("twice.json", '{\n  "name": "fixture-acme",\n  "domain": "a.example.com",\n  "ports": { "frontend": 3005,\n    "frontend": 3006, "backend": 8085 }\n}\n');
    expect(() => loadDefinitionFile(path)).toThrow(InputError);
    expect(() => loadDefinitionFile(path)).toThrow(`${path}: ports.frontend: is given twice (lines 4 and 5): keep one`);
  });

  it("refuses a YAML key given twice the same way, by its field", () => {
    const path = file("twice.yaml", "name: fixture-acme\ndomain: a.example.com\nname: fixture-other\n");
    expect(() => loadDefinitionFile(path)).toThrow(`${path}: name: is given twice (lines 1 and 3): keep one`);
  });

  it("refuses a JSON number with a leading zero by its field, saying what YAML 1.1 tools would read", () => {
    const path = file("zero.json", '{"name":"fixture-acme","domain":"a.example.com","ports":{"frontend":03005,"backend":8085}}');
    expect(() => loadDefinitionFile(path)).toThrow(`${path}: ports.frontend: 03005 has a leading zero, which JSON does not allow (YAML 1.1 tools read it as octal 1541): write 3005`);
  });

  it("warns about a YAML number with a leading zero, by its field, and reads it as decimal", () => {
    const path = file("zero.yaml", "name: fixture-acme\ndomain: a.example.com\nports:\n  frontend: 03005\n  backend: 08085\n");
    const { definition, warnings } = loadDefinitionFile(path);
    expect((definition as { ports: unknown }).ports).toEqual({ frontend: 3005, backend: 8085 });
    expect(warnings).toEqual([
      `${path}: ports.frontend: 03005 has a leading zero: read here as 3005, but YAML 1.1 tools read it as octal 1541; write 3005`,
      `${path}: ports.backend: 08085 has a leading zero: read here as 8085, but YAML 1.1 tools read it as text; write 8085`,
    ]);
    expect(loadDefinitionFile(file("plain.yaml", "name: fixture-acme\ndomain: a.example.com\nports: { frontend: 3005, backend: 8085 }\nnote: '007'\n")).warnings).toEqual([]);
  });

  it("validate --file prints the warning and still validates the file", async () => {
    const result = await validateFile("zero-port.yaml", "name: fixture-acme\ndomain: a.example.com\nports:\n  frontend: 03005\n  backend: 8085\n");
    expect(result.stderr).toContain(`warning: ${result.path}: ports.frontend: 03005 has a leading zero: read here as 3005`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("valid: fixture-acme");
  });
});

/**
 * What may reach a test or a rehearsal but never a real deploy: documentation addresses,
 * example domains, an unset host.adminCidrs and the fixtures' names. `validate` and the Pulumi
 * entry point refuse them; the model accepts them.
 */

/** A client stack with real-looking values (100.64.0.0/10 is shared address space, not documentation). */
const real = {
  name: "northwind",
  domain: "time.northwind.co.uk",
  host: { adminCidrs: ["100.64.12.7/32"] },
  tls: { mode: "acme", email: "ops@northwind.co.uk" },
  alerts: { email: "pager@northwind.co.uk" },
} as const;
const deployProblemsOf = (definition: unknown) => deployProblems(EnvironmentSchema.parse(definition)).map(formatProblem);

describe("12. Placeholders, the tables: RFC 5737 addresses, RFC 2606 / 6761 names, the fixtures' prefix", () => {
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

describe("12. Placeholders, deployProblems: every placeholder by its field, with what to put there", () => {
  it("passes a stack with real values", () => {
    expect(deployProblemsOf(real)).toEqual([]);
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
    expect(deployProblemsOf(placeholder)).toEqual([
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
    expect(deployProblemsOf(unset)).toEqual([
      "northwind.host.adminCidrs: is not set, so port 22 is closed to every deploy (Pulumi reaches Docker on the host over SSH): list the addresses you deploy from, as <ip>/32 (yours: curl -s https://checkip.amazonaws.com), or set host.sshClosed: true for a host frozen on purpose",
    ]);
    expect(deployProblemsOf({ ...real, host: { adminCidrs: [], sshClosed: true } })).toEqual([]);
  });

  it("says nothing of tls.email when TLS is not ACME's", () => {
    expect(deployProblemsOf({ ...real, tls: { mode: "internal" } })).toEqual([]);
  });

  it("the model accepts all of it: the tests and the rehearsal run with placeholders", () => {
    const placeholder = { name: "fixture-model", domain: "fixture-model.example.com", host: { adminCidrs: ["192.0.2.7/32"] } };
    expect(plansOf([...catalog, placeholder]).map((p) => p.stack)).toContain("fixture-model");
  });

  it("the rehearsal's localised stacks validate whatever their placeholders (localize keeps adminCidrs and adds its own)", () => {
    for (const stack of catalog) expect(plansOf(withDefinition(catalog, localize(stack))).map((p) => p.stack)).toContain(stack.name);
  });
});

describe("12. Placeholders, deployRefusal: what infra/index.ts throws before any resource", () => {
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

describe("12. Placeholders: the Pulumi entry point refuses a placeholder before any resource (Pulumi engine mocked: no Pulumi CLI here)", () => {
  it("infra/index.ts for a stack whose adminCidrs is a documentation address throws the refusal as a RunError; no resource is registered", async () => {
    // A checkout whose first stack file carries a documentation address, whatever the user's catalog holds now.
    const root = join(dir, "entry-point-checkout");
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
