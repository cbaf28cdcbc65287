import { request } from "node:http";
import { escapeHtml } from "../../../infra/render/maintenance.js";
import type { Rehearsal } from "../context.js";
import type { Endpoint } from "../http.js";
import { check } from "../probes.js";

/** An answer as a browser sees it: status, the header a client waits by, the page. */
interface Seen {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** A request as a browser sends it (it asks for HTML), through Caddy with the site's Host. */
function browse(at: Endpoint, path: string, host: string, method = "GET"): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: at.address,
        port: at.port,
        path,
        method,
        headers: { Host: host, Accept: "text/html,application/xhtml+xml,*/*;q=0.8", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" },
        timeout: 40_000,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, body });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** Every answer of a loop of browser requests, with when it was asked (ms since the epoch). */
function browsingLoop(at: Endpoint, paths: string[], host: string) {
  const answers: { path: string; at: number; seen?: Seen; error?: string }[] = [];
  let running = true;
  const loop = async (path: string) => {
    while (running) {
      const at0 = Date.now();
      try {
        answers.push({ path, at: at0, seen: await browse(at, path, host) });
      } catch (error) {
        answers.push({ path, at: at0, error: (error as Error).message });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const loops = paths.map(loop);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return answers;
    },
  };
}

/**
 * The deploy lock people can see, and maintenance mode, on the rehearsal's host through the
 * operator's commands: a hold stops a deploy, which names the holder, and its release lets the
 * same deploy through; the maintenance page is what a browser gets while it is on, and the
 * app what it gets before and after, with no request failing on the way.
 */
export async function lockAndMaintenance(r: Rehearsal): Promise<void> {
  const { say, probes, plan, world, stackName, keyPath, machineHostKey, web, host, deploy, backendId, indented } = r;
  say("the deploy lock and maintenance mode (npm run ops -- lock, maintenance)");
  const ops = async (...command: string[]) =>
    r.hostCommand("infra/cli/ops.ts", ["--stack", stackName, "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", await machineHostKey(), ...command]);
  const firstLine = (text: string) => text.split("\n").find((l) => l.trim() !== "") ?? "";

  await probes.run("lock acquire: a deploy meets the hold, names its holder and why, and is refused; lock release: the same deploy goes through", async () => {
    const message = `rehearsal ${r.runId}: hands off, restoring by hand`;
    const acquired = await ops("lock", "acquire", "-m", message);
    check(acquired.code === 0, `lock acquire exited ${acquired.code}: ${acquired.stderr.trim().slice(-300)}`);
    const status = await ops("lock", "status");
    const held = firstLine(status.stdout);
    console.log(indented(status.stdout));
    check(status.code === 0, `lock status exited ${status.code}`);
    check(new RegExp(`^lock: held on purpose since \\S+Z \\(.+ ago\\) by \\S+ \\(ssh from [^,]+, [^)]+\\): ${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`).test(held), `unexpected status: ${held}`);

    const before = await backendId();
    r.touchBackend(1701);
    const refused = await deploy(r.current);
    check(!refused.ok, "the deploy went through while the lock was held on purpose");
    const refusal = refused.error.split("\n").find((l) => l.includes("refused: the deploy lock is held")) ?? "";
    check(refusal.includes("by a hold taken on purpose") && refusal.includes(message), `the deploy failed for another reason: ${refused.error.slice(0, 400)}`);
    check((await backendId()) === before, "the live backend was replaced under the hold");

    const released = await ops("lock", "release");
    check(released.code === 0 && released.stdout.includes("released the hold") && /^lock: free$/m.test(released.stdout), `lock release: ${released.stdout.trim()}`);
    const passed = await deploy(r.current);
    check(passed.ok, `the deploy after the release: ${passed.error}`);
    check((await backendId()) !== before, "the backend was not released after the lock was");
    const free = await ops("lock", "status");
    check(free.stdout.trim() === "lock: free", `after the deploy: ${free.stdout.trim()}`);
    return `${held.slice(0, 160)}; deploy refused: ${refusal.slice(0, 200)}; released, deployed`;
  });

  await probes.run("maintenance on: a browser gets the page (503, Retry-After, the message) on every route but /api/health; off: the app answers; no other request failed", async () => {
    const { operatorPath, retryAfterSeconds } = plan.caddy.maintenance;
    const message = `Rehearsal ${r.runId}: moving <data> & back soon`;
    const loop = browsingLoop(web, ["/", "/api/items", operatorPath], host);
    await new Promise((res) => setTimeout(res, 1000));
    const onStarted = Date.now();
    const on = await ops("maintenance", "on", "-m", message);
    const onDone = Date.now();
    check(on.code === 0, `maintenance on exited ${on.code}: ${on.stderr.trim().slice(-300)}`);
    console.log(indented(on.stdout));

    const page = await browse(web, "/", host);
    check(page.status === 503, `/ answered ${page.status} in maintenance mode`);
    check(page.retryAfter === String(retryAfterSeconds), `Retry-After: ${page.retryAfter}`);
    check(page.body.includes(escapeHtml(message)) && !page.body.includes("<data>"), `the page does not show the message as text: ${page.body.slice(0, 300)}`);
    const post = await browse(web, "/api/items", host, "POST");
    check(post.status === 503 && post.body === page.body, `POST /api/items answered ${post.status}`);
    const operator = await browse(web, operatorPath, host);
    check(operator.status === 200, `${operatorPath} answered ${operator.status} in maintenance mode`);
    const status = await ops("maintenance", "status");
    check(/^maintenance: on since \S+Z by ./.test(status.stdout) && status.stdout.includes(`  message: ${message}`), `status: ${status.stdout.trim()}`);
    await new Promise((res) => setTimeout(res, 1000));

    const offStarted = Date.now();
    const off = await ops("maintenance", "off");
    const offDone = Date.now();
    check(off.code === 0 && off.stdout.trim() === "maintenance: off", `maintenance off: ${off.code} ${off.stdout.trim()}`);
    await new Promise((res) => setTimeout(res, 1000));
    const back = await browse(web, "/", host);
    check(back.status === 200 && !back.body.includes("down for maintenance"), `/ answered ${back.status} after maintenance off`);
    const answers = await loop.stop();

    // Expected: 200 before on and after off; the page (503) on app routes from on to off (either while switching).
    const wrong = answers.filter((a) => {
      if (!a.seen) return true;
      const isPage = a.seen.status === 503 && a.seen.body === page.body;
      if (a.path === operatorPath || a.at < onStarted || a.at > offDone) return a.seen.status !== 200;
      if (a.at > onDone && a.at < offStarted) return !isPage;
      return a.seen.status !== 200 && !isPage;
    });
    check(wrong.length === 0, `${wrong.length} of ${answers.length} answers were not the expected ones: ${wrong.slice(0, 3).map((a) => `${a.path} ${a.error ?? a.seen?.status}`).join("; ")}`);
    const pages = answers.filter((a) => a.seen?.status === 503).length;
    check(pages > 0, "the loop never saw the page");
    const text = page.body.replace(/<style>[\s\S]*<\/style>/, "").replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim();
    return `page (503, Retry-After ${page.retryAfter}): "${text}"; ${answers.length} browser requests, ${pages} got the page, none failed`;
  });
}
