import { dirname } from "node:path";
import { READY_MARKER } from "../../../infra/render/launch-script.js";
import type { Rehearsal } from "../context.js";
import { httpRequest } from "../http.js";
import { check } from "../probes.js";

/**
 * A change that replaces the instance (a bigger bundle): the old host is wiped, the data
 * disk comes back on the new one with its rows, the new host key is pinned and the new host
 * reaches the bucket. Records the seconds from `up` to the site answering again.
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
    console.log(`     replaced: ${replacedWhy(result).join("\n               ")}`);
    return `${bundle} -> ${grown}: ${growSeconds.toFixed(1)} s from up to the site answering; rows ${names.join(", ")}; the new host key pinned; the new host reaches the bucket`;
  });
  r.current = current;
}
