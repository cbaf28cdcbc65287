import { isDeepStrictEqual } from "node:util";
import { effectOf, isClassified, isComponent, PROVIDER_RULES } from "./provider-rules.js";

export interface ResourceOptions {
  protect?: boolean;
  retainOnDelete?: boolean;
  deleteBeforeReplace?: boolean;
}

/** A resource as the program declares it (a `DeclaredResource` of tools/mock-engine.ts fits). */
export interface Declared {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** Top-level input name -> logical names of the resources its Outputs come from. */
  inputDeps: Record<string, string[]>;
  options: ResourceOptions;
}

/** What the stack's state holds for a resource after the last deploy. */
export interface Previous {
  inputs: Record<string, unknown>;
  /** The options in state; the engine reads protect and retainOnDelete from there. */
  options?: ResourceOptions;
}

export type Action = "create" | "update" | "replace" | "same" | "delete";

export interface Decision {
  action: Action;
  /** Input names whose change takes effect, or "<resource> replaced (via <input>)". */
  causes: string[];
  /** The old resource is deleted before its replacement (or the replacement of what it depends on) exists. */
  deleteFirst: boolean;
  /** Changed inputs the provider records and never applies. */
  ignored: string[];
}

/** Resources decided "replace" earlier in this run, by logical name. */
export type Replaced = ReadonlyMap<string, Decision>;

const SAME: Decision = { action: "same", causes: [], deleteFirst: false, ignored: [] };

function deletesFirst(resource: Declared): boolean {
  const rule = PROVIDER_RULES[resource.type]?.deleteBeforeReplace;
  return (
    resource.options.deleteBeforeReplace === true ||
    rule === "always" ||
    (rule === "when-named" && resource.inputs.name !== undefined)
  );
}

/**
 * What the engine does with one resource, decided in registration (dependency) order as
 * the engine's step generator does: a changed input, or an input whose Output comes from a
 * resource replaced earlier in this run, is replace-on-change, in place, never applied or
 * state only by the provider table. A dependency replaced delete-first replaces this one
 * first (its dependents go before it: calculateDependentReplacements); one replaced
 * create-first hands over new outputs, taken here as changed (ids and ARNs are).
 * `dependsOn` alone never replaces anything.
 */
export function decide(resource: Declared, previous: Previous | undefined, replaced: Replaced): Decision {
  if (!previous) return { action: "create", causes: [], deleteFirst: false, ignored: [] };
  if (isComponent(resource.type)) return SAME;

  const replaceCauses: string[] = [];
  const updateCauses: string[] = [];
  const ignored: string[] = [];
  let followsDeleteFirst = false;
  const keys = [...new Set([...Object.keys(previous.inputs), ...Object.keys(resource.inputs)])];
  for (const key of keys) {
    const changed = !isDeepStrictEqual(previous.inputs[key], resource.inputs[key]);
    const via = (resource.inputDeps[key] ?? []).filter((dep) => replaced.get(dep)?.action === "replace");
    if (!changed && via.length === 0) continue;
    const unknown = isClassified(resource.type, key) ? "" : " (not in the provider table: taken as replacing)";
    const cause = (changed ? key : `${via.join(", ")} replaced (via ${key})`) + unknown;
    const effect = effectOf(resource.type, key);
    if (effect === "replace") {
      replaceCauses.push(cause);
      if (via.some((dep) => replaced.get(dep)?.deleteFirst)) followsDeleteFirst = true;
    } else if (effect === "never applied") ignored.push(key);
    else updateCauses.push(cause);
  }
  if (replaceCauses.length > 0) {
    return { action: "replace", causes: replaceCauses, deleteFirst: followsDeleteFirst || deletesFirst(resource), ignored: [] };
  }
  if (updateCauses.length > 0 || ignored.length > 0) return { action: "update", causes: updateCauses, deleteFirst: false, ignored };
  return SAME;
}

/** A resource in state that the program no longer declares. */
export function decideDelete(): Decision {
  return { action: "delete", causes: ["no longer declared"], deleteFirst: false, ignored: [] };
}
