import { dockerOk, exec, daemonEnv, nanoseconds } from "./docker.js";

export interface ContainerInputs {
  name: string;
  image: string;
  restart?: string;
  envs?: string[];
  command?: string[];
  networkMode?: string;
  networksAdvanced?: { name: string; aliases?: string[] }[];
  ports?: { internal: number; external?: number; ip?: string; protocol?: string }[];
  volumes?: { volumeName?: string; containerPath?: string }[];
  uploads?: { file: string; content?: string }[];
  healthcheck?: { tests?: string[]; interval?: string; timeout?: string; retries?: number; startPeriod?: string };
  wait?: boolean;
  waitTimeout?: number;
  logDriver?: string;
  logOpts?: Record<string, string>;
  labels?: { label: string; value: string }[];
}

/** The Engine API body for a container, built only from the declared inputs. */
export function containerBody(c: ContainerInputs): Record<string, unknown> {
  const portKey = (p: { internal: number; protocol?: string }) => `${p.internal}/${p.protocol ?? "tcp"}`;
  const networks = c.networksAdvanced ?? [];
  const health = c.healthcheck;
  return {
    Image: c.image,
    Env: c.envs ?? [],
    ...(c.command ? { Cmd: c.command } : {}),
    Labels: Object.fromEntries((c.labels ?? []).map((l) => [l.label, l.value])),
    ExposedPorts: Object.fromEntries((c.ports ?? []).map((p) => [portKey(p), {}])),
    ...(health
      ? {
          Healthcheck: {
            Test: health.tests,
            Interval: nanoseconds(health.interval ?? "30s"),
            Timeout: nanoseconds(health.timeout ?? "30s"),
            Retries: health.retries ?? 3,
            StartPeriod: nanoseconds(health.startPeriod ?? "0s"),
          },
        }
      : {}),
    HostConfig: {
      RestartPolicy: { Name: c.restart ?? "no" },
      NetworkMode: c.networkMode === "host" ? "host" : (networks[0]?.name ?? "bridge"),
      PortBindings: Object.fromEntries(
        (c.ports ?? []).map((p) => [portKey(p), [{ HostIp: p.ip ?? "", HostPort: String(p.external ?? "") }]]),
      ),
      Binds: (c.volumes ?? []).map((v) => `${v.volumeName}:${v.containerPath}`),
      LogConfig: { Type: c.logDriver ?? "json-file", Config: c.logOpts ?? {} },
    },
    NetworkingConfig: {
      EndpointsConfig: Object.fromEntries(networks.map((n) => [n.name, { Aliases: n.aliases ?? [] }])),
    },
  };
}

/** Waits as the provider's `wait: true` does; on failure the container is left running, as the provider leaves it. */
export async function waitHealthy(name: string, timeoutSeconds: number): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const info = await dockerOk("GET", `/containers/${name}/json`);
    const health = info.State?.Health?.Status;
    if (health === "healthy" || (!info.State?.Health && info.State?.Running)) return;
    if (!info.State?.Running && info.State?.Status === "exited") {
      const logs = await exec("docker", ["logs", "--tail", "20", name], { env: daemonEnv() });
      throw new Error(`container ${name} exited (${info.State.ExitCode}):\n${(logs.stdout + logs.stderr).trim()}`);
    }
    if (Date.now() > deadline) {
      const last = info.State?.Health?.Log?.at(-1)?.Output?.trim() ?? "";
      throw new Error(`container ${name} is not healthy after ${timeoutSeconds}s (${health}): ${last}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
