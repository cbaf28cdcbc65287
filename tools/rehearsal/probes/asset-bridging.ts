import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { PRUNE_ASSETS_COMMAND, PRUNE_ASSETS_CRON } from "../../../infra/render/kept-assets.js";
import { RELEASE_TOOL } from "../../../infra/render/release.js";
import { shellQuote } from "../../../infra/render/shell.js";
import type { Rehearsal } from "../context.js";
import { httpRequest } from "../http.js";
import { check } from "../probes.js";

/**
 * Asset bridging, as a browser sees it: a page loaded before a frontend deploy asks for the
 * script it names after the swap, and gets it (from the files the release tool kept on the
 * data disk); once app.frontend.keepAssetsHours have passed, the hourly job removes it.
 * The clock is moved on by back-dating the release records' `superseded` times on the host.
 */
export async function assetBridging(r: Rehearsal): Promise<void> {
  const { say, probes, deploy, plan, web, host, admin, appSource, runId } = r;
  const assets = plan.frontendAssets;
  say(`asset bridging: an old page's script across a frontend deploy, kept ${assets.keepHours} h`);
  const get = (path: string) => httpRequest(web, path, host);
  /** The script the page names, as the browser reads it from index.html. */
  const pageScript = async () => {
    const page = await get("/");
    check(page.status === 200, `GET / answered ${page.status}`);
    const script = new RegExp(`src="(${assets.urlPath}index-[0-9A-Za-z_-]+\\.js)"`).exec(page.body)?.[1];
    check(script, `the page names no ${assets.urlPath}index-<hash>.js: ${page.body.slice(0, 300)}`);
    return script;
  };
  const root = (command: string) => admin.ssh(`sudo -n sh -c ${shellQuote(command)}`);

  let oldScript = "";
  let newScript = "";
  let oldBody = "";
  await probes.run("an old page's script after a frontend deploy: the new frontend still answers 200 with the same file", async () => {
    oldScript = await pageScript();
    const before = await get(oldScript);
    check(before.status === 200, `GET ${oldScript} answered ${before.status} before the deploy`);
    oldBody = before.body;
    // A changed script: a new content hash, so a new file name, in a new frontend image.
    appendFileSync(join(appSource, "frontend", "src", "main.js"), `// rehearsal ${runId}: asset bridging\n`);
    const result = await deploy(r.current);
    check(result.ok, result.error);
    newScript = await pageScript();
    check(newScript !== oldScript, `the new page still names ${oldScript}: the frontend was not released with a new build`);
    const old = await get(oldScript);
    check(old.status === 200, `GET ${oldScript} (the old page's script) answered ${old.status} after the deploy`);
    check(old.body === oldBody, `GET ${oldScript} answered another file than before the deploy`);
    const fresh = await get(newScript);
    check(fresh.status === 200 && fresh.body.includes(runId), `GET ${newScript} answered ${fresh.status}`);
    return `GET / named ${oldScript}; after the deploy GET / names ${newScript}; GET ${oldScript}: ${old.status} (${old.body.length} bytes, as before); GET ${newScript}: ${fresh.status}`;
  });

  await probes.run(`after ${assets.keepHours} h the old script is gone (404), the new one stays (200)`, async () => {
    check(oldScript !== "" && newScript !== "", "the deploy before did not happen");
    // Replaced seconds ago: a prune with the stack's keep time leaves it.
    const early = await admin.ssh(`sudo -n ${RELEASE_TOOL} ${PRUNE_ASSETS_COMMAND}`);
    check(early.code === 0, `${PRUNE_ASSETS_COMMAND} exited ${early.code}: ${early.stderr.trim().slice(-300)}`);
    const kept = await get(oldScript);
    check(kept.status === 200, `GET ${oldScript} answered ${kept.status} right after the deploy's own prune`);
    // The clock moves on by the keep time: every recorded replacement is that much older.
    const back = assets.keepHours * 3600;
    const aged = await root(
      `for f in ${assets.releasesDir}/*; do awk -v back=${back} '$1 == "superseded" { printf "superseded %d\\n", $2 - back; next } { print }' "$f" > "$f.aged" && mv "$f.aged" "$f"; done`,
    );
    check(aged.code === 0, `back-dating the records failed: ${aged.stderr.trim().slice(-300)}`);
    // The hourly job, as cron runs it.
    const hourly = await root(PRUNE_ASSETS_CRON);
    check(hourly.code === 0, `${PRUNE_ASSETS_CRON} exited ${hourly.code}: ${hourly.stderr.trim().slice(-300)}`);
    const gone = await get(oldScript);
    check(gone.status === 404, `GET ${oldScript} answered ${gone.status} ${assets.keepHours} h after its release was replaced`);
    const stays = await get(newScript);
    check(stays.status === 200, `GET ${newScript} (the live page's script) answered ${stays.status}`);
    check((await pageScript()) === newScript, "the page changed");
    return `${PRUNE_ASSETS_COMMAND} at once: GET ${oldScript} ${kept.status}; ${assets.keepHours} h later, ${PRUNE_ASSETS_CRON}: GET ${oldScript} ${gone.status}, GET ${newScript} ${stays.status}`;
  });
}
