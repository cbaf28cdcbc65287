import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import type { Declared } from "../../tools/changes/decide.js";
import { removeTree } from "../scratch.js";
import { tsxCommand } from "../tsx-command.js";

/**
 * What the providers' replace rules (tools/changes/provider-rules.ts) say each ordinary edit
 * does to a deployed stack: nothing with data is lost, nothing protected is replaced, 80/443
 * never close. The edits come from the schema where they can, so a new field is covered (or
 * explicitly declared not ordinary) without anyone remembering to.
 */

// A client as `npm run new-client` starts one, with two admin CIDRs so removing one leaves SSH open to the other.
const client = {
  name: "zz-test-edits-client",
  domain: "timetracker.zz-edits-client.test.example",
  host: { adminCidrs: ["203.0.113.7/32", "198.51.100.9/32"] },
} satisfies EnvironmentDefinition;

// The same client with the site-down alert, to change and remove its address.
const alerted = {
  name: "zz-test-edits-alerts",
  domain: "timetracker.zz-edits-alerts.test.example",
  host: { adminCidrs: ["203.0.113.7/32"] },
  alerts: { email: "ops@zz-edits-alerts.test.example" },
} satisfies EnvironmentDefinition;

vi.mock("../../stacks/catalog.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../stacks/catalog.js")>();
  return { catalog: [...original.catalog, client, alerted] };
});

const { EnvironmentSchema, BUNDLE_MEMORY_GB, bundleSize, STANDBY_PORT_OFFSET } = await import("../../infra/model/schema.js");
const { planFor, validateCatalog } = await import("../../infra/model/catalog.js");
const { catalog } = await import("../../stacks/catalog.js");
const { runProgram } = await import("../../tools/mock-engine.js");
const { mockConfig, MOCK_ADOPTED_PASSWORD } = await import("../../tools/mock-config.js");
const { decide, decideDelete } = await import("../../tools/changes/decide.js");
const { flagsFor } = await import("../../tools/changes/flags.js");
const { planChanges } = await import("../../tools/changes/plan-changes.js");
const { renderPreview } = await import("../../tools/changes/render.js");
const { isClassified, isComponent, PROVIDER_RULES, DATA_DISK_MOUNT } = await import("../../tools/changes/provider-rules.js");

type Definition = Record<string, unknown>;
type Config = Record<string, string>;

// ---------------------------------------------------------------------------------------
// The ordinary edits.

interface Edit {
  /** The schema field it edits (a dotted path), or what it changes outside the definition. */
  field: string;
  name: string;
  /** Derived from the schema alone: the catalog may refuse the value for a given stack. */
  generated?: true;
  definition?: (d: Definition, parsed: Record<string, unknown>) => Definition;
  config?: (c: Config) => Config;
}

/**
 * Fields an ordinary deploy never edits: what names existing data or the host's place,
 * locked once deployed (issue 8, part 3), and settings only local runs change.
 */
const NOT_ORDINARY: Record<string, string> = {
  name: "identity: the stack",
  domain: "identity: the site's address (extraDomains is the ordinary edit)",
  containerPrefix: "identity: names the containers and volumes",
  "database.name": "identity: names the existing database",
  "database.user": "identity: the role that owns the data (seed incident #4)",
  "database.password.adoptFrom": "identity: the adopted secret's key",
  "volumes.database": "identity: names existing data",
  "volumes.redis": "identity: names existing data",
  "volumes.caddyData": "identity: names existing data",
  "volumes.caddyConfig": "identity: names existing data",
  "backup.bucket.name": "identity: names the bucket with the off-host copies (a new name is a new, empty bucket, and protect refuses the replacement)",
  "host.region": "moves the host and its data to another region",
  "host.availabilityZone": "moves the host and its data disk to another zone",
  "host.dataDiskGb": "a new size is a new disk: a deliberate move of data (docs/move-data.md)",
  "host.sshUser": "fixed by the blueprint",
  "host.dnsZone": "where DNS lives, set once with host.dns",
  "caddy.httpPort": "local runs only",
  "caddy.httpsPort": "local runs only",
  "caddy.bind": "local runs only",
  protect: "a safety switch, not a change to the stack",
  dataMove: "a declared move of data, checked by validate's identity lock (docs/move-data.md)",
  postgresUpgrade: "a declared upgrade of the Postgres major, checked by validate --base and carried out by the host's upgrade tool (docs/postgres-upgrade.md)",
};

