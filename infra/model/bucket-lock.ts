import { z } from "zod";
import { BUCKET_NAME_SUFFIX_LENGTH } from "./derive.js";
import type { BucketPlan } from "./plan.js";
import type { Problem } from "./problems.js";

/**
 * The bucket lock: every off-host copy of a stack's database lives in its Lightsail bucket,
 * which the program protects and keeps on delete. Lightsail names a bucket once, in one
 * region, so a new name or region would replace it; `protect` would stop `pulumi up` there,
 * part way through a deploy. This refuses the edit on the pull request instead. Pure: the
 * deployed bucket is read from a committed plan.json, as the identity lock reads its names.
 */

/** A bucket as the definition fixes it: its written name, or the prefix of a generated one. */
export interface DeployedBucket {
  name?: string | undefined;
  namePrefix?: string | undefined;
  region: string;
}

// Plans committed before buckets existed have no backup.bucket: such a stack gets its first.
const PlanWithBucket = z.object({
  backup: z.object({ bucket: z.object({ name: z.string().optional(), namePrefix: z.string().optional(), region: z.string() }) }),
});

/** The bucket a committed plan.json deployed, or undefined when that plan had none. */
export function deployedBucket(planJson: string): DeployedBucket | undefined {
  let json: unknown;
  try {
    json = JSON.parse(planJson);
  } catch {
    return undefined;
  }
  const parsed = PlanWithBucket.safeParse(json);
  return parsed.success ? parsed.data.backup.bucket : undefined;
}

const described = (bucket: DeployedBucket) =>
  bucket.name !== undefined ? `"${bucket.name}"` : `named by the program ("${bucket.namePrefix ?? ""}" and ${BUCKET_NAME_SUFFIX_LENGTH} random characters)`;

const KEEP = "a Lightsail bucket cannot be renamed or moved, so this would replace it, and the program protects it (it holds every off-host copy of the database): pulumi up would stop part way";

/**
 * Whether `next` names the same bucket. A generated name may be written out (its prefix and
 * random characters, as `pulumi stack output backupBucket` prints it): that is how a stack
 * brought back over its kept bucket finds it (docs/README.md).
 */
function sameBucket(deployed: DeployedBucket, next: BucketPlan): boolean {
  if (deployed.name !== undefined) return next.name === deployed.name;
  if (next.name === undefined) return next.namePrefix === deployed.namePrefix;
  const generated = new RegExp(`^[a-z0-9]{${BUCKET_NAME_SUFFIX_LENGTH}}$`);
  return deployed.namePrefix !== undefined && next.name.startsWith(deployed.namePrefix) && generated.test(next.name.slice(deployed.namePrefix.length));
}

/** Why the next plan's bucket is not the deployed one, at the field that changed it. */
export function bucketLockProblems(stack: string, deployed: DeployedBucket | undefined, next: BucketPlan): Problem[] {
  if (!deployed) return [];
  const problems: Problem[] = [];
  if (!sameBucket(deployed, next)) {
    problems.push({
      path: `${stack}.backup.bucket.name`,
      message: `gives the bucket ${next.name !== undefined ? `the name "${next.name}"` : "a generated name"}, but the deployed stack's bucket is ${described(deployed)}: ${KEEP}. Keep ${deployed.name !== undefined ? `name: "${deployed.name}"` : "the name left out, or write the generated one (pulumi stack output backupBucket)"}`,
    });
  }
  if (deployed.region !== next.region) {
    problems.push({
      path: `${stack}.host.region`,
      message: `is "${next.region}", but the deployed stack's bucket is in "${deployed.region}": ${KEEP}. Keep "${deployed.region}"`,
    });
  }
  return problems;
}
