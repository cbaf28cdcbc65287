import { derive } from "./derive.js";
import { checkCatalog, checkPlan, RESERVED_HOST_PORTS } from "./invariants.js";
import type { Plan } from "./plan.js";
import { formatProblem, problemsFromZod, type Problem } from "./problems.js";
import { EnvironmentSchema, STANDBY_PORT_OFFSET, type Environment, type ResolvedEnvironment } from "./schema.js";

export const FIRST_FRONTEND_PORT = 3000;
export const FIRST_BACKEND_PORT = 8080;

export type CatalogResult = { ok: true; plans: Plan[] } | { ok: false; problems: Problem[] };

/** A definition's label in problem paths: its name when printable on one line, else its position. */
const labelOf = (definition: unknown, index: number) => {
  const name = (definition as { name?: unknown } | null)?.name;
  return typeof name === "string" && /^[\x21-\x7e]{1,64}$/.test(name) ? name : `catalog[${index}]`;
};

/** Both loopback slots of an app port: the port and its standby twin (see derive). */
const slotsOf = (port: number) => [port, port + STANDBY_PORT_OFFSET];

/** The lowest port from `start` whose two slots (it and its standby twin) are neither taken nor reserved. */
export function nextFreePort(start: number, taken: Set<number>): number {
  let port = start;
  while (slotsOf(port).some((slot) => taken.has(slot) || RESERVED_HOST_PORTS.has(slot))) port += 1;
  return port;
}

/**
 * Settles host ports for definitions that leave them out: in catalog order, each gets
 * the lowest free frontend port from 3000 and backend port from 8080, free with its
 * standby twin. Written ports are never moved.
 */
export function allocatePorts(environments: Environment[]): ResolvedEnvironment[] {
  const taken = new Set(environments.flatMap((env) => (env.ports ? [env.ports.frontend, env.ports.backend].flatMap(slotsOf) : [])));
  return environments.map((env) => {
    if (env.ports) return { ...env, ports: env.ports };
    const frontend = nextFreePort(FIRST_FRONTEND_PORT, taken);
    slotsOf(frontend).forEach((slot) => taken.add(slot));
    const backend = nextFreePort(FIRST_BACKEND_PORT, taken);
    slotsOf(backend).forEach((slot) => taken.add(slot));
    return { ...env, ports: { frontend, backend } };
  });
}

/**
 * Names that say "secret": a key with one of these in it holds a secret by its own account.
 * A key ending in a duration or a size names a setting about a secret, not one
 * (ACCESS_TOKEN_EXPIRE_MINUTES, PASSWORD_MIN_LENGTH).
 */
const SECRET_NAME = /(SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|PRIVATE_KEY|API_KEY|APIKEY|ACCESS_KEY|CREDENTIAL)/;
const SETTING_ABOUT_A_SECRET = /_(SECONDS|MINUTES|HOURS|DAYS|TTL|LENGTH|EXPIRY|EXPIRE|EXPIRES|ALGORITHM)$/;
/**
 * A URL carrying a password: `scheme://user:password@` (the user may be empty, as in
 * redis://:pw@host). Anchored on "://" so a long value is scanned once.
 */
const URL_WITH_PASSWORD = /:\/\/[^\s/?#@:]*:[^\s/?#@]+@/;

/** Why a plain value of stack `stack` looks like a secret, or undefined. */
export function secretLooking(stack: string, key: string, value: string): string | undefined {
  const why =
    SECRET_NAME.test(key) && !SETTING_ABOUT_A_SECRET.test(key)
      ? "names a secret"
      : URL_WITH_PASSWORD.test(value)
        ? "holds a URL with a password (user:password@)"
        : undefined;
  return why && `${why}, and is committed in plain text (rendered/${stack}/plan.json): keep secrets out of the definition (the package generates the database, Redis and app secrets and keeps them encrypted in the stack)`;
}

/**
 * Variables the package sets from the Plan may not be overridden by hand: that is how they
 * drift. Every other plain variable (and build argument) must not look like a secret: it is
 * written to the committed plan.
 */
function checkExtraEnv(env: ResolvedEnvironment): Problem[] {
  const derived = derive({ ...env, app: { ...env.app, extraEnv: {} } }).containers.backend.env;
  const problems: Problem[] = [];
  for (const [key, value] of Object.entries(env.app.extraEnv)) {
    const path = `${env.name}.app.extraEnv.${key}`;
    if (Object.hasOwn(derived, key)) problems.push({ path, message: "is set by the package from the Plan and cannot be overridden" });
    else {
      const secret = secretLooking(env.name, key, value);
      if (secret) problems.push({ path, message: secret });
    }
  }
  for (const service of ["backend", "frontend"] as const) {
    const image = env.images[service];
    if (image.source !== "build") continue;
    for (const [key, value] of Object.entries(image.args)) {
      const secret = secretLooking(env.name, key, value);
      if (secret) problems.push({ path: `${env.name}.images.${service}.args.${key}`, message: secret });
    }
  }
  return problems;
}

/** Parses, derives and checks every definition together. Never throws for bad input. */
export function validateCatalog(definitions: readonly unknown[]): CatalogResult {
  const problems: Problem[] = [];
  const environments: Environment[] = [];
  definitions.forEach((definition, index) => {
    const parsed = EnvironmentSchema.safeParse(definition);
    if (parsed.success) environments.push(parsed.data);
    else problems.push(...problemsFromZod(labelOf(definition, index), parsed.error));
  });
  if (problems.length > 0) return { ok: false, problems };

  const resolved = allocatePorts(environments);
  const plans = resolved.map(derive);
  problems.push(...resolved.flatMap(checkExtraEnv), ...plans.flatMap(checkPlan), ...checkCatalog(plans));
  return problems.length > 0 ? { ok: false, problems } : { ok: true, plans };
}

/** The Plan of one stack of a valid catalog, or an error listing the known stacks. */
export function planFor(definitions: readonly unknown[], stack: string): Plan {
  const result = validateCatalog(definitions);
  if (!result.ok) {
    throw new CatalogError(result.problems);
  }
  const plan = result.plans.find((p) => p.stack === stack);
  if (!plan) {
    const known = result.plans.map((p) => p.stack).join(", ");
    throw new CatalogError([{ path: stack, message: `no environment is named "${stack}"; the catalog has: ${known}` }]);
  }
  return plan;
}

/** Raised for a user's mistake in the definitions; its message is the list of problems. */
export class CatalogError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "CatalogError";
  }
}
