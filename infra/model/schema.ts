import { z } from "zod";

/**
 * The shape of one environment definition (one Pulumi stack). Everything a stack
 * needs is here or defaulted here; `derive` turns a parsed definition into a Plan.
 * Defaults carry the conventions from production, so a new environment needs only
 * a name and a domain.
 */

/** Lightsail bucket bundles (storage included: 5, 100 and 250 GB). */
export const BUCKET_BUNDLES = ["small_1_0", "medium_1_0", "large_1_0"] as const;

const stackName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, "must be 2-32 characters of a-z, 0-9 and '-', starting with a letter");

const hostname = z
  .string()
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/,
    "must be a lower-case fully qualified domain name such as app.example.com",
  );

/** Each supported Lightsail blueprint and the login user its image comes with. */
export const BLUEPRINT_USER = {
  ubuntu_22_04: "ubuntu",
  ubuntu_24_04: "ubuntu",
} as const;

/** Memory of each Lightsail bundle size (the part of the id before the first `_`). */
export const BUNDLE_MEMORY_GB: Record<string, number> = {
  nano: 0.5,
  micro: 1,
  small: 2,
  medium: 4,
  large: 8,
  xlarge: 16,
  "2xlarge": 32,
};
export const bundleSize = (bundleId: string) => bundleId.split("_")[0] ?? "";

const port = z.number().int().min(1).max(65535);
/** Caddy's admin API (derive.ts binds it to localhost:2019 on the host network): no listener may take it. */
export const CADDY_ADMIN_PORT = 2019;
/** Let's Encrypt issues at most 100 names per certificate; the main domain is one. */
export const MAX_EXTRA_DOMAINS = 99;
/** Each app port has a standby twin this far above it: a new version starts there (see derive). */
export const STANDBY_PORT_OFFSET = 10000;
const appPort = port.max(65535 - STANDBY_PORT_OFFSET, `must be at most ${65535 - STANDBY_PORT_OFFSET}: a new version starts on the port ${STANDBY_PORT_OFFSET} above it`);

const containerPrefix = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,40}[a-z0-9]$/, "must be lower-case letters, digits and '-'");

const dockerName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,62}$/, "must be a valid Docker object name");

const postgresIdentifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case PostgreSQL identifier (a-z, 0-9, '_')");

const configKey = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9]{1,62}$/, "must be a Pulumi config key such as adoptedDbPassword");

const cidr = z
  .string()
  .regex(
    /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)\/(3[0-2]|[12]?\d)$/,
    "must be an IPv4 CIDR such as 203.0.113.7/32",
  );

/** Whether `zone` is one of `region`'s availability zones (the region's name and one letter). */
const isZoneOf = (zone: string, region: string) => zone.length === region.length + 1 && zone.startsWith(region);

/**
 * An omitted adminCidrs gets a fresh empty list recorded here, so the host's check can tell
 * it from a written `[]`: only the written one is a decision to close SSH, refused unless
 * host.sshClosed says so. (Omitted keeps today's contract: a definition needs only a name and a domain.)
 */
const omitted = new WeakSet<string[]>();
const omittedAdminCidrs = (): string[] => {
  const none: string[] = [];
  omitted.add(none);
  return none;
};

const utcHour = z.string().regex(/^([01]\d|2[0-3]):00$/, "must be a whole UTC hour such as 06:00");

/**
 * An image reference as Docker reads it: an optional registry host (with an optional port),
 * a lower-case path, then a tag, a digest, or both (`name:tag@sha256:...`, pulled by digest).
 */
const IMAGE_REF = (() => {
  const component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
  return new RegExp(
    `^(?:(?<registry>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\\d{1,5})?)/)?` +
      `(?<path>${component}(?:/${component})*)` +
      `(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?` +
      `(?:@(?<digest>sha256:[a-f0-9]{64}))?$`,
  );
})();

