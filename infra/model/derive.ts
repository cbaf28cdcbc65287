import type { AlertsPlan, BucketPlan, ContainerPlan, FrontendAssetsPlan, HealthCheck, HostStatusPlan, ImagePlan, MaintenancePlan, Plan, PortBinding, PostgresUpgradePlan, ReleasePlan, Route, SecretPlan, Service, VolumeKey } from "./plan.js";
import { hostCondition, HOST_CONDITIONS } from "./host-conditions.js";
import { databaseVolumeOf, FIRST_POSTGRES_MAJOR, majorOfTag } from "./postgres-major.js";
import { BLUEPRINT_USER, BUNDLE_MEMORY_GB, bundleSize, parseImageRef, STANDBY_PORT_OFFSET, type AppImage, type ResolvedEnvironment } from "./schema.js";

/** Container prefix of a stack that names none. */
export const defaultContainerPrefix = (stack: string) => `timetracker-${stack}`;
/** Availability zone of a host that names none. */
export const defaultAvailabilityZone = (region: string) => `${region}a`;

/** The Host header every check the stack runs against the backend sends. */
export const HEALTH_HOST = "localhost";
const BACKEND_PORT = 8080;
const FRONTEND_PORT = 80;
const POSTGRES_PORT = 5432;
const REDIS_PORT = 6379;
const LOOPBACK = "127.0.0.1";
/** Where the data disk is mounted on every host. */
export const DATA_MOUNT = "/mnt/timetracker-data";
/** Where Lightsail attaches the data disk. */
const DATA_DISK_PATH = "/dev/xvdf";
/** Every data disk so far was formatted with this label: host setup finds its disk by it. */
const DATA_DISK_LABEL = "timetracker-data";
/** Caddy checks every upstream this often: a new slot takes traffic, an old one leaves, within it. */
const CADDY_HEALTH_INTERVAL_SECONDS = 2;
/** How long nginx keeps a resolved container address: a swapped backend is reached within it. */
const NGINX_DNS_CACHE_SECONDS = 5;
/** Where the frontend images (app-images/frontend/Dockerfile) put the build: nginx's root. */
const FRONTEND_WEB_ROOT = "/usr/share/nginx/html";
/** Vite's folder of hashed build files under the root (its default `build.assetsDir`). */
const FRONTEND_ASSETS_FOLDER = "assets";
/** nginx's second root for the assets inside the frontend container: the kept files. */
const KEPT_ASSETS_ROOT = "/usr/share/nginx/kept";

/**
 * A released service is reached by its container name only: the candidate of a new version
 * joins the network under its own name, and an alias would make it answer before its check.
 */
const RELEASED_ALIASES: string[] = [];

const health = (test: string[], startPeriodSeconds: number): HealthCheck => ({
  test,
  intervalSeconds: 10,
  timeoutSeconds: 5,
  retries: 5,
  startPeriodSeconds,
});

/** A built image's tag is its content hash (filled in by the program): never overwritten, so a rollback finds it. */
const appImage = (image: AppImage, containerName: string): ImagePlan =>
  image.source === "registry" ? image : { ...image, repository: containerName };

/** The two loopback ports an app service alternates between, both reserved for it. */
const slotPorts = (internal: number, port: number, origin: string): PortBinding[] =>
  [port, port + STANDBY_PORT_OFFSET].map((external) => ({ internal, external, ip: LOOPBACK, origin }));

const release = (name: string, ports: PortBinding[], readyPath: string, command: string): ReleasePlan => ({
  slots: [ports[0]?.external ?? 0, ports[1]?.external ?? 0],
  candidateName: `${name}-candidate`,
  previousName: `${name}-previous`,
  readyPath,
  command,
});

const unique = (values: string[]) => [...new Set(values)];

/**
 * Seconds a service gets to stop before it is killed, when its container is removed (the
 * Docker provider's destroy_grace_seconds, default 0: killed) or the release tool retires
 * it. Postgres needs a checkpoint to shut down without crash recovery at the next start.
 */
export const STOP_GRACE_SECONDS: Record<Service, number> = { db: 60, redis: 30, caddy: 30, backend: 30, frontend: 30 };

type Names = { name: (service: Service) => string; volumes: Record<VolumeKey, string> };

