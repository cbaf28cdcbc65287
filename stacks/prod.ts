import type { EnvironmentDefinition } from "../infra/model/schema.js";

/**
 * Production: timetracker.shaemarcus.com. The container names, ports and database are
 * the ones today's production already runs with, and so are its volume names; the data moves
 * in by a dump, and the database password is the stack secret adoptedDbPassword (see
 * docs/bring-production-under-pulumi.md).
 */
export const prod = {
  name: "prod",
  domain: "timetracker.shaemarcus.com",
  containerPrefix: "timetracker",
  ports: { frontend: 3000, backend: 8080 },
  app: { environment: "production", debug: false },
  database: {
    name: "time_tracker",
    user: "postgres",
    password: { adoptFrom: "adoptedDbPassword", rotation: 0 },
  },
  volumes: {
    database: "timetracker_postgres_data",
    redis: "timetracker_redis_data",
  },
  host: {
    region: "us-east-1",
    availabilityZone: "us-east-1a",
    bundle: "small_3_0",
    blueprint: "ubuntu_22_04",
    // A placeholder (RFC 5737 documentation address): the addresses you deploy from go here,
    // as <ip>/32. `npm run validate` and a real `pulumi up` refuse it until then.
    adminCidrs: ["203.0.113.10/32"],
  },
  tls: { mode: "acme", email: "ops@shaemarcus.com" },
  // The site down, a disk nearly full, no bucket copy for a day, a failed nightly dump: each an e-mail (docs/alerts.md).
  alerts: { email: "ops@shaemarcus.com" },
  backup: { snapshotTimeUtc: "06:00", databaseDumpTimeUtc: "03:00", databaseDumpKeepDays: 14 },
} satisfies EnvironmentDefinition;