/** A field is not ordinary when it, or an object it sits in, is listed above. */
const notOrdinary = (path: string) => Object.keys(NOT_ORDINARY).some((key) => path === key || path.startsWith(`${key}.`));

const get = (value: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), value);

function set(definition: Definition, path: string, value: unknown): Definition {
  const copy = structuredClone(definition);
  const keys = path.split(".");
  let at = copy;
  for (const key of keys.slice(0, -1)) at = (at[key] ??= {}) as Definition;
  at[keys[keys.length - 1] as string] = value;
  return copy;
}

/** The schema behind defaults, prefaults and optionals. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/** Every field of the definition, as dotted paths to non-object schemas. */
function leaves(schema: z.ZodType, prefix = ""): { path: string; schema: z.ZodType }[] {
  const s = unwrap(schema);
  if (!(s instanceof z.ZodObject)) return [{ path: prefix, schema: s }];
  return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

const FIELDS = leaves(EnvironmentSchema);
const isUtcHour = (s: z.ZodType) => s instanceof z.ZodString && s.safeParse("07:00").success && !s.safeParse("7:00").success;

/** The next value of a number, boolean, enum or UTC-hour field, or nothing the schema can tell. */
function nextValue(s: z.ZodType, current: unknown): unknown {
  if (s instanceof z.ZodNumber && typeof current === "number") return s.safeParse(current + 1).success ? current + 1 : current - 1;
  if (s instanceof z.ZodBoolean) return !current;
  if (s instanceof z.ZodEnum) {
    const options = s.options as unknown[];
    return options[(options.indexOf(current) + 1) % options.length];
  }
  if (isUtcHour(s) && typeof current === "string") return `${String((Number(current.slice(0, 2)) + 1) % 24).padStart(2, "0")}:00`;
  return undefined;
}

const bumpPatch = (ref: string) => ref.replace(/^([^:]+:(?:\d+\.)*)(\d+)/, (_, head: string, last: string) => `${head}${Number(last) + 1}`);
const sizes = Object.keys(BUNDLE_MEMORY_GB).sort((a, b) => (BUNDLE_MEMORY_GB[a] ?? 0) - (BUNDLE_MEMORY_GB[b] ?? 0));
const oneSizeUp = (bundle: string) => bundle.replace(/^[^_]+/, sizes[sizes.indexOf(bundleSize(bundle)) + 1] ?? "");
const usedPorts = () => catalog.flatMap((d) => planFor(catalog, d.name)).flatMap((p) => Object.values(p.containers).flatMap((c) => c.ports.map((x) => x.external)));
/** The ports the catalog settled for a stack (a client's are allocated when left out). */
const portsOf = (stack: string) => {
  const plan = planFor(catalog, stack);
  return { frontend: plan.containers.frontend.ports[0]?.external, backend: plan.containers.backend.ports[0]?.external };
};
/** The lowest port from `from` that is free with its standby twin (a new version starts there). */
const freePort = (from: number) =>
  Array.from({ length: 500 }, (_, i) => from + i).find((p) => !usedPorts().includes(p) && !usedPorts().includes(p + STANDBY_PORT_OFFSET)) as number;

const scratch = mkdtempSync(join(tmpdir(), "changes-test-"));
afterAll(() => removeTree(scratch));

/** Edits that need more than the schema says: a size up, a list entry, a pinned patch, a free port, a key. */
const EXPLICIT: Edit[] = [
  { field: "host.bundle", name: "a bundle one size up", definition: (d, p) => set(d, "host.bundle", oneSizeUp(String(get(p, "host.bundle")))) },
  {
    field: "host.adminCidrs",
    name: "add an admin CIDR",
    definition: (d, p) => set(d, "host.adminCidrs", [...(get(p, "host.adminCidrs") as string[]), "198.51.100.23/32"]),
  },
  {
    field: "host.adminCidrs",
    // An empty list would close SSH to every deploy (refused): the only one is swapped for another.
    name: "remove an admin CIDR (or swap the only one)",
    definition: (d, p) => {
      const cidrs = get(p, "host.adminCidrs") as string[];
      return set(d, "host.adminCidrs", cidrs.length > 1 ? cidrs.slice(0, -1) : ["198.51.100.24/32"]);
    },
  },
  {
    field: "ssh key (config)",
    name: "a new SSH public key",
    config: (c) => {
      const path = join(scratch, "new-key.pub");
      writeFileSync(path, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKeyForTestsOnlyNotARealKeyyyyyyyyyyyyy timetracker-new\n");
      return { ...c, "timetracker:sshPublicKeyPath": path };
    },
  },
  { field: "extraDomains", name: "another domain", definition: (d, p) => set(d, "extraDomains", [...(p.extraDomains as string[]), `extra.${String(p.domain)}`]) },
  { field: "app.extraEnv", name: "an extra backend variable", definition: (d, p) => set(d, "app.extraEnv", { ...(get(p, "app.extraEnv") as object), FEATURE_X: "on" }) },
  // A new release command runs with the next release, after a fresh pre-deploy dump.
  { field: "app.releaseCommand", name: "another release command", definition: (d) => set(d, "app.releaseCommand", "alembic upgrade head && python -m app.seed") },
  { field: "app.releaseCommand", name: "no release command", definition: (d) => set(d, "app.releaseCommand", "") },
  ...(["postgres", "redis", "caddy"] as const).map(
    (image): Edit => ({ field: `images.${image}`, name: `a patch bump of ${image}`, definition: (d, p) => set(d, `images.${image}`, bumpPatch(String(get(p, `images.${image}`)))) }),
  ),
  ...(["backend", "frontend"] as const).map(
    (image): Edit => ({
      field: `images.${image}`,
      name: `a new ${image} build argument`,
      definition: (d, p) => set(d, `images.${image}`, { ...(get(p, `images.${image}`) as object), args: { BUILD_NOTE: "x" } }),
    }),
  ),
  // Neither stack has alerts: this adds them (a health check, an alarm, a topic, a subscription). Changing and removing the
  // address: "the site-down alert's address" below.
  { field: "alerts.email", name: "an alert e-mail address", definition: (d) => set(d, "alerts", { email: "oncall@timetracker.test.example" }) },
  // Both retentions are optional (30 days when neither is given): each edit sets one, which reaches the host's backup tool.
  { field: "backup.bucket.keepDays", name: "keep the bucket's copies 90 days", definition: (d) => set(d, "backup.bucket", { keepDays: 90 }) },
  { field: "backup.bucket.keepCount", name: "keep the newest 60 copies in the bucket", definition: (d) => set(d, "backup.bucket", { keepCount: 60 }) },
  { field: "tls", name: "another TLS e-mail", definition: (d) => set(d, "tls", { mode: "acme", email: "certs@timetracker.test.example" }) },
  { field: "ports.frontend", name: "another frontend port", definition: (d, p) => set(d, "ports", { ...portsOf(String(p.name)), frontend: freePort(3100) }) },
  { field: "ports.backend", name: "another backend port", definition: (d, p) => set(d, "ports", { ...portsOf(String(p.name)), backend: freePort(8100) }) },
];

/** Every number, boolean, enum and UTC-hour field no explicit edit or exclusion names: a new one appears here by itself. */
const GENERATED: Edit[] = FIELDS.filter(
  (f) => !notOrdinary(f.path) && !EXPLICIT.some((e) => e.field === f.path) && (f.schema instanceof z.ZodNumber || f.schema instanceof z.ZodBoolean || f.schema instanceof z.ZodEnum || isUtcHour(f.schema)),
).map((f) => ({
  field: f.path,
  name: `${f.path} to its next value`,
  generated: true,
  definition: (d, p) => set(d, f.path, nextValue(f.schema, get(p, f.path))),
}));

const EDITS = [...EXPLICIT, ...GENERATED];

// ---------------------------------------------------------------------------------------
// Running the program before and after an edit.

interface Declaration {
  resources: Declared[];
}

async function declare(definitions: readonly EnvironmentDefinition[], stack: string, edit?: (c: Config) => Config): Promise<Declaration> {
  const { config, secretKeys } = mockConfig(planFor(definitions, stack));
  const run = await runProgram(stack, edit ? edit(config) : config, secretKeys, { definitions });
  return { resources: run.resources };
}

const baseline = new Map<string, Promise<Declaration>>();
const before = (stack: string) => baseline.get(stack) ?? baseline.set(stack, declare(catalog, stack)).get(stack)!;

function edited(stack: string, edit: Edit): EnvironmentDefinition[] {
  const original = catalog.find((d) => d.name === stack) as Definition;
  const parsed = EnvironmentSchema.parse(original) as Record<string, unknown>;
  return catalog.map((d) => (d.name === stack && edit.definition ? edit.definition(original, parsed) : d)) as EnvironmentDefinition[];
}

const refusal = (definitions: readonly EnvironmentDefinition[]) => {
  const result = validateCatalog(definitions);
  return result.ok ? undefined : result.problems.map((p) => `${p.path}: ${p.message}`).join("\n");
};

const REFUSED = ["DATA LOSS", "BLOCKED BY PROTECT", "OUTAGE"];

describe.each(["prod", client.name])("every ordinary edit of %s is safe under Pulumi mocks (provider rules)", (stack) => {
  it.each(EDITS.map((e) => [e.name, e] as const))("%s: no data lost, nothing protected replaced, 80/443 stay open", async (_, edit) => {
    const definitions = edited(stack, edit);
    const refused = refusal(definitions);
    if (edit.generated && refused) {
      // Refused by `npm run validate` at the edited field: it never reaches a deploy of this stack.
      expect(refused).toContain(`${stack}.${edit.field}:`);
      return;
    }
    expect(refused).toBeUndefined();
    const changes = planChanges((await before(stack)).resources, (await declare(definitions, stack, edit.config)).resources);
    expect(changes.some((c) => c.action !== "same"), "the edit reaches the program").toBe(true);
    const harmful = changes.flatMap((c) => c.flags.filter((f) => REFUSED.includes(f.kind)).map((f) => `${c.name} ${c.action} (${c.causes.join("; ")}): ${f.kind}: ${f.reason}`));
    expect(harmful).toEqual([]);
  });
});

describe("the ordinary edits cover the schema under Pulumi mocks", () => {
  it("every field of the definition is edited, or listed as not ordinary with the reason", () => {
    const uncovered = FIELDS.map((f) => f.path).filter((path) => !notOrdinary(path) && !EDITS.some((e) => e.field === path));
    expect(uncovered).toEqual([]);
    const stale = Object.keys(NOT_ORDINARY).filter((path) => !FIELDS.some((f) => f.path === path || f.path.startsWith(`${path}.`)));
    expect(stale).toEqual([]);
  });

  it("derives the backup, host and rotation edits from the schema", () => {
    const generated = GENERATED.map((e) => e.field);
    for (const field of ["backup.snapshotTimeUtc", "backup.databaseDumpTimeUtc", "backup.databaseDumpKeepDays", "backup.preDeployDumpKeep", "app.healthCheckIntervalSeconds", "host.minFreeDiskGb", "database.password.rotation", "secrets.redisPasswordRotation", "secrets.appSecretKeyRotation"]) {
      expect(generated).toContain(field);
    }
    expect(oneSizeUp("small_3_0")).toBe("medium_3_0");
    expect(bumpPatch("postgres:15.10-bookworm")).toBe("postgres:15.11-bookworm");
    expect(bumpPatch("caddy:2.8.4-alpine")).toBe("caddy:2.8.5-alpine");
  });

  it("classifies every input of every resource the program declares in the provider table", async () => {
    for (const stack of ["prod", client.name, alerted.name]) {
      const unclassified = (await before(stack)).resources
        .filter((r) => !isComponent(r.type))
        .flatMap((r) => (PROVIDER_RULES[r.type] ? Object.keys(r.inputs).filter((k) => !isClassified(r.type, k)).map((k) => `${r.type}.${k}`) : [r.type]));
      expect(unclassified).toEqual([]);
    }
  });

  it("records which resources each input's Outputs come from", async () => {
    const resources = (await before("prod")).resources;
    const attachment = resources.find((r) => r.name === "host-ip-attachment");
    expect(attachment?.inputDeps).toEqual({ instanceName: ["host-instance"], staticIpName: ["host-ip"] });
  });
});

describe("the site-down alert's address under Pulumi mocks (provider rules)", () => {
  const ALERT_RESOURCES = [
    "aws:cloudwatch/metricAlarm:MetricAlarm alerts-alarm",
    "aws:cloudwatch/metricAlarm:MetricAlarm alerts-host-backup-alarm",
    "aws:cloudwatch/metricAlarm:MetricAlarm alerts-host-disk-alarm",
    "aws:cloudwatch/metricAlarm:MetricAlarm alerts-host-nightly-alarm",
    "aws:route53/healthCheck:HealthCheck alerts-check",
    "aws:route53/healthCheck:HealthCheck alerts-host-backup-check",
    "aws:route53/healthCheck:HealthCheck alerts-host-disk-check",
    "aws:route53/healthCheck:HealthCheck alerts-host-nightly-check",
    "aws:sns/topic:Topic alerts-topic",
    "aws:sns/topicSubscription:TopicSubscription alerts-email",
    "pulumi:providers:aws alerts-us-east-1",
  ].sort();
  const changesOf = async (from: readonly EnvironmentDefinition[], to: readonly EnvironmentDefinition[], stack: string) => {
    expect(refusal(to)).toBeUndefined();
    // The committed catalog's run is the baseline the edits above share.
    const declared = (definitions: readonly EnvironmentDefinition[]) => (definitions === catalog ? before(stack) : declare(definitions, stack));
    return planChanges((await declared(from)).resources, (await declared(to)).resources);
  };
  const harmful = (changes: ReturnType<typeof planChanges>) => changes.flatMap((c) => c.flags.filter((f) => REFUSED.includes(f.kind)).map((f) => `${c.name}: ${f.kind}`));
  const notSame = (changes: ReturnType<typeof planChanges>) => changes.filter((c) => c.action !== "same").map((c) => `${c.type} ${c.name} ${c.action}`).sort();
  const withAlerts = (alerts: { email: string } | undefined) =>
    catalog.map((d) => {
      if (d.name !== alerted.name) return d;
      const { alerts: _old, ...rest } = d as typeof alerted;
      return alerts ? { ...rest, alerts } : rest;
    }) as EnvironmentDefinition[];

  it("adding one creates the two checks, their alarms, the topic, the subscription and their provider, and touches nothing else", async () => {
    const changes = await changesOf(withAlerts(undefined), catalog, alerted.name);
    expect(notSame(changes)).toEqual(ALERT_RESOURCES.map((r) => `${r} create`).sort());
    expect(harmful(changes)).toEqual([]);
  });

  it("changing it replaces the subscription alone (a new confirmation e-mail), create first", async () => {
    const changes = await changesOf(catalog, withAlerts({ email: "oncall@zz-edits-alerts.test.example" }), alerted.name);
    expect(notSame(changes)).toEqual(["aws:sns/topicSubscription:TopicSubscription alerts-email replace"]);
    expect(changes.find((c) => c.name === "alerts-email")).toMatchObject({ causes: ["endpoint"], deleteFirst: false, flags: [] });
    expect(harmful(changes)).toEqual([]);
  });

  it("removing it deletes exactly the alert's resources, with no flag", async () => {
    const changes = await changesOf(catalog, withAlerts(undefined), alerted.name);
    expect(notSame(changes)).toEqual(ALERT_RESOURCES.map((r) => `${r} delete`).sort());
    expect(changes.flatMap((c) => c.flags)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------
// The decision itself, on hand-made resources.

const INSTANCE = "aws:lightsail/instance:Instance";
const FIREWALL = "aws:lightsail/instancePublicPorts:InstancePublicPorts";
const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";

const resource = (type: string, name: string, inputs: Record<string, unknown>, extra: Partial<Declared> = {}): Declared => ({
  type,
  name,
  inputs,
  inputDeps: {},
  options: {},
  ...extra,
});
const instance = (userData: string, options: Declared["options"] = {}) => resource(INSTANCE, "host-instance", { name: "tt", bundleId: "small_3_0", userData }, { options });
const firewall = (cidrs: string[], options: Declared["options"] = {}) =>
  resource(FIREWALL, "host-firewall", { instanceName: "tt", portInfos: [{ fromPort: 22, toPort: 22, cidrs }] }, { inputDeps: { instanceName: ["host-instance"] }, options });
const kinds = (changes: ReturnType<typeof planChanges>, name: string) => changes.find((c) => c.name === name)?.flags.map((f) => f.kind) ?? [];

describe("decide: the engine's choice for one resource, under Pulumi mocks' shapes", () => {
  it("replaces a dependent through a replace-on-change input: delete-first cascades delete the dependent first", () => {
    const before = [instance("v1"), firewall(["a"])];
    const changes = planChanges(before, [instance("v2"), firewall(["a"])]);
    expect(changes.find((c) => c.name === "host-instance")).toMatchObject({ action: "replace", causes: ["userData"], deleteFirst: true });
    expect(changes.find((c) => c.name === "host-firewall")).toMatchObject({
      action: "replace",
      causes: ["host-instance replaced (via instanceName)"],
      deleteFirst: true,
    });
    // Deleted before the instance, created after the new one: no create-then-delete to undo it.
    expect(kinds(changes, "host-firewall")).toEqual([]);
    expect(kinds(changes, "host-instance")).toEqual(["DOWNTIME"]);
  });

  it("never replaces through dependsOn alone", () => {
    const replaced = new Map([["host-instance", decide(instance("v2"), { inputs: instance("v1").inputs }, new Map())]]);
    const container = resource(CONTAINER, "app-db", { name: "db", image: "sha256:1" });
    expect(decide(container, { inputs: container.inputs }, replaced).action).toBe("same");
  });

  it("an input that follows a replaced resource but updates in place is an update", () => {
    const replaced = new Map([["host-instance", decide(instance("v2"), { inputs: instance("v1").inputs }, new Map())]]);
    const command = resource("command:remote:Command", "setup", { create: "x" }, { inputDeps: { create: ["host-instance"] } });
    expect(decide(command, { inputs: command.inputs }, replaced)).toMatchObject({ action: "update", causes: ["host-instance replaced (via create)"] });
    const triggered = resource("command:remote:Command", "ready", { create: "x", triggers: ["arn"] }, { inputDeps: { triggers: ["host-instance"] } });
    expect(decide(triggered, { inputs: triggered.inputs }, replaced).action).toBe("replace");
  });

  it("a replace of a resource protected in state and in the program blocks the run; unprotecting in the same run does not", () => {
    const blocked = planChanges([instance("v1", { protect: true })], [instance("v2", { protect: true })]);
    expect(kinds(blocked, "host-instance")).toContain("BLOCKED BY PROTECT");
    const unprotected = planChanges([instance("v1", { protect: true })], [instance("v2")]);
    expect(kinds(unprotected, "host-instance")).not.toContain("BLOCKED BY PROTECT");
    const deleted = flagsFor(decideDelete(), undefined, instance("v1", { protect: true }), []);
    expect(deleted.map((f) => f.kind)).toContain("BLOCKED BY PROTECT");
  });

  it("flags the firewall replaced create-then-delete (pulumi-aws#1511), and not when it is retainOnDelete", () => {
    const open = planChanges([instance("v1"), firewall(["a"])], [instance("v1"), firewall(["a", "b"])]);
    expect(open.find((c) => c.name === "host-firewall")).toMatchObject({ action: "replace", deleteFirst: false });
    expect(kinds(open, "host-firewall")).toEqual(["OUTAGE"]);
    const retained = planChanges([instance("v1"), firewall(["a"], { retainOnDelete: true })], [instance("v1"), firewall(["a", "b"], { retainOnDelete: true })]);
    expect(kinds(retained, "host-firewall")).toEqual([]);
    expect(kinds(planChanges([firewall(["a"])], []), "host-firewall")).toEqual(["OUTAGE"]);
  });

  it("a health-check change alone is recorded and never applied", () => {
    const container = (interval: string, image = "sha256:1") => resource(CONTAINER, "app-db", { name: "db", image, healthcheck: { interval } });
    const changes = planChanges([container("10s")], [container("5s")]);
    expect(changes[0]).toMatchObject({ action: "update", causes: [], ignored: ["healthcheck"] });
    expect(kinds(changes, "app-db")).toEqual(["NOT APPLIED"]);
    const withImage = planChanges([container("10s")], [container("5s", "sha256:2")]);
    expect(withImage[0]).toMatchObject({ action: "replace", deleteFirst: true });
    expect(kinds(withImage, "app-db")).toEqual([]);
  });

  it("a new instance loses the Docker volumes on its own disk, not those bound to the data disk", () => {
    const volume = (driverOpts: Record<string, string> | undefined, options: Declared["options"] = {}) =>
      resource(VOLUME, "app-volume-database", { name: "pg", ...(driverOpts ? { driverOpts } : {}) }, { options });
    const bound = volume({ type: "none", o: "bind", device: `${DATA_DISK_MOUNT}/volumes/pg` });
    expect(kinds(planChanges([instance("v1"), bound], [instance("v2"), bound]), "host-instance")).toEqual(["DOWNTIME"]);
    const local = volume(undefined, { retainOnDelete: true });
    expect(kinds(planChanges([instance("v1"), local], [instance("v2"), local]), "host-instance")).toEqual(["DATA LOSS", "DOWNTIME"]);
    // Replacing a volume loses its data unless it is on the data disk or kept.
    expect(kinds(planChanges([volume(undefined)], [volume({ type: "none" })]), "app-volume-database")).toEqual(["DATA LOSS"]);
    expect(kinds(planChanges([bound], [volume({ type: "none", o: "bind", device: `${DATA_DISK_MOUNT}/volumes/pg2` })]), "app-volume-database")).toEqual([]);
  });

  it("a disk replaced is a blank disk; its in-place tags are not", () => {
    const disk = (sizeInGb: number, tags = {}) => resource("aws:lightsail/disk:Disk", "host-disk", { name: "d", sizeInGb, tags }, { options: { protect: true, retainOnDelete: true } });
    expect(kinds(planChanges([disk(20)], [disk(40)]), "host-disk")).toEqual(["BLOCKED BY PROTECT", "DATA LOSS"]);
    expect(planChanges([disk(20)], [disk(20, { a: "b" })])[0]).toMatchObject({ action: "update", causes: ["tags"] });
  });

  it("reads the provider table for every type the program declares, with a source", () => {
    for (const rule of Object.values(PROVIDER_RULES)) expect(rule.source.length).toBeGreaterThan(10);
    expect(readFileSync("tools/changes/provider-rules.ts", "utf8")).toContain("pulumi/pulumi-aws#1511");
  });
});

describe("npm run preview under Pulumi mocks", () => {
  it("prints what changed and why, and never a secret value", () => {
    const secret = "s3cr3t-value-for-the-test";
    const db = (password: string, image: string) => resource(CONTAINER, "app-db", { name: "db", image, envs: [`POSTGRES_PASSWORD=${password}`] });
    const changes = planChanges([db(secret, "sha256:1")], [db(`${secret}-2`, "sha256:2")]);
    const text = renderPreview("prod", "main", changes, {
      secretPaths: new Map([[`${CONTAINER}::app-db`, ["envs"]]]),
      secretValues: [secret],
    });
    expect(text).toContain("| +- | `app-db` (docker:index/container:Container) | replace (delete first) | image: `sha256:1` → `sha256:2`; envs (secret) |");
    expect(text).toContain("**prod**: 0 to create, 0 to update, 1 to replace, 0 to delete, 0 unchanged. Flags: none.");
    expect(text).not.toContain(secret);
  });

  it("compares the working tree with a git ref through a temporary worktree, and removes it", () => {
    const worktrees = () => spawnSync("git", ["worktree", "list"], { encoding: "utf8" }).stdout;
    const before = worktrees();
    const result = spawnSync(...tsxCommand("tools/changes/preview.ts", "--stack", "staging", "--base", "HEAD"), { encoding: "utf8", timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^\*\*staging\*\*: \d+ to create, \d+ to update, \d+ to replace, \d+ to delete, \d+ unchanged\. Flags: /m);
    expect(result.stdout).not.toContain(MOCK_ADOPTED_PASSWORD);
    expect(worktrees()).toBe(before);
  });
});