function dbContainer(env: ResolvedEnvironment, { name, volumes }: Names): ContainerPlan {
  return {
    service: "db",
    stopGraceSeconds: STOP_GRACE_SECONDS.db,
    name: name("db"),
    image: { source: "registry", ref: env.images.postgres },
    network: "bridge",
    aliases: ["db"],
    listenPort: POSTGRES_PORT,
    env: {
      POSTGRES_USER: env.database.user,
      POSTGRES_PASSWORD: { secret: "dbPassword" },
      POSTGRES_DB: env.database.name,
    },
    ports: [],
    volumes: [{ volume: volumes.database, path: "/var/lib/postgresql/data" }],
    files: [],
    // Over TCP, as the backend connects; the socket answers before TCP is up.
    healthCheck: health(["CMD-SHELL", 'pg_isready -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'], 20),
  };
}

function redisContainer(env: ResolvedEnvironment, { name, volumes }: Names): ContainerPlan {
  return {
    service: "redis",
    stopGraceSeconds: STOP_GRACE_SECONDS.redis,
    name: name("redis"),
    image: { source: "registry", ref: env.images.redis },
    network: "bridge",
    aliases: ["redis"],
    listenPort: REDIS_PORT,
    // The password comes from the environment so it never appears in the command line.
    command: ["sh", "-c", 'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes --dir /data'],
    env: { REDIS_PASSWORD: { secret: "redisPassword" }, REDISCLI_AUTH: { secret: "redisPassword" } },
    ports: [],
    volumes: [{ volume: volumes.redis, path: "/data" }],
    files: [],
    // `redis-cli ping` exits 0 even on NOAUTH: only PONG means healthy.
    healthCheck: health(["CMD-SHELL", "redis-cli ping | grep -q PONG"], 10),
  };
}

function backendContainer(
  env: ResolvedEnvironment,
  { name }: Names,
  deps: { db: ContainerPlan; redis: ContainerPlan; allowedHosts: string[]; corsOrigins: string[] },
): ContainerPlan {
  const ports = slotPorts(BACKEND_PORT, env.ports.backend, "ports.backend");
  return {
    service: "backend",
    stopGraceSeconds: STOP_GRACE_SECONDS.backend,
    name: name("backend"),
    image: appImage(env.images.backend, name("backend")),
    network: "bridge",
    aliases: RELEASED_ALIASES,
    listenPort: BACKEND_PORT,
    env: {
      ...env.app.extraEnv,
      ENVIRONMENT: env.app.environment,
      DEBUG: String(env.app.debug),
      DB_HOST: deps.db.name,
      DB_PORT: String(POSTGRES_PORT),
      DB_NAME: env.database.name,
      DB_USER: env.database.user,
      DB_PASSWORD: { secret: "dbPassword" },
      REDIS_HOST: deps.redis.name,
      REDIS_PORT: String(REDIS_PORT),
      REDIS_PASSWORD: { secret: "redisPassword" },
      SECRET_KEY: { secret: "appSecretKey" },
      ALLOWED_HOSTS: JSON.stringify(deps.allowedHosts),
      CORS_ORIGINS: JSON.stringify(deps.corsOrigins),
    },
    ports,
    volumes: [],
    files: [],
    healthCheck: {
      ...health(["CMD", "curl", "-fsS", "-o", "/dev/null", "-H", `Host: ${HEALTH_HOST}`, `http://127.0.0.1:${BACKEND_PORT}/health`], 40),
      intervalSeconds: env.app.healthCheckIntervalSeconds,
    },
    healthPath: "/health",
    // Ready means the database and Redis answer, not only the process.
    release: release(name("backend"), ports, "/api/health", env.app.releaseCommand),
  };
}

/** The frontend's hashed files kept on the data disk, folders named once here. */
function frontendAssetsPlan(env: ResolvedEnvironment): FrontendAssetsPlan {
  const hostDir = `${DATA_MOUNT}/frontend-assets`;
  return {
    urlPath: `/${FRONTEND_ASSETS_FOLDER}/`,
    webRoot: FRONTEND_WEB_ROOT,
    imageDir: `${FRONTEND_WEB_ROOT}/${FRONTEND_ASSETS_FOLDER}`,
    hostDir,
    filesDir: `${hostDir}/${FRONTEND_ASSETS_FOLDER}`,
    releasesDir: `${hostDir}/releases`,
    keptRoot: KEPT_ASSETS_ROOT,
    keptDir: `${KEPT_ASSETS_ROOT}/${FRONTEND_ASSETS_FOLDER}`,
    keepHours: env.app.frontend.keepAssetsHours,
  };
}