/** The parts of an image reference, or undefined when it is not one. */
export function parseImageRef(ref: string): { registry?: string; path: string; tag?: string; digest?: string } | undefined {
  const groups = IMAGE_REF.exec(ref)?.groups;
  if (!groups?.path) return undefined;
  return {
    path: groups.path,
    ...(groups.registry ? { registry: groups.registry } : {}),
    ...(groups.tag ? { tag: groups.tag } : {}),
    ...(groups.digest ? { digest: groups.digest } : {}),
  };
}

/**
 * An image reference that names a version: no bare name, no `latest` in any case (Docker
 * tags are case-sensitive, but `LATEST` moves just the same). A digest pins whatever tag
 * stands beside it. With `major`, the image must be that one at that major version.
 */
const pinnedImage = (major?: { image: string; major: number }) =>
  z
    .string()
    .max(255, { message: "must be at most 255 characters (Docker's limit for an image name)", abort: true })
    .superRefine((ref, ctx) => {
      const fail = (message: string) => ctx.addIssue({ code: "custom", message, input: ref });
      const parsed = parseImageRef(ref);
      if (!parsed) return fail("must be an image reference such as registry.example.com:5000/team/app:1.4.2 or postgres:15.10-bookworm@sha256:<64 hex digits>");
      if (!parsed.tag && !parsed.digest) return fail("must name a tag or digest");
      if (parsed.tag?.toLowerCase() === "latest" && !parsed.digest) {
        return fail(`must be pinned: '${parsed.tag}' ('latest' in any case) moves under a running stack; name a version or add @sha256:<digest>`);
      }
      if (!major) return;
      const name = parsed.path.split("/").at(-1);
      const tagMajor = parsed.tag === undefined || new RegExp(`^${major.major}([.-]|$)`).test(parsed.tag);
      if (name !== major.image || !tagMajor) {
        fail(`must be ${major.image} ${major.major}.x (a data volume is tied to its major version)`);
      }
    });
const pinnedRef = pinnedImage();
const pinnedMajor = (image: string, major: number) => pinnedImage({ image, major });

/** Keys a JavaScript object treats specially: `__proto__` is dropped by a parse or an object spread, the others shadow its methods. */
const RESERVED_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * A record whose raw keys are checked before zod reads it: zod (and any object spread)
 * drops a `__proto__` key silently, which JSON.parse and YAML both keep as an own key;
 * and more than `maxKeys` keys is refused before a single one is parsed.
 */
function plainRecord<K extends z.core.$ZodRecordKey, V extends z.ZodType>(key: K, value: V, maxKeys: number, what: string) {
  const record = z.record(key, value);
  return z.preprocess((raw: z.input<typeof record>, ctx) => {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
    const keys = Object.keys(raw);
    if (keys.length > maxKeys) {
      ctx.addIssue({ code: "custom", message: `must have at most ${maxKeys} ${what}, not ${keys.length}`, input: raw });
    }
    for (const reserved of keys.filter((k) => RESERVED_KEYS.has(k))) {
      ctx.addIssue({
        code: "custom",
        path: [reserved],
        message: `is a name JavaScript objects reserve (${[...RESERVED_KEYS].join(", ")}): it would be dropped or misread, never set; remove it`,
        input: raw,
      });
    }
    return raw;
  }, record);
}

/** A value for the environment or a build: one line (Docker's --env-file has no multi-line values), bounded. */
const plainValue = z
  .string()
  .max(4096, { message: "must be at most 4096 characters", abort: true })
  .regex(/^[^\n\r\0]*$/, "must be one line: Docker's --env-file cannot carry a line break");

/**
 * A path the build reads: relative, with '/' between folders, never leaving its root
 * (`root` names it in messages), so a definition cannot point a build at the host's files.
 */
const buildPath = (root: string) =>
  z
    .string()
    .min(1)
    .max(255, { message: "must be at most 255 characters", abort: true })
    .superRefine((path, ctx) => {
      const fail = (message: string) => ctx.addIssue({ code: "custom", message, input: path });
      if (path.includes("\\")) return fail(`must use '/' between folders, not '\\' (it is relative to ${root})`);
      if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return fail(`must be relative to ${root}, not absolute`);
      if (path.split("/").includes("..")) return fail(`must stay inside ${root}: no '..'`);
      if (!/^[A-Za-z0-9._@+\/-]+$/.test(path)) return fail(`must be a relative path of letters, digits, '.', '_', '-', '@', '+' and '/' inside ${root}`);
    });

