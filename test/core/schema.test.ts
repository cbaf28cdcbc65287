import { describe, expect, it } from "vitest";
import { EnvironmentSchema } from "../../infra/model/schema.js";
import { problemAt, problemsOf } from "./helpers.js";

/** A fixture: named in the tests' own namespace (`fixture-…`), which no user's stack may take. */
const minimal = { name: "fixture-acme", domain: "time.acme.example.com" };

describe("EnvironmentSchema defaults", () => {
  const parsed = EnvironmentSchema.parse(minimal);

  it("accepts a definition with only a name and a domain", () => {
    expect(EnvironmentSchema.safeParse(minimal).success).toBe(true);
    expect(parsed.name).toBe("fixture-acme");
    expect(parsed.domain).toBe("time.acme.example.com");
    expect(parsed.extraDomains).toEqual([]);
  });

  it("leaves host ports and the container prefix to the catalog and derive", () => {
    expect(parsed.ports).toBeUndefined();
    expect(parsed.containerPrefix).toBeUndefined();
  });

  it("names the database time_tracker, as production does", () => {
    expect(parsed.database.name).toBe("time_tracker");
  });

  it("pins postgres 15, redis 7 and caddy 2 by version, never latest", () => {
    expect(parsed.images.postgres).toMatch(/^postgres:15(\.[0-9]+)*(-[a-z0-9.]+)?$/);
    expect(parsed.images.redis).toMatch(/^redis:7(\.[0-9]+)*(-[a-z0-9.]+)?$/);
    expect(parsed.images.caddy).toMatch(/^caddy:2(\.[0-9]+)*(-[a-z0-9.]+)?$/);
  });

  it("uses ACME TLS and no debug mode", () => {
    expect(parsed.tls).toEqual({ mode: "acme" });
    expect(parsed.app.debug).toBe(false);
    expect(parsed.app.environment).toBe("production");
  });

  it("keeps the password generated (no adoption, rotation 0) unless told otherwise", () => {
    expect(parsed.database.password).toEqual({ rotation: 0 });
  });

  it("migrates with `alembic upgrade head` before a new backend takes traffic, and keeps ten pre-deploy dumps", () => {
    expect(parsed.app.releaseCommand).toBe("alembic upgrade head");
    expect(parsed.backup.preDeployDumpKeep).toBe(10);
  });

  it("accepts an empty release command (none runs) and trims one written with spaces around it", () => {
    expect(EnvironmentSchema.parse({ ...minimal, app: { releaseCommand: "" } }).app.releaseCommand).toBe("");
    expect(EnvironmentSchema.parse({ ...minimal, app: { releaseCommand: "  flask db upgrade \n" } }).app.releaseCommand).toBe("flask db upgrade");
  });

  it("accepts app ports up to 55535, whose standby twin is the last port", () => {
    expect(EnvironmentSchema.safeParse({ ...minimal, ports: { frontend: 55534, backend: 55535 } }).success).toBe(true);
  });

  it("listens on Caddy's standard ports 80 and 443", () => {
    expect(parsed.caddy).toEqual({ httpPort: 80, httpsPort: 443 });
  });
});

