import { z } from "zod";
import { isLightsailRegion, LIGHTSAIL_REGIONS, zonesOf } from "./lightsail-regions.js";
import { nearest } from "./nearest.js";
import { majorOfTag, POSTGRES_MAJORS } from "./postgres-major.js";

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

/** One of the Regions Lightsail runs in (lightsail-regions.ts, with its sources); a typo is answered with the likeliest one. */
const lightsailRegion = z.enum(LIGHTSAIL_REGIONS as [string, ...string[]], {
  error: (issue) => {
    const meant = typeof issue.input === "string" ? nearest(issue.input, LIGHTSAIL_REGIONS) : undefined;
    return `must be an AWS region where Lightsail runs${meant ? ` (did you mean ${meant}?)` : ""}: ${LIGHTSAIL_REGIONS.join(", ")}`;
  },
});

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

const majorList = (majors: readonly number[]) => `${majors.slice(0, -1).map((m) => `${m}.x`).join(", ")} or ${majors.at(-1)}.x`;

/**
 * The PostgreSQL image: postgres at one of POSTGRES_MAJORS, its major named by its tag (a
 * digest alone does not say which major it is). A change of major on a deployed stack is
 * `validate --base`'s business (infra/model/postgres-upgrade.ts).
 */
const postgresImage = pinnedRef.superRefine((ref, ctx) => {
  const parsed = parseImageRef(ref);
  if (!parsed || (!parsed.tag && !parsed.digest) || (parsed.tag?.toLowerCase() === "latest" && !parsed.digest)) return;
  const major = majorOfTag(parsed.tag);
  if (parsed.path.split("/").at(-1) !== "postgres" || major === undefined || !(POSTGRES_MAJORS as readonly number[]).includes(major)) {
    ctx.addIssue({
      code: "custom",
      input: ref,
      message: `must be postgres ${majorList(POSTGRES_MAJORS)}, its major named by its tag (postgres:17.2-bookworm, or with @sha256:<digest> after the tag): a data directory is tied to its major version, and postgres 18's image keeps its data elsewhere`,
    });
  }
});

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
  z
    .object({
      source: z.literal("registry"),
      ref: pinnedRef.describe("The image to pull, pinned by a tag that is not `latest` or by a digest. Example: `registry.example.com/team/app:1.4.2`."),
    })
    .strict(),
  z
    .object({
      source: z.literal("build"),
      context: buildPath("the app's checkout (stack config timetracker:appSource)").describe(
        "The build context: a folder inside the app's checkout (stack config `timetracker:appSource`, default `../TimeTracker`), relative, with '/' between folders and no '..'. The defaults: `backend` and `frontend`.",
      ),
      dockerfile: buildPath("this repository").describe("The Dockerfile, relative to this repository's root. The defaults: `app-images/backend/Dockerfile` and `app-images/frontend/Dockerfile`."),
      args: plainRecord(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be a build argument name (letters, digits and '_')"),
        plainValue,
        100,
        "build arguments",
      )
        .default({})
        .describe(
          "Build arguments (at most 100; names of letters, digits and '_', one-line values). Like app.extraEnv they are written in plain text to rendered/<stack>/plan.json: never a secret. Example: `{ VITE_API_URL: \"/api\" }`.",
        ),
    })
    .strict(),
]);

const credentials = z
  .object({
    adoptFrom: configKey
      .optional()
      .describe(
        "The stack secret (Pulumi config key) that holds the database password, instead of one generated and kept in the state; used while `rotation` is 0. Set it with `pulumi config set --secret timetracker:<key> <password>`. Locked once deployed. Example: `adoptedDbPassword` (prod).",
      ),
    rotation: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("Bump by one to rotate the password: a new one is generated, and the deploy sets it inside the running database before the backend starts with it (docs/rotate-a-secret.md)."),
  })
  .strict();

