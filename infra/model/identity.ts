import { z } from "zod";
import type { Problem } from "./problems.js";
import type { Environment } from "./schema.js";

/**
 * Identity lock: the names that tie a deployed stack to its data. Changing one of them on
 * a deployed stack orphans the data (a new, empty volume beside the old one) or is refused
 * on the host (POSTGRES_* apply only to an empty data directory). The deployed identity is
 * read from the committed `rendered/<stack>/plan.json` of a base ref, so a pull request is
 * refused even when its author regenerated rendered/. Pure: git is the CLI's business.
 */

export type DataMove = NonNullable<Environment["dataMove"]>;
/** Same shape as `dataMove.from`, so the refusal can print what to paste. */
export type StackIdentity = DataMove["from"];

/** The part of a Plan the identity is read from: all an older committed plan.json must have. */
export interface IdentitySource {
  containers: { db: { name: string } };
  database: { name: string; user: string };
  volumes: StackIdentity["volumes"];
  secrets: readonly { name: string; adoptFrom?: string | undefined }[];
}

/** The container prefix a plan used: containers are named `<prefix>-<service>`. */
const prefixOf = (plan: IdentitySource) => plan.containers.db.name.replace(/-db$/, "");

export function identityOf(plan: IdentitySource): StackIdentity {
  const adoptFrom = plan.secrets.find((s) => s.name === "dbPassword")?.adoptFrom;
  return {
    containerPrefix: prefixOf(plan),
    database: { name: plan.database.name, user: plan.database.user, password: adoptFrom ? { adoptFrom } : {} },
    // Only the four names the identity knows: a later plan may add volumes of its own.
    volumes: {
      database: plan.volumes.database,
      redis: plan.volumes.redis,
      caddyData: plan.volumes.caddyData,
      caddyConfig: plan.volumes.caddyConfig,
    },
  };
}

const name = z.string().min(1);
/** What a committed plan.json of any version must hold for its identity to be read. */
const IdentitySourceSchema = z.object({
  containers: z.object({ db: z.object({ name }) }),
  database: z.object({ name, user: name }),
  volumes: z.object({ database: name, redis: name, caddyData: name, caddyConfig: name }),
  secrets: z.array(z.object({ name, adoptFrom: name.optional() })),
});

/** The identity in a committed plan.json's text, or why it cannot be read. */
export function deployedIdentity(planJson: string): { ok: true; identity: StackIdentity } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(planJson);
  } catch (error) {
    return { ok: false, message: `is not valid JSON (${(error as Error).message.split("\n")[0]})` };
  }
  const parsed = IdentitySourceSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, message: `has no ${issue?.path.join(".") ?? "plan"} (${issue?.message ?? "not a plan"})` };
  }
  return { ok: true, identity: identityOf(parsed.data) };
}

type Value = string | undefined;

interface Field {
  /** Path in the definition (and in `dataMove.from`). */
  path: string;
  get: (identity: StackIdentity) => Value;
  /** Why changing it loses or strands data, with the deployed identity at hand. */
  why: (deployed: StackIdentity) => string;
  /** The database volume was initialised with this value: it cannot change in place. */
  initialisesDatabase?: boolean;
}

const initialised = (what: string) => (d: StackIdentity) =>
  `the database volume ${d.volumes.database} was initialised with this ${what}, and POSTGRES_* apply only to an empty data directory: the deploy would be refused on the host, or would need a new, empty volume`;

const volumeField = (key: keyof StackIdentity["volumes"], holds: string): Field => ({
  path: `volumes.${key}`,
  get: (i) => i.volumes[key],
  why: (d) => `it names the volume that holds ${holds}; a new name starts an empty volume and leaves ${d.volumes[key]} behind`,
});

/** Every identity field, in the order problems are reported. */
export const IDENTITY_FIELDS: readonly Field[] = [
  { path: "database.user", get: (i) => i.database.user, why: initialised("role"), initialisesDatabase: true },
  { path: "database.name", get: (i) => i.database.name, why: initialised("database name"), initialisesDatabase: true },
  {
    path: "database.password.adoptFrom",
    get: (i) => i.database.password.adoptFrom,
    why: (d) =>
      `it names the stack secret holding the password the database in ${d.volumes.database} already has; another key (or none) gives the backend a password that database does not accept. To change the password, bump database.password.rotation and keep this key`,
    initialisesDatabase: true,
  },
  {
    path: "containerPrefix",
    get: (i) => i.containerPrefix,
    why: () => "it names the running containers and every volume the definition does not name; a new prefix starts new containers on new, empty volumes",
  },
  volumeField("database", "the database"),
  volumeField("redis", "Redis's data"),
  volumeField("caddyData", "Caddy's certificates (re-issuing them all hits Let's Encrypt's rate limit)"),
  volumeField("caddyConfig", "Caddy's configuration"),
];

const show = (value: Value) => (value === undefined ? "(none)" : `"${value}"`);

export interface IdentityChange {
  path: string;
  from: Value;
  to: Value;
}

/** The identity fields whose value differs between two identities. */
export function identityChanges(before: StackIdentity, after: StackIdentity): IdentityChange[] {
  return IDENTITY_FIELDS.filter((f) => f.get(before) !== f.get(after)).map((f) => ({ path: f.path, from: f.get(before), to: f.get(after) }));
}

export interface IdentityCheck {
  problems: Problem[];
  /** What validate prints besides problems: an accepted move's steps, a stale dataMove. */
  notes: string[];
}

const MOVE_HINT = "to move the data on purpose, declare it in dataMove (docs/move-data.md)";

