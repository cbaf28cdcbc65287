import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ContainerPlan, Plan, RenderedFile, Service, VolumeKey } from "../model/plan.js";
import { renderDbCredentialsScript } from "../render/db-credentials.js";
import { DISK_CHECK } from "../render/host-setup.js";
import { POSTGRES_UPGRADE_TOOL } from "../render/postgres-upgrade.js";
import { RELEASE_TOOL, releaseSpec, type ReleasedService } from "../render/release.js";
import { releaseRemovalCommand } from "../render/release-removal.js";
import { buildInputsHash, type BuildContext } from "../build-context.js";
import { containerArgs, type SecretValues } from "./container.js";

export interface TimeTrackerAppArgs {
  /** The stack's resolved plan: every name, port and route comes from here. */
  plan: Plan;
  /** Rendered Caddyfile and nginx.conf, placed into their containers. */
  files: Record<RenderedFile, string>;
  /** Secret values by name (from `StackSecrets`). */
  secrets: SecretValues;
  /** Database password rotation counter, as planned. */
  dbPasswordRotation: number;
  /** Prepared build contexts for the services the plan builds from source. */
  buildContexts: Partial<Record<Service, BuildContext>>;
  /** The app commit the build contexts were checked out at (app-version.json): each built image carries it as a label. */
  appCommit: string;
  /** SSH connection to the host, for the commands that run there. */
  connection: command.types.input.remote.ConnectionArgs;
  /** Docker provider on the host's daemon. */
  provider: docker.Provider;
  /** The host's generation (`LightsailHost.generation`): a new instance replaces everything on it. */
  hostGeneration: pulumi.Output<string>;
  /** Completes when the host is set up (`LightsailHost.setup`): the commands here need what it installs. */
  hostSetup: pulumi.Resource;
  /** Completes when the host holds the bucket's credentials (`OffHostBackups.credentials`): the pre-deploy dump is copied off the host. */
  backupsReady: pulumi.Resource;
}

/** The OCI annotation key for the source revision an image was built from. */
export const REVISION_LABEL = "org.opencontainers.image.revision";

/** The labels a built image carries: the app commit it was built from. */
const buildLabels = (appCommit: string) => ({ [REVISION_LABEL]: appCommit });

/** The image a service runs: a registry reference, or the build's tag, cut from the hash of every build input. */
function imageRef(c: ContainerPlan, buildContexts: Partial<Record<Service, BuildContext>>, appCommit: string): string {
  if (c.image.source === "registry") return c.image.ref;
  const build = buildContexts[c.service];
  if (!build) throw new pulumi.RunError(`no build context was prepared for ${c.service}`);
  return `${c.image.repository}:${buildInputsHash(build, c.image.args, buildLabels(appCommit)).slice(0, 12)}`;
}

/**
 * The app on one host: network, volumes, images and the five services of the Plan, in
 * dependency order: a dump when the database or the backend changes, database and Redis,
 * the credential check, Caddy in front, then the backend and the frontend, each released
 * through a checked candidate by the host's release tool.
 */
export class TimeTrackerApp extends pulumi.ComponentResource {
  public readonly containerNames: pulumi.Output<Record<Service, string>>;
  /** The image each released service was deployed with (a rollback on the host changes what runs; `timetracker-release status` tells). */
  public readonly releasedImages: pulumi.Output<Record<ReleasedService, string>>;

