import { READY_MARKER } from "../../../infra/render/launch-script.js";
import { LAUNCH_RERUN_LOG } from "../../../infra/render/ready-check.js";
import type { Rehearsal } from "../context.js";
import type { PackageMirror } from "../package-mirror.js";
import { check } from "../probes.js";

/**
 * A first boot that failed anyway is recovered by the next `up`, without replacing the instance.
 * Every first boot of the rehearsal's machines holds the dpkg lock for its first 90 s
 * (tools/machine/base-image.sh), so every deploy that makes an instance already proves the
 * launch script waits for it; this probe breaks one on purpose. The package mirror is down while
 * a change that replaces the instance (the next bundle up) is deployed: the new machine's launch
 * script retries apt, gives up and writes no marker; the ready check runs it again, it fails
 * again, and the `up` fails at host-ready with the reason (recording nothing for it). With the
 * mirror back, the next `up` finds the same instance, runs the ready check again, which re-runs
 * the launch script, and the deploy goes on to a site that answers with its rows.
 */
export async function firstBootLock(r: Rehearsal, mirror: Pick<PackageMirror, "stop" | "start">): Promise<void> {
  const { probes, deploy, admin, machineNow, apiHealth, readItems, items } = r;
  const sizes = ["nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"];
  const bundle = r.current.host?.bundle ?? "small_3_0";
  const grown = bundle.replace(/^[a-z0-9]+/, (size) => sizes[sizes.indexOf(size) + 1] ?? size);
  const broken = { ...r.current, host: { ...r.current.host, bundle: grown } };
  let failedOn: string[] = [];
  try {
    await probes.run("a first boot with the package mirror down: the launch script gives up, the ready check runs it again, the up fails at host-ready with the reason", async () => {
      check(grown !== bundle, `no bundle above ${bundle} to replace the instance with`);
      const before = await machineNow();
      await mirror.stop();
      const start = Date.now();
      const result = await deploy(broken);
      const seconds = (Date.now() - start) / 1000;
      check(!result.ok, "the up succeeded with the package mirror down");
      check(result.action("host-instance")?.action === "replace", `host-instance: ${result.action("host-instance")?.action ?? "same"} (no new first boot)`);
      check(/launch script failed again/.test(result.error), `the up failed otherwise: ${result.error.slice(0, 400)}`);
      failedOn = await machineNow();
      check(failedOn.length === 1 && !before.includes(failedOn[0] ?? ""), `machines before: ${before.join(", ")}; now: ${failedOn.join(", ")}`);
      const state = await admin.ssh(`test -f ${READY_MARKER} && echo marker; sudo -n grep -h '^launch: .*failed [0-9]* times' /var/log/cloud-init-output.log ${LAUNCH_RERUN_LOG}`);
      check(!state.stdout.includes("marker"), "the launch marker exists although the mirror was down");
      check(state.stdout.trim().split("\n").length === 2, `the launch script did not give up twice (first boot, ready check): ${state.stdout}`);
      return `${bundle} -> ${grown}: failed after ${seconds.toFixed(0)} s on ${failedOn[0]}: ${result.error.split("\n").find((l) => /launch script failed again/.test(l))?.trim().slice(0, 160)}`;
    });
  } finally {
    await mirror.start();
  }
  await probes.run("the next up (mirror back) recovers that first boot through the ready check, on the same instance; rows intact", async () => {
    check(failedOn.length === 1, "the broken first boot left no machine to recover");
    const start = Date.now();
    const result = await deploy(broken);
    const seconds = (Date.now() - start) / 1000;
    check(result.ok, result.error);
    const instance = result.action("host-instance")?.action;
    check(instance === undefined, `host-instance: ${instance} (the instance was replaced or made again)`);
    check(result.action("host-ready")?.action === "create", `host-ready: ${result.action("host-ready")?.action ?? "same"} (the ready check did not run again)`);
    const now = await machineNow();
    check(now.length === 1 && now[0] === failedOn[0], `machines after the failed up: ${failedOn.join(", ")}; now: ${now.join(", ")}`);
    const host = await admin.ssh(`test -f ${READY_MARKER} && echo marker; command -v rclone; systemctl is-active docker cron; sudo -n tail -n 3 ${LAUNCH_RERUN_LOG}`);
    check(/marker/.test(host.stdout) && /rclone/.test(host.stdout) && !/inactive/.test(host.stdout), `on the host: ${host.stdout} ${host.stderr}`);
    await apiHealth();
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `rows lost: read ${names.join(", ")}`);
    return `recovered in ${seconds.toFixed(0)} s on ${now[0]} (same machine); /api/health 200; rows ${names.join(", ")}`;
  });
  r.current = broken;
}
