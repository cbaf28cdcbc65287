import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { catalog } from "../stacks/catalog.js";
import { prepareBuildContext, type BuildContext } from "./build-context.js";
import { SiteAlerts } from "./components/alerts.js";
import { OffHostBackups } from "./components/backups.js";
import { LightsailHost } from "./components/host.js";
import { lightsailHostKeys } from "./components/lightsail-host-keys.js";
import { TimeTrackerApp } from "./components/app.js";
import { StackSecrets } from "./components/secrets.js";
import { CatalogError, planFor } from "./model/catalog.js";
import type { Plan, Service } from "./model/plan.js";
import { renderAll } from "./render/index.js";

const expandHome = (path: string) => (path.startsWith("~/") ? join(homedir(), path.slice(2)) : path);

/** The app version this repository pins (app-version.json): the same for every stack. */
export interface AppVersion {
  /** `<owner>/<repo>` of the app on GitHub. */
  repository: string;
  /** The full 40-hex commit the images are built from; 40 zeros is the placeholder "nothing pinned yet". */
  commit: string;
}

/** app-version.json at the repository root; see docs/promote-staging-to-production.md. */
export const APP_VERSION_FILE = fileURLToPath(new URL("../app-version.json", import.meta.url));

/** Reads and checks the pinned app version; a malformed file is a user's mistake, reported plainly. */
export function readAppVersion(path: string = APP_VERSION_FILE): AppVersion {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new pulumi.RunError(`${path} cannot be read as JSON (${(error as Error).message}): it pins the app version, see docs/promote-staging-to-production.md`);
  }
  const { repository, commit } = (parsed ?? {}) as Record<string, unknown>;
  const problems = [
    ...(typeof repository === "string" && /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository) ? [] : [`"repository" must be "<owner>/<repo>", got ${JSON.stringify(repository)}`]),
    ...(typeof commit === "string" && /^[0-9a-f]{40}$/.test(commit) ? [] : [`"commit" must be a full 40-character lower-case hex commit, got ${JSON.stringify(commit)}`]),
  ];
  if (problems.length > 0) throw new pulumi.RunError(`${path}: ${problems.join("; ")}`);
  return { repository: repository as string, commit: commit as string };
}

function readConfiguredFile(key: string, path: string): string {
  try {
    return readFileSync(expandHome(path), "utf8");
  } catch (error) {
    throw new pulumi.RunError(`timetracker:${key} is ${path}, which cannot be read (${(error as NodeJS.ErrnoException).code})`);
  }
}

/** The stack's Plan; a bad catalog or an unknown stack is a user's mistake, reported plainly. */
function stackPlan(stack: string, definitions: readonly unknown[] = catalog): Plan {
  try {
    return planFor(definitions, stack);
  } catch (error) {
    if (error instanceof CatalogError) {
      throw new pulumi.RunError(`stack "${stack}" cannot be deployed:\n${error.message}`);
    }
    throw error;
  }
}

function buildContexts(plan: Plan, appSource: string, buildDir: string): Partial<Record<Service, BuildContext>> {
  const contexts: Partial<Record<Service, BuildContext>> = {};
  for (const c of Object.values(plan.containers)) {
    if (c.image.source !== "build") continue;
    try {
      contexts[c.service] = prepareBuildContext(join(appSource, c.image.context), c.image.dockerfile, join(buildDir, plan.stack, c.service));
    } catch (error) {
      throw new pulumi.RunError(`images.${c.service}: ${(error as Error).message}`);
    }
  }
  return contexts;
}

/**
 * The whole program for the current stack: the Plan from the typed source, the rendered
 * files, the Lightsail host and the app on it, and the site-down alert when the definition asks
 * for one. Returns the stack outputs. `definitions`
 * is the catalog; only a local rehearsal passes another (its domain made local).
 */