function frontendContainer(env: ResolvedEnvironment, { name }: Names, assets: FrontendAssetsPlan): ContainerPlan {
  const ports = slotPorts(FRONTEND_PORT, env.ports.frontend, "ports.frontend");
  return {
    service: "frontend",
    stopGraceSeconds: STOP_GRACE_SECONDS.frontend,
    name: name("frontend"),
    image: appImage(env.images.frontend, name("frontend")),
    network: "bridge",
    aliases: RELEASED_ALIASES,
    listenPort: FRONTEND_PORT,
    env: {},
    ports,
    // Read-only: only the release tool adds to or prunes the kept files.
    volumes: [{ volume: assets.filesDir, path: assets.keptDir, readOnly: true }],
    files: [{ path: "/etc/nginx/nginx.conf", file: "nginx.conf" }],
    healthCheck: health(["CMD-SHELL", `wget -q -O /dev/null http://127.0.0.1:${FRONTEND_PORT}/healthz || exit 1`], 10),
    healthPath: "/healthz",
    release: release(name("frontend"), ports, "/healthz", ""),
  };
}

const CADDY_ADMIN_ADDRESS = "localhost:2019";
/** Caddy's environment variable holding the secret end of the host status's path (secret hostStatusToken). */
const HOST_STATUS_TOKEN_ENV = "TIMETRACKER_STATUS_TOKEN";

function caddyContainer(env: ResolvedEnvironment, { name, volumes }: Names): ContainerPlan {
  return {
    service: "caddy",
    stopGraceSeconds: STOP_GRACE_SECONDS.caddy,
    name: name("caddy"),
    image: { source: "registry", ref: env.images.caddy },
    // On the host network so it reaches the app's loopback ports and owns 80/443.
    network: "host",
    aliases: [],
    listenPort: env.caddy.httpsPort,
    // Read at each request (a runtime placeholder): the path is never in the Caddyfile or Caddy's saved config.
    env: { [HOST_STATUS_TOKEN_ENV]: { secret: "hostStatusToken" } },
    ports: [],
    volumes: [
      { volume: volumes.caddyData, path: "/data" },
      { volume: volumes.caddyConfig, path: "/config" },
    ],
    files: [{ path: "/etc/caddy/Caddyfile", file: "Caddyfile" }],
    healthCheck: health(["CMD-SHELL", `wget -q -O /dev/null http://${CADDY_ADMIN_ADDRESS}/config/ || exit 1`], 5),
  };
}

/** Seconds a client in maintenance mode is told to wait (Retry-After), and the page's reload interval. */
const MAINTENANCE_RETRY_AFTER_SECONDS = 60;

/**
 * Maintenance mode's folder is in Caddy's config volume: Caddy reads the page from it, the host
 * writes it there, and it is on the data disk, so a new instance keeps the mode as it was.
 */
function maintenancePlan(caddy: ContainerPlan, configVolume: string, configHostPath: string, backend: ContainerPlan): MaintenancePlan {
  const mount = caddy.volumes.find((v) => v.volume === configVolume);
  if (!mount) throw new Error(`the Caddy container has no volume ${configVolume}`);
  return {
    dir: `${mount.path}/maintenance`,
    hostDir: `${configHostPath}/maintenance`,
    page: "index.html",
    info: "info",
    retryAfterSeconds: MAINTENANCE_RETRY_AFTER_SECONDS,
    operatorPath: backend.release?.readyPath ?? backend.healthPath ?? "/api/health",
  };
}

/** The nightly job runs once a day: its copy may be a day old, plus the time the next one takes (it waits for a deploy's lock). */
const COPY_MAX_AGE_HOURS = 26;

/**
 * The host's report: its document in Caddy's config volume beside the maintenance page (on the
 * data disk, so a new instance serves the last one until its writer runs), the backup tool's
 * records with the deploy state.
 */
