import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planFor } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { renderHostSetup } from "../../infra/render/host-setup.js";
import { PRUNE_ASSETS_COMMAND, PRUNE_ASSETS_CRON } from "../../infra/render/kept-assets.js";
import { renderNginxConf } from "../../infra/render/nginx-conf.js";
import { RELEASE_TOOL, releaseSpec, renderReleaseTool } from "../../infra/render/release.js";
import { catalog } from "../../stacks/catalog.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { copyOf, planFromDefinition, problemAt, problemsOf, REPO_ROOT, run, tempDir } from "./helpers.js";

/**
 * Asset bridging: each frontend release's hashed files are kept on the data disk and served
 * after a newer release replaced it, for app.frontend.keepAssetsHours (infra/render/kept-assets.ts,
 * nginx-conf.ts). The release tool's part runs in bash against a stand-in `docker` and `date`
 * (no Docker daemon here); nginx's part is the real nginx serving the rendered nginx.conf.
 */

const { dir, cleanup } = tempDir("kept-assets");
afterAll(cleanup);

const staging = planFor(catalog, "staging");
const HOUR = 3600;

describe("app.frontend.keepAssetsHours", () => {
  it("defaults to a day, reaches the plan, the release tool and the hourly job", async () => {
    expect(staging.frontendAssets.keepHours).toBe(24);
    const plan = planFromDefinition({ ...stagingDefinition, app: { ...stagingDefinition.app, frontend: { keepAssetsHours: 72 } } });
    expect(plan.frontendAssets.keepHours).toBe(72);
    expect(await bash(renderReleaseTool(plan), `printf '%s' "$keep_assets_hours"`)).toBe("72");
    const setup = renderHostSetup(plan);
    expect(setup).toContain(`put ${PRUNE_ASSETS_CRON} 0755 <<'SH' || true\n#!/bin/sh\n${RELEASE_TOOL} ${PRUNE_ASSETS_COMMAND} 2>&1 | logger -t timetracker-release\nSH\n`);
  });

  it.each([0, 721, 1.5])("refuses %s at its field, in one line", (hours) => {
    const problems = problemsOf([{ ...stagingDefinition, app: { ...stagingDefinition.app, frontend: { keepAssetsHours: hours } } }]);
    expect(problems).toEqual([problemAt("staging.app.frontend.keepAssetsHours")]);
    expect(problems[0]!.message).not.toContain("\n");
  });

  it("a new keep time does not release a new frontend: nginx.conf and the container are the same", () => {
    const plan = planFromDefinition({ ...stagingDefinition, app: { ...stagingDefinition.app, frontend: { keepAssetsHours: 5 } } });
    const before = planFromDefinition(stagingDefinition);
    expect(releaseSpec(plan, "frontend")).toBe(releaseSpec(before, "frontend"));
    expect(renderNginxConf(plan)).toBe(renderNginxConf(before));
  });

  it("the frontend mounts the kept files read-only where nginx falls back to them; host setup makes the folders", () => {
    const assets = staging.frontendAssets;
    expect(staging.containers.frontend.volumes).toEqual([{ volume: assets.filesDir, path: assets.keptDir, readOnly: true }]);
    expect(assets.filesDir.startsWith(`${staging.host.dataDisk.mount}/`)).toBe(true);
    expect(assets.keptDir).toBe(`${assets.keptRoot}${assets.urlPath.replace(/\/$/, "")}`);
    expect(assets.imageDir).toBe(`${assets.webRoot}${assets.urlPath.replace(/\/$/, "")}`);
    const setup = renderHostSetup(staging);
    expect(setup).toContain(`install -d -m 0755 ${assets.hostDir} ${assets.filesDir}\n`);
    expect(setup).toContain(`install -d -m 0700 ${assets.releasesDir}\n`);
  });
});

/** Where the tool stops defining and starts acting (as in release.test.ts). */
const MAIN = '\ninstall -d -m 0700 "$state_dir"\n';
const definitions = (tool: string) => tool.slice(0, tool.indexOf(MAIN) + 1);