/**
 * Checks the next identity of `stack` against the deployed one (undefined: the stack is
 * new, nothing is locked). A change is accepted only through a `dataMove` whose `from` is
 * the deployed identity exactly.
 */
export function checkIdentity(stack: string, deployed: StackIdentity | undefined, next: StackIdentity, dataMove?: DataMove): IdentityCheck {
  if (!deployed) {
    return { problems: [], notes: dataMove ? [`${stack}: dataMove is ignored: the stack has no deployed identity yet`] : [] };
  }
  const changes = identityChanges(deployed, next);
  const field = (path: string) => IDENTITY_FIELDS.find((f) => f.path === path)!;

  if (!dataMove) {
    const problems = changes.map((c) => ({
      path: `${stack}.${c.path}`,
      message: `is ${show(c.to)}, but the deployed stack has ${show(c.from)}: ${field(c.path).why(deployed)}. Locked once deployed; ${MOVE_HINT}`,
    }));
    return { problems, notes: [] };
  }

  // `from` names what the author believes is deployed: any difference means the move was
  // written against another state (stale, or already done) and must not be trusted.
  const fromMismatches = identityChanges(dataMove.from, deployed);
  if (changes.length === 0) {
    const notes =
      fromMismatches.length === 0
        ? [`${stack}: dataMove has nothing to move (the definition keeps the deployed identity); remove it`]
        : [`${stack}: dataMove describes a move that is not pending (its from is not the deployed identity, and nothing changes); remove it`];
    return { problems: [], notes };
  }
  if (fromMismatches.length > 0) {
    const problems: Problem[] = fromMismatches.map((m) => ({
      path: `${stack}.dataMove.from.${m.path}`,
      message: `is ${show(m.from)}, but the deployed stack has ${show(m.to)}: dataMove.from must repeat the deployed identity exactly, i.e. ${JSON.stringify(deployed)}`,
    }));
    problems.push(
      ...changes.map((c) => ({
        path: `${stack}.${c.path}`,
        message: `is ${show(c.to)}, but the deployed stack has ${show(c.from)}; the dataMove does not apply because its from is not the deployed identity`,
      })),
    );
    return { problems, notes: [] };
  }

  // A role, database or password cannot change inside an initialised data directory.
  const databaseReinitialised = changes.filter((c) => field(c.path).initialisesDatabase);
  if (databaseReinitialised.length > 0 && next.volumes.database === deployed.volumes.database) {
    return {
      problems: [
        {
          path: `${stack}.volumes.database`,
          message: `must name a new volume when dataMove changes ${databaseReinitialised.map((c) => c.path).join(" and ")}: ${deployed.volumes.database} was initialised for role "${deployed.database.user}" and database "${deployed.database.name}", and POSTGRES_* apply only to an empty data directory`,
        },
      ],
      notes: [],
    };
  }
  return { problems: [], notes: moveSteps(stack, deployed, next, dataMove, changes) };
}

/** The identity problems of `stack` (see checkIdentity). */
export const identityProblems = (stack: string, deployed: StackIdentity | undefined, next: StackIdentity, dataMove?: DataMove): Problem[] =>
  checkIdentity(stack, deployed, next, dataMove).problems;

/** What the operator must do for an accepted move, with the stack's own names. */
function moveSteps(stack: string, deployed: StackIdentity, next: StackIdentity, move: DataMove, changes: IdentityChange[]): string[] {
  const volumeKeys = (Object.keys(next.volumes) as (keyof StackIdentity["volumes"])[]).filter((k) => next.volumes[k] !== deployed.volumes[k]);
  const newVolumes = volumeKeys.map((k) => next.volumes[k]).join(", ");
  const oldVolumes = volumeKeys.map((k) => deployed.volumes[k]).join(", ");
  const dbMoves = next.volumes.database !== deployed.volumes.database;
  const header = [
    `${stack}: data move accepted (${move.how}): ${move.reason}`,
    ...changes.map((c) => `  ${c.path}: ${show(c.from)} -> ${show(c.to)}`),
    `  what the operator must do (docs/move-data.md, "${move.how}"):`,
  ];
  const kept = oldVolumes
    ? `the old volumes (${oldVolumes}) are kept untouched: never deleted with the stack (retainOnDelete); remove them by hand only once the move is confirmed`
    : "no volume changes name: the data stays where it is";
  if (move.how === "start-empty") {
    return [
      ...header,
      `  1. nothing is copied: ${newVolumes ? `${newVolumes} start${volumeKeys.length === 1 ? "s" : ""} empty` : "the volumes keep their data"}; ${kept}.`,
      "  2. merge and deploy (pulumi up) as usual.",
      "  3. remove dataMove from the definition in a later change (validate reminds you).",
    ];
  }
  const { user, name } = deployed.database;
  return [
    ...header,
    dbMoves
      ? `  1. before the deploy, take a dump of database "${name}" as "${user}" (docs/restore-database.md) and copy it off the host.`
      : `  1. before the deploy, take a dump of database "${name}" as "${user}" (docs/restore-database.md) and copy it off the host: it is the copy to go back to.`,
    `  2. merge and deploy (pulumi up); ${kept}.`,
    dbMoves
      ? `  3. restore the dump into database "${next.database.name}" as "${next.database.user}" with pg_restore --no-owner --role=${next.database.user} (docs/move-data.md), then check the app.`
      : "  3. the database volume keeps its name: nothing to restore unless the check after the deploy fails.",
    "  4. remove dataMove from the definition in a later change (validate reminds you).",
  ];
}