/** Where an application image comes from: a registry, or a build from the app's source. */
const appImage = z.discriminatedUnion("source", [
  z.object({ source: z.literal("registry"), ref: pinnedRef }).strict(),
  z
    .object({
      source: z.literal("build"),
      /** Folder inside the app's checkout (stack config `timetracker:appSource`). */
      context: buildPath("the app's checkout (stack config timetracker:appSource)"),
      /** The Dockerfile, relative to this repository's root. */
      dockerfile: buildPath("this repository"),
      /** Build arguments; like extraEnv they are written in plain text to rendered/<stack>/plan.json. */
      args: plainRecord(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be a build argument name (letters, digits and '_')"),
        plainValue,
        100,
        "build arguments",
      ).default({}),
    })
    .strict(),
]);

const credentials = z
  .object({
    /**
     * Stack secret (Pulumi config key) holding a password that an existing database
     * volume already has. Used while `rotation` is 0.
     */
    adoptFrom: configKey.optional(),
    /** Bump to rotate: a new password is generated and set inside the running service first. */
    rotation: z.number().int().min(0).default(0),
  })
  .strict();

const tls = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("acme"), email: z.email().optional() }).strict(),
  z.object({ mode: z.literal("internal") }).strict(),
  z.object({ mode: z.literal("off") }).strict(),
]);

/**
 * The names that tie a deployed stack to its data, resolved as in `rendered/<stack>/plan.json`
 * (see infra/model/identity.ts). Only `dataMove.from` spells it out.
 */
const dataIdentity = z
  .object({
    containerPrefix,
    database: z
      .object({
        name: postgresIdentifier,
        user: postgresIdentifier,
        password: z.object({ adoptFrom: configKey.optional() }).strict().prefault({}),
      })
      .strict(),
    volumes: z.object({ database: dockerName, redis: dockerName, caddyData: dockerName, caddyConfig: dockerName }).strict(),
  })
  .strict();

