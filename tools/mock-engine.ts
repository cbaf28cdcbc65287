import { pathToFileURL } from "node:url";
import * as pulumi from "@pulumi/pulumi";

/** One resource the program declared, as the Pulumi engine would receive it (mocked). */
export interface DeclaredResource {
  type: string;
  name: string;
  /** Inputs after resolution, with secrets unwrapped (never print these). */
  inputs: Record<string, unknown>;
  /** Paths of the inputs that reached the engine marked secret. */
  secretPaths: string[];
  /** What the (mocked) provider answered. */
  state?: Record<string, unknown>;
  /** Inputs as the program passed them (Outputs intact), for `pulumi.isSecret`. */
  props: Record<string, unknown>;
  /**
   * For each top-level input, the logical names of the resources its Output values come
   * from: the property dependencies the engine would get, which decide whether a replaced
   * resource replaces this one (`dependsOn` alone never does).
   */
  inputDeps: Record<string, string[]>;
  options: {
    protect?: boolean;
    retainOnDelete?: boolean;
    deleteBeforeReplace?: boolean;
    parent?: string;
    /** Logical name of the explicit provider. */
    provider?: string;
    /** Logical names of the resources this one explicitly depends on. */
    dependsOn?: string[];
  };
}

export interface ProgramRun {
  resources: DeclaredResource[];
  outputs: Record<string, unknown>;
  /** Raw stack outputs, for `pulumi.isSecret`. */
  rawOutputs: Record<string, pulumi.Output<unknown> | unknown>;
  /** Every secret value the run handled: generated passwords, secret config, the SSH key. */
  secretValues: string[];
  byType(type: string): DeclaredResource[];
  one(type: string, name: string): DeclaredResource;
}

/** Values the mocked engine returns for attributes a real provider would compute. */
export function computed(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
  switch (type) {
    case "random:index/randomPassword:RandomPassword":
      return { result: `mock-${name}-${"x".repeat(Number(inputs.length) || 16)}` };
    case "random:index/randomString:RandomString":
      return { result: "m0ck5uff1x".slice(0, Number(inputs.length) || 8) };
    case "aws:lightsail/bucketAccessKey:BucketAccessKey":
      return { accessKeyId: "AKIAMOCKBUCKETKEY", secretAccessKey: `mock-bucket-secret-${name}`, status: "Active" };
    case "aws:lightsail/staticIp:StaticIp":
      return { ipAddress: "198.51.100.7", arn: `arn:aws:lightsail:us-east-1:0:StaticIp/${inputs.name}` };
    case "aws:lightsail/instance:Instance":
      return { arn: `arn:aws:lightsail:us-east-1:0:Instance/${inputs.name}` };
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `sha256:${name}`, repoDigest: "" };
    case "command:remote:Command":
      // The ready check prints the instance's host key, which later connections pin.
      return { stdout: name.endsWith("-ready") ? MOCK_HOST_KEY : "", stderr: "" };
    default:
      return {};
  }
}

/** A host key the mocked instance answers with (not a real key). */
export const MOCK_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKeyOfTheMockedInstanceXXXXXXXXXXXX";

/** The wire form of a secret value (Pulumi's special signature key). */
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

/** Unwraps secret wire values, noting where they were. */
function unwrapSecrets(value: unknown, path: string, found: string[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, `${path}[${i}]`, found));
  if (value && typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (record[SIG_KEY] === SECRET_SIG) {
      found.push(path);
      return unwrapSecrets(record.value, path, found);
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v, path ? `${path}.${k}` : k, found)]));
  }
  return value;
}

const resolve = <T>(output: pulumi.Output<T>) => new Promise<T>((r) => output.apply(r));

/** Names of the resources the Outputs in `value` depend on, as the SDK serialises them (getAllResources). */
async function outputResources(value: unknown, found: Set<string>): Promise<Set<string>> {
  if (pulumi.Output.isInstance(value)) {
    for (const r of await pulumi.getAllResources(value as pulumi.Output<unknown>)) found.add(pulumi.resourceName(r));
  } else if (value instanceof Promise) {
    await outputResources(await value, found);
  } else if (Array.isArray(value)) {
    for (const v of value) await outputResources(v, found);
  } else if (value && typeof value === "object" && !(value instanceof pulumi.Resource)) {
    for (const v of Object.values(value)) await outputResources(v, found);
  }
  return found;
}

async function inputDependencies(props: Record<string, unknown>): Promise<Record<string, string[]>> {
  const entries = await Promise.all(Object.entries(props).map(async ([k, v]) => [k, [...(await outputResources(v, new Set()))].sort()] as const));
  return Object.fromEntries(entries.filter(([, deps]) => deps.length > 0));
}

async function settle(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) return settle(await resolve(value as pulumi.Output<unknown>));
  if (value instanceof Promise) return settle(await value);
  if (Array.isArray(value)) return Promise.all(value.map(settle));
  if (value && typeof value === "object" && !(value instanceof pulumi.Resource)) {
    const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await settle(v)] as const));
    return Object.fromEntries(entries);
  }
  return value;
}

/**
 * Runs the real program (`infra/program.ts`) for `stack` under Pulumi mocks: no Pulumi
 * CLI or cloud account exists here, so the engine is mocked and every declared resource
 * is recorded with its inputs and options.
 */
export interface RunOptions {
  /** The catalog to deploy from (default: stacks/catalog.ts). */
  definitions?: readonly unknown[];
  /**
   * Answers for each declared resource with the state a provider would return. Called in
   * dependency order; the default invents outputs without touching anything.
   */
  respond?: (resource: DeclaredResource) => Promise<Record<string, unknown>>;
  /** The program module to run (default: this checkout's infra/program.ts); the preview runs another checkout's. */
  programModule?: string;
  /** Run as `pulumi preview` (the default) or as `pulumi up` (the rehearsal, which deploys for real). */
  preview?: boolean;
}

