import type { HostCondition } from "./host-conditions.js";
import type { AppImage, Environment, TlsMode } from "./schema.js";

/**
 * The resolved plan of one stack: every name, port, host and route, computed once by
 * `derive`. Renderers and components read only this. Secrets appear by name only.
 */

export type Service = "db" | "redis" | "backend" | "frontend" | "caddy";
export type SecretName = "dbPassword" | "redisPassword" | "appSecretKey" | "hostStatusToken";
export type RenderedFile = "Caddyfile" | "nginx.conf";

/** An environment variable's value: plain text, or a secret that the program fills in. */
export type EnvValue = string | { secret: SecretName };

export interface SecretPlan {
  name: SecretName;
  length: number;
  /** Bumped to rotate; part of the generator's keepers. */
  rotation: number;
  /** Stack secret (config key) whose value is used while rotation is 0. */
  adoptFrom?: string;
}

export type ImagePlan = { source: "registry"; ref: string } | (Extract<AppImage, { source: "build" }> & { /** Tagged with the build context's content hash: one tag per content, never overwritten. */ repository: string });

export interface PortBinding {
  /** Port inside the container. */
  internal: number;
  /** Port on the host. */
  external: number;
  /** Host address the port is published on. */
  ip: string;
  /** The definition field this port comes from, for error messages. */
  origin: string;
}

export interface HealthCheck {
  test: string[];
  intervalSeconds: number;
  timeoutSeconds: number;
  retries: number;
  startPeriodSeconds: number;
}

/**
 * How a new version of an app service goes live (infra/render/release.ts): started as a
 * candidate on the standby slot, checked, then swapped in while the old one drains.
 */
export interface ReleasePlan {
  /** The two host ports the service alternates between: a candidate starts on the one not in use. */
  slots: [number, number];
  candidateName: string;
  /** The version before the live one, kept stopped for a rollback. */
  previousName: string;
  /** Must answer 200 to a request with Host `caddy.healthHost` before the candidate takes traffic (Caddy checks it too). */
  readyPath: string;
  /** Run once per new image in a one-off container from it, before the swap; empty: none. */
  command: string;
}

export interface ContainerPlan {
  service: Service;
  name: string;
  image: ImagePlan;
  /** `bridge`: on the stack's network with `aliases`; `host`: the host's network. */
  network: "bridge" | "host";
  aliases: string[];
  /** Port the service listens on inside its network namespace. */
  listenPort: number;
  env: Record<string, EnvValue>;
  command?: string[];
  ports: PortBinding[];
  /** `volume` is a named volume, or an absolute host folder (a bind mount, as Docker's `--volume` reads it). */
  volumes: { volume: string; path: string; readOnly?: boolean }[];
  /** Rendered files placed into the container at these paths. */
  files: { path: string; file: RenderedFile }[];
  healthCheck: HealthCheck;
  /** Seconds it gets to stop (its stop signal, then killed) when its container goes. */
  stopGraceSeconds: number;
  /** Path that answers 200 when the service is up (HTTP services only). */
  healthPath?: string;
  /** Backend and frontend go live through a checked candidate instead of a replacement in place. */
  release?: ReleasePlan;
}

export type VolumeKey = "database" | "redis" | "caddyData" | "caddyConfig";

export interface DataDiskPlan {
  /** Lightsail disk name. */
  name: string;
  sizeGb: number;
  /** Where Lightsail attaches it on Xen instances; Nitro instances show it as an NVMe
   *  namespace whose number is not fixed, so the host finds it by `label`. */
  devicePath: string;
  /** Its ext4 filesystem label (at most 16 characters): how host setup finds it. */
  label: string;
  /** Mounted here, by UUID, before Docker starts. */
  mount: string;
}

/**
 * The frontend build's hashed files, kept on the data disk across releases (docs/design.md, Old pages
 * keep working after a frontend deploy): a page loaded before a swap still finds its scripts.
 * The release tool copies each release's files out of its image before it can take traffic,
 * and nginx serves a file the image lacks from the kept ones.
 */
