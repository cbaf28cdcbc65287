import type { EnvironmentDefinition } from "../infra/model/schema.js";

/** Staging (V2.0): timetracker-staging.shaemarcus.com, beside production's ports. */
export const staging = {
  name: "staging",
  domain: "timetracker-staging.shaemarcus.com",
  containerPrefix: "timetracker-staging",
  ports: { frontend: 3001, backend: 8081 },
  app: { environment: "staging", debug: false },
  database: { name: "timetracker_v2_dev", user: "timetracker" },
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
} satisfies EnvironmentDefinition;