const tls = z.discriminatedUnion("mode", [
  z
    .object({
      mode: z.literal("acme"),
      email: z.email().optional().describe("The ACME account's e-mail: Let's Encrypt writes there about certificates that are not renewed. Example: `ops@acme.example`."),
    })
    .strict(),
  z.object({ mode: z.literal("internal") }).strict(),
  z.object({ mode: z.literal("off") }).strict(),
]);

/**
 * The names that tie a deployed stack to its data, resolved as in `rendered/<stack>/plan.json`
 * (see infra/model/identity.ts). Only `dataMove.from` spells it out.
 */
const dataIdentity = z
  .object({
    containerPrefix: containerPrefix.describe("The deployed container prefix (plan.json `containers`: the part before `-backend`)."),
    database: z
      .object({
        name: postgresIdentifier.describe("The deployed database name."),
        user: postgresIdentifier.describe("The deployed database user."),
        password: z
          .object({ adoptFrom: configKey.optional().describe("The deployed adopted secret's key; omitted when the password is generated.") })
          .strict()
          .prefault({})
          .describe("The deployed password's source."),
      })
      .strict()
      .describe("The deployed database."),
    volumes: z
      .object({
        database: dockerName.describe("The deployed database volume."),
        redis: dockerName.describe("The deployed Redis volume."),
        caddyData: dockerName.describe("The deployed volume of Caddy's certificates."),
        caddyConfig: dockerName.describe("The deployed volume of Caddy's configuration."),
      })
      .strict()
      .describe("The deployed volume names, resolved (plan.json `volumes`)."),
  })
  .strict();