let scripts = 0;
/** Runs bash on the tool's definitions followed by `code`; fails the test on a non-zero exit. */
async function bash(tool: string, code: string): Promise<string> {
  const result = await bashResult(tool, code);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  return result.stdout;
}
async function bashResult(tool: string, code: string) {
  expect(tool.indexOf(MAIN), "the tool's main section").toBeGreaterThan(0);
  const file = join(dir, `script-${(scripts += 1)}.sh`);
  writeFileSync(file, `${definitions(tool)}\n${code}\n`);
  return run("bash", [file]);
}

describe("the release tool keeps each frontend release's files, and prunes them by the time it recorded", () => {
  const tool = renderReleaseTool(staging);
  const frontend = staging.containers.frontend;

  /**
   * A host in a folder: `containers/<name>/image` and `containers/<name>/files/` stand for a
   * container and its image's assets folder; `now` is the clock; `calls` what docker was asked.
   */
  const host = (name: string) => {
    const root = join(dir, name);
    mkdirSync(join(root, "containers"), { recursive: true });
    writeFileSync(join(root, "now"), "1000000\n");
    return root;
  };
  const container = (root: string, name: string, image: string, files: Record<string, string> | undefined) => {
    const at = join(root, "containers", name);
    rmSync(at, { recursive: true, force: true });
    mkdirSync(at, { recursive: true });
    writeFileSync(join(at, "image"), `${image}\n`);
    if (!files) return;
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(at, "files", path, ".."), { recursive: true });
      writeFileSync(join(at, "files", path), content);
    }
  };
  const setClock = (root: string, seconds: number) => writeFileSync(join(root, "now"), `${seconds}\n`);
  const kept = (root: string) => (existsSync(join(root, "kept", "assets")) ? readdirSync(join(root, "kept", "assets"), { recursive: true, encoding: "utf8" }).sort() : []);
  const records = (root: string) => {
    const at = join(root, "kept", "releases");
    return existsSync(at) ? readdirSync(at).sort().map((f) => readFileSync(join(at, f), "utf8")) : [];
  };
  const calls = (root: string) => (existsSync(join(root, "calls")) ? readFileSync(join(root, "calls"), "utf8").trim().split("\n") : []);

  // Bash's own braces are written %{ } here, so that the template leaves them alone.
  const stubs = (root: string, service = "frontend") =>
    String.raw`
state='${root}'
docker() {
  printf '%s\n' "$*" >> "$state/calls"
  case "$1" in
    cp)
      [ "$2" = -L ] && [ "%{3#*:}" = "$assets_image_dir/." ] || { echo "unexpected docker $*" >&2; return 9; }
      local from=$state/containers/%{3%%:*}/files
      [ -d "$from" ] || { echo "Error response from daemon: Could not find the file $assets_image_dir in container %{3%%:*}" >&2; return 1; }
      cp -R "$from/." "$4" ;;
    inspect)
      [ -d "$state/containers/%{@: -1}" ] || return 1
      if [ "$2" = -f ]; then cat "$state/containers/$4/image"; fi ;;
    *) echo "unexpected docker $*" >&2; return 9 ;;
  esac
}
date() { [ "$*" = +%s ] || { echo "unexpected date $*" >&2; return 9; }; cat "$state/now"; }
assets_dir=$state/kept
assets_files=$assets_dir/assets
assets_releases=$assets_dir/releases
service=${service}
service_spec ${service}
`.replaceAll("%{", "${");

  const step = (root: string, code: string, service?: string) => bash(tool, `${stubs(root, service)}\n${code}`);
  const image = (n: number) => `${frontend.name}:${"v".repeat(n)}${n}`;
  const release = (root: string, n: number) => step(root, `keep_assets '${frontend.release!.candidateName}' '${image(n)}'\nassets_went_live '${image(n)}'`);

  it("serves a replaced release's files for keepHours after the swap (shared files longer), then drops them; times are the recorded ones, not the files'", async () => {
    const root = host("bridge");
    const candidate = frontend.release!.candidateName;
    container(root, candidate, image(1), { "index-aaaa1111.js": "one", "vendor-cccc3333.js": "shared", "fonts/a-dddd4444.woff2": "font" });
    const first = await release(root, 1);
    expect(first).toBe(`frontend: kept the 3 hashed files of ${image(1)} in ${root}/kept/assets, served 24 h after a newer release\n`);
    expect(calls(root)).toHaveLength(1);
    expect(calls(root)[0]).toMatch(new RegExp(`^cp -L ${candidate}:${staging.frontendAssets.imageDir}/\\. ${root}/kept/incoming\\.\\w{6}$`));
    expect(records(root)).toEqual([`image ${image(1)}\nfile fonts/a-dddd4444.woff2\nfile index-aaaa1111.js\nfile vendor-cccc3333.js\n`]);

    const swapAt = 2_000_000;
    setClock(root, swapAt);
    container(root, candidate, image(2), { "index-bbbb2222.js": "two", "vendor-cccc3333.js": "shared" });
    await release(root, 2);
    expect(kept(root)).toEqual(["fonts", "fonts/a-dddd4444.woff2", "index-aaaa1111.js", "index-bbbb2222.js", "vendor-cccc3333.js"]);
    expect(records(root)).toContainEqual(`image ${image(1)}\nfile fonts/a-dddd4444.woff2\nfile index-aaaa1111.js\nfile vendor-cccc3333.js\nsuperseded ${swapAt}\n`);
    expect(records(root)).toContainEqual(`image ${image(2)}\nfile index-bbbb2222.js\nfile vendor-cccc3333.js\n`);
    // The files and records look ancient to the filesystem: only the recorded time counts.
    for (const f of readdirSync(join(root, "kept"), { recursive: true, encoding: "utf8" })) utimesSync(join(root, "kept", f), new Date(0), new Date(0));

    setClock(root, swapAt + 24 * HOUR - 1);
    const early = await step(root, `prune_assets "$keep_assets_hours"`);
    expect(early).toBe("frontend assets: 0 releases and 0 files pruned (replaced at least 24 h ago); 4 files kept\n");
    expect(kept(root)).toContain("index-aaaa1111.js");

    setClock(root, swapAt + 24 * HOUR);
    const due = await step(root, `prune_assets "$keep_assets_hours"`);
    expect(due).toBe(`frontend assets: ${image(1)} was replaced 24 h ago: its files go\nfrontend assets: 1 releases and 2 files pruned (replaced at least 24 h ago); 2 files kept\n`);
    // The shared file stays: the live release names it too. The emptied folder goes.
    expect(kept(root)).toEqual(["index-bbbb2222.js", "vendor-cccc3333.js"]);
    expect(records(root)).toEqual([`image ${image(2)}\nfile index-bbbb2222.js\nfile vendor-cccc3333.js\n`]);

    // The live release is never pruned, however old and whatever the hours.
    setClock(root, swapAt + 1000 * HOUR);
    await step(root, "prune_assets 0");
    expect(kept(root)).toEqual(["index-bbbb2222.js", "vendor-cccc3333.js"]);
    // The copies are readable by nginx's workers whatever the image's modes were.
    expect(readFileSync(join(root, "kept", "assets", "index-bbbb2222.js"), "utf8")).toBe("two");
  });

  it("a rollback makes the older release live again and starts the clock of the one it replaced", async () => {
    const root = host("rollback");
    const candidate = frontend.release!.candidateName;
    container(root, candidate, image(1), { "index-aaaa1111.js": "one" });
    await release(root, 1);
    setClock(root, 1_100_000);
    container(root, candidate, image(2), { "index-bbbb2222.js": "two" });
    await release(root, 2);
    setClock(root, 1_200_000);
    container(root, candidate, image(1), { "index-aaaa1111.js": "one" });
    await release(root, 1);
    expect(records(root).sort()).toEqual([`image ${image(1)}\nfile index-aaaa1111.js\n`, `image ${image(2)}\nfile index-bbbb2222.js\nsuperseded 1200000\n`].sort());
    setClock(root, 1_200_000 + 24 * HOUR);
    await step(root, `prune_assets "$keep_assets_hours"`);
    expect(kept(root)).toEqual(["index-aaaa1111.js"]);

    // Live again without a fresh copy (docker cp failed this time): its record is live all the same.
    container(root, candidate, image(2), { "index-bbbb2222.js": "two" });
    await release(root, 2);
    setClock(root, 1_300_000);
    container(root, candidate, image(1), undefined);
    await release(root, 1);
    expect(records(root).sort()).toEqual([`image ${image(1)}\nfile index-aaaa1111.js\n`, `image ${image(2)}\nfile index-bbbb2222.js\nsuperseded 1300000\n`].sort());
  });

  it("keeps the live frontend's files once when it has no record (released before this tool kept files)", async () => {
    const root = host("live");
    container(root, frontend.name, image(7), { "index-eeee5555.js": "live" });
    expect(await step(root, "keep_live_assets")).toBe(`frontend: kept the 1 hashed files of ${image(7)} in ${root}/kept/assets, served 24 h after a newer release\n`);
    expect(await step(root, "keep_live_assets")).toBe("");
    expect(calls(root).filter((c) => c.startsWith("cp "))).toHaveLength(1);
    expect(kept(root)).toEqual(["index-eeee5555.js"]);
    // No live frontend at all (a first deploy): nothing to keep, nothing asked of docker but whether it exists.
    const empty = host("no-live");
    expect(await step(empty, "keep_live_assets")).toBe("");
    expect(calls(empty)).toEqual([`inspect ${frontend.name}`]);
  });

  it("an image without an assets folder is released with nothing kept, and supersedes the others", async () => {
    const root = host("no-assets");
    const candidate = frontend.release!.candidateName;
    container(root, candidate, image(1), { "index-aaaa1111.js": "one" });
    await release(root, 1);
    setClock(root, 1_500_000);
    container(root, candidate, image(2), undefined);
    const out = await release(root, 2);
    expect(out).toBe(
      `frontend: nothing kept of ${image(2)}: no ${staging.frontendAssets.imageDir} in it (Error response from daemon: Could not find the file ${staging.frontendAssets.imageDir} in container ${candidate})\n`,
    );
    expect(records(root)).toEqual([`image ${image(1)}\nfile index-aaaa1111.js\nsuperseded 1500000\n`]);
    expect(readdirSync(join(root, "kept")).filter((f) => f.startsWith("incoming"))).toEqual([]);
  });

  it("prune clears what a killed run left (a copy not yet recorded, a record not yet in place) and refuses hours that are not a whole number", async () => {
    const root = host("leftovers");
    const candidate = frontend.release!.candidateName;
    container(root, candidate, image(1), { "index-aaaa1111.js": "one" });
    await release(root, 1);
    mkdirSync(join(root, "kept", "incoming.Ab12Cd"), { recursive: true });
    writeFileSync(join(root, "kept", "incoming.Ab12Cd", "index-ffff6666.js"), "half");
    writeFileSync(join(root, "kept", "assets", "index-ffff6666.js"), "half");
    writeFileSync(join(root, "kept", "releases", "0123456789abcdef.new"), "image half\nfile index-ffff6666.js\n");
    expect(await step(root, `prune_assets "$keep_assets_hours"`)).toBe("frontend assets: 0 releases and 1 files pruned (replaced at least 24 h ago); 1 files kept\n");
    expect(kept(root)).toEqual(["index-aaaa1111.js"]);
    expect(readdirSync(join(root, "kept")).sort()).toEqual(["assets", "releases"]);
    expect(readdirSync(join(root, "kept", "releases"))).toHaveLength(1);

    const refused = await bashResult(tool, `${stubs(root)}\nprune_assets 1h`);
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({
      code: 1,
      stderr: `refused: usage: timetracker-release ${PRUNE_ASSETS_COMMAND} [<hours>]: '1h' is not a whole number of hours\n`,
    });
  });

  it("the backend's releases keep nothing", async () => {
    const root = host("backend");
    container(root, "any", image(1), { "index-aaaa1111.js": "one" });
    expect(await step(root, `keep_assets any '${image(1)}'\nkeep_live_assets`, "backend")).toBe("");
    expect(calls(root)).toEqual([]);
  });

  it("wires them into a release: the candidate's files before it starts, the live one's before the candidate, records and prune after the swap; prune-assets [<hours>]", () => {
    const body = (fn: string) => tool.slice(tool.indexOf(`\n${fn}() {`), tool.indexOf("\n}\n", tool.indexOf(`\n${fn}() {`)));
    const order = (text: string, ...parts: string[]) => parts.map((p) => text.indexOf(p));
    const start = order(body("start_candidate"), 'put_files "$service" "$candidate"', 'keep_assets "$candidate" "$image"', 'docker start "$candidate"');
    expect(start.every((at, i) => at > 0 && (i === 0 || at > start[i - 1]!))).toBe(true);
    const release = order(body("release"), "keep_live_assets", "start_candidate", "swap");
    expect(release.every((at, i) => at > 0 && (i === 0 || at > release[i - 1]!))).toBe(true);
    const swap = order(body("swap"), 'docker rename "$candidate" "$name"', 'assets_went_live "$image"', 'prune_assets "$keep_assets_hours"');
    expect(swap.every((at, i) => at > 0 && (i === 0 || at > swap[i - 1]!))).toBe(true);
    expect(tool).toContain(`  ${PRUNE_ASSETS_COMMAND})\n    [ "$#" -le 2 ] || refuse "usage: timetracker-release ${PRUNE_ASSETS_COMMAND} [<hours>]"\n    prune_assets "\${2:-$keep_assets_hours}"\n`);
  });
});