export interface FrontendAssetsPlan {
  /** URL path of the hashed files: Vite's `assets/` folder under the web root. */
  urlPath: string;
  /** nginx's root in the frontend image: the build's index.html and its urlPath folder. */
  webRoot: string;
  /** Where the image holds them (webRoot and urlPath): the release tool copies from here. */
  imageDir: string;
  /** On the data disk: everything kept; incoming copies are unpacked here before they join filesDir. */
  hostDir: string;
  /** On the data disk: every kept file, as under urlPath; mounted read-only into the frontend at keptDir. */
  filesDir: string;
  /** On the data disk: one record per release (its image, when a newer one replaced it, its files). */
  releasesDir: string;
  /** nginx's second root for urlPath, inside the frontend container. */
  keptRoot: string;
  /** Where filesDir appears inside the frontend container (keptRoot and urlPath). */
  keptDir: string;
  /** Hours a replaced release's files stay served; an hourly job and every release prune after it. */
  keepHours: number;
}

export interface Route {
  /** Caddy path matcher. */
  path: string;
  service: "backend" | "frontend";
  /** Loopback addresses Caddy proxies to: the service's two slots, whichever is healthy. */
  upstreams: string[];
}

/**
 * The e-mail alert when the site is down (docs/alerts.md): a Route 53
 * check of the public site, a CloudWatch alarm on it, an SNS topic and its e-mail subscription.
 */
/** The stack's Lightsail bucket for off-host copies of the dumps, and how the host reaches it. */
export interface BucketPlan {
  /** Unique across all of Lightsail: the definition's name, or `namePrefix` and random characters kept in state. */
  name?: string;
  namePrefix?: string;
  bundle: string;
  /** The bucket's region (the stack's). */
  region: string;
  /** The S3 endpoint of that region. */
  endpoint: string;
  /** Object names: `<prefix><UTC yyyymmddThhmmssZ>-<kind>.dump`, so they sort by time. */
  prefix: string;
  /** Copies older than `days` or beyond the newest `count` are deleted; the newest is always kept. */
  keep: { days: number } | { count: number };
  /** rclone's configuration on the host (root only, 0600), written by the program from the access key. */
  credentialsFile: string;
  /** The rclone remote in that file: the bucket and prefix, so the host's tools name no bucket. */
  remote: string;
}

/**
 * Maintenance mode (`npm run ops -- maintenance`, and every restore): while the page exists,
 * Caddy answers every route but `operatorPath` with it, 503 and `Retry-After`. The file is the
 * switch: Caddy looks for it on each request, so turning it on or off needs no reload.
 */
export interface MaintenancePlan {
  /** The folder in Caddy's container, inside its config volume. */
  dir: string;
  /** The same folder on the host, where the page is written. */
  hostDir: string;
  /** The page's file name: its existence turns maintenance mode on. */
  page: string;
  /** Beside the page: since when, by whom and the message (`maintenance status` reads it; Caddy never serves it). */
  info: string;
  /** The `Retry-After` Caddy sends, and the page's own reload interval. */
  retryAfterSeconds: number;
  /** Still proxied in maintenance mode: the backend's ready path, for operators and the site's health check. */
  operatorPath: string;
}

/**
 * A Postgres major upgrade, carried out by the host's upgrade tool (infra/render/postgres-upgrade.ts)
 * before the database container is replaced: the new major's pg_dump dumps the running old server,
 * a one-off server of the new major restores it into the new volume (`volumes.database`), the rows
 * of every table are compared. The old volume is kept.
 */
