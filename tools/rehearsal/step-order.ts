/**
 * The order in which Pulumi's engine turns registrations into provider calls, as data and
 * small pure functions over a stack's state. Read from pulumi/pulumi
 * pkg/resource/deploy/step_generator.go (v3.2xx) and step.go; each rule names where.
 * The rehearsal engine (step-engine.ts) follows these; a real `pulumi up` does.
 */
import { effectOf, isComponent } from "../changes/provider-rules.js";
import type { ResourceOptions } from "../changes/decide.js";

/** One resource as the stack's state records it after a deploy. */
export interface Entry {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** Input name -> logical names its values came from (the state's propertyDependencies). */
  inputDeps: Record<string, string[]>;
  /** Logical names from `dependsOn` (the state's dependencies beyond the property ones). */
  dependsOn: string[];
  /** Logical name of the explicit provider resource this one was made through. */
  provider?: string;
  options: ResourceOptions;
  state: Record<string, unknown>;
}

/** The step kinds a deployment can produce, in the order each sequence runs them, with the source of the rule. */
export const STEP_RULES = {
  create: {
    sequence: ["create"],
    source: "step_generator.go generateSteps: no old state -> NewCreateStep",
  },
  update: {
    sequence: ["update"],
    source: "step_generator.go generateStepsFromDiff: DiffSome without replace keys -> NewUpdateStep",
  },
  replaceCreateFirst: {
    sequence: ["create replacement", "delete the old one at the end of the update, through the provider its state names"],
    source: "step_generator.go generateStepsFromDiff: NewCreateReplacementStep(pendingDelete=true), NewReplaceStep; the old one joins toDelete / pendingDeletes",
  },
  replaceDeleteFirst: {
    sequence: [
      "delete every dependent that must be replaced too, in reverse dependency order, each through the provider its state names (the OLD configuration)",
      "delete the resource itself",
      "create the replacement",
    ],
    source:
      "step_generator.go generateStepsFromDiff (deleteBeforeReplace): calculateDependentReplacements, then `for i := len(toReplace) - 1; i >= 0; i--` NewDeleteReplacementStep; 'We need to use the old provider configuration to delete this resource'",
  },
  dependentOfDeleted: {
    sequence: ["create (its old one was already deleted by a delete-before-replace)"],
    source: "step_generator.go: a URN in sg.deletes is recreated with NewCreateReplacementStep, never deleted twice",
  },
  undeclared: {
    sequence: ["delete at the end of the update, in reverse dependency order, through the provider its state names"],
    source: "step_generator.go GenerateDeletes / ScheduleDeletes: olds not registered, reverse topological order",
  },
  providerChange: {
    sequence: ["update in place (re-registered under the same reference), unless a setting is ForcesProviderReplace"],
    source: "pulumi-terraform-bridge configDiffer.forcesProviderReplace (#1683); providers/registry.go Update keeps the provider's id",
  },
  protect: {
    sequence: ["refuse: a protected resource is neither replaced nor deleted"],
    source: "step_generator.go 'unable to replace resource ... marked for protection'; step.go DeleteStep.Apply refuses a protected old",
  },
  retainOnDelete: {
    sequence: ["drop from the state without a provider call"],
    source: "step.go DeleteStep.Apply: `if !s.old.RetainOnDelete { prov.Delete(...) }`",
  },
  failedCreate: {
    sequence: ["record nothing"],
    source: "step.go CreateStep.Apply returns no new state on error",
  },
  failedUpdate: {
    sequence: ["keep the old inputs and outputs in the state; the next up diffs against them"],
    source: "pulumi/pulumi#2011; step.go UpdateStep.Apply keeps s.old on error",
  },
} as const;

export type StepRule = keyof typeof STEP_RULES;

/** Every logical name an entry depends on: property dependencies, `dependsOn` and its provider. */
export function dependenciesOf(entry: Entry): string[] {
  return [...new Set([...Object.values(entry.inputDeps).flat(), ...entry.dependsOn, ...(entry.provider ? [entry.provider] : [])])];
}

/**
 * Entries in dependency order (a dependency before its dependents), ties in the order
 * given: the state's order, which is the order of the last registrations. (A cycle cannot
 * come from a program: a resource cannot depend on a later one.)
 */
export function topological(entries: readonly Entry[]): Entry[] {
  const names = new Set(entries.map((e) => e.name));
  const placedNames = new Set<string>();
  const result: Entry[] = [];
  let remaining = [...entries];
  while (remaining.length > 0) {
    // The first entry whose dependencies are placed: the state's own order when it is already topological, as a snapshot is.
    const next = remaining.find((e) => dependenciesOf(e).every((d) => d === e.name || !names.has(d) || placedNames.has(d))) ?? (remaining[0] as Entry);
    placedNames.add(next.name);
    result.push(next);
    remaining = remaining.filter((e) => e !== next);
  }
  return result;
}

/** Deletes run dependents first: the reverse of the dependency order. */
export function deleteOrder(entries: readonly Entry[]): Entry[] {
  return topological(entries).reverse();
}

/** Every entry that depends on `root`, directly or not, in dependency order (graph.DependingOn). */
export function dependingOn(root: Entry, entries: readonly Entry[]): Entry[] {
  const found = new Set<string>([root.name]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const e of entries) {
      if (found.has(e.name)) continue;
      if (dependenciesOf(e).some((d) => found.has(d))) {
        found.add(e.name);
        grew = true;
      }
    }
  }
  return topological(entries.filter((e) => e.name !== root.name && found.has(e.name)));
}

/**
 * calculateDependentReplacements: of `root`'s dependents in the old state, those that must
 * be replaced with it, in dependency order. A dependent goes when its provider is in the
 * set, or when an input whose value came from a resource in the set is replace-on-change
 * for its provider (the engine asks Diff with those inputs unknown). Resources already
 * registered in this run are left out ("impossibleDependents"). `dependsOn` alone replaces nothing.
 */
export function dependentReplacements(root: Entry, entries: readonly Entry[], registered: ReadonlySet<string>): { entry: Entry; keys: string[] }[] {
  const replaceSet = new Set([root.name]);
  const result: { entry: Entry; keys: string[] }[] = [];
  for (const d of dependingOn(root, entries)) {
    if (registered.has(d.name) || isComponent(d.type)) continue;
    if (d.provider && replaceSet.has(d.provider)) {
      result.push({ entry: d, keys: [] });
      replaceSet.add(d.name);
      continue;
    }
    const unknown = Object.entries(d.inputDeps).filter(([, deps]) => deps.some((dep) => replaceSet.has(dep))).map(([key]) => key);
    const keys = unknown.filter((key) => effectOf(d.type, key) === "replace");
    if (keys.length > 0) {
      result.push({ entry: d, keys });
      replaceSet.add(d.name);
    }
  }
  return result;
}
