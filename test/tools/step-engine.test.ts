import { describe, expect, it } from "vitest";
import type { Decision } from "../../tools/changes/decide.js";
import { emptyState, StepEngine, type EngineState, type Entry, type Providers, type Registration } from "../../tools/rehearsal/step-engine.js";
import { dependentReplacements } from "../../tools/rehearsal/step-order.js";

/**
 * The rehearsal engine's step order (tools/rehearsal/step-engine.ts) over small graphs of
 * the program's real resource types, with providers that only record what they are asked:
 * the exact sequence of provider calls, and which provider settings each delete went through.
 */

const INSTANCE = "aws:lightsail/instance:Instance";
const COMMAND = "command:remote:Command";
const DOCKER = "pulumi:providers:docker";
const NETWORK = "docker:index/network:Network";
const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";
const DISK = "aws:lightsail/disk:Disk";

interface Spec {
  inputs: Record<string, unknown>;
  deps?: Record<string, string[]>;
  dependsOn?: string[];
  provider?: string;
  protect?: boolean;
  retainOnDelete?: boolean;
}

const reg = (type: string, name: string, spec: Spec): Registration => ({
  type,
  name,
  inputs: spec.inputs,
  inputDeps: spec.deps ?? {},
  options: {
    dependsOn: spec.dependsOn ?? [],
    ...(spec.provider ? { provider: spec.provider } : {}),
    ...(spec.protect ? { protect: true } : {}),
    ...(spec.retainOnDelete ? { retainOnDelete: true } : {}),
  },
});

/** Providers that record each call as `op name [host of the Docker provider it went through]`. */
function recorder(failOn: string[] = []) {
  const log: string[] = [];
  const via = (provider: Entry | undefined) => (provider ? ` via ${String(provider.inputs.host)}` : "");
  const providers: Providers = {
    async create(r, provider) {
      log.push(`create ${r.name}${via(provider)}`);
      if (failOn.includes(`create ${r.name}`)) throw new Error(`create ${r.name} failed`);
      return { id: `${r.name}-${log.length}` };
    },
    async update(r, _old: Entry, _d: Decision, provider) {
      log.push(`update ${r.name}${via(provider)}`);
      if (failOn.includes(`update ${r.name}`)) throw new Error(`update ${r.name} failed`);
      return { id: `${r.name}-${log.length}` };
    },
    async delete(old, provider) {
      log.push(`delete ${old.name}${via(provider)}`);
      if (failOn.includes(`delete ${old.name}`)) throw new Error(`delete ${old.name} failed`);
    },
  };
  return { log, providers };
}

/** One `pulumi up`: registrations in program order, then the deletes left for the end. */
async function up(state: EngineState, registrations: Registration[], failOn: string[] = []) {
  const { log, providers } = recorder(failOn);
  const engine = new StepEngine(state, providers);
  let error: Error | undefined;
  try {
    for (const r of registrations) await engine.register(r);
    await engine.finish();
  } catch (e) {
    error = e as Error;
  }
  return { log, engine, error };
}

/** A small host: an instance, its ready check, a Docker provider, a network, a container, and commands. */
function host(bundle: string, hostKey: string) {
  const arn = `arn:${bundle}`;
  return [
    reg(INSTANCE, "host-instance", { inputs: { name: "tt", bundleId: bundle } }),
    reg(COMMAND, "host-ready", { inputs: { create: "ready", triggers: [arn] }, deps: { triggers: ["host-instance"] } }),
    reg(DOCKER, "host-docker", { inputs: { host: `ssh://old-or-new`, sshOpts: [`KnownHostsCommand=echo ${hostKey}`] }, deps: { sshOpts: ["host-ready"] }, dependsOn: ["host-ready"] }),
    reg(NETWORK, "app-network", { inputs: { name: "net", labels: [{ label: "host", value: arn }] }, deps: { labels: ["host-instance"] }, provider: "host-docker" }),
    reg(VOLUME, "app-volume", { inputs: { name: "data", labels: [{ label: "host", value: arn }] }, deps: { labels: ["host-instance"] }, provider: "host-docker", retainOnDelete: true }),
    reg(CONTAINER, "app-db", { inputs: { name: "db", labels: [{ label: "host", value: arn }] }, deps: { labels: ["host-instance"] }, dependsOn: ["app-network", "app-volume"], provider: "host-docker" }),
    // Reaches the instance only through dependsOn and a connection: updated, never replaced.
    reg(COMMAND, "app-dump", { inputs: { create: "dump", connection: { hostKey } }, deps: { connection: ["host-ready"] }, dependsOn: ["host-ready"] }),
    reg(COMMAND, "app-release", { inputs: { create: "release", delete: "remove", triggers: [arn] }, deps: { triggers: ["host-instance"] }, dependsOn: ["app-network", "app-db"] }),
  ];
}