describe("EnvironmentSchema rejections name the field and the reason", () => {
  const cases: { title: string; definition: Record<string, unknown>; path: string; reason: string | RegExp }[] = [
    { title: "an upper-case stack name", definition: { ...minimal, name: "Acme_1" }, path: "Acme_1.name", reason: "a-z, 0-9 and '-'" },
    { title: "a one-letter stack name", definition: { ...minimal, name: "a" }, path: "a.name", reason: "2-32 characters" },
    { title: "a domain with spaces", definition: { ...minimal, domain: "not a domain" }, path: "fixture-acme.domain", reason: "fully qualified domain name" },
    { title: "a domain without a dot", definition: { ...minimal, domain: "localhost" }, path: "fixture-acme.domain", reason: "fully qualified domain name" },
    { title: "an upper-case extra domain", definition: { ...minimal, extraDomains: ["WWW.acme.example.com"] }, path: "fixture-acme.extraDomains.0", reason: "lower-case" },
    { title: "an unknown top-level field", definition: { ...minimal, colour: "red" }, path: "fixture-acme", reason: "unknown field 'colour'" },
    { title: "an unknown nested field", definition: { ...minimal, database: { nmae: "x" } }, path: "fixture-acme.database", reason: "unknown field 'nmae'" },
    { title: "port 0", definition: { ...minimal, ports: { frontend: 0, backend: 8090 } }, path: "fixture-acme.ports.frontend", reason: ">=1" },
    { title: "port 70000", definition: { ...minimal, ports: { frontend: 3005, backend: 70000 } }, path: "fixture-acme.ports.backend", reason: "<=65535" },
    { title: "a fractional port", definition: { ...minimal, ports: { frontend: 3005.5, backend: 8090 } }, path: "fixture-acme.ports.frontend", reason: /int/i },
    {
      title: "a backend port whose standby twin does not exist",
      definition: { ...minimal, ports: { frontend: 3005, backend: 60000 } },
      path: "fixture-acme.ports.backend",
      reason: "must be at most 55535: a new version starts on the port 10000 above it",
    },
    {
      title: "a frontend port one above the last with a standby twin",
      definition: { ...minimal, ports: { frontend: 55536, backend: 8090 } },
      path: "fixture-acme.ports.frontend",
      reason: "must be at most 55535",
    },
    { title: "a release command over two lines", definition: { ...minimal, app: { releaseCommand: "alembic upgrade head\nrm -rf /" } }, path: "fixture-acme.app.releaseCommand", reason: "must be one line" },
    { title: "a release command with a carriage return", definition: { ...minimal, app: { releaseCommand: "alembic upgrade head\rtrue" } }, path: "fixture-acme.app.releaseCommand", reason: "must be one line" },
    { title: "a release command over 500 characters", definition: { ...minimal, app: { releaseCommand: `echo ${"x".repeat(500)}` } }, path: "fixture-acme.app.releaseCommand", reason: "<=500" },
    { title: "no pre-deploy dump kept", definition: { ...minimal, backup: { preDeployDumpKeep: 0 } }, path: "fixture-acme.backup.preDeployDumpKeep", reason: ">=1" },
    { title: "101 pre-deploy dumps kept", definition: { ...minimal, backup: { preDeployDumpKeep: 101 } }, path: "fixture-acme.backup.preDeployDumpKeep", reason: "<=100" },
    { title: "postgres 18", definition: { ...minimal, images: { postgres: "postgres:18" } }, path: "fixture-acme.images.postgres", reason: "postgres 15.x, 16.x or 17.x" },
    { title: "postgres:latest", definition: { ...minimal, images: { postgres: "postgres:latest" } }, path: "fixture-acme.images.postgres", reason: "'latest'" },
    { title: "an untagged redis", definition: { ...minimal, images: { redis: "redis" } }, path: "fixture-acme.images.redis", reason: "tag or digest" },
    { title: "caddy 3", definition: { ...minimal, images: { caddy: "caddy:3.0" } }, path: "fixture-acme.images.caddy", reason: "caddy 2.x" },
    { title: "an app image on latest", definition: { ...minimal, images: { backend: { source: "registry", ref: "ghcr.io/acme/backend:latest" } } }, path: "fixture-acme.images.backend.ref", reason: "'latest'" },
    { title: "a CIDR with prefix /33", definition: { ...minimal, host: { adminCidrs: ["203.0.113.7/33"] } }, path: "fixture-acme.host.adminCidrs.0", reason: "IPv4 CIDR" },
    { title: "an address without a prefix length", definition: { ...minimal, host: { adminCidrs: ["203.0.113.7"] } }, path: "fixture-acme.host.adminCidrs.0", reason: "IPv4 CIDR" },
    { title: "an octet above 255", definition: { ...minimal, host: { adminCidrs: ["203.0.113.256/32"] } }, path: "fixture-acme.host.adminCidrs.0", reason: "IPv4 CIDR" },
    { title: "an unknown bundle size", definition: { ...minimal, host: { bundle: "huge_3_0" } }, path: "fixture-acme.host.bundle", reason: "must be a Lightsail size" },
    { title: "a malformed bundle id", definition: { ...minimal, host: { bundle: "small" } }, path: "fixture-acme.host.bundle", reason: "Lightsail bundle id" },
    { title: "a password where a config key belongs", definition: { ...minimal, database: { password: { adoptFrom: "hunter2!pa$$" } } }, path: "fixture-acme.database.password.adoptFrom", reason: "Pulumi config key" },
    { title: "an unknown TLS mode", definition: { ...minimal, tls: { mode: "selfsigned" } }, path: "fixture-acme.tls.mode", reason: "" },
  ];

  it.each(cases)("rejects $title at $path", ({ definition, path, reason }) => {
    expect(EnvironmentSchema.safeParse(definition).success).toBe(false);
    expect(problemsOf([definition])).toContainEqual(problemAt(path, reason));
  });

  it("labels a definition without a usable name by its catalog position", () => {
    expect(problemsOf([null])).toContainEqual(problemAt("catalog[0]"));
    expect(problemsOf([minimal, { domain: "x.example.com" }])).toContainEqual(problemAt("catalog[1].name", "is required"));
  });

  it("accepts postgres 15 by another tag, or by a tag and a digest", () => {
    for (const postgres of ["postgres:15", "postgres:15.8-alpine", `postgres:15@sha256:${"a".repeat(64)}`]) {
      expect(EnvironmentSchema.safeParse({ ...minimal, images: { postgres } }).success, postgres).toBe(true);
    }
  });
});