function hostStatusPlan(caddy: ContainerPlan, configVolume: string, configHostPath: string): HostStatusPlan {
  const mount = caddy.volumes.find((v) => v.volume === configVolume);
  if (!mount) throw new Error(`the Caddy container has no volume ${configVolume}`);
  return {
    dir: `${mount.path}/host-status`,
    hostDir: `${configHostPath}/host-status`,
    okFile: "ok.txt",
    alarmFile: "alarm.txt",
    okLine: "status: ok",
    pathPrefix: "/host-status/",
    conditions: HOST_CONDITIONS.map(({ name }) => ({ name, pathSuffix: `/${name}`, okText: `${name}: ok`, okFile: `${name}.ok.txt`, alarmFile: `${name}.alarm.txt` })),
    tokenEnv: HOST_STATUS_TOKEN_ENV,
    intervalMinutes: 5,
    copyMaxAgeHours: COPY_MAX_AGE_HOURS,
    recordsDir: `${DATA_MOUNT}/state/host-status`,
    lastCopy: "last-copy",
    lastNightly: "last-nightly",
    since: "since",
  };
}

/** Caddy's routes: each to both slots of its service, so a swap needs no change to Caddy. */
function routes(backend: ContainerPlan, frontend: ContainerPlan): Route[] {
  const upstreams = (c: ContainerPlan) => c.ports.map((p) => `${p.ip}:${p.external}`);
  return [
    { path: "/api/ws/*", service: "backend", upstreams: upstreams(backend) },
    { path: "/api/*", service: "backend", upstreams: upstreams(backend) },
    { path: "/*", service: "frontend", upstreams: upstreams(frontend) },
  ];
}

function secretPlans(env: ResolvedEnvironment): SecretPlan[] {
  return [
    {
      name: "dbPassword",
      length: 32,
      rotation: env.database.password.rotation,
      ...(env.database.password.adoptFrom ? { adoptFrom: env.database.password.adoptFrom } : {}),
    },
    { name: "redisPassword", length: 32, rotation: env.secrets.redisPasswordRotation },
    { name: "appSecretKey", length: 64, rotation: env.secrets.appSecretKeyRotation },
    // Only makes the host status's path unguessable: `pulumi up --replace` on its generator makes a new one.
    { name: "hostStatusToken", length: 32, rotation: 0 },
  ];
}

/** Route 53 publishes health-check metrics only in this region: the alarm, and the topic it notifies, live there. */
const ROUTE53_METRICS_REGION = "us-east-1";

/**
 * The e-mail alert of a stack with `alerts`: Route 53 requests the backend's ready path through
 * Caddy at the primary domain (one of ALLOWED_HOSTS), over HTTPS unless the stack serves plain
 * HTTP (an HTTP check of an HTTPS site would only see Caddy's redirect, which Route 53 counts
 * as healthy). Unhealthy after 3 failed requests 30 s apart (about 90 s), the alarm fires after
 * 2 unhealthy minutes in a row: one bad minute (a checker's hiccup) alerts nobody, and an
 * outage is reported within about 3 to 5 minutes.
 */
function alertsPlan(env: ResolvedEnvironment, backend: ContainerPlan, hostStatus: HostStatusPlan): AlertsPlan | undefined {
  if (!env.alerts) return undefined;
  const https = env.tls.mode !== "off";
  const port = https ? 443 : 80;
  return {
    email: env.alerts.email,
    region: ROUTE53_METRICS_REGION,
    check: {
      name: `timetracker-${env.name}-site`,
      type: https ? "HTTPS" : "HTTP",
      fqdn: env.domain,
      port,
      path: backend.release?.readyPath ?? "/api/health",
      failureThreshold: 3,
      requestIntervalSeconds: 30,
    },
    alarm: { name: `timetracker-${env.name}-site-down`, periodSeconds: 60, evaluationPeriods: 2 },
    topicName: `timetracker-${env.name}-alerts`,
    // The same checkers and timing on each condition of the host's report; the alarm's name is the e-mail's subject.
    hostStatus: hostStatus.conditions.map(({ name, pathSuffix, okText }) => ({
      condition: name,
      check: {
        name: `timetracker-${env.name}-host-${name}`,
        type: https ? "HTTPS_STR_MATCH" : "HTTP_STR_MATCH",
        fqdn: env.domain,
        port,
        pathPrefix: hostStatus.pathPrefix,
        pathSuffix,
        searchString: okText,
        failureThreshold: 3,
        requestIntervalSeconds: 30,
      },
      alarm: {
        name: `timetracker-${env.name}-${hostCondition(name).alarm}`,
        periodSeconds: 60,
        evaluationPeriods: 2,
        description: `${hostCondition(name).description}: npm run ops -- --stack ${env.name} health`,
      },
    })),
  };
}