export const EnvironmentSchema = z
  .object({
    name: stackName.describe(
      "The stack's name: the Pulumi stack (`Pulumi.<name>.yaml`) and part of every name derived for it (instance `timetracker-<name>`, its disk, static IP and bucket). 2 to 32 characters of a-z, 0-9 and '-', starting with a letter. Example: `acme`.",
    ),
    domain: hostname.describe(
      "The site's address, served by Caddy (over HTTPS unless tls.mode is off): a lower-case fully qualified domain name, unique in the catalog. Its A record must point at the stack's static IP (`pulumi stack output staticIp`, or host.dns). Example: `timetracker.acme.example`.",
    ),
    extraDomains: z
      .array(hostname)
      .max(MAX_EXTRA_DOMAINS, `must list at most ${MAX_EXTRA_DOMAINS}: Let's Encrypt puts at most 100 names on one certificate, the main domain included`)
      .default([])
      .describe(
        `More names for the same site, on the same certificate and in ALLOWED_HOSTS: at most ${MAX_EXTRA_DOMAINS} (Let's Encrypt's 100 names per certificate, the main domain included). Example: \`["www.acme.example"]\`.`,
      ),
    containerPrefix: containerPrefix
      .optional()
      .describe(
        "Names the containers (`<prefix>-frontend`, `-backend`, `-db`, `-redis`, `-caddy`), the network and the default volume names: lower-case letters, digits and '-'. Omitted: `timetracker-<name>`. Locked once deployed: it names the data (docs/move-data.md).",
      ),
    ports: z
      .object({
        frontend: appPort.describe(
          `The frontend's host port, published on 127.0.0.1 only (Caddy proxies to it): at most ${65535 - STANDBY_PORT_OFFSET}, since a new version starts on the port ${STANDBY_PORT_OFFSET} above it; unique across the catalog, and never 22, 80, 443 or 2019. Example: \`3002\`.`,
        ),
        backend: appPort.describe(
          `The backend's host port, published on 127.0.0.1 only, with the same rules as ports.frontend (a new version starts ${STANDBY_PORT_OFFSET} above it). Example: \`8082\`.`,
        ),
      })
      .strict()
      .optional()
      .describe(
        "The loopback host ports of the frontend and the backend. Omitted: the catalog gives the lowest free pair from 3000 / 8080, in catalog order; `npm run new-client` writes them down so they never move.",
      ),
    app: z
      .object({
        environment: z
          .enum(["production", "staging", "development"])
          .default("production")
          .describe("The `ENVIRONMENT` the backend runs with: `production`, `staging` or `development`."),
        debug: z.boolean().default(false).describe("The backend's `DEBUG`. Keep it false on any stack the public can reach."),
        healthCheckIntervalSeconds: z
          .number()
          .int()
          .min(2)
          .max(300)
          .default(10)
          .describe("Seconds between the backend's health checks, 2 to 300: Docker's check and the deploy's wait for a healthy backend follow it."),
        releaseCommand: z
          .string()
          .trim()
          .max(500)
          .regex(/^[^\n\r]*$/, "must be one line")
          .default("alembic upgrade head")
          .describe(
            "Run once per new backend image (the app's migrations), in a one-off container from it with the backend's environment, after the pre-deploy dump and before the new version takes traffic. A failure stops the deploy; the running version keeps serving. One line, at most 500 characters; `\"\"` for none.",
          ),
        extraEnv: plainRecord(
          z.string().regex(/^[A-Z][A-Z0-9_]{0,127}$/, "must be an UPPER_SNAKE variable name"),
          plainValue,
          100,
          "variables",
        )
          .default({})
          .describe(
            "Extra plain (non-secret) variables for the backend: at most 100, UPPER_SNAKE names, one-line values. They are written in plain text to rendered/<stack>/plan.json, which is committed: a name or value that looks like a secret (`*_PASSWORD`, `*_TOKEN`, a URL with `user:password@`) is refused, and so is ALLOWED_HOSTS (derived). Example: `{ FEATURE_REPORTS: \"on\" }`.",
          ),
        frontend: z
          .object({
            keepAssetsHours: z
              .number()
              .int()
              .min(1)
              .max(720)
              .default(24)
              .describe(
                "Hours a frontend release's hashed files (`/assets/index-<hash>.js` and the like) are still served after a newer release replaced it, 1 to 720: a page loaded before a deploy keeps finding its scripts instead of going blank. They are kept on the data disk and pruned hourly. Example: `72`.",
              ),
          })
          .strict()
          .prefault({})
          .describe("The frontend's releases: how long the files of a replaced release stay served (docs/design.md, Old pages keep working after a frontend deploy)."),
      })
      .strict()
      .prefault({})
      .describe("How the app runs: its environment, health check, migrations and extra variables, and how long an old frontend's files stay served."),
    database: z
      .object({
        name: postgresIdentifier
          .default("time_tracker")
          .describe("The PostgreSQL database's name: a lower-case identifier (a-z, 0-9, '_'). Locked once deployed. Example: `timetracker_v2_dev` (staging)."),
        user: postgresIdentifier
          .default("timetracker")
          .describe("The role that owns the database: a lower-case identifier. Locked once deployed (a new user on an existing volume is refused). Example: `postgres` (prod)."),
        password: credentials
          .prefault({})
          .describe("Where the database password comes from: generated once and kept in the stack's state, or adopted from a stack secret."),
      })
      .strict()
      .prefault({})
      .describe("The PostgreSQL database, on the stack's data disk."),
    secrets: z
      .object({
        redisPasswordRotation: z.number().int().min(0).default(0).describe("Bump by one to give Redis a new generated password; the backend is released with it."),
        appSecretKeyRotation: z.number().int().min(0).default(0).describe("Bump by one for a new generated app secret key: every user signs in again."),
      })
      .strict()
      .prefault({})
      .describe("Counters of the other generated secrets (kept in the stack's state): bump one to rotate it (docs/rotate-a-secret.md)."),
    host: z
      .object({
        region: lightsailRegion
          .default("us-east-1")
          .describe(
            "The AWS region of the instance, its disk, static IP and bucket: a region where Lightsail runs, equal to `aws:region` in `Pulumi.<name>.yaml`. Locked once deployed (the disk and the bucket cannot move). Example: `eu-west-2`.",
          ),
        availabilityZone: z
          .string()
          .regex(/^[a-z]{2}-[a-z]+-\d[a-z]$/, "must be an availability zone such as us-east-1a")
          .optional()
          .describe("The zone of the instance and its data disk: a zone of host.region. Omitted: the region's `a` zone. Example: `eu-west-2b`."),
        bundle: z
          .string()
          .regex(/^[a-z0-9]+_\d+_\d+$/, "must be a Lightsail bundle id such as small_3_0")
          .refine((id) => bundleSize(id) in BUNDLE_MEMORY_GB, `must be a Lightsail size: ${Object.keys(BUNDLE_MEMORY_GB).join(", ")}`)
          .default("small_3_0")
          .describe(
            `The instance's Lightsail bundle (its size): \`<size>_<n>_<n>\`, the size one of ${Object.keys(BUNDLE_MEMORY_GB).join(", ")}. A new bundle replaces the instance (minutes of downtime; the data disk stays). Example: \`medium_3_0\` (4 GB).`,
          ),
        blueprint: z
          .enum(Object.keys(BLUEPRINT_USER) as [keyof typeof BLUEPRINT_USER, ...(keyof typeof BLUEPRINT_USER)[]], {
            message: `must be a blueprint the launch script and host setup are written for: ${Object.keys(BLUEPRINT_USER).join(", ")}`,
          })
          .default("ubuntu_22_04")
          .describe("The instance's image: an Ubuntu release the launch script and the host setup are written for. Another blueprint replaces the instance (the data disk stays)."),
        adminCidrs: z
          .array(cidr)
          .max(50, "must list at most 50 ranges (one firewall rule holds them all): use wider ones")
          .default(omittedAdminCidrs)
          .describe(
            "Who may reach SSH (port 22): IPv4 CIDRs, at most 50; nobody else can. Pulumi reaches Docker on the host over SSH, so the addresses you deploy from must be here (a CI job opens 22 for its own runner while it runs). A `/0` needs host.sshOpenToWorld, a written `[]` host.sshClosed. Example: `[\"198.51.100.7/32\"]`.",
          ),
        sshOpenToWorld: z
          .boolean()
          .default(false)
          .describe(
            "Opt-in for an adminCidrs entry that ends in /0 (port 22 open to the whole internet). Refused without it, because it is almost always a shortcut taken while debugging; with it, only the key pair guards the host.",
          ),
        sshClosed: z
          .boolean()
          .default(false)
          .describe("Opt-in for `adminCidrs: []` (port 22 closed to everyone). Refused without it, because no deploy can reach the host then, neither CI nor you: for a host that is deliberately frozen."),
        sshUser: z
          .string()
          .regex(/^[a-z_][a-z0-9_-]*$/, "must be a Unix user name")
          .optional()
          .describe("The blueprint's own login user (`ubuntu`): Lightsail installs the key pair for it and no other. Omit it; any other value is refused."),
        dataDiskGb: z
          .number()
          .int()
          .min(8)
          .max(16384)
          .default(20)
          .describe(
            "Size in GB of the block-storage disk that holds the database, Redis, Caddy's certificates and the dumps (8 to 16384). It outlives the instance; a new size is a new disk, so the deploy stops (the disk is protected) until the data is moved (docs/move-data.md).",
          ),
        minFreeDiskGb: z
          .number()
          .int()
          .min(1)
          .default(5)
          .describe("GB that must be free on `/` for a deploy: below it the deploy stops before pulling or building anything, and the daily disk check warns."),
        diskWarningPercent: z
          .number()
          .int()
          .min(50)
          .max(99)
          .default(80)
          .describe(
            "The daily disk check warns when `/` or the data disk is this full (percent used, as `df` shows it, 50 to 99), or `/` has less free than host.minFreeDiskGb; the warning stays on the host and `npm run ops -- --stack <name> health` shows it. A disk fills over days (45 GB of Docker debris once did): this says so while there is still time to prune.",
          ),
        dns: z
          .enum(["none", "lightsail", "route53"])
          .default("none")
          .describe("Who creates the A records of the domains (pointing at the static IP): `none` (you do), `lightsail` (a Lightsail DNS zone) or `route53` (a Route 53 hosted zone)."),
        dnsZone: hostname
          .optional()
          .describe("The DNS zone that holds every domain, with host.dns. Omitted: the domain's parent (or the domain itself when it is an apex). Example: `acme.example`."),
      })
      .strict()
      .superRefine((host, ctx) => {
        const issue = (path: string[], message: string) => ctx.addIssue({ code: "custom", path, message, input: host });
        const user = BLUEPRINT_USER[host.blueprint];
        if (host.sshUser !== undefined && host.sshUser !== user) {
          issue(["sshUser"], `must be ${user}, the login user of blueprint ${host.blueprint} (Lightsail installs the key pair for that user only); remove the field`);
        }
        // A region outside the table is refused on its own; its zones are then unknown.
        if (host.availabilityZone !== undefined && isLightsailRegion(host.region) && !zonesOf(host.region).includes(host.availabilityZone)) {
          issue(["availabilityZone"], `must be a Lightsail zone of host.region ${host.region}: ${zonesOf(host.region).join(", ")}`);
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
      .prefault({})
      .describe("The Lightsail instance, its data disk and its firewall (80 and 443 from anywhere, 22 from host.adminCidrs)."),
    images: z
      .object({
        postgres: postgresImage
          .default("postgres:15.10-bookworm")
          .describe(
            `The PostgreSQL image: postgres ${majorList(POSTGRES_MAJORS)}, pinned by a tag that names the major and is not \`latest\` (a digest may follow it). A data directory is tied to its major: once a stack is deployed, \`validate\` refuses another major unless postgresUpgrade declares it (docs/postgres-upgrade.md). Example: \`postgres:15.12-bookworm\`.`,
          ),
        redis: pinnedMajor("redis", 7).default("redis:7.4.1-bookworm").describe("The Redis image: redis 7.x, pinned. Example: `redis:7.4.2-bookworm`."),
        caddy: pinnedMajor("caddy", 2).default("caddy:2.8.4-alpine").describe("The Caddy image: caddy 2.x, pinned. Example: `caddy:2.9.1-alpine`."),
        backend: appImage.default({
          source: "build",
          context: "backend",
          dockerfile: "app-images/backend/Dockerfile",
          args: {},
        }).describe(
          "Where the backend image comes from: `{ source: \"build\", context, dockerfile, args }` builds it on the host from the app's checkout (the default, tagged with a hash of every build input), or `{ source: \"registry\", ref }` pulls a pinned image.",
        ),
        frontend: appImage.default({
          source: "build",
          context: "frontend",
          dockerfile: "app-images/frontend/Dockerfile",
          args: {},
        }).describe("Where the frontend image comes from, as images.backend: built from the app's checkout (the default) or pulled from a registry."),
      })
      .strict()
      .prefault({})
      .describe("The containers' images: the pinned PostgreSQL, Redis and Caddy images, and how the backend and frontend images are made."),
    tls: tls
      .default({ mode: "acme" })
      .describe(
        "How Caddy serves the site: `acme` (certificates from Let's Encrypt, once DNS points at the host), `internal` (Caddy's own certificate authority: local runs) or `off` (plain HTTP on caddy.httpPort).",
      ),
    caddy: z
      .object({
        httpPort: port.default(80).describe("Caddy's HTTP port (redirects to HTTPS, and Let's Encrypt's challenge): 1 to 65535, never 22 or 2019."),
        httpsPort: port.default(443).describe("Caddy's HTTPS port: 1 to 65535, different from caddy.httpPort, never 22 or 2019."),
        bind: z
          .string()
          .regex(/^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/, "must be an IPv4 address such as 127.0.0.1")
          .optional()
          .describe("Bind Caddy to this IPv4 address only. Omitted: every address. Local runs use `127.0.0.1`."),
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
      .prefault({})
      .describe("Caddy's listeners on the host. Only local runs change them."),
    volumes: z
      .object({
        database: dockerName.optional().describe("The database's volume. Omitted: `<containerPrefix>-db-data`. Example: `timetracker_postgres_data` (prod)."),
        redis: dockerName.optional().describe("Redis's volume. Omitted: `<containerPrefix>-redis-data`."),
        caddyData: dockerName.optional().describe("The volume of Caddy's certificates. Omitted: `<containerPrefix>-caddy-data`."),
        caddyConfig: dockerName.optional().describe("The volume of Caddy's configuration. Omitted: `<containerPrefix>-caddy-config`."),
      })
      .strict()
      .default({})
      .describe(
        "Names of the Docker volumes, each a folder on the data disk (`/mnt/timetracker-data/volumes/<name>`): set to keep the names an existing deployment used. Locked once deployed (docs/move-data.md).",
      ),
    backup: z
      .object({
        snapshotTimeUtc: utcHour.default("06:00").describe("When Lightsail takes its automatic daily snapshot of the whole instance: a whole UTC hour. Example: `05:00`."),
        databaseDumpTimeUtc: utcHour.default("03:00").describe("When the nightly `pg_dump` runs on the host (then copied to the bucket): a whole UTC hour. Example: `02:00`."),
        databaseDumpKeepDays: z
          .number()
          .int()
          .min(1)
          .max(90)
          .default(7)
          .describe("Days the host keeps its nightly dumps (1 to 90), by the time in their names; the bucket keeps its copies by backup.bucket's rule."),
        preDeployDumpKeep: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(10)
          .describe("How many of the newest dumps of each other kind (before a deploy that changes the database or the backend, before a rollback, before a restore) the host keeps: 1 to 100."),
        bucket: z
          .object({
            name: z
              .string()
              .regex(/^[a-z0-9][a-z0-9-]{1,52}[a-z0-9]$/, "must be 3-54 characters of a-z, 0-9 and '-', starting and ending with a letter or digit")
              .optional()
              .describe(
                "The bucket's name, unique across all of Lightsail: 3 to 54 characters of a-z, 0-9 and '-'. Omitted: `timetracker-<name>-backups-` and 8 random characters chosen once. Locked once deployed; write out the generated name (`pulumi stack output backupBucket`) to bring a stack back over its kept bucket.",
              ),
            bundle: z
              .enum(BUCKET_BUNDLES)
              .default("small_1_0")
              .describe("The bucket's Lightsail bundle: `small_1_0` holds 5 GB for about $1 a month, `medium_1_0` 100 GB, `large_1_0` 250 GB."),
            keepDays: z
              .number()
              .int()
              .min(1)
              .max(3650)
              .optional()
              .describe("Copies older than this many days are deleted (1 to 3650; the newest is always kept). Give keepDays or keepCount, not both; neither: 30 days."),
            keepCount: z
              .number()
              .int()
              .min(1)
              .max(10000)
              .optional()
              .describe("Only this many newest copies are kept (1 to 10000), instead of keepDays."),
          })
          .strict()
          .superRefine((bucket, ctx) => {
            if (bucket.keepDays !== undefined && bucket.keepCount !== undefined) {
              ctx.addIssue({ code: "custom", path: ["keepCount"], message: "give keepDays or keepCount, not both", input: bucket });
            }
          })
          .prefault({})
          .describe(
            "Off-host copies: every dump is copied to a Lightsail bucket the program creates (protected, and kept if the stack is destroyed), kept by keepDays or keepCount.",
          ),
      })
      .strict()
      .prefault({})
      .describe("Backups: Lightsail's daily instance snapshot, the database dumps on the host, and their copies in the stack's bucket."),
    protect: z
      .boolean()
      .optional()
      .describe(
        "Shown as `protected` in rendered/<name>/topology.md. Omitted: true when app.environment is production. The data disk, the static IP and the backup bucket are protected (and kept on a destroy) on every stack, whatever this says.",
      ),
    alerts: z
      .object({
        email: z
          .email("must be an e-mail address such as ops@example.com")
          .describe("Where the alarm (site down) and the all-clear (site back) are sent. Example: `ops@acme.example`."),
      })
      .strict()
      .optional()
      .describe(
        "An e-mail when the site is down: a Route 53 check of `https://<domain>/api/health` from several regions, a CloudWatch alarm on it and an SNS e-mail subscription. AWS first sends a confirmation e-mail: no alert reaches the address until its link is clicked. Omitted: no alerts, none of these resources (docs/alerts.md).",
      ),
    dataMove: z
      .object({
        from: dataIdentity.describe("The deployed identity the data moves away from, every field as the base branch's rendered/<name>/plan.json has it."),
        how: z
          .enum(["start-empty", "dump-and-restore"])
          .describe(
            "`start-empty`: the new names start empty, the old volumes are kept untouched (never deleted with the stack) and can be copied back by hand; `dump-and-restore`: take a dump before the deploy, deploy, restore it into the new database.",
          ),
        reason: z.string().trim().min(1, "must say why the data moves").max(2000).describe("Why the data moves, for the pull request's reviewer and the operator (at most 2000 characters)."),
      })
      .strict()
      .optional()
      .describe(
        "A deliberate move of the stack's data to new names. Once a stack is deployed, `validate` refuses a change of what names its data (database.user, database.name, database.password.adoptFrom, containerPrefix, the resolved volume names), since each one orphans the data or is refused on the host; it accepts one only when `from` repeats the deployed identity exactly, and prints what the operator must do for `how` (docs/move-data.md). Harmless once the move is done; never part of the Plan.",
      ),
    postgresUpgrade: z
      .object({
        from: z
          .object({
            major: z.number().int().describe("The deployed PostgreSQL major (plan.json `database.major`, or the major of `containers.db.image.ref`). Example: `15`."),
            volume: dockerName.describe("The deployed database volume (plan.json `volumes.database`). Example: `timetracker_postgres_data`."),
          })
          .strict()
          .describe("The deployed database the data moves away from, as the base branch's rendered/<name>/plan.json has it."),
        how: z
          .enum(["dump-and-restore"])
          .describe("`dump-and-restore`: the new major's pg_dump dumps the running old server, the dump is restored into a new data directory of the new major and the rows of every table compared, before the old server is replaced."),
        reason: z.string().trim().min(1, "must say why the major changes").max(2000).describe("Why the major changes, for the pull request's reviewer and the operator (at most 2000 characters)."),
      })
      .strict()
      .optional()
      .describe(
        "A deliberate upgrade of PostgreSQL to the major of images.postgres. Once a stack is deployed, `validate` refuses another major unless this says so, with `from` repeating the deployed major and volume exactly. The deploy then dumps the old server (its writes refused from then on), restores into the new major's volume (`<volume>-pg<major>`), compares the rows of every table and only then replaces the database container; on any difference the old major serves on, writable again. The old volume is kept until an operator removes it (docs/postgres-upgrade.md). Remove it in a later change, once deployed.",
      ),
  })
  .strict()
  .superRefine((env, ctx) => {
    const upgrade = env.postgresUpgrade;
    const to = majorOfTag(parseImageRef(env.images.postgres)?.tag);
    if (upgrade && to !== undefined && upgrade.from.major >= to) {
      ctx.addIssue({
        code: "custom",
        path: ["postgresUpgrade", "from", "major"],
        input: upgrade.from.major,
        message: `must be older than the major of images.postgres (${to}): an upgrade goes to a newer major, and a newer major's data cannot go back`,
      });
    }
  });

/** What an author writes in `stacks/` (defaults optional). */
export type EnvironmentDefinition = z.input<typeof EnvironmentSchema>;
/** A definition after parsing, every default filled in. */
export type Environment = z.output<typeof EnvironmentSchema>;
/** A parsed definition whose host ports the catalog has settled. */
export type ResolvedEnvironment = Environment & { ports: NonNullable<Environment["ports"]> };
export type AppImage = z.output<typeof appImage>;
export type TlsMode = Environment["tls"]["mode"];
