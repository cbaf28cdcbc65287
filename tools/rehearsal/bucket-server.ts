import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** The stand-in bucket's store and credentials, as the rehearsal's world records them. */
export interface BucketWorld {
  /** http://<address>:<port>: the program sends it to the host as the bucket's endpoint. */
  endpoint: string;
  /** s3rver's store: one folder per bucket. */
  directory: string;
  /** The one access key the server accepts (JSON: accessKeyId, secretAccessKey), mode 0600. */
  keyFile: string;
}

/** s3rver keeps an object's bytes in a file named after its key with this suffix. */
export const S3RVER_OBJECT = "._S3rver_object";

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
interface S3rverAccount {
  createKeyPair(id: string, secret: string): void;
  revokeAccessKey(id: string): void;
}

// s3rver is CommonJS without types; its account registry is how a key is added.
const require = createRequire(import.meta.url);
const S3rver = require("s3rver") as new (options: Record<string, unknown>) => S3rverInstance;
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account") as { DUMMY_ACCOUNT: S3rverAccount };

/**
 * An S3-compatible server (the npm package s3rver) standing in for the stack's Lightsail
 * bucket. It listens on the outer host's address on the machines' network, the only one a
 * machine can reach, and accepts one access key made up for this rehearsal (the well-known
 * default key is revoked). s3rver checks the key id of a V4 signature, not the secret: the
 * rehearsal proves the secret separately (the host's credentials hold the key the program made).
 */
export async function startBucketServer(address: string, port: number, workdir: string) {
  const directory = join(workdir, "buckets");
  mkdirSync(directory, { recursive: true });
  const key = { accessKeyId: `REHEARSAL${randomBytes(6).toString("hex").toUpperCase()}`, secretAccessKey: randomBytes(24).toString("base64url") };
  DUMMY_ACCOUNT.createKeyPair(key.accessKeyId, key.secretAccessKey);
  DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
  const keyFile = join(workdir, "bucket-key.json");
  writeFileSync(keyFile, JSON.stringify(key), { mode: 0o600 });
  const server = new S3rver({ address, port, directory, silent: true });
  await server.run();
  const world: BucketWorld = { endpoint: `http://${address}:${port}`, directory, keyFile };
  return { world, key, stop: () => server.close() };
}