describe("nginx serves the image's assets, else the kept ones, with long cache headers; index.html is never cached", () => {
  /** A free loopback port, for one real nginx. */
  const freePort = () =>
    new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });

  const get = (port: number, path: string) =>
    new Promise<{ status: number; body: string; cacheControl: string | undefined }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, timeout: 5000 }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, cacheControl: res.headers["cache-control"] }));
      });
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", reject);
      req.end();
    });

  it("as rendered for staging (paths and port moved into a temporary folder)", async () => {
    const root = join(dir, "nginx");
    const plan: Plan = copyOf(staging);
    plan.frontendAssets.webRoot = join(root, "html");
    plan.frontendAssets.keptRoot = join(root, "kept");
    plan.containers.frontend.listenPort = await freePort();
    const write = (path: string, text: string) => {
      mkdirSync(join(path, ".."), { recursive: true });
      writeFileSync(path, text);
    };
    const assetsUnder = (rootDir: string) => join(rootDir, plan.frontendAssets.urlPath);
    write(join(plan.frontendAssets.webRoot, "index.html"), "<script src=/assets/index-bbbb2222.js></script>");
    write(join(assetsUnder(plan.frontendAssets.webRoot), "index-bbbb2222.js"), "new");
    write(join(assetsUnder(plan.frontendAssets.webRoot), "vendor-cccc3333.js"), "from the image");
    write(join(assetsUnder(plan.frontendAssets.keptRoot), "index-aaaa1111.js"), "old");
    write(join(assetsUnder(plan.frontendAssets.keptRoot), "vendor-cccc3333.js"), "from the kept files");
    // nginx's workers run as nobody: the temporary folders must be readable by them.
    for (const d of [dir, root, ...readdirSync(root, { recursive: true, encoding: "utf8" }).map((f) => join(root, f))]) chmodSync(d, 0o755);

    const rendered = renderNginxConf(plan);
    const conf = rendered.replace("pid /tmp/nginx.pid;", `pid ${root}/nginx.pid;`);
    expect(conf).not.toBe(rendered);
    writeFileSync(join(root, "nginx.conf"), conf);
    // Files, not pipes to Node: nginx reopens /dev/stderr (helpers.ts, run).
    const out = openSync(join(root, "nginx.out"), "w");
    const nginx: ChildProcess = spawn("nginx", ["-c", join(root, "nginx.conf"), "-g", "daemon off;"], { stdio: ["ignore", out, out] });
    closeSync(out);
    try {
      const port = plan.containers.frontend.listenPort;
      let up = false;
      for (let i = 0; i < 50 && !up; i++) {
        up = await get(port, "/healthz").then(
          (r) => r.status === 200,
          () => false,
        );
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      expect(up, readFileSync(join(root, "nginx.out"), "utf8")).toBe(true);

      const immutable = "public, max-age=31536000, immutable";
      expect(await get(port, "/assets/index-bbbb2222.js")).toEqual({ status: 200, body: "new", cacheControl: immutable });
      expect(await get(port, "/assets/index-aaaa1111.js")).toEqual({ status: 200, body: "old", cacheControl: immutable });
      // The image comes first.
      expect(await get(port, "/assets/vendor-cccc3333.js")).toEqual({ status: 200, body: "from the image", cacheControl: immutable });
      // Neither: a 404, not the page, and nothing a browser would keep.
      expect(await get(port, "/assets/index-99999999.js")).toMatchObject({ status: 404, cacheControl: undefined });
      for (const path of ["/", "/index.html", "/reports/2024"]) {
        expect(await get(port, path), path).toEqual({ status: 200, body: "<script src=/assets/index-bbbb2222.js></script>", cacheControl: "no-cache" });
      }
    } finally {
      nginx.kill("SIGTERM");
      await new Promise((r) => nginx.once("exit", r));
    }
  });
});

