import type { BucketPlan } from "../model/plan.js";

/** What the program knows only once the bucket and its access key exist. */
export interface BucketAccess {
  /** The bucket's name (the definition's, or the prefix and the random characters kept in state). */
  bucketName: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * An S3-compatible endpoint instead of the region's (stack config `timetracker:bucketEndpoint`):
   * only the rehearsal's stand-in bucket sets it.
   */
  endpoint?: string;
}

/**
 * rclone's configuration for the host's backup tool: an `s3` remote with the bucket's access
 * key, and an alias (`plan.remote`) for the bucket and the dumps' prefix, so the tool names no
 * bucket. It holds the secret: the program sends it on stdin to `timetracker-backup
 * set-credentials`, which keeps it root-only on the host. Never rendered to a file here.
 */
export function renderBucketCredentials(bucket: BucketPlan, access: BucketAccess): string {
  const s3 = `${bucket.remote}-s3`;
  const custom = access.endpoint !== undefined;
  return [
    `[${s3}]`,
    "type = s3",
    // Any other S3 server takes path-style names; Lightsail's is AWS's S3.
    `provider = ${custom ? "Other" : "AWS"}`,
    `access_key_id = ${access.accessKeyId}`,
    `secret_access_key = ${access.secretAccessKey}`,
    `region = ${bucket.region}`,
    `endpoint = ${access.endpoint ?? bucket.endpoint}`,
    ...(custom ? ["force_path_style = true"] : []),
    // The key may only read and write objects: it cannot create or check buckets.
    "no_check_bucket = true",
    "",
    `[${bucket.remote}]`,
    "type = alias",
    `remote = ${s3}:${access.bucketName}/${bucket.prefix}`,
    "",
  ].join("\n");
}