export function timetracker(definitions: readonly unknown[] = catalog) {
  const plan = stackPlan(pulumi.getStack(), definitions);
  const config = new pulumi.Config("timetracker");

  const awsConfig = new pulumi.Config("aws");
  const region = awsConfig.get("region");
  if (region && region !== plan.host.region) {
    throw new pulumi.RunError(
      `aws:region is ${region} in Pulumi.${plan.stack}.yaml, but stacks/${plan.stack}.ts puts the host in ${plan.host.region}: make them agree`,
    );
  }

  const files = renderAll(plan);
  const appVersion = readAppVersion();
  const adopted = Object.fromEntries(
    plan.secrets.flatMap((s) => (s.adoptFrom && s.rotation === 0 ? [[s.adoptFrom, config.requireSecret(s.adoptFrom)]] : [])),
  );

  const host = new LightsailHost("host", {
    plan,
    launchScript: files["launch.sh"],
    hostSetup: files["host-setup.sh"],
    sshPublicKey: readConfiguredFile("sshPublicKeyPath", config.require("sshPublicKeyPath")).trim(),
    reportedHostKeys: (instanceName) => lightsailHostKeys(plan.host.region, instanceName),
  });
  const bucketEndpoint = config.get("bucketEndpoint");
  const backups = new OffHostBackups("backups", {
    stack: plan.stack,
    bucket: plan.backup.bucket,
    instanceName: host.instanceName,
    connection: host.connection,
    hostGeneration: host.generation,
    hostSetup: host.setup,
    ...(bucketEndpoint ? { endpoint: bucketEndpoint } : {}),
  });
  const secrets = new StackSecrets("secrets", { secrets: plan.secrets, adopted });
  const app = new TimeTrackerApp("app", {
    plan,
    files: { Caddyfile: files.Caddyfile, "nginx.conf": files["nginx.conf"] },
    secrets: secrets.values,
    dbPasswordRotation: plan.secrets.find((s) => s.name === "dbPassword")?.rotation ?? 0,
    // Where build contexts are assembled: a rehearsal keeps its own, apart from other runs.
    buildContexts: buildContexts(plan, config.get("appSource") ?? "../TimeTracker", config.get("buildDir") ?? ".build"),
    appCommit: appVersion.commit,
    connection: host.connection,
    provider: host.docker,
    hostGeneration: host.generation,
    hostSetup: host.setup,
    backupsReady: backups.credentials,
  });

  // An e-mail when the site is down, only for a stack whose definition asks for it.
  if (plan.alerts) {
    const awsProfile = awsConfig.get("profile");
    new SiteAlerts("alerts", { stack: plan.stack, alerts: plan.alerts, hostStatusToken: secrets.values.hostStatusToken, ...(awsProfile ? { awsProfile } : {}) });
  }

  return {
    url: plan.publicUrl,
    staticIp: host.staticIp,
    sshUser: plan.host.sshUser,
    /** The instance's pinned ed25519 host key: `npm run rollback` and other host commands check it. */
    hostKey: host.hostKey,
    /** What each released service was deployed with; after `npm run rollback`, the host's `timetracker-release status` tells what runs. */
    releasedImages: app.releasedImages,
    /** The app commit (app-version.json) the built images were made from; each carries it as the label org.opencontainers.image.revision. */
    appCommit: appVersion.commit,
    /** No key path: whoever ran the last `up` (a CI runner) had their own. Add `-i <your key>`. */
    sshCommand: pulumi.interpolate`ssh ${plan.host.sshUser}@${host.staticIp}`,
    containers: app.containerNames.apply(() =>
      Object.values(plan.containers).map((c) => ({
        service: c.service,
        name: c.name,
        published: c.network === "host" ? `host network :${plan.caddy.httpPort}/:${plan.caddy.httpsPort}` : c.ports.map((p) => `${p.ip}:${p.external}->${p.internal}`).join(", ") || "internal",
      })),
    ),
    databasePassword: secrets.values.dbPassword,
    /** The Lightsail bucket with the off-host copies of the dumps (kept and protected). */
    backupBucket: backups.bucketName,
  };
}
