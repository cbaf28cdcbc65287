import { z } from "zod";
import type { StackIdentity } from "./identity.js";
import type { Plan } from "./plan.js";
import { majorOfTag } from "./postgres-major.js";
import type { Problem } from "./problems.js";
import { parseImageRef, type Environment } from "./schema.js";

/**
 * The major lock: a deployed stack's database runs on the major that wrote its data
 * directory, so `validate --base` refuses another major unless the definition declares the
 * upgrade (`postgresUpgrade`) with a `from` that is the deployed database exactly. Pure: what
 * is deployed is read from a committed plan.json, as the identity and bucket locks read theirs.
 */

export type PostgresUpgrade = NonNullable<Environment["postgresUpgrade"]>;
/** Same shape as `postgresUpgrade.from`, so a refusal can print what to paste. */
export type DeployedDatabase = PostgresUpgrade["from"];

/** The major and volume of a plan's database. */
export const databaseOf = (plan: Pick<Plan, "database" | "volumes">): DeployedDatabase => ({ major: plan.database.major, volume: plan.volumes.database });

/** A committed plan of any version: plans from before `database.major` name it in the db image's tag. */
const CommittedPlan = z.object({
  database: z.object({ major: z.number().int().optional() }),
  volumes: z.object({ database: z.string().min(1) }),
  containers: z.object({ db: z.object({ image: z.object({ ref: z.string().optional() }) }) }),
});

/** The deployed database in a committed plan.json's text, or undefined when it cannot be read (the identity lock says why). */
export function deployedDatabase(planJson: string): DeployedDatabase | undefined {
  let json: unknown;
  try {
    json = JSON.parse(planJson);
  } catch {
    return undefined;
  }
  const parsed = CommittedPlan.safeParse(json);
  if (!parsed.success) return undefined;
  const ref = parsed.data.containers.db.image.ref;
  const major = parsed.data.database.major ?? majorOfTag(ref === undefined ? undefined : parseImageRef(ref)?.tag);
  return major === undefined ? undefined : { major, volume: parsed.data.volumes.database };
}

export interface UpgradeCheck {
  problems: Problem[];
  /** What validate prints besides problems: an accepted upgrade's steps, an upgrade left over. */
  notes: string[];
  /**
   * The major changes (accepted or not): the database volume changes with it, and is this
   * check's business, not the identity lock's (which would ask for a dataMove).
   */
  majorChanges: boolean;
}

const HINT = "docs/postgres-upgrade.md";
const pasteable = (deployed: DeployedDatabase) => `postgresUpgrade: { from: ${JSON.stringify(deployed)}, how: "dump-and-restore", reason: "..." }`;

/**
 * Checks the next database of `stack` against the deployed one (undefined: a new stack,
 * nothing is locked). `dataMove`: whether the definition also moves data, which goes in a
 * deploy of its own.
 */
export function checkPostgresUpgrade(stack: string, deployed: DeployedDatabase | undefined, next: DeployedDatabase, upgrade: PostgresUpgrade | undefined, dataMove: boolean): UpgradeCheck {
  const majorChanges = deployed !== undefined && next.major !== deployed.major;
  const none: UpgradeCheck = { problems: [], notes: [], majorChanges };
  if (!deployed) {
    return { ...none, notes: upgrade ? [`${stack}: postgresUpgrade is ignored: the stack has no deployed database yet (postgres ${next.major} starts empty)`] : [] };
  }
  const refuse = (path: string, message: string): UpgradeCheck => ({ ...none, problems: [{ path: `${stack}.${path}`, message }] });
  if (next.major === deployed.major) {
    if (!upgrade) return none;
    const done = upgrade.from.major < deployed.major
      ? `the deployed stack runs postgres ${deployed.major} already: the upgrade from ${upgrade.from.major} is done; remove postgresUpgrade (its old volume stays until removed: ${HINT})`
      : `postgresUpgrade has nothing to upgrade (the definition keeps postgres ${deployed.major}); remove it`;
    return { ...none, notes: [`${stack}: ${done}`] };
  }
  if (next.major < deployed.major) {
    return refuse(
      "images.postgres",
      `is postgres ${next.major}, but the deployed stack runs postgres ${deployed.major}: a data directory of a newer major cannot go back to an older one (pg_dump's output is for the same or a newer server); keep postgres ${deployed.major}`,
    );
  }
  if (!upgrade) {
    return refuse(
      "images.postgres",
      `is postgres ${next.major}, but the deployed stack runs postgres ${deployed.major} on volume ${deployed.volume}: a data directory is tied to the major that wrote it, and postgres ${next.major} does not start on it. To upgrade on purpose, declare ${pasteable(deployed)} (${HINT})`,
    );
  }
  const mismatches = (["major", "volume"] as const).filter((key) => upgrade.from[key] !== deployed[key]);
  if (mismatches.length > 0) {
    return {
      ...none,
      problems: mismatches.map((key) => ({
        path: `${stack}.postgresUpgrade.from.${key}`,
        message: `is ${JSON.stringify(upgrade.from[key])}, but the deployed stack has ${JSON.stringify(deployed[key])}: postgresUpgrade.from must repeat the deployed database exactly, i.e. ${JSON.stringify(deployed)}`,
      })),
    };
  }
  if (dataMove) {
    return refuse("postgresUpgrade", "cannot go with a dataMove in one deploy: move the data first, deploy, then upgrade in a change of its own");
  }
  if (next.volume === deployed.volume) {
    return refuse("volumes.database", `must name another volume than the deployed ${deployed.volume} for postgres ${next.major}: the upgrade restores into a new, empty data directory and keeps the old one`);
  }
  return {
    problems: [],
    majorChanges,
    notes: [
      `${stack}: postgres upgrade accepted (${upgrade.how}): ${upgrade.reason}`,
      `  postgres ${deployed.major} -> ${next.major}; volumes.database: "${deployed.volume}" -> "${next.volume}"`,
      `  what the deploy does (${HINT}): the pre-deploy dump, then postgres ${next.major}'s pg_dump of the running postgres ${deployed.major} (its writes refused from then on),`,
      `  restored into ${next.volume} by a one-off postgres ${next.major}; the rows of every table compared; only then the database container replaced.`,
      `  On a difference the deploy stops and postgres ${deployed.major} serves on, writable again. ${deployed.volume} is kept until you remove it (${HINT}).`,
      "  Remove postgresUpgrade from the definition in a later change (validate reminds you).",
    ],
  };
}

/** The identity the next plan is held to when the major changes: the deployed one, its database volume the next major's. */
export const identityUnderUpgrade = (deployed: StackIdentity, next: DeployedDatabase): StackIdentity => ({
  ...deployed,
  volumes: { ...deployed.volumes, database: next.volume },
});