  constructor(name: string, args: TimeTrackerAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("timetracker:index:TimeTrackerApp", name, {}, opts);
    const { plan } = args;
    const onHost = { parent: this, provider: args.provider };
    // Docker forgets a volume with its instance, but its data is on the data disk: never
    // delete it with the stack. The disk itself is what `protect` guards.
    const stateful = { ...onHost, retainOnDelete: true };
    // Labels and triggers replace on change: carrying the host's generation in them makes
    // every Docker object follow a replaced instance instead of staying "unchanged".
    const hostLabel = { label: "timetracker.host", value: args.hostGeneration };

    const refs = Object.fromEntries(Object.values(plan.containers).map((c) => [c.service, imageRef(c, args.buildContexts, args.appCommit)])) as Record<Service, string>;
    const imageInputs = Object.values(refs);
    // Runs whenever a deploy would pull or build: refuses before the disk fills up.
    const diskCheck = new command.remote.Command(
      `${name}-disk-check`,
      { connection: args.connection, create: `${DISK_CHECK} ${plan.host.minFreeDiskGb}`, triggers: [args.hostGeneration, ...imageInputs] },
      { parent: this, dependsOn: [args.hostSetup] },
    );

    const network = new docker.Network(`${name}-network`, { name: plan.network, driver: "bridge", labels: [hostLabel] }, onHost);
    const volumes = (Object.keys(plan.volumes) as VolumeKey[]).map(
      (key) =>
        new docker.Volume(
          `${name}-volume-${key}`,
          {
            name: plan.volumes[key],
            driver: "local",
            // A folder on the data disk, so the data outlives the instance.
            driverOpts: { type: "none", o: "bind", device: plan.volumePaths[key] },
            labels: [hostLabel],
          },
          stateful,
        ),
    );

    const image = (c: ContainerPlan): docker.RemoteImage => {
      if (c.image.source === "registry") {
        return new docker.RemoteImage(
          `${name}-image-${c.service}`,
          { name: c.image.ref, keepLocally: true, triggers: { host: args.hostGeneration } },
          { ...onHost, dependsOn: [diskCheck] },
        );
      }
      const build = args.buildContexts[c.service];
      if (!build) throw new pulumi.RunError(`no build context was prepared for ${c.service}`);
      return new docker.RemoteImage(
        `${name}-image-${c.service}`,
        {
          name: refs[c.service],
          // A failed build leaves no intermediate containers behind on the host. The label
          // records the app commit in the image (and in every container started from it):
          // `docker inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}'`.
          // `build.label` is the provider's ImageBuildOptions.Labels (kreuzwerker
          // terraform-provider-docker, resource_docker_image_funcs.go); a change replaces the image.
          build: {
            context: build.context,
            dockerfile: "Dockerfile",
            buildArgs: c.image.args,
            forceRemove: true,
            label: buildLabels(args.appCommit),
          },
          triggers: { buildHash: buildInputsHash(build, c.image.args, buildLabels(args.appCommit)), host: args.hostGeneration },
          keepLocally: true,
        },
        { ...onHost, dependsOn: [diskCheck] },
      );
    };

    const container = (c: ContainerPlan, dependsOn: pulumi.Resource[], containerImage = image(c)) =>
      new docker.Container(
        `${name}-${c.service}`,
        containerArgs(c, {
          imageId: containerImage.imageId,
          network: network.name,
          secrets: args.secrets,
          files: args.files,
          stack: plan.stack,
          hostGeneration: args.hostGeneration,
        }),
        // Names are fixed, so the old container must go before its replacement starts.
        { ...onHost, deleteBeforeReplace: true, dependsOn: [network, ...volumes, ...dependsOn] },
      );

    // Before a deploy that changes the database image, the backend image or its release
    // command: the database as it was, on the data disk, where the restore runbook looks.
    const preDeployDump = new command.remote.Command(
      `${name}-predeploy-dump`,
      {
        connection: args.connection,
        create: `sudo -n ${RELEASE_TOOL} dump predeploy`,
        triggers: [refs.db, refs.backend, plan.containers.backend.release?.command ?? ""],
      },
      // After the bucket's credentials, so even the first deploy with them copies its dump off the host.
      { parent: this, dependsOn: [args.hostSetup, args.backupsReady] },
    );

    // A new Postgres major (postgresUpgrade): the host's upgrade tool dumps the running old server
    // with the new major's pg_dump, restores into the new major's volume and compares the rows of
    // every table, all before the database container below is replaced (its name is fixed, so the
    // engine deletes the old one first, and only once this command has succeeded: the container
    // depends on it). A failure stops the deploy with the old major serving, writes accepted again.
    const dbImage = image(plan.containers.db);
    const upgrade = plan.postgresUpgrade
      ? new command.remote.Command(
          `${name}-postgres-upgrade`,
          {
            connection: args.connection,
            create: `sudo -n ${POSTGRES_UPGRADE_TOOL} run`,
            stdin: pulumi.secret(pulumi.interpolate`${args.secrets.dbPassword}\n`),
            // Run again only for another upgrade; the tool says "nothing to do" for one it finished.
            triggers: [plan.postgresUpgrade.fromMajor, plan.postgresUpgrade.fromVolume, plan.database.major, plan.volumes.database],
          },
          // After the pre-deploy dump (the old major's own, copied off the host), with the new image on the host.
          { parent: this, dependsOn: [args.hostSetup, network, dbImage, preDeployDump] },
        )
      : undefined;
    const db = container(plan.containers.db, [preDeployDump, ...(upgrade ? [upgrade] : [])], dbImage);
    const redis = container(plan.containers.redis, []);
    const dbCredentials = new command.remote.Command(
      `${name}-db-credentials`,
      {
        connection: args.connection,
        create: renderDbCredentialsScript(plan, args.dbPasswordRotation),
        stdin: pulumi.secret(pulumi.interpolate`${args.secrets.dbPassword}\n`),
        // A new database container (image or password change) is checked again.
        triggers: [db.id],
      },
      { parent: this, dependsOn: [args.hostSetup, db] },
    );
    // A new version starts beside the live one and takes over only once it is healthy and
    // ready; otherwise the deploy fails and the live version was never touched. The tool
    // is idempotent, so a re-run checks again instead of reporting an old failure as done.
    const release = (c: ContainerPlan, dependsOn: pulumi.Resource[]) => {
      const service = c.service as ReleasedService;
      const secretLines = Object.entries(c.env).flatMap(([key, value]) =>
        typeof value === "string" ? [] : [pulumi.interpolate`${key}=${args.secrets[value.secret]}\n`],
      );
      return new command.remote.Command(
        `${name}-release-${service}`,
        {
          connection: args.connection,
          create: `sudo -n ${RELEASE_TOOL} deploy ${service} ${refs[service]} ${releaseSpec(plan, service)}`,
          // The tool's containers are not Pulumi's: deleting the command removes them, so the
          // network can go after it (on a host replacement, on the old host; on destroy).
          delete: releaseRemovalCommand(plan, service),
          stdin: pulumi.secret(pulumi.all(secretLines).apply((lines) => lines.join(""))),
          triggers: [args.hostGeneration],
        },
        { parent: this, dependsOn: [args.hostSetup, network, image(c), ...dependsOn] },
      );
    };
    // Caddy first: its routes name both slots, so it must know a new slot before the tool
    // drains the old one (a stack deployed before slots existed moves over without a gap).
    const caddy = container(plan.containers.caddy, []);
    const backend = release(plan.containers.backend, [caddy, redis, dbCredentials, preDeployDump]);
    const frontend = release(plan.containers.frontend, [caddy]);

    const names = Object.fromEntries(Object.values(plan.containers).map((c) => [c.service, c.name])) as Record<Service, string>;
    this.containerNames = pulumi.all([db.name, redis.name, backend.stdout, frontend.stdout, caddy.name]).apply(() => names);
    this.releasedImages = pulumi.all([backend.stdout, frontend.stdout]).apply(() => ({ backend: refs.backend, frontend: refs.frontend }));
    this.registerOutputs({ containerNames: this.containerNames, releasedImages: this.releasedImages });
  }
}