/** Where the program writes the bucket's rclone configuration on the host (root only). */
export const BUCKET_CREDENTIALS_FILE = "/etc/timetracker/backup-bucket.conf";
/** Characters the program appends (random, kept in state) to a bucket name the definition does not give. */
export const BUCKET_NAME_SUFFIX_LENGTH = 8;
const BUCKET_NAME_MAX = 54;

/**
 * The off-host copies' bucket. Lightsail bucket names are unique across every account, so
 * a name the definition does not give is `timetracker-<stack>-backups-` and 8 random
 * characters chosen once and kept in the stack's state: a later edit (a new domain, say)
 * never renames, and so never replaces, the bucket.
 */
function bucketPlan(env: ResolvedEnvironment, region: string): BucketPlan {
  const bucket = env.backup.bucket;
  return {
    ...(bucket.name
      ? { name: bucket.name }
      : { namePrefix: `timetracker-${env.name}-backups-`.slice(0, BUCKET_NAME_MAX - BUCKET_NAME_SUFFIX_LENGTH) }),
    bundle: bucket.bundle,
    region,
    endpoint: `https://s3.${region}.amazonaws.com`,
    prefix: "dumps/",
    keep: bucket.keepCount !== undefined ? { count: bucket.keepCount } : { days: bucket.keepDays ?? 30 },
    credentialsFile: BUCKET_CREDENTIALS_FILE,
    remote: "backups",
  };
}

/** Where a volume keeps its data: a folder on the data disk, bound into the volume. */
const volumePath = (volume: string) => `${DATA_MOUNT}/volumes/${volume}`;

/** The upgrade the definition declares, every name of it computed here. */
function postgresUpgradePlan(upgrade: NonNullable<ResolvedEnvironment["postgresUpgrade"]>, db: ContainerPlan, dumpDir: string): PostgresUpgradePlan {
  return {
    fromMajor: upgrade.from.major,
    fromVolume: upgrade.from.volume,
    fromVolumePath: volumePath(upgrade.from.volume),
    restoreContainer: `${db.name}-upgrade`,
    dumpFile: `${dumpDir}/upgrade/pg${upgrade.from.major}.dump`,
    reason: upgrade.reason,
  };
}

