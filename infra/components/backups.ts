import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BUCKET_NAME_SUFFIX_LENGTH } from "../model/derive.js";
import type { BucketPlan } from "../model/plan.js";
import { BACKUP_TOOL } from "../render/backup.js";
import { renderBucketCredentials } from "../render/bucket-credentials.js";

export interface OffHostBackupsArgs {
  /** The stack's name, for the tags. */
  stack: string;
  /** `plan.backup.bucket`: the bucket, its retention and where the host keeps its credentials. */
  bucket: BucketPlan;
  /** The instance that is granted access to the bucket (its name: Lightsail grants by name). */
  instanceName: pulumi.Input<string>;
  /** SSH to the host, with its pinned host key. */
  connection: command.types.input.remote.ConnectionArgs;
  /** Changes when the instance is replaced: a new instance is sent the credentials again. */
  hostGeneration: pulumi.Input<string>;
  /** The host setup, which installs the backup tool the credentials are handed to. */
  hostSetup: pulumi.Resource;
  /** An S3-compatible endpoint instead of the region's: only the rehearsal's stand-in bucket sets it. */
  endpoint?: string;
}

/**
 * Where the dumps go off the host: a Lightsail bucket (protected and kept if the stack is
 * destroyed, like the data disk: it is what is left when the host and its disk are gone), an
 * access key for the host's `timetracker-backup` (rclone), and Lightsail's access grant for
 * the instance. The key reaches the host only on stdin, into a root-only file.
 */
export class OffHostBackups extends pulumi.ComponentResource {
  /** The bucket's name (the definition's, or the prefix and random characters kept in state). */
  public readonly bucketName: pulumi.Output<string>;
  /** Completes when the host holds the credentials and has reached the bucket with them. */
  public readonly credentials: command.remote.Command;

  constructor(name: string, args: OffHostBackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("timetracker:index:OffHostBackups", name, {}, opts);
    const { bucket } = args;
    const tags = { project: "timetracker", stack: args.stack };

    // Chosen once, kept in state: nothing in the definition renames (and so replaces) the bucket.
    const bucketName =
      bucket.name ??
      new random.RandomString(
        `${name}-bucket-suffix`,
        { length: BUCKET_NAME_SUFFIX_LENGTH, special: false, upper: false },
        { parent: this },
      ).result.apply((suffix) => `${bucket.namePrefix}${suffix}`);

    const store = new aws.lightsail.Bucket(
      `${name}-bucket`,
      { name: bucketName, bundleId: bucket.bundle, tags },
      { parent: this, protect: true, retainOnDelete: true },
    );
    const key = new aws.lightsail.BucketAccessKey(`${name}-bucket-key`, { bucketName: store.name }, { parent: this });
    // A replaced instance (same name) is a new resource to Lightsail: this grant is replaced with it
    // (its resourceName depends on the instance, and it forces replacement).
    const access = new aws.lightsail.BucketResourceAccess(
      `${name}-bucket-access`,
      { bucketName: store.name, resourceName: args.instanceName },
      { parent: this },
    );

    const config = pulumi
      .all([store.name, key.accessKeyId, key.secretAccessKey])
      .apply(([bucketName, accessKeyId, secretAccessKey]) =>
        renderBucketCredentials(bucket, { bucketName, accessKeyId, secretAccessKey, ...(args.endpoint ? { endpoint: args.endpoint } : {}) }),
      );
    // A new key (stdin changes) updates the file; a new instance (trigger) gets it again.
    this.credentials = new command.remote.Command(
      `${name}-credentials`,
      {
        connection: args.connection,
        create: `sudo -n ${BACKUP_TOOL} set-credentials`,
        stdin: pulumi.secret(config),
        triggers: [args.hostGeneration],
      },
      { parent: this, dependsOn: [args.hostSetup, access] },
    );

    this.bucketName = store.name;
    this.registerOutputs({ bucketName: this.bucketName });
  }
}
