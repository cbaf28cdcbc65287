import { copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { READY_MARKER } from "../../../infra/render/launch-script.js";
import type { Rehearsal } from "../context.js";
import { httpRequest } from "../http.js";
import { check } from "../probes.js";
import { execOk } from "../docker.js";
import type { DeployResult } from "../operator.js";

/** The objects on a host that go with its instance, and what each must be deleted before (it depends on them). */
const OLD_HOST_DELETES: Record<string, string[]> = {
  "app-release-frontend": ["app-caddy", "app-network"],
  "app-release-backend": ["app-caddy", "app-db", "app-redis", "app-network"],
  "app-caddy": ["app-network"],
  "app-redis": ["app-network"],
  "app-db": ["app-network"],
  "app-network": [],
};
const RELEASES = ["app-release-frontend", "app-release-backend"];

/**
 * Pulumi's order for a delete-first replacement of the instance (step-order.ts): the
 * objects on the old host deleted there first, dependents before what they depend on, the
 * Docker ones through the provider settings the state held (pinning the OLD host key),
 * then the instance, and only then the creates, the Docker ones pinning the new key.
 */
function checkOldHostDeletedFirst(result: DeployResult, oldKey: string, newKey: string): string[] {
  const calls = result.progress.calls;
  const at = (name: string) => calls.findIndex((c) => c === `delete ${name}` || c.startsWith(`delete ${name} `));
  const instanceDeleted = at("host-instance");
  check(instanceDeleted > 0, `no delete of the old instance: ${calls.join("; ")}`);
  for (const [name, before] of Object.entries(OLD_HOST_DELETES)) {
    check(at(name) >= 0 && at(name) < instanceDeleted, `${name} was not deleted before the old instance: ${calls.slice(0, instanceDeleted + 1).join("; ")}`);
    for (const dependency of before) check(at(name) < at(dependency), `${name} was deleted after ${dependency}, which it depends on`);
  }
  const tail = (key: string) => `…${key.split(" ").at(-1)?.slice(-8)}`;
  const dockerDeletes = calls.slice(0, instanceDeleted).filter((c) => c.includes(" via "));
  check(dockerDeletes.length >= 4 && dockerDeletes.every((c) => c.endsWith(tail(oldKey))), `a delete on the old host did not go through its old settings: ${dockerDeletes.join("; ")}`);
  const dockerCreates = calls.slice(instanceDeleted).filter((c) => c.startsWith("create ") && c.includes(" via "));
  check(dockerCreates.length >= 4 && dockerCreates.every((c) => c.endsWith(tail(newKey))), `a create on the new host did not pin its key: ${dockerCreates.join("; ")}`);
  return calls;
}

/**
 * Changes that replace the instance, each `up` a fresh operator with nothing but the
 * state and its ssh-agent: a bigger bundle (the old host's objects deleted there first, in
 * Pulumi's order, through the old settings; the old host wiped; the data disk back on the
 * new one with its rows; the new host key pinned; the bucket reached), then a new SSH key
 * (refused before anything is deleted while the agent lacks the old key; done with both).
 * Records the seconds from `up` to the site answering again.
 */
export async function hostReplacement(r: Rehearsal): Promise<void> {
  const { probes, deploy, admin, web, host, items, machineNow, machineHostKey, pinnedHostKey, apiHealth, readItems, backupTool, replacedWhy } = r;
  let current = r.current;
  /** A file on the old instance's own disk, beside the launch marker: a new instance must not have it. */
  const OLD_HOST_FILE = `${dirname(READY_MARKER)}/old-host-was-here`;
  await probes.run("grow the bundle: the instance IS replaced (old host wiped), the disk comes back, rows intact, site answers", async () => {
    const [oldMachine] = await machineNow();
    const oldKey = await machineHostKey();
    await admin.ssh(`sudo -n touch ${OLD_HOST_FILE}`);
    const bundle = current.host?.bundle ?? "small_3_0";
    const sizes = ["nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"];
    const grown = bundle.replace(/^[a-z0-9]+/, (size) => sizes[sizes.indexOf(size) + 1] ?? size);
    current = { ...current, host: { ...current.host, bundle: grown } };
    const start = Date.now();
    const result = await deploy(current);
    check(result.ok, result.error);
    let answered = false;
    while (!answered && Date.now() - start < 300_000) answered = (await httpRequest(web, "/api/health", host).catch(() => ({ status: 0 }))).status === 200;
    const growSeconds = (Date.now() - start) / 1000;
    r.measurements.growSeconds = growSeconds;
    const machines = await machineNow();
    check(oldMachine && !machines.includes(oldMachine), `the old machine ${oldMachine} still exists`);
    check(result.action("host-instance")?.action === "replace", "the instance was not replaced");
    check((await admin.ssh(`test -e ${OLD_HOST_FILE} && echo kept || echo wiped`)).stdout.trim() === "wiped", "the old host's files are on the new one");
    const newKey = await machineHostKey();
    check(newKey !== oldKey && pinnedHostKey() === newKey, "the new instance's host key is not the one pinned");
    await apiHealth();
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
    // The new instance gets the bucket's key again (and Lightsail's grant with it): it can copy and restore from day one.
    check(result.action("backups-credentials")?.action === "replace", "the new host was not sent the bucket's credentials");
    check(result.action("backups-bucket-access")?.action === "replace", "the bucket's access grant was not replaced with the instance");
    const status = (await backupTool("status")).stdout;
    check(/^newest bucket copy: \S+-\w+\.dump/m.test(status), `the new host does not reach the bucket: ${status.trim()}`);
    const calls = checkOldHostDeletedFirst(result, oldKey, newKey);
    console.log(`     provider calls, in order:\n       ${calls.join("\n       ")}`);
    console.log(`     replaced: ${replacedWhy(result).join("\n               ")}`);
    return `${bundle} -> ${grown}: ${growSeconds.toFixed(1)} s from up to the site answering; rows ${names.join(", ")}; the new host key pinned; the new host reaches the bucket`;
  });
  await probes.run("a new SSH key replaces the instance: without the old key in the agent nothing is deleted; with both keys the old host's objects go first and the site comes back", async () => {
    const oldHostKey = await machineHostKey();
    const before = await machineNow();
    const keptOld = join(r.workdir, "id_ed25519.old");
    copyFileSync(r.keyPath, keptOld);
    copyFileSync(`${r.keyPath}.pub`, `${keptOld}.pub`);
    const next = join(r.workdir, "id_ed25519.next");
    await execOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `rehearsal-next@${r.stackName}`, "-f", next]);
    // The operator's key file now holds the new key (the administrator's access follows it).
    copyFileSync(next, r.keyPath);
    copyFileSync(`${next}.pub`, `${r.keyPath}.pub`);
    let refusal = "";
    let outcome: DeployResult | undefined;
    let seconds = 0;
    let rotated = false;
    try {
      const refused = await deploy(current);
      check(!refused.ok, "the key change went through without the old key");
      check(/Permission denied|failed \d+ times/.test(refused.error), `unexpected failure: ${refused.error}`);
      // The first delete on the old host is the one that fails: nothing was deleted.
      const deletes = refused.progress.calls.filter((c) => c.startsWith("delete "));
      check(deletes.length === 1 && RELEASES.some((name) => deletes[0] === `delete ${name}`), `deletes before the refusal: ${deletes.join("; ")}`);
      check(JSON.stringify(await machineNow()) === JSON.stringify(before), "the old host is gone");
      const stillServing = await httpRequest(web, "/api/health", host);
      check(stillServing.status === 200, `the site answered ${stillServing.status} after the refused key change`);
      refusal = refused.error.split("\n")[0]?.slice(0, 100) ?? "";
      const start = Date.now();
      const result = await deploy(current, {}, { keys: [r.keyPath, keptOld] });
      seconds = (Date.now() - start) / 1000;
      check(result.ok, result.error);
      rotated = true;
      check(result.action("host-key")?.action === "replace" && result.action("host-instance")?.action === "replace", "the key pair and the instance were not replaced");
      outcome = result;
    } finally {
      // A key change that did not happen leaves the old key the one the host accepts.
      if (!rotated) {
        copyFileSync(keptOld, r.keyPath);
        copyFileSync(`${keptOld}.pub`, `${r.keyPath}.pub`);
      }
    }
    const result = outcome as DeployResult;
    const newHostKey = await machineHostKey();
    checkOldHostDeletedFirst(result, oldHostKey, newHostKey);
    await apiHealth();
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
    return `refused with only the new key (${refusal}), site kept answering; with both keys: replaced in ${seconds.toFixed(1)} s, rows ${names.join(", ")}`;
  });
  r.current = current;
}
