import { createHash } from "node:crypto";
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ContainerPlan, EnvValue, RenderedFile, SecretName } from "../model/plan.js";
import { DAEMON_JSON } from "../render/launch-script.js";

/** Secret values by name, each a secret Output. */
export type SecretValues = Record<SecretName, pulumi.Output<string>>;

const seconds = (n: number) => `${n}s`;

const envEntry = (key: string, value: EnvValue, secrets: SecretValues): pulumi.Input<string> =>
  typeof value === "string" ? `${key}=${value}` : pulumi.secret(pulumi.interpolate`${key}=${secrets[value.secret]}`);

/**
 * The Docker container inputs for one planned container: nothing here is computed,
 * only carried over from the Plan into the provider's shape.
 */
export function containerArgs(
  plan: ContainerPlan,
  deps: {
    imageId: pulumi.Input<string>;
    network: pulumi.Input<string>;
    secrets: SecretValues;
    files: Record<RenderedFile, string>;
    stack: string;
    hostGeneration: pulumi.Input<string>;
  },
): docker.ContainerArgs {
  const check = plan.healthCheck;
  return {
    name: plan.name,
    image: deps.imageId,
    restart: "unless-stopped",
    envs: Object.entries(plan.env).map(([key, value]) => envEntry(key, value, deps.secrets)),
    ...(plan.command ? { command: plan.command } : {}),
    ...(plan.network === "host"
      ? { networkMode: "host" }
      : { networkMode: "bridge", networksAdvanced: [{ name: deps.network, aliases: plan.aliases }] }),
    ports: plan.ports.map((p) => ({ internal: p.internal, external: p.external, ip: p.ip, protocol: "tcp" })),
    volumes: plan.volumes.map((v) => ({ volumeName: v.volume, containerPath: v.path })),
    uploads: plan.files.map((f) => ({ file: f.path, content: deps.files[f.file] })),
    healthcheck: {
      tests: check.test,
      interval: seconds(check.intervalSeconds),
      timeout: seconds(check.timeoutSeconds),
      retries: check.retries,
      startPeriod: seconds(check.startPeriodSeconds),
    },
    // Deploys block until the container reports healthy.
    wait: true,
    waitTimeout: check.startPeriodSeconds + check.retries * (check.intervalSeconds + check.timeoutSeconds) + 30,
    // Removing the container stops it with this grace first; unset, the provider kills it
    // (kreuzwerker resource_docker_container_funcs.go: destroy_grace_seconds, default 0).
    destroyGraceSeconds: plan.stopGraceSeconds,
    logDriver: DAEMON_JSON["log-driver"],
    logOpts: DAEMON_JSON["log-opts"],
    labels: [
      { label: "timetracker.stack", value: deps.stack },
      { label: "timetracker.service", value: plan.service },
      { label: "timetracker.host", value: deps.hostGeneration },
      // The provider records a healthcheck change and never applies it; a label change
      // replaces the container, so the new check reaches the running one.
      { label: "timetracker.healthcheck", value: createHash("sha256").update(JSON.stringify(check)).digest("hex").slice(0, 12) },
    ],
  };
}
