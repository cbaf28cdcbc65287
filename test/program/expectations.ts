import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { expect } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import { renderAll } from "../../infra/render/index.js";
import { MOCK_HOST_KEY, type DeclaredResource, type ProgramRun } from "../../tools/mock-engine.js";

export const CONTAINER = "docker:index/container:Container";
export const VOLUME = "docker:index/volume:Volume";

const containerFor = (run: ProgramRun, service: string): DeclaredResource => run.one(CONTAINER, `app-${service}`);

/** Collects every Output reachable from a resource's props. */
function outputsIn(value: unknown, found: pulumi.Output<unknown>[] = []): pulumi.Output<unknown>[] {
  if (pulumi.Output.isInstance(value)) found.push(value as pulumi.Output<unknown>);
  else if (Array.isArray(value)) value.forEach((v) => outputsIn(v, found));
  else if (value && typeof value === "object" && !(value instanceof pulumi.Resource)) Object.values(value).forEach((v) => outputsIn(v, found));
  return found;
}

const resolved = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

/** The assertions every stack's program must satisfy; each one can fail on its own. */
export async function expectWellFormedStack(plan: Plan, run: ProgramRun): Promise<void> {
  // Firewall: 80 and 443 from anywhere, 22 only from the admin CIDRs, nothing else.
  const firewall = run.one("aws:lightsail/instancePublicPorts:InstancePublicPorts", "host-firewall");
  const portInfos = firewall.inputs.portInfos as { fromPort: number; toPort: number; cidrs: string[] }[];
  expect(portInfos.map((p) => [p.fromPort, p.toPort])).toEqual([[80, 80], [443, 443], ...(plan.host.adminCidrs.length ? [[22, 22]] : [])]);
  expect(portInfos.find((p) => p.fromPort === 22)?.cidrs ?? []).toEqual(plan.host.adminCidrs);
  expect(portInfos.filter((p) => p.fromPort !== 22).every((p) => p.cidrs.includes("0.0.0.0/0"))).toBe(true);

  // Containers carry the Plan's names; app ports are on loopback; only Caddy is on the host network.
  for (const planned of Object.values(plan.containers)) {
    const c = containerFor(run, planned.service);
    expect(c.inputs.name).toBe(planned.name);
    expect(c.options.deleteBeforeReplace).toBe(true);
    expect(c.inputs.restart).toBe("unless-stopped");
    expect(c.inputs.wait).toBe(true);
    expect(c.inputs.logOpts).toEqual({ "max-size": "10m", "max-file": "3" });
    const ports = (c.inputs.ports ?? []) as { ip: string; external: number }[];
    if (planned.service === "caddy") {
      expect(c.inputs.networkMode).toBe("host");
      expect(ports).toEqual([]);
    } else {
      expect(ports.every((p) => p.ip === "127.0.0.1")).toBe(true);
      expect(c.inputs.networksAdvanced).toEqual([{ name: plan.network, aliases: planned.aliases }]);
    }
  }
  expect(
    (containerFor(run, "backend").inputs.ports as { external: number }[]).map((p) => p.external),
  ).toEqual([plan.containers.backend.ports[0]?.external]);

  // Volumes keep their data in folders on the data disk, and survive the stack.
  const volumes = run.byType(VOLUME);
  expect(volumes.map((v) => v.inputs.name).sort()).toEqual(Object.values(plan.volumes).sort());
  for (const v of volumes) {
    expect(v.options.retainOnDelete).toBe(true);
    const key = (Object.keys(plan.volumes) as (keyof Plan["volumes"])[]).find((k) => plan.volumes[k] === v.inputs.name);
    expect(v.inputs.driverOpts).toEqual({ type: "none", o: "bind", device: plan.volumePaths[key!] });
    expect(String(v.inputs.driverOpts && (v.inputs.driverOpts as { device: string }).device).startsWith(`${plan.host.dataDisk.mount}/`)).toBe(true);
  }

  // What outlives the instance is protected and kept on every stack; the instance is not.
  for (const [type, name] of [["aws:lightsail/disk:Disk", "host-disk"], ["aws:lightsail/staticIp:StaticIp", "host-ip"]] as const) {
    expect(run.one(type, name).options).toMatchObject({ protect: true, retainOnDelete: true });
  }
  expect(run.one("aws:lightsail/disk:Disk", "host-disk").inputs).toMatchObject({ name: plan.host.dataDisk.name, sizeInGb: plan.host.dataDisk.sizeGb });
  expect(run.one("aws:lightsail/instance:Instance", "host-instance").options.protect).toBeFalsy();
  // An edit of the firewall must not close 80/443 by deleting the old rule set (pulumi-aws#1511).
  expect(firewall.options.retainOnDelete).toBe(true);

  // The files placed into containers are the rendered files, byte for byte.
  const files = renderAll(plan);
  const upload = (service: string) => (containerFor(run, service).inputs.uploads as { file: string; content: string }[])[0];
  expect(upload("caddy")).toEqual({ file: "/etc/caddy/Caddyfile", content: files.Caddyfile });
  expect(upload("frontend")).toEqual({ file: "/etc/nginx/nginx.conf", content: files["nginx.conf"] });
  expect(run.one("aws:lightsail/instance:Instance", "host-instance").inputs.userData).toBe(files["launch.sh"]);

  // Order: the backend starts only after the credential check, which runs after the database.
  expect(containerFor(run, "backend").options.dependsOn).toContain("app-db-credentials");
  expect(run.one("command:remote:Command", "app-db-credentials").options.dependsOn).toContain("app-db");
  expect(run.one("pulumi:providers:docker", "host-docker").options.dependsOn).toContain("host-setup");
  // Host keys: the first contact pins the instance's key; every later SSH connection checks it.
  for (const command of run.byType("command:remote:Command")) {
    const { hostKey } = command.inputs.connection as { hostKey?: string };
    expect(hostKey, command.name).toBe(command.name === "host-ready" ? undefined : MOCK_HOST_KEY);
  }
  const sshOpts = run.one("pulumi:providers:docker", "host-docker").inputs.sshOpts;
  const opts = (typeof sshOpts === "string" ? JSON.parse(sshOpts) : sshOpts) as string[];
  expect(opts).toContain("StrictHostKeyChecking=yes");
  const knownHosts = opts.find((o) => o.startsWith("UserKnownHostsFile="))?.slice("UserKnownHostsFile=".length) ?? "";
  expect(readFileSync(knownHosts, "utf8")).toBe(`198.51.100.7 ${MOCK_HOST_KEY}\n`);
  // The app's own host commands use what the host setup installs (the disk check, the docker group).
  for (const name of ["app-disk-check", "app-db-credentials"]) expect(run.one("command:remote:Command", name).options.dependsOn).toContain("host-setup");
  expect(run.one("command:remote:Command", "host-setup").inputs.stdin).toBe(files["host-setup.sh"]);

  // Secrets: never in clear in any input the engine receives unmarked, nor in plain outputs.
  expect(run.secretValues.length).toBeGreaterThanOrEqual(3);
  for (const r of run.resources) {
    for (const [key, value] of Object.entries(r.inputs)) {
      const text = JSON.stringify(value);
      if (run.secretValues.some((s) => text.includes(JSON.stringify(s).slice(1, -1)))) {
        expect(r.secretPaths, `${r.type} ${r.name}.${key} carries a secret`).toContain(key);
      }
    }
    for (const output of outputsIn(r.props)) {
      const text = JSON.stringify(await resolved(output));
      if (run.secretValues.some((s) => text?.includes(JSON.stringify(s).slice(1, -1)))) {
        expect(await pulumi.isSecret(output), `${r.type} ${r.name} has a secret in a non-secret Output`).toBe(true);
      }
    }
  }
  for (const [name, raw] of Object.entries(run.rawOutputs)) {
    const text = JSON.stringify(run.outputs[name]);
    const holdsSecret = run.secretValues.some((s) => text.includes(s));
    expect(pulumi.Output.isInstance(raw) ? await pulumi.isSecret(raw as pulumi.Output<unknown>) : false, `output ${name}`).toBe(holdsSecret);
  }
  expect(await pulumi.isSecret(run.rawOutputs.databasePassword as pulumi.Output<string>)).toBe(true);
}
