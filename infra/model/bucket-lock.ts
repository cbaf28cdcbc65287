import { z } from "zod";
import { BUCKET_NAME_SUFFIX_LENGTH } from "./derive.js";
import type { BucketPlan } from "./plan.js";
import type { Problem } from "./problems.js";

/**
 * The bucket lock: every off-host copy of a stack's database lives in its Lightsail bucket,
 * and the database itself on its data disk; the program protects both and keeps them on
 * delete. Lightsail names a bucket once, and neither moves to another region, so a new name
 * or region would replace them; `protect` would stop `pulumi up` there, part way through a
 * deploy. This refuses the edit on the pull request instead. Pure: what is deployed is read
 * from a committed plan.json, as the identity lock reads its names.
 */

/** Where a deployed stack keeps its data, as its committed plan fixes it. */
export interface DeployedBucket {
  /** The stack's region (every committed plan has it). */
  region: string;
  /** The written name, or the prefix of a generated one; absent in plans from before buckets. */
  name?: string | undefined;
  namePrefix?: string | undefined;
}

const DeployedPlan = z.object({
  host: z.object({ region: z.string() }),
  backup: z.object({ bucket: z.object({ name: z.string().optional(), namePrefix: z.string().optional() }).optional() }).optional(),
});

/** What a committed plan.json deployed, or undefined when the text is no plan. */
export function deployedBucket(planJson: string): DeployedBucket | undefined {
  let json: unknown;
  try {
    json = JSON.parse(planJson);
  } catch {
    return undefined;
  }
  const parsed = DeployedPlan.safeParse(json);
  if (!parsed.success) return undefined;
  return { region: parsed.data.host.region, ...parsed.data.backup?.bucket };
}

const described = (bucket: DeployedBucket) =>
  bucket.name !== undefined ? `"${bucket.name}"` : `named by the program ("${bucket.namePrefix ?? ""}" and ${BUCKET_NAME_SUFFIX_LENGTH} random characters)`;

const PROTECTED = "the program protects it (it holds every off-host copy of the database): pulumi up would stop part way";

/**
 * Whether `next` names the same bucket. A generated name may be written out (its prefix and
 * random characters, as `pulumi stack output backupBucket` prints it): that is how a stack
 * brought back over its kept bucket finds it (docs/README.md).
 */
function sameBucket(deployed: DeployedBucket, next: BucketPlan): boolean {
  if (deployed.name === undefined && deployed.namePrefix === undefined) return true;
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
      message: `gives the bucket ${next.name !== undefined ? `the name "${next.name}"` : "a generated name"}, but the deployed stack's bucket is ${described(deployed)}: a Lightsail bucket cannot be renamed, so this would replace it, and ${PROTECTED}. Keep ${deployed.name !== undefined ? `name: "${deployed.name}"` : "the name left out, or write the generated one (pulumi stack output backupBucket)"}`,
    });
  }
  if (deployed.region !== next.region) {
    problems.push({
      path: `${stack}.host.region`,
      message: `is "${next.region}", but the deployed stack is in "${deployed.region}": neither its data disk nor its bucket moves to another region, so this would replace both, and the program protects them (they hold the database and its off-host copies): pulumi up would stop part way. Keep "${deployed.region}"`,
    });
  }
  return problems;
}