/** Resolves one environment into its Plan. Pure: same input, same Plan. */
export function derive(env: ResolvedEnvironment): Plan {
  const prefix = env.containerPrefix ?? defaultContainerPrefix(env.name);
  const name = (service: Service) => `${prefix}-${service}`;
  const domains = unique([env.domain, ...env.extraDomains]);
  const scheme = env.tls.mode === "off" ? "http" : "https";
  const dumpDir = `${DATA_MOUNT}/dumps`;
  const postgresMajor = majorOfTag(parseImageRef(env.images.postgres)?.tag) ?? FIRST_POSTGRES_MAJOR;
  const volumes: Record<VolumeKey, string> = {
    database: databaseVolumeOf(env.volumes.database ?? `${prefix}-db-data`, postgresMajor),
    redis: env.volumes.redis ?? `${prefix}-redis-data`,
    caddyData: env.volumes.caddyData ?? `${prefix}-caddy-data`,
    caddyConfig: env.volumes.caddyConfig ?? `${prefix}-caddy-config`,
  };
  const volumePaths = Object.fromEntries(Object.entries(volumes).map(([key, volume]) => [key, volumePath(volume)])) as Record<VolumeKey, string>;
  const names: Names = { name, volumes };

  const allowedHosts = unique([...domains, HEALTH_HOST, LOOPBACK, name("backend")]);
  const corsOrigins = domains.map((domain) => `${scheme}://${domain}`);
  const db = dbContainer(env, names);
  const redis = redisContainer(env, names);
  const backend = backendContainer(env, names, { db, redis, allowedHosts, corsOrigins });
  const frontendAssets = frontendAssetsPlan(env);
  const frontend = frontendContainer(env, names, frontendAssets);
  const caddy = caddyContainer(env, names);
  const hostStatus = hostStatusPlan(caddy, volumes.caddyConfig, volumePaths.caddyConfig);
  const alerts = alertsPlan(env, backend, hostStatus);

  const region = env.host.region;
  // One zone holds every domain: by default the primary domain's parent (or itself when it is an apex).
  const dnsZone = env.host.dnsZone ?? (env.domain.split(".").length > 2 ? env.domain.slice(env.domain.indexOf(".") + 1) : env.domain);
  return {
    stack: env.name,
    environment: env.app.environment,
    domains,
    publicUrl: `${scheme}://${env.domain}`,
    tls: { mode: env.tls.mode, ...(env.tls.mode === "acme" && env.tls.email ? { email: env.tls.email } : {}) },
    protect: env.protect ?? env.app.environment === "production",
    host: {
      name: `timetracker-${env.name}`,
      staticIpName: `timetracker-${env.name}-ip`,
      region,
      availabilityZone: env.host.availabilityZone ?? defaultAvailabilityZone(region),
      bundle: env.host.bundle,
      blueprint: env.host.blueprint,
      adminCidrs: env.host.adminCidrs,
      sshUser: env.host.sshUser ?? BLUEPRINT_USER[env.host.blueprint],
      swapGb: (BUNDLE_MEMORY_GB[bundleSize(env.host.bundle)] ?? 0) < 2 ? 2 : 0,
      minFreeDiskGb: env.host.minFreeDiskGb,
      diskWarningPercent: env.host.diskWarningPercent,
      dns: env.host.dns,
      snapshotTimeUtc: env.backup.snapshotTimeUtc,
      dataDisk: { name: `timetracker-${env.name}-data`, sizeGb: env.host.dataDiskGb, devicePath: DATA_DISK_PATH, label: DATA_DISK_LABEL, mount: DATA_MOUNT },
      stateDir: `${DATA_MOUNT}/state`,
      lockDir: `${DATA_MOUNT}/state/deploy-lock`,
      postgresUpgradesDir: `${DATA_MOUNT}/state/postgres-upgrades`,
    },
    dns: env.host.dns === "none" ? [] : domains.map((fqdn) => ({ zone: dnsZone, name: fqdn === dnsZone ? "" : fqdn.slice(0, -(dnsZone.length + 1)), fqdn })),
    network: `${prefix}-net`,
    volumes,
    volumePaths,
    containers: { db, redis, backend, frontend, caddy },
    database: { name: env.database.name, user: env.database.user, major: postgresMajor },
    ...(env.postgresUpgrade ? { postgresUpgrade: postgresUpgradePlan(env.postgresUpgrade, db, dumpDir) } : {}),
    backup: {
      dumpDir,
      dumpTimeUtc: env.backup.databaseDumpTimeUtc,
      keepDays: env.backup.databaseDumpKeepDays,
      preDeployKeep: env.backup.preDeployDumpKeep,
      bucket: bucketPlan(env, region),
    },
    caddy: {
      httpPort: env.caddy.httpPort,
      httpsPort: env.caddy.httpsPort,
      ...(env.caddy.bind ? { bind: env.caddy.bind } : {}),
      adminAddress: CADDY_ADMIN_ADDRESS,
      routes: routes(backend, frontend),
      healthHost: HEALTH_HOST,
      healthIntervalSeconds: CADDY_HEALTH_INTERVAL_SECONDS,
      maintenance: maintenancePlan(caddy, volumes.caddyConfig, volumePaths.caddyConfig, backend),
    },
    hostStatus,
    frontendAssets,
    frontendUpstream: { container: backend.name, port: backend.listenPort, host: backend.name, dnsCacheSeconds: NGINX_DNS_CACHE_SECONDS },
    allowedHosts,
    corsOrigins,
    secrets: secretPlans(env),
    ...(alerts ? { alerts } : {}),
  };
}
