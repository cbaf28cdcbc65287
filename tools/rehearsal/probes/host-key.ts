import type { Rehearsal } from "../context.js";
import { check } from "../probes.js";

/**
 * The host key is pinned only when Lightsail reports it (the program asks the stand-in
 * Lightsail API, which reads the machine's key directly, not over SSH). Here the API reports
 * another machine's key, as if another machine answered at the static IP: the deploy stops
 * at the check, nothing reaches the host, and the site keeps answering.
 */
export async function hostKey(r: Rehearsal): Promise<void> {
  const { probes, deploy, apiHealth } = r;
  await probes.run("a host key Lightsail does not report is refused before anything is sent to the host", async () => {
    r.world.reportedHostKeys = "another";
    let refused;
    try {
      refused = await deploy(r.current);
    } finally {
      delete r.world.reportedHostKeys;
    }
    check(!refused.ok, "the deploy passed although Lightsail reports another host key");
    check(refused.error.includes("host key verification failed"), `the deploy failed for another reason: ${refused.error}`);
    check(refused.changed.length === 0, `the refused deploy changed ${refused.changed.join(", ")}`);
    await apiHealth();
    const again = await deploy(r.current);
    check(again.ok, again.error);
    return refused.error.split(". ")[0] ?? "";
  });
}