export const EnvironmentSchema = z
  .object({
    name: stackName,
    domain: hostname,
    /** More names for the same site, on the same certificate. */
    extraDomains: z
      .array(hostname)
      .max(MAX_EXTRA_DOMAINS, `must list at most ${MAX_EXTRA_DOMAINS}: Let's Encrypt puts at most 100 names on one certificate, the main domain included`)
      .default([]),
    /** Containers are named `<prefix>-frontend`, `<prefix>-backend`, ...; defaults to `timetracker-<name>`. */
    containerPrefix: containerPrefix.optional(),
    /** Loopback host ports; omitted, the catalog gives the lowest free pair from 3000 / 8080. */
    ports: z.object({ frontend: appPort, backend: appPort }).strict().optional(),
    app: z
      .object({
        environment: z.enum(["production", "staging", "development"]).default("production"),
        debug: z.boolean().default(false),
        /** Seconds between the backend's health checks (Docker's and the deploy's wait follow it). */
        healthCheckIntervalSeconds: z.number().int().min(2).max(300).default(10),
        /**
         * Run once per new backend image, in a one-off container from it with the backend's
         * environment, after the pre-deploy dump and before the new version takes traffic
         * (the app's migrations). A failure stops the deploy; the running version keeps serving.
         * Empty: none.
         */
        releaseCommand: z.string().trim().max(500).regex(/^[^\n\r]*$/, "must be one line").default("alembic upgrade head"),
        /**
         * Extra plain (non-secret) variables for the backend. They are written in plain text to
         * rendered/<stack>/plan.json, which is committed: the catalog refuses a name or a value
         * that looks like a secret (see catalog.ts).
         */
        extraEnv: plainRecord(
          z.string().regex(/^[A-Z][A-Z0-9_]{0,127}$/, "must be an UPPER_SNAKE variable name"),
          plainValue,
          100,
          "variables",
        ).default({}),
      })
      .strict()
      .prefault({}),
    database: z
      .object({
        name: postgresIdentifier.default("time_tracker"),
        user: postgresIdentifier.default("timetracker"),
        password: credentials.prefault({}),
      })
      .strict()
      .prefault({}),
    secrets: z
      .object({
        redisPasswordRotation: z.number().int().min(0).default(0),
        appSecretKeyRotation: z.number().int().min(0).default(0),
      })
      .strict()
      .prefault({}),
    host: z
      .object({
        region: z.string().regex(/^[a-z]{2}-[a-z]+-\d$/, "must be an AWS region such as us-east-1").default("us-east-1"),
        /** Defaults to the region's `a` zone; must be a zone of `region`. */
        availabilityZone: z.string().regex(/^[a-z]{2}-[a-z]+-\d[a-z]$/, "must be an availability zone such as us-east-1a").optional(),
        bundle: z
          .string()
          .regex(/^[a-z0-9]+_\d+_\d+$/, "must be a Lightsail bundle id such as small_3_0")
          .refine((id) => bundleSize(id) in BUNDLE_MEMORY_GB, `must be a Lightsail size: ${Object.keys(BUNDLE_MEMORY_GB).join(", ")}`)
          .default("small_3_0"),
        /** The instance's image; the launch script and host setup are written for these Ubuntu releases. */
        blueprint: z
          .enum(Object.keys(BLUEPRINT_USER) as [keyof typeof BLUEPRINT_USER, ...(keyof typeof BLUEPRINT_USER)[]], {
            message: `must be a blueprint the launch script and host setup are written for: ${Object.keys(BLUEPRINT_USER).join(", ")}`,
          })
          .default("ubuntu_22_04"),
        /**
         * Who may reach SSH (port 22); nobody else can. Pulumi (from CI or your machine) reaches
         * Docker on the host over SSH, so the deploying addresses must be here.
         */
        adminCidrs: z
          .array(cidr)
          .max(50, "must list at most 50 ranges (one firewall rule holds them all): use wider ones")
          .default(omittedAdminCidrs),
        /**
         * Opt-in for an adminCidrs entry that ends in /0 (port 22 open to the whole internet).
         * Refused without it, because it is almost always a shortcut taken while debugging; with
         * it, only the key pair guards the host. Defaults to false.
         */
        sshOpenToWorld: z.boolean().default(false),
        /**
         * Opt-in for `adminCidrs: []` (port 22 closed to everyone). Refused without it, because
         * no deploy can reach the host then: neither CI nor you. For a host that is deliberately
         * frozen. Defaults to false.
         */
        sshClosed: z.boolean().default(false),
        /** The blueprint's own login user (Lightsail installs the key pair for it and no other); omit it. */
        sshUser: z.string().regex(/^[a-z_][a-z0-9_-]*$/, "must be a Unix user name").optional(),
        /**
         * Size of the block-storage disk that holds the database, Redis, Caddy's certificates
         * and the dumps. It outlives the instance; changing the size replaces the disk, so the
         * deploy stops (the disk is protected) until the data is moved (docs/move-data.md).
         */
        dataDiskGb: z.number().int().min(8).max(16384).default(20),
        /** Deploys stop before touching containers when less than this is free. */
        minFreeDiskGb: z.number().int().min(1).default(5),
        /**
         * The daily disk check warns when / or the data disk is this full (percent used, as
         * `df` shows it), or / has less free than minFreeDiskGb: the warning is kept on the
         * host and `npm run ops -- health` shows it. Why: a disk fills over days (45 GB of
         * Docker debris once did), and the deploy's guard only sees it when it refuses a
         * deploy; this says so while there is still time to prune. 50..99, default 80.
         */
        diskWarningPercent: z.number().int().min(50).max(99).default(80),
        /** Create A records for the domains pointing at the static IP. */
        dns: z.enum(["none", "lightsail", "route53"]).default("none"),
        /** The DNS zone holding every domain; defaults to the primary domain's parent (or the domain itself when it is an apex). */
        dnsZone: hostname.optional(),
      })
      .strict()
      .superRefine((host, ctx) => {
        const issue = (path: string[], message: string) => ctx.addIssue({ code: "custom", path, message, input: host });
        const user = BLUEPRINT_USER[host.blueprint];
        if (host.sshUser !== undefined && host.sshUser !== user) {
          issue(["sshUser"], `must be ${user}, the login user of blueprint ${host.blueprint} (Lightsail installs the key pair for that user only); remove the field`);
        }
        if (host.availabilityZone !== undefined && !isZoneOf(host.availabilityZone, host.region)) {
          issue(["availabilityZone"], `must be a zone of host.region ${host.region}, such as ${host.region}a`);
        }
        const world = host.adminCidrs.flatMap((range, index) => (range.endsWith("/0") ? [index] : []));
        if (!host.sshOpenToWorld) {
          for (const index of world) {
            issue(
              ["adminCidrs", String(index)],
              `opens SSH (port 22) to the whole internet: list the addresses that deploy (CI's and yours), or set host.sshOpenToWorld: true if that is really meant`,
            );
          }
        } else if (world.length === 0) {
          issue(["sshOpenToWorld"], "is set, but no adminCidrs entry ends in /0: remove it, so a /0 added later is refused again");
        }
        const written = !omitted.has(host.adminCidrs);
        if (host.adminCidrs.length === 0 && written && !host.sshClosed) {
          issue(
            ["adminCidrs"],
            "closes SSH (port 22) to everyone: neither CI nor you can deploy (Pulumi reaches Docker on the host over SSH); list the deploying addresses, or set host.sshClosed: true if that is really meant",
          );
        }
        if (host.sshClosed && host.adminCidrs.length > 0) {
          issue(["sshClosed"], `is set, but adminCidrs opens SSH to ${host.adminCidrs.join(", ")}: remove one or the other`);
        }
      })
      .prefault({}),
    images: z
      .object({
        postgres: pinnedMajor("postgres", 15).default("postgres:15.10-bookworm"),
        redis: pinnedMajor("redis", 7).default("redis:7.4.1-bookworm"),
        caddy: pinnedMajor("caddy", 2).default("caddy:2.8.4-alpine"),
        backend: appImage.default({
          source: "build",
          context: "backend",
          dockerfile: "app-images/backend/Dockerfile",
          args: {},
        }),
        frontend: appImage.default({
          source: "build",
          context: "frontend",
          dockerfile: "app-images/frontend/Dockerfile",
          args: {},
        }),
      })
      .strict()
      .prefault({}),
    tls: tls.default({ mode: "acme" }),
    /** Caddy's listeners; only local runs change them. */
    caddy: z
      .object({
        httpPort: port.default(80),
        /** Must differ from httpPort; neither may be 22 (SSH) or 2019 (Caddy's admin API). */
        httpsPort: port.default(443),
        /** Bind Caddy to this address only (local runs use 127.0.0.1). */
        bind: z
          .string()
          .regex(/^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/, "must be an IPv4 address such as 127.0.0.1")
          .optional(),
      })
      .strict()
      .superRefine((caddy, ctx) => {
        const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message, input: caddy });
        for (const field of ["httpPort", "httpsPort"] as const) {
          if (caddy[field] === 22) issue(field, "must not be 22: the host's SSH listens there");
          if (caddy[field] === CADDY_ADMIN_PORT) issue(field, `must not be ${CADDY_ADMIN_PORT}: Caddy's own admin API listens there`);
        }
        if (caddy.httpPort === caddy.httpsPort) {
          issue("httpsPort", `must differ from caddy.httpPort (${caddy.httpPort}): Caddy listens for HTTP and HTTPS on separate ports`);
        }
      })
      .prefault({}),
    /** Names of existing Docker objects to adopt (today's production volumes); default derived. */
    volumes: z
      .object({
        database: dockerName.optional(),
        redis: dockerName.optional(),
        caddyData: dockerName.optional(),
        caddyConfig: dockerName.optional(),
      })
      .strict()
      .default({}),
    backup: z
      .object({
        /** Lightsail's automatic daily snapshot of the whole instance. */
        snapshotTimeUtc: utcHour.default("06:00"),
        /** Nightly pg_dump kept on the host. */
        databaseDumpTimeUtc: utcHour.default("03:00"),
        databaseDumpKeepDays: z.number().int().min(1).max(90).default(7),
        /** The dumps taken before a deploy that changes the database or the backend: this many newest are kept. */
        preDeployDumpKeep: z.number().int().min(1).max(100).default(10),
        /**
         * Off-host copies: every nightly and pre-deploy dump is copied to a Lightsail bucket the
         * program creates (protected, kept if the stack is destroyed). Retention is `keepDays` or
         * `keepCount` (one of them; default 30 days); the newest copy is never deleted.
         */
        bucket: z
          .object({
            /** Bucket names are unique across all of Lightsail: the default adds a hash of the domain. */
            name: z
              .string()
              .regex(/^[a-z0-9][a-z0-9-]{1,52}[a-z0-9]$/, "must be 3-54 characters of a-z, 0-9 and '-', starting and ending with a letter or digit")
              .optional(),
            /** small_1_0 holds 5 GB for about $1 a month; medium_1_0 100 GB; large_1_0 250 GB. */
            bundle: z.enum(BUCKET_BUNDLES).default("small_1_0"),
            /** Copies older than this many days are deleted (the newest is always kept). */
            keepDays: z.number().int().min(1).max(3650).optional(),
            /** Only this many newest copies are kept. */
            keepCount: z.number().int().min(1).max(10000).optional(),
          })
          .strict()
          .superRefine((bucket, ctx) => {
            if (bucket.keepDays !== undefined && bucket.keepCount !== undefined) {
              ctx.addIssue({ code: "custom", path: ["keepCount"], message: "give keepDays or keepCount, not both", input: bucket });
            }
          })
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Protect stateful resources from deletion; defaults to true in production. */
    protect: z.boolean().optional(),
    /**
     * An e-mail when the site is down (README "Knowing when the site is down"): a Route 53
     * check of https://<domain>/api/health from around the world, a CloudWatch alarm on it and
     * an SNS e-mail subscription for `email`. AWS first sends a confirmation e-mail to the
     * address: no alert reaches it until its link is clicked. Omitted: no alerts, none of
     * these resources.
     */
    alerts: z
      .object({
        /** Where the alarm (site down) and the all-clear (site back) are sent. */
        email: z.email("must be an e-mail address such as ops@example.com"),
      })
      .strict()
      .optional(),
    /**
     * A deliberate move of the stack's data to new names. Once a stack is deployed, `validate`
     * refuses any change to what names its data (database.user, database.name,
     * database.password.adoptFrom, containerPrefix, the resolved volume names), because each
     * one orphans the data or is refused on the host. It accepts such a change only when
     * `from` repeats the deployed identity exactly (as in the base branch's
     * rendered/<stack>/plan.json), and prints what the operator must do for `how`:
     * - `start-empty`: the new names start empty; the old volumes are kept untouched (never
     *   deleted with the stack) and can be copied back by hand;
     * - `dump-and-restore`: take a dump before the deploy, deploy, restore it into the new database.
     * See docs/move-data.md. Leaving it in place after the move is harmless (validate says so).
     * Never part of the Plan.
     */
    dataMove: z
      .object({
        /** The deployed identity the data moves away from, every field as it is deployed. */
        from: dataIdentity,
        how: z.enum(["start-empty", "dump-and-restore"]),
        /** Why, for the pull request's reviewer and the operator. */
        reason: z.string().trim().min(1, "must say why the data moves").max(2000),
      })
      .strict()
      .optional(),
  })
  .strict();

/** What an author writes in `stacks/` (defaults optional). */
export type EnvironmentDefinition = z.input<typeof EnvironmentSchema>;
/** A definition after parsing, every default filled in. */
export type Environment = z.output<typeof EnvironmentSchema>;
/** A parsed definition whose host ports the catalog has settled. */
export type ResolvedEnvironment = Environment & { ports: NonNullable<Environment["ports"]> };
export type AppImage = z.output<typeof appImage>;
export type TlsMode = Environment["tls"]["mode"];
