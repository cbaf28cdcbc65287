import { decide, type Decision, type Declared } from "../changes/decide.js";
import { isComponent } from "../changes/provider-rules.js";
import { deleteOrder, dependentReplacements, type Entry, type StepRule } from "./step-order.js";

export type { Entry } from "./step-order.js";

/** A registration as the engine receives it: a declared resource with its explicit dependencies and provider. */
export interface Registration extends Declared {
  options: Declared["options"] & { dependsOn?: string[]; provider?: string };
}

/** What the engine keeps between runs, as a Pulumi backend does: nothing else carries over. */
export interface EngineState {
  /** Keys (`type::name`) in the order of the last registrations. */
  order: string[];
  entries: Record<string, Entry>;
  /** Old resources a create-first replacement left for deletion at the end of the update (Pulumi's pending deletes). */
  pendingDeletes: Entry[];
}

/** The provider stand-ins: each call does the real thing. `provider` is the provider entry as the registry holds it now. */
export interface Providers {
  create(resource: Registration, provider: Entry | undefined): Promise<Record<string, unknown>>;
  update(resource: Registration, old: Entry, decision: Decision, provider: Entry | undefined): Promise<Record<string, unknown>>;
  delete(old: Entry, provider: Entry | undefined): Promise<void>;
}

/** One provider call the engine made (or skipped, for retainOnDelete), for tests and the rehearsal's report. */
export interface Call {
  op: "create" | "update" | "delete" | "skip-delete";
  name: string;
  rule: StepRule;
  /** The provider's settings the call went through, as the registry held them at that moment. */
  via?: Record<string, unknown>;
}

const keyOf = (r: { type: string; name: string }) => `${r.type}::${r.name}`;

export const emptyState = (): EngineState => ({ order: [], entries: {}, pendingDeletes: [] });

/**
 * The steps of one `pulumi up` (or `destroy`) in Pulumi's order (step-order.ts), over a
 * state that carries over between runs. Registrations arrive in dependency order from
 * the program; `finish` runs the deletes an update leaves for its end.
 */
export class StepEngine {
  readonly calls: Call[] = [];
  /** What each registration did: its decision, or "failed". */
  readonly decisions = new Map<string, Decision | "failed">();
  private readonly registered = new Set<string>();
  private readonly replaced = new Map<string, Decision>();
  /** Old resources a delete-before-replace already deleted in this run, by key: still what their registration is diffed against. */
  private readonly deletedThisRun = new Map<string, Entry>();

  constructor(
    readonly state: EngineState,
    private readonly providers: Providers,
    private readonly saved: () => void = () => {},
  ) {}

  private entries(): Entry[] {
    return this.state.order.map((k) => this.state.entries[k]).filter((e): e is Entry => e !== undefined);
  }

  private byName(name: string | undefined): Entry | undefined {
    return name === undefined ? undefined : this.entries().find((e) => e.name === name);
  }

  private write(resource: Registration, state: Record<string, unknown>): Record<string, unknown> {
    const k = keyOf(resource);
    if (!this.state.order.includes(k)) this.state.order.push(k);
    this.state.entries[k] = {
      type: resource.type,
      name: resource.name,
      inputs: resource.inputs,
      inputDeps: resource.inputDeps,
      dependsOn: resource.options.dependsOn ?? [],
      ...(resource.options.provider ? { provider: resource.options.provider } : {}),
      options: { protect: resource.options.protect, retainOnDelete: resource.options.retainOnDelete, deleteBeforeReplace: resource.options.deleteBeforeReplace },
      state,
    };
    this.saved();
    return state;
  }

  private forget(entry: Entry): void {
    const k = keyOf(entry);
    if (this.state.entries[k] === entry) {
      delete this.state.entries[k];
      this.state.order = this.state.order.filter((o) => o !== k);
    }
    this.state.pendingDeletes = this.state.pendingDeletes.filter((p) => p !== entry);
    this.saved();
  }

  /** The provider entry as the registry holds it now: re-registering a provider updates it in place, under the same reference. */
  private providerNamed(name: string | undefined): Entry | undefined {
    return this.byName(name);
  }

