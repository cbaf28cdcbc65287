import type { Rehearsal } from "../context.js";
import { check } from "../probes.js";

/**
 * A changed build arg is a new image under a new tag, and the release tool releases it: the
 * tag is cut from every build input, so the tool never answers "already live" for an image
 * that was rebuilt under the old one.
 */
export async function buildArg(r: Rehearsal): Promise<void> {
  const { probes, deploy, backendName, containerInfo, apiHealth } = r;
  await probes.run("a changed build arg (images.backend.args) is built under a new tag and released", async () => {
    const before = String((await containerInfo(backendName)).Config.Image);
    const backend = r.current.images?.backend;
    check(backend?.source === "build", "the rehearsal's backend is not built from source");
    if (backend?.source !== "build") return "";
    const args = { ...backend.args, TT_REHEARSAL_BUILD: r.runId };
    r.current = { ...r.current, images: { ...r.current.images, backend: { ...backend, args } } };
    const result = await deploy(r.current);
    check(result.ok, result.error);
    const after = String((await containerInfo(backendName)).Config.Image);
    check(after !== before, `the backend still runs ${before}`);
    check(result.action("app-image-backend")?.action === "replace", `the backend image was not rebuilt: ${result.changed.join(", ")}`);
    await apiHealth();
    return `${before} -> ${after}`;
  });
}