export interface PostgresUpgradePlan {
  fromMajor: number;
  /** The old major's volume, and its folder on the data disk: never written, kept until an operator removes it. */
  fromVolume: string;
  fromVolumePath: string;
  /** The new major's one-off server while the dump is restored into the new volume's folder, on the stack's network. */
  restoreContainer: string;
  /** The dump the new major's pg_dump takes of the old server: restored, then deleted. */
  dumpFile: string;
  /** Why, as the definition says it. */
  reason: string;
}

/**
 * The host's own report (docs/alerts.md, What the host reports): a writer run by cron, and after
 * each nightly job, checks the disks, the newest bucket copy's age and the last nightly job, and
 * writes one small document that Caddy serves on a secret path, 200 while all is well and 503
 * naming what is not. A Route 53 check reads it: the host needs no AWS credentials.
 */
export interface HostStatusPlan {
  /** The document's folder in Caddy's container, inside its config volume (on the data disk). */
  dir: string;
  /** The same folder on the host, where the writer puts it. */
  hostDir: string;
  /** The document while all is well (Caddy answers 200 with it) and while something is not (503); the writer keeps one of the two. */
  okFile: string;
  alarmFile: string;
  /** The first line of a document while all is well: what Route 53 looks for. Otherwise `status: alarm <condition>...`. */
  okLine: string;
  /** The document's URL path is this prefix and the secret `hostStatusToken`, which Caddy reads from `tokenEnv` at each request. */
  pathPrefix: string;
  /**
   * Each condition's own document (HOST_CONDITIONS, in order) at `<prefix><token>/<name>`: its
   * lines of the whole document and the time, in `okFile` (200) or `alarmFile` (503) beside the
   * whole one. What each condition's alert check reads: `okText` starts its line while it is fine.
   */
  conditions: { name: HostCondition; pathSuffix: string; okText: string; okFile: string; alarmFile: string }[];
  tokenEnv: string;
  /** Minutes between the writer's runs (it runs after each nightly job too). */
  intervalMinutes: number;
  /** A newest bucket copy older than this is an alarm: a day and some slack for the nightly job's own time. */
  copyMaxAgeHours: number;
  /** The backup tool's records, on the data disk: the newest copy's object name, the last nightly job's result. */
  recordsDir: string;
  /** In recordsDir: the object name of the newest copy made (`<UTC time>-<kind>.dump`). */
  lastCopy: string;
  /** In recordsDir: `<UTC time> ok|failed <message>` of the last nightly job. */
  lastNightly: string;
  /** In recordsDir: when the writer first ran here (UTC time): the age of "no copy yet" counts from it. */
  since: string;
}

export interface AlertsPlan {
  /** Where the alarm and the all-clear are sent; AWS asks the address to confirm first. */
  email: string;
  /** The alarm, the topic and the subscription live here: Route 53 publishes its health-check metrics only in us-east-1. */
  region: "us-east-1";
  /** What Route 53's checkers around the world request: `<type>://<fqdn>:<port><path>`, sending Host `fqdn` (and SNI with HTTPS). */
  check: {
    /** The Name tag the Route 53 console lists the check by. */
    name: string;
    /** HTTPS unless the stack serves plain HTTP (`tls.mode: off`). */
    type: "HTTPS" | "HTTP";
    /** The stack's primary domain: one of ALLOWED_HOSTS. */
    fqdn: string;
    port: 443 | 80;
    /** The backend's ready path through Caddy: 200 only when the database and Redis answer. */
    path: string;
    /** Consecutive failed requests before a checker calls the site unhealthy. */
    failureThreshold: number;
    /** Seconds between a checker's requests (30 standard; 10 costs more). */
    requestIntervalSeconds: 10 | 30;
  };
  alarm: {
    name: string;
    /** One data point of Route 53's HealthCheckStatus (Minimum) per period. */
    periodSeconds: number;
    /** This many unhealthy periods in a row fire the alarm. */
    evaluationPeriods: number;
  };
  topicName: string;
  /**
   * A check and an alarm per condition of the host's report (plan.hostStatus.conditions), at its
   * secret path, which says `<condition>: ok` while that condition is fine: the alarm's name
   * says which condition failed.
   */
  hostStatus: {
    condition: HostCondition;
    check: {
      name: string;
      /** The site check's type with string matching: a 2xx or 3xx answer whose first 5,120 bytes hold `searchString`. */
      type: "HTTPS_STR_MATCH" | "HTTP_STR_MATCH";
      fqdn: string;
      port: 443 | 80;
      /** The path is this prefix, the secret token (the program adds it) and this suffix. */
      pathPrefix: string;
      pathSuffix: string;
      searchString: string;
      failureThreshold: number;
      requestIntervalSeconds: 10 | 30;
    };
    alarm: { name: string; periodSeconds: number; evaluationPeriods: number; description: string };
  }[];
}

