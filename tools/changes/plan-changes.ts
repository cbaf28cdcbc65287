import { decide, decideDelete, type Decision, type Declared } from "./decide.js";
import { DOCKER_VOLUME, flagsFor, type Flag } from "./flags.js";
import { isComponent } from "./provider-rules.js";

export interface Change extends Decision {
  type: string;
  name: string;
  flags: Flag[];
  /** The resource as declared now (absent for a delete) and as it was (absent for a create). */
  now?: Declared;
  before?: Declared;
}

const key = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

/**
 * Every change from the resources declared `before` (the stack's state) to those declared
 * `now`, in registration order, then the deletes in reverse order (the engine deletes
 * dependents first). Components are left out: they have no provider.
 */
export function planChanges(before: readonly Declared[], now: readonly Declared[]): Change[] {
  const previous = new Map(before.map((r) => [key(r), r]));
  const volumes = before.filter((r) => r.type === DOCKER_VOLUME);
  const replaced = new Map<string, Decision>();
  const changes: Change[] = [];
  for (const resource of now) {
    const old = previous.get(key(resource));
    const decision = decide(resource, old, replaced);
    if (decision.action === "replace") replaced.set(resource.name, decision);
    if (isComponent(resource.type)) continue;
    changes.push({ ...decision, type: resource.type, name: resource.name, now: resource, before: old, flags: flagsFor(decision, resource, old, volumes) });
  }
  const declared = new Set(now.map(key));
  for (const old of [...before].reverse()) {
    if (declared.has(key(old)) || isComponent(old.type)) continue;
    const decision = decideDelete();
    changes.push({ ...decision, type: old.type, name: old.name, before: old, flags: flagsFor(decision, undefined, old, volumes) });
  }
  return changes;
}