  /** A delete step: refused for a protected resource, no provider call for a retained one. */
  private async deleteOne(entry: Entry, rule: StepRule): Promise<void> {
    if (entry.options.protect) throw new Error(`unable to delete resource "${entry.name}": it is marked for protection`);
    if (entry.options.retainOnDelete) {
      this.calls.push({ op: "skip-delete", name: entry.name, rule });
    } else {
      const provider = this.providerNamed(entry.provider);
      this.calls.push({ op: "delete", name: entry.name, rule, ...(provider ? { via: provider.inputs } : {}) });
      await this.providers.delete(entry, provider);
    }
    this.forget(entry);
  }

  /** One registration: decide as the engine does, run its steps, record the new state. */
  async register(resource: Registration): Promise<Record<string, unknown>> {
    const k = keyOf(resource);
    this.registered.add(resource.name);
    if (isComponent(resource.type)) return {};
    const previous = this.state.entries[k] ?? this.deletedThisRun.get(k);
    const decision = decide(resource, previous, this.replaced);
    this.decisions.set(k, decision);
    try {
      return await this.apply(resource, previous, decision);
    } catch (error) {
      this.decisions.set(k, "failed");
      throw error;
    }
  }

  private async apply(resource: Registration, previous: Entry | undefined, decision: Decision): Promise<Record<string, unknown>> {
    const k = keyOf(resource);
    const provider = this.providerNamed(resource.options.provider);
    const create = async (rule: StepRule) => {
      this.calls.push({ op: "create", name: resource.name, rule, ...(provider ? { via: provider.inputs } : {}) });
      return this.write(resource, await this.providers.create(resource, provider));
    };
    if (!previous || this.deletedThisRun.has(k)) return create(previous ? "dependentOfDeleted" : "create");
    if (decision.action === "same") return this.write(resource, previous.state);
    if (decision.action === "update") {
      if (decision.causes.length === 0) return this.write(resource, previous.state);
      this.calls.push({ op: "update", name: resource.name, rule: "update", ...(provider ? { via: provider.inputs } : {}) });
      // A failed update throws before `write`: the state keeps the old inputs.
      return this.write(resource, await this.providers.update(resource, previous, decision, provider));
    }
    this.replaced.set(resource.name, decision);
    if (previous.options.protect && resource.options.protect) {
      throw new Error(`unable to replace resource "${resource.name}" (${decision.causes.join(", ")}): it is marked for protection`);
    }
    if (!decision.deleteFirst) {
      const state = await create("replaceCreateFirst");
      this.state.pendingDeletes.push(previous);
      this.saved();
      return state;
    }
    const dependents = dependentReplacements(previous, this.entries(), this.registered);
    for (const { entry } of [...dependents].reverse()) {
      const dk = keyOf(entry);
      if (this.deletedThisRun.has(dk)) continue;
      this.deletedThisRun.set(dk, entry);
      await this.deleteOne(entry, "replaceDeleteFirst");
    }
    this.deletedThisRun.set(k, previous);
    await this.deleteOne(previous, "replaceDeleteFirst");
    return create("replaceDeleteFirst");
  }

  /** The end of a successful update: the old halves of create-first replacements, then what is no longer declared, dependents first. */
  async finish(): Promise<void> {
    const undeclared = this.entries().filter((e) => !this.registered.has(e.name) && !isComponent(e.type));
    for (const entry of deleteOrder([...this.state.pendingDeletes])) await this.deleteOne(entry, "replaceCreateFirst");
    for (const entry of deleteOrder(undeclared)) await this.deleteOne(entry, "undeclared");
  }

  /** `pulumi destroy`: everything, dependents first; protected resources must be unprotected first. */
  async destroy(options: { unprotect: boolean }): Promise<{ removed: string[]; kept: string[] }> {
    const removed: string[] = [];
    const kept: string[] = [];
    const all = [...this.state.pendingDeletes, ...this.entries().filter((e) => !isComponent(e.type))];
    for (const entry of deleteOrder(all)) {
      const label = `${entry.type} ${String(entry.inputs.name ?? entry.name)}`;
      if (entry.options.retainOnDelete) kept.push(label);
      else removed.push(label);
      await this.deleteOne(options.unprotect ? { ...entry, options: { ...entry.options, protect: false } } : entry, "undeclared");
      this.forget(entry);
    }
    return { removed, kept };
  }
}