export async function runProgram(
  stack: string,
  config: Record<string, string>,
  secretKeys: string[] = [],
  run: RunOptions = {},
): Promise<ProgramRun> {
  const resources: DeclaredResource[] = [];
  const options = new Map<string, DeclaredResource["options"] & { props: Record<string, unknown> }>();
  // The first resource the provider refused. As `pulumi up` does, nothing new starts after
  // it, and the run ends once what was under way has settled: the resources that wait for
  // the refused one would otherwise wait forever.
  let refused: { error: unknown } | undefined;
  let underWay = 0;
  let stop = () => {};
  const stoppedAfterRefusal = new Promise<void>((resolve) => (stop = resolve));
  await pulumi.runtime.setMocks(
    {
      newResource: async (args) => {
        if (refused) throw new Error(`${args.type} ${args.name}: not created, an earlier resource failed`);
        underWay += 1;
        try {
          return await declare(args);
        } catch (error) {
          refused ??= { error };
          throw error;
        } finally {
          underWay -= 1;
          if (refused && underWay === 0) stop();
        }
      },
      call: (args) => (args.token === "aws:route53/getZone:getZone" ? { zoneId: "Z123", name: args.inputs.name } : {}),
    },
    "timetracker",
    stack,
    run.preview ?? true,
  );
  async function declare(args: pulumi.runtime.MockResourceArgs) {
    const recorded = options.get(`${args.type}::${args.name}`);
    const secretPaths: string[] = [];
    const inputs = unwrapSecrets(args.inputs, "", secretPaths) as Record<string, unknown>;
    const resource: DeclaredResource = {
      type: args.type,
      name: args.name,
      inputs,
      secretPaths,
      props: recorded?.props ?? {},
      inputDeps: await inputDependencies(recorded?.props ?? {}),
      options: recorded ? ({ ...recorded, props: undefined } as DeclaredResource["options"]) : {},
    };
    resources.push(resource);
    const state = run.respond ? await run.respond(resource) : computed(args.type, args.name, inputs);
    resource.state = state;
    return { id: `${args.name}-id`, state: { ...args.inputs, ...state } };
  }
  pulumi.runtime.setAllConfig(config, secretKeys);
  const { timetracker } = (
    run.programModule ? await import(pathToFileURL(run.programModule).href) : await import("../infra/program.js")
  ) as typeof import("../infra/program.js");
  let rawOutputs: Record<string, unknown> = {};
  let failure: unknown;
  // A resource the engine refused rejects promises nobody awaits: that is the run's failure.
  const rejected = (reason: unknown) => {
    failure ??= reason;
  };
  process.on("unhandledRejection", rejected);
  const stackRun = pulumi.runtime.runInPulumiStack(async () => {
    // SDK 3.248 (the last for Node 20) refuses resource transforms under mocks; the
    // in-process stack transformation sees the same props and options.
    pulumi.runtime.registerStackTransformation((args) => {
      const opts = args.opts as pulumi.CustomResourceOptions;
      options.set(`${args.type}::${args.name}`, {
        props: args.props,
        protect: opts.protect as boolean | undefined,
        retainOnDelete: opts.retainOnDelete,
        deleteBeforeReplace: opts.deleteBeforeReplace,
        parent: opts.parent ? "set" : undefined,
        // The provider's logical name: the engine resolves it to the provider's settings at each call.
        provider: opts.provider ? (opts.provider as unknown as { __name: string }).__name : undefined,
        dependsOn: (Array.isArray(opts.dependsOn) ? opts.dependsOn : opts.dependsOn ? [opts.dependsOn] : []).map(
          (r) => (r as unknown as { __name: string }).__name,
        ),
      });
      return undefined;
    });
    try {
      rawOutputs = run.definitions ? timetracker(run.definitions) : timetracker();
    } catch (error) {
      // Reported after the run settles, as the Pulumi CLI would print it.
      failure = error;
    }
    return rawOutputs;
  });
  // The stack's outputs wait for every resource, and never settle once one was refused.
  await Promise.race([stackRun, stoppedAfterRefusal]);
  let outputs: Record<string, unknown> = {};
  const settled = (async () => {
    try {
      if (!failure) outputs = (await settle(rawOutputs)) as Record<string, unknown>;
    } catch (error) {
      failure = error;
    }
    // Every pending registration must reach these mocks before the next run replaces them.
    await pulumi.runtime.disconnect();
  })();
  await Promise.race([settled, stoppedAfterRefusal]);
  process.off("unhandledRejection", rejected);
  if (refused) throw refused.error;
  if (failure) throw failure;
  const generated = [
    ...resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword").map((r) => String(r.state?.result ?? "")),
    ...resources.filter((r) => r.type === "aws:lightsail/bucketAccessKey:BucketAccessKey").map((r) => String(r.state?.secretAccessKey ?? "")),
  ];
  const secretValues = [...generated, ...secretKeys.map((k) => config[k] ?? "")].filter((v) => v !== "");
  return {
    resources,
    outputs,
    rawOutputs,
    secretValues,
    byType: (type) => resources.filter((r) => r.type === type),
    one: (type, name) => {
      const found = resources.find((r) => r.type === type && r.name === name);
      if (!found) throw new Error(`no ${type} named ${name}; have: ${resources.map((r) => `${r.type}::${r.name}`).join(", ")}`);
      return found;
    },
  };
}