describe("the sample frontend's build (app-images/sample/frontend/build.sh)", () => {
  const source = join(REPO_ROOT, "app-images/sample/frontend");
  const build = async (from: string, to: string) => {
    const result = await run("sh", [join(from, "build.sh"), from, to]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    return result.stdout;
  };
  const named = (to: string) => /src="\/assets\/(index-[0-9a-f]{8}\.js)"/.exec(readFileSync(join(to, "index.html"), "utf8"))?.[1];

  it("passes shellcheck", async () => {
    const result = await run("shellcheck", ["--norc", "--format=gcc", join(source, "build.sh")]);
    expect({ code: result.code, out: result.stdout + result.stderr }).toEqual({ code: 0, out: "" });
  });

  it("names the script by its content: the same sources give the same files, a changed script a new name", async () => {
    await build(source, join(dir, "build-a"));
    await build(source, join(dir, "build-b"));
    const read = (to: string) =>
      Object.fromEntries(
        readdirSync(to, { recursive: true, encoding: "utf8" })
          .filter((f) => statSync(join(to, f)).isFile())
          .sort()
          .map((f) => [f, readFileSync(join(to, f), "utf8")]),
      );
    expect(Object.keys(read(join(dir, "build-a")))).toHaveLength(3);
    expect(read(join(dir, "build-b"))).toEqual(read(join(dir, "build-a")));
    const script = named(join(dir, "build-a"));
    expect(script).toBeDefined();
    const main = readFileSync(join(source, "src/main.js"));
    expect(script).toBe(`index-${createHash("sha256").update(main).digest("hex").slice(0, 8)}.js`);
    expect(readFileSync(join(dir, "build-a", "assets", script!))).toEqual(main);
    expect(readFileSync(join(dir, "build-a", "index.html"), "utf8")).toMatch(/href="\/assets\/index-[0-9a-f]{8}\.css"/);
    expect(readFileSync(join(dir, "build-a", "index.html"), "utf8")).not.toContain("/src/");

    const changed = join(dir, "changed-source");
    cpSync(source, changed, { recursive: true });
    appendFileSync(join(changed, "src/main.js"), "// another release\n");
    await build(changed, join(dir, "build-c"));
    expect(named(join(dir, "build-c"))).toMatch(/^index-[0-9a-f]{8}\.js$/);
    expect(named(join(dir, "build-c"))).not.toBe(script);
  });

  it("fails when index.html does not name a source it builds", async () => {
    const broken = join(dir, "broken-source");
    cpSync(source, broken, { recursive: true });
    writeFileSync(join(broken, "index.html"), "<p>no script</p>\n");
    const result = await run("sh", [join(broken, "build.sh"), broken, join(dir, "build-broken")]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 1, stderr: "build.sh: index.html does not name /src/main.js\n" });
  });
});
