import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { SecretName, SecretPlan } from "../model/plan.js";
import type { SecretValues } from "./container.js";

export interface StackSecretsArgs {
  /** The secrets the Plan needs, by name. */
  secrets: SecretPlan[];
  /** Values of adopted secrets, read from encrypted stack config, keyed by config key. */
  adopted: Record<string, pulumi.Output<string>>;
}

/**
 * The stack's secrets. A generated secret keeps its value on every update; only its
 * rotation counter (a keeper) makes a new one. An adopted secret is used while its
 * rotation is 0, so today's database keeps the password its volume already has.
 */
export class StackSecrets extends pulumi.ComponentResource {
  public readonly values: SecretValues;

  constructor(name: string, args: StackSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("timetracker:index:StackSecrets", name, {}, opts);
    const entries = args.secrets.map((secret): [SecretName, pulumi.Output<string>] => {
      if (secret.adoptFrom && secret.rotation === 0) {
        const adopted = args.adopted[secret.adoptFrom];
        if (!adopted) throw new pulumi.RunError(`stack secret timetracker:${secret.adoptFrom} was not provided`);
        return [secret.name, pulumi.secret(adopted)];
      }
      const generated = new random.RandomPassword(
        `${name}-${secret.name}`,
        // Letters and digits only: safe in URLs, env files and SQL literals.
        { length: secret.length, special: false, keepers: { rotation: String(secret.rotation) } },
        { parent: this },
      );
      return [secret.name, pulumi.secret(generated.result)];
    });
    this.values = Object.fromEntries(entries) as SecretValues;
    this.registerOutputs({});
  }
}