/** The Docker provider's settings carry the host key, so the log shows which configuration a call used. */
function hostWithKeyedProvider(bundle: string, hostKey: string) {
  return host(bundle, hostKey).map((r) => (r.type === DOCKER ? { ...r, inputs: { ...r.inputs, host: `ssh://host-with-${hostKey}` } } : r));
}

describe("the rehearsal engine follows Pulumi's step order (engine mocked: no Pulumi CLI here; providers record)", () => {
  it("creates in registration order, each resource through its own provider", async () => {
    const { log, error } = await up(emptyState(), hostWithKeyedProvider("small", "key1"));
    expect(error).toBeUndefined();
    expect(log).toEqual([
      "create host-instance",
      "create host-ready",
      "create host-docker",
      "create app-network via ssh://host-with-key1",
      "create app-volume via ssh://host-with-key1",
      "create app-db via ssh://host-with-key1",
      "create app-dump",
      "create app-release",
    ]);
  });

  it("a second up with the same program calls no provider", async () => {
    const state = emptyState();
    await up(state, hostWithKeyedProvider("small", "key1"));
    const { log } = await up(state, hostWithKeyedProvider("small", "key1"));
    expect(log).toEqual([]);
  });

  it("grow the bundle: dependents that must be replaced are deleted first, newest first, through the OLD Docker provider; then the instance; then the creates", async () => {
    const state = emptyState();
    await up(state, hostWithKeyedProvider("small", "key1"));
    const { log, error, engine } = await up(state, hostWithKeyedProvider("medium", "key2"));
    expect(error).toBeUndefined();
    expect(log).toEqual([
      "delete app-release",
      "delete app-db via ssh://host-with-key1",
      // app-volume is retained: dropped from the state without a call (see `calls`).
      "delete app-network via ssh://host-with-key1",
      "delete host-ready",
      "delete host-instance",
      "create host-instance",
      "create host-ready",
      "update host-docker",
      "create app-network via ssh://host-with-key2",
      "create app-volume via ssh://host-with-key2",
      "create app-db via ssh://host-with-key2",
      "update app-dump",
      "create app-release",
    ]);
    expect(engine.calls.filter((c) => c.op === "skip-delete").map((c) => c.name)).toEqual(["app-volume"]);
    expect(engine.calls.find((c) => c.name === "app-db" && c.op === "delete")?.rule).toBe("replaceDeleteFirst");
    // A dependent deleted first is still a replacement, diffed against its old state.
    const decided = (name: string) => [...engine.decisions].find(([k]) => k.endsWith(`::${name}`))?.[1];
    expect(decided("app-release")).toMatchObject({ action: "replace", causes: ["triggers"] });
    expect(decided("app-dump")).toMatchObject({ action: "update" });
  });

  it("dependsOn alone replaces nothing; an input that is in place for the dependent does not either", () => {
    const state = emptyState();
    const entries: Entry[] = hostWithKeyedProvider("small", "k").map((r) => ({
      type: r.type,
      name: r.name,
      inputs: r.inputs,
      inputDeps: r.inputDeps,
      dependsOn: r.options.dependsOn ?? [],
      ...(r.options.provider ? { provider: r.options.provider } : {}),
      options: {},
      state: {},
    }));
    state.entries = Object.fromEntries(entries.map((e) => [`${e.type}::${e.name}`, e]));
    const root = entries[0] as Entry;
    const names = dependentReplacements(root, entries, new Set()).map((d) => d.entry.name);
    expect(names).toEqual(["host-ready", "app-network", "app-volume", "app-db", "app-release"]);
    expect(names).not.toContain("host-docker");
    expect(names).not.toContain("app-dump");
  });

  it("a create-first replacement creates the new one and deletes the old one at the end of the update", async () => {
    const state = emptyState();
    const commands = (trigger: string) => [
      reg(COMMAND, "a", { inputs: { create: "a", triggers: [trigger] } }),
      reg(COMMAND, "b", { inputs: { create: "b" }, dependsOn: ["a"] }),
    ];
    await up(state, commands("1"));
    const { log } = await up(state, commands("2"));
    expect(log).toEqual(["create a", "delete a"]);
    expect(state.pendingDeletes).toEqual([]);
  });

  it("what the program no longer declares is deleted at the end, dependents first, through the provider in its state", async () => {
    const state = emptyState();
    await up(state, hostWithKeyedProvider("small", "key1"));
    const kept = hostWithKeyedProvider("small", "key1").filter((r) => !["app-db", "app-release", "app-network"].includes(r.name));
    const { log } = await up(state, kept);
    expect(log).toEqual(["delete app-release", "delete app-db via ssh://host-with-key1", "delete app-network via ssh://host-with-key1"]);
  });

  it("a provider whose settings change is updated in place; what it manages is not replaced", async () => {
    const state = emptyState();
    const withOpts = (opts: string) =>
      [reg(DOCKER, "p", { inputs: { host: "ssh://h", sshOpts: [opts] } }), reg(NETWORK, "n", { inputs: { name: "n" }, provider: "p" })];
    await up(state, withOpts("a"));
    const { log } = await up(state, withOpts("b"));
    expect(log).toEqual(["update p"]);
  });

  it("protect refuses a replacement and a delete; destroy needs unprotect; retainOnDelete makes no call", async () => {
    const state = emptyState();
    const disk = (size: number) => [reg(DISK, "disk", { inputs: { name: "d", sizeInGb: size }, protect: true, retainOnDelete: true })];
    await up(state, disk(8));
    const grown = await up(state, disk(16));
    expect(grown.error?.message).toMatch(/unable to replace resource "disk".*marked for protection/);
    expect(grown.log).toEqual([]);
    const { providers, log } = recorder();
    const engine = new StepEngine(state, providers);
    await expect(engine.destroy({ unprotect: false })).rejects.toThrow(/marked for protection/);
    const torn = await engine.destroy({ unprotect: true });
    expect(torn.kept).toEqual([`${DISK} d`]);
    expect(log).toEqual([]);
    expect(state.order).toEqual([]);
  });

  it("destroy deletes everything dependents first, each through the provider in its state", async () => {
    const state = emptyState();
    await up(state, hostWithKeyedProvider("small", "key1"));
    const { providers, log } = recorder();
    await new StepEngine(state, providers).destroy({ unprotect: true });
    expect(log).toEqual([
      "delete app-release",
      "delete app-dump",
      "delete app-db via ssh://host-with-key1",
      "delete app-network via ssh://host-with-key1",
      "delete host-docker",
      "delete host-ready",
      "delete host-instance",
    ]);
  });

  it("a failed create records nothing; a failed update keeps the old inputs, so the next up tries again", async () => {
    const state = emptyState();
    const first = await up(state, [reg(COMMAND, "c", { inputs: { create: "v1", triggers: ["t"] } })], ["create c"]);
    expect(first.error?.message).toMatch(/create c failed/);
    expect(state.order).toEqual([]);
    await up(state, [reg(COMMAND, "c", { inputs: { create: "v1", triggers: ["t"] } })]);
    const failed = await up(state, [reg(COMMAND, "c", { inputs: { create: "v2", triggers: ["t"] } })], ["update c"]);
    expect(failed.error?.message).toMatch(/update c failed/);
    expect(state.entries[`${COMMAND}::c`]?.inputs.create).toBe("v1");
    const retried = await up(state, [reg(COMMAND, "c", { inputs: { create: "v2", triggers: ["t"] } })]);
    expect(retried.log).toEqual(["update c"]);
  });

  it("a failed delete-first replacement leaves the old one gone and records no new one", async () => {
    const state = emptyState();
    await up(state, hostWithKeyedProvider("small", "key1"));
    const { error, log } = await up(state, hostWithKeyedProvider("medium", "key2"), ["create host-instance"]);
    expect(error?.message).toMatch(/create host-instance failed/);
    expect(log.slice(-2)).toEqual(["delete host-instance", "create host-instance"]);
    expect(state.entries[`${INSTANCE}::host-instance`]).toBeUndefined();
  });
});