export interface Plan {
  stack: string;
  environment: Environment["app"]["environment"];
  domains: string[];
  publicUrl: string;
  tls: { mode: TlsMode; email?: string };
  protect: boolean;
  host: {
    /** Lightsail instance and key pair name; the static IP is `<name>-ip`. */
    name: string;
    staticIpName: string;
    region: string;
    availabilityZone: string;
    bundle: string;
    blueprint: string;
    adminCidrs: string[];
    sshUser: string;
    swapGb: number;
    minFreeDiskGb: number;
    /** The daily disk check warns when / or the data disk is at least this percent full. */
    diskWarningPercent: number;
    dns: Environment["host"]["dns"];
    snapshotTimeUtc: string;
    /** The block-storage disk that outlives the instance: every byte of state lives on it. */
    dataDisk: DataDiskPlan;
    /** Deploy state that must survive the instance (the password rotation applied), on the data disk. */
    stateDir: string;
    /**
     * The deploy lock's records (who holds it, why), root only. On the data disk: a hold taken
     * on purpose must outlive a reboot and a new instance.
     */
    lockDir: string;
    /** The Postgres upgrade tool's records, root only, on the data disk: each upgrade done, and the old data directory it kept. */
    postgresUpgradesDir: string;
  };
  /** A records to create (empty unless `host.dns` asks for them). */
  dns: { zone: string; name: string; fqdn: string }[];
  network: string;
  volumes: Record<VolumeKey, string>;
  /** Where each volume keeps its data: a folder on the data disk, bound into the volume. */
  volumePaths: Record<VolumeKey, string>;
  containers: Record<Service, ContainerPlan>;
  /** `major`: the PostgreSQL major of the db container's image; its volume is named for it (infra/model/postgres-major.ts). */
  database: { name: string; user: string; major: number };
  /** The upgrade to `database.major` that the definition declares (postgresUpgrade); absent otherwise. */
  postgresUpgrade?: PostgresUpgradePlan;
  backup: {
    dumpDir: string;
    dumpTimeUtc: string;
    keepDays: number;
    preDeployKeep: number;
    /** Where every dump is copied off the host. */
    bucket: BucketPlan;
  };
  caddy: {
    httpPort: number;
    httpsPort: number;
    bind?: string;
    adminAddress: string;
    routes: Route[];
    /** Host header of Caddy's active health checks. */
    healthHost: string;
    /** Seconds between Caddy's active health checks: how soon it sees a slot come or go. */
    healthIntervalSeconds: number;
    maintenance: MaintenancePlan;
  };
  /** The host's own report of its disks and backups, served by Caddy for the second alert check. */
  hostStatus: HostStatusPlan;
  /** The frontend's hashed files, kept across releases for an old page. */
  frontendAssets: FrontendAssetsPlan;
  /** What nginx in the frontend proxies `/api/` to, by container name. */
  frontendUpstream: { container: string; port: number; host: string; dnsCacheSeconds: number };
  allowedHosts: string[];
  corsOrigins: string[];
  secrets: SecretPlan[];
  /** The e-mail alert when the site is down; absent unless the definition has `alerts`. */
  alerts?: AlertsPlan;
}
