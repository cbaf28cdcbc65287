import * as pulumi from "@pulumi/pulumi";

/** One resource the program declared, as the Pulumi engine would receive it (mocked). */
export interface DeclaredResource {
  type: string;
  name: string;
  /** Inputs after resolution, with secrets unwrapped (never print these). */
  inputs: Record<string, unknown>;
  /** Inputs as the program passed them (Outputs intact), for `pulumi.isSecret`. */
  props: Record<string, unknown>;
  options: { protect?: boolean; retainOnDelete?: boolean; deleteBeforeReplace?: boolean; parent?: string; provider?: string };
}

export interface ProgramRun {
  resources: DeclaredResource[];
  outputs: Record<string, unknown>;
  /** Raw stack outputs, for `pulumi.isSecret`. */
  rawOutputs: Record<string, pulumi.Output<unknown> | unknown>;
  byType(type: string): DeclaredResource[];
  one(type: string, name: string): DeclaredResource;
}

/** Values the mocked engine returns for attributes a real provider would compute. */
function computed(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
  switch (type) {
    case "random:index/randomPassword:RandomPassword":
      return { result: `mock-${name}-${"x".repeat(Number(inputs.length) || 16)}` };
    case "aws:lightsail/staticIp:StaticIp":
      return { ipAddress: "198.51.100.7", arn: `arn:aws:lightsail:us-east-1:0:StaticIp/${inputs.name}` };
    case "aws:lightsail/instance:Instance":
      return { arn: `arn:aws:lightsail:us-east-1:0:Instance/${inputs.name}` };
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `sha256:${name}`, repoDigest: "" };
    case "command:remote:Command":
      return { stdout: "", stderr: "" };
    default:
      return {};
  }
}

const resolve = <T>(output: pulumi.Output<T>) => new Promise<T>((r) => output.apply(r));

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
export async function runProgram(stack: string, config: Record<string, string>, secretKeys: string[] = []): Promise<ProgramRun> {
  const resources: DeclaredResource[] = [];
  const options = new Map<string, DeclaredResource["options"] & { props: Record<string, unknown> }>();
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const recorded = options.get(`${args.type}::${args.name}`);
        resources.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          props: recorded?.props ?? {},
          options: recorded ? { ...recorded, props: undefined } as DeclaredResource["options"] : {},
        });
        return { id: `${args.name}-id`, state: { ...args.inputs, ...computed(args.type, args.name, args.inputs) } };
      },
      call: (args) => (args.token === "aws:route53/getZone:getZone" ? { zoneId: "Z123", name: args.inputs.name } : {}),
    },
    "timetracker",
    stack,
    true,
  );
  pulumi.runtime.setAllConfig(config, secretKeys);
  const { timetracker } = await import("../infra/program.js");
  let rawOutputs: Record<string, unknown> = {};
  await pulumi.runtime.runInPulumiStack(async () => {
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
        provider: opts.provider ? "set" : undefined,
      });
      return undefined;
    });
    rawOutputs = timetracker();
    return rawOutputs;
  });
  const outputs = (await settle(rawOutputs)) as Record<string, unknown>;
  // Let every pending registration reach the mocks.
  await new Promise((r) => setTimeout(r, 50));
  return {
    resources,
    outputs,
    rawOutputs,
    byType: (type) => resources.filter((r) => r.type === type),
    one: (type, name) => {
      const found = resources.find((r) => r.type === type && r.name === name);
      if (!found) throw new Error(`no ${type} named ${name}; have: ${resources.map((r) => `${r.type}::${r.name}`).join(", ")}`);
      return found;
    },
  };
}
