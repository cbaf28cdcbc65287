import { derive } from "./derive.js";
import { checkCatalog, checkPlan, RESERVED_HOST_PORTS } from "./invariants.js";
import type { Plan } from "./plan.js";
import { formatProblem, problemsFromZod, type Problem } from "./problems.js";
import { EnvironmentSchema, type Environment, type ResolvedEnvironment } from "./schema.js";

export const FIRST_FRONTEND_PORT = 3000;
export const FIRST_BACKEND_PORT = 8080;

export type CatalogResult = { ok: true; plans: Plan[] } | { ok: false; problems: Problem[] };

const labelOf = (definition: unknown, index: number) => {
  const name = (definition as { name?: unknown } | null)?.name;
  return typeof name === "string" && name !== "" ? name : `catalog[${index}]`;
};

/** The lowest port from `start` that is neither taken nor reserved. */
export function nextFreePort(start: number, taken: Set<number>): number {
  let port = start;
  while (taken.has(port) || RESERVED_HOST_PORTS.includes(port)) port += 1;
  return port;
}

/**
 * Settles host ports for definitions that leave them out: in catalog order, each gets
 * the lowest free frontend port from 3000 and backend port from 8080. Written ports
 * are never moved.
 */
export function allocatePorts(environments: Environment[]): ResolvedEnvironment[] {
  const taken = new Set(environments.flatMap((env) => (env.ports ? [env.ports.frontend, env.ports.backend] : [])));
  return environments.map((env) => {
    if (env.ports) return { ...env, ports: env.ports };
    const frontend = nextFreePort(FIRST_FRONTEND_PORT, taken);
    taken.add(frontend);
    const backend = nextFreePort(FIRST_BACKEND_PORT, taken);
    taken.add(backend);
    return { ...env, ports: { frontend, backend } };
  });
}

/** Variables the package sets from the Plan may not be overridden by hand: that is how they drift. */
function checkExtraEnv(env: ResolvedEnvironment): Problem[] {
  const derived = derive({ ...env, app: { ...env.app, extraEnv: {} } }).containers.backend.env;
  return Object.keys(env.app.extraEnv)
    .filter((key) => key in derived)
    .map((key) => ({ path: `${env.name}.app.extraEnv.${key}`, message: "is set by the package from the Plan and cannot be overridden" }));
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
