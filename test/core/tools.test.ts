import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { renderCaddyfile } from "../../infra/render/caddyfile.js";
import { escapeHtml, maintenanceFunctions, renderMaintenancePage } from "../../infra/render/maintenance.js";
import { shellQuote } from "../../infra/render/shell.js";
import { renderNginxConf } from "../../infra/render/nginx-conf.js";
import { catalog } from "../../stacks/catalog.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { mockConfig } from "../../tools/mock-config.js";
import { runProgram } from "../../tools/mock-engine.js";
import { copyOf, planFromDefinition, plansOf, REPO_ROOT, run, tempDir, type RunResult } from "./helpers.js";

/**
 * Tier 3: the generated files through the real tools. A missing tool is a failure,
 * never a skip: a green suite must mean the configs were really checked.
 */
const INSTALL_HINT = "run `.ci/run`, or install the tools with `apt-get install caddy nginx-light shellcheck`";

const { dir, cleanup } = tempDir("tools");
afterAll(cleanup);

async function tool(command: string, args: string[]): Promise<RunResult> {
  const result = await run(command, args);
  if (result.spawnError?.code === "ENOENT") {
    throw new Error(`\`${command}\` is not installed, so the generated configs cannot be checked: ${INSTALL_HINT}`);
  }
  if (result.spawnError) throw result.spawnError;
  return result;
}

const write = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};

const caddyValidate = (file: string) => tool("caddy", ["validate", "--adapter", "caddyfile", "--config", file]);
const nginxTest = (file: string) => tool("nginx", ["-t", "-c", file]);

const variant = (name: string, overrides: Partial<EnvironmentDefinition>): [string, Plan] => [
  name,
  planFromDefinition({ ...stagingDefinition, ...overrides }),
];

const cases: [string, Plan][] = [
  ...plansOf().map((p): [string, Plan] => [p.stack, p]),
  variant("tls internal", { tls: { mode: "internal" } }),
  variant("tls off, bound to 127.0.0.1 on 18080/18443", { tls: { mode: "off" }, caddy: { bind: "127.0.0.1", httpPort: 18080, httpsPort: 18443 } }),
  variant("two extra domains", { extraDomains: ["www.staging.example.com", "alt.staging.example.com"] }),
];

const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, "-");

describe("the real tools are installed", () => {
  it("caddy runs", async () => {
    const result = await tool("caddy", ["version"]);
    expect(result.code, result.stderr).toBe(0);
  });

  it("nginx runs", async () => {
    const result = await tool("nginx", ["-v"]);
    expect(result.code, result.stderr).toBe(0);
  });
});

describe("caddy validate accepts every generated Caddyfile", () => {
  it.each(cases)("%s", async (name, plan) => {
    const file = write(`Caddyfile.${slug(name)}`, renderCaddyfile(plan));
    const result = await caddyValidate(file);
    expect({ code: result.code, output: result.code === 0 ? "" : result.stderr + result.stdout }).toEqual({ code: 0, output: "" });
    expect(result.stdout + result.stderr).toContain("Valid configuration");
  });
});

describe("nginx -t accepts every generated nginx.conf with no backend running", () => {
  it("the backend's container name does not resolve on this machine", async () => {
    const result = await run("getent", ["hosts", plansOf()[0]!.containers.backend.name]);
    expect(result.code).not.toBe(0);
  });

  it.each(cases)("%s", async (name, plan) => {
    const file = write(`nginx.${slug(name)}.conf`, renderNginxConf(plan));
    const result = await nginxTest(file);
    expect({ code: result.code, stderr: result.code === 0 ? "" : result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(result.stderr).toContain("test is successful");
  });
});

describe("negative controls: the same tools reject broken configs", () => {
  const plan = plansOf()[0]!;

  it("caddy validate fails on a Caddyfile with a misspelt subdirective", async () => {
    const good = renderCaddyfile(plan);
    const broken = good.replace("lb_try_duration", "lb_try_durration");
    expect(broken).not.toBe(good);
    const result = await caddyValidate(write("Caddyfile.typo", broken));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("lb_try_durration");
  });

  it("nginx -t fails when the upstream is a literal proxy_pass to an unresolvable host (no variable)", async () => {
    const good = renderNginxConf(plan);
    const broken = good.replace(/^\s*set \$backend [^;]+;\n/m, "").replace("proxy_pass $backend;", "proxy_pass http://no-such-host:8080;");
    expect(broken).toContain("proxy_pass http://no-such-host:8080;");
    expect(broken).not.toContain("$backend");
    const result = await nginxTest(write("nginx.literal-upstream.conf", broken));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('host not found in upstream "no-such-host');
  });

  it("the same unresolvable host passes once it sits in the variable with the resolver", async () => {
    const good = renderNginxConf(plan);
    const viaVariable = good.replace(/set \$backend http:\/\/[^:]+:/, "set $backend http://no-such-host:");
    expect(viaVariable).toContain("set $backend http://no-such-host:8080;");
    const result = await nginxTest(write("nginx.variable-upstream.conf", viaVariable));
    expect({ code: result.code, stderr: result.code === 0 ? "" : result.stderr }).toEqual({ code: 0, stderr: "" });
  });
});

/**
 * shellcheck over every shell script we render or send to a host, found generically so a
 * new renderer or remote command is covered without anyone listing it: every output of
 * every exported `render*` function in infra/render/ (renderAll included) that starts with
 * a shell's `#!`, every script the program sends (remote commands' create/update/delete
 * and stdin, the instance's user data, under Pulumi mocks), and every `#!` script those
 * install through a quoted heredoc.
 */
interface Script {
  origin: string;
  text: string;
  /** A command line without `#!` runs in the SSH user's login shell: bash on the blueprints. */
  shell?: "bash";
}

const SHELL_SHEBANG = /^#!\s*(\/usr\/bin\/env\s+)?\S*\b(ba|da)?sh\b/;
const isShellScript = (text: unknown): text is string => typeof text === "string" && SHELL_SHEBANG.test(text);

/** Scripts written out through a quoted heredoc (`cat > f <<'SH'`) that start with `#!`. */
function embeddedScripts(script: Script): Script[] {
  const found: Script[] = [];
  for (const match of script.text.matchAll(/<<-?\s*(['"])(\w+)\1[^\n]*\n([\s\S]*?)^\2$/gm)) {
    const body = match[3] ?? "";
    if (isShellScript(body)) found.push(...withEmbedded({ origin: `${script.origin} <<'${match[2]}' #${found.length + 1}`, text: body }));
  }
  return found;
}
const withEmbedded = (script: Script): Script[] => [script, ...embeddedScripts(script)];

/** Every string with a shell `#!` in a renderer's answer (a string, or a record of files). */
function scriptsIn(origin: string, value: unknown): Script[] {
  if (isShellScript(value)) return withEmbedded({ origin, text: value });
  if (value && typeof value === "object") return Object.entries(value).flatMap(([key, v]) => scriptsIn(`${origin} ${key}`, v));
  return [];
}

/** The same text is checked once, under the first place it was found. */
function unique(scripts: Script[]): Script[] {
  const seen = new Set<string>();
  return scripts.filter((s) => !seen.has(`${s.shell}\n${s.text}`) && seen.add(`${s.shell}\n${s.text}`));
}

type Renderer = (plan: Plan, ...rest: unknown[]) => unknown;
const renderDir = join(REPO_ROOT, "infra/render");
const renderers: [string, Renderer][] = [];
for (const file of readdirSync(renderDir).filter((f) => f.endsWith(".ts")).sort()) {
  const module = (await import(pathToFileURL(join(renderDir, file)).href)) as Record<string, unknown>;
  for (const [name, value] of Object.entries(module)) {
    if (name.startsWith("render") && typeof value === "function") renderers.push([`${file}:${name}`, value as Renderer]);
  }
}

/** Catalog stacks, plus the branches a catalog stack does not take (swap on a small bundle, DNS, TLS off). */
const scriptPlans: Plan[] = [
  ...plansOf(),
  planFromDefinition({ ...stagingDefinition, name: "nano-dns", host: { ...stagingDefinition.host, bundle: "nano_3_0", dns: "lightsail" } }),
  planFromDefinition({ ...stagingDefinition, name: "tls-off", tls: { mode: "off" }, caddy: { bind: "127.0.0.1", httpPort: 18080, httpsPort: 18443 } }),
  // The release tool quotes the release command into a bash assignment.
  planFromDefinition({ ...stagingDefinition, name: "quoted-release", app: { ...stagingDefinition.app, releaseCommand: "echo 'it''s' && flask db upgrade" } }),
];

/** A renderer that cannot be called as (plan, 1) fails its case instead of going unchecked. */
type Found = Script | { origin: string; error: string };
const renderedOrFailed: Found[] = scriptPlans.flatMap((plan) =>
  renderers.flatMap(([name, render]): Found[] => {
    const origin = `${plan.stack}: ${name}`;
    try {
      // 1 stands for any extra number a renderer takes (the password rotation).
      return scriptsIn(origin, render(plan, 1));
    } catch (error) {
      return [{ origin, error: `could not be called as (plan, 1): ${(error as Error).message}; teach this test its arguments` }];
    }
  }),
);
// renderAll repeats what its renderers return: each text is checked once.
const rendered = [...unique(renderedOrFailed.filter((s): s is Script => !("error" in s))), ...renderedOrFailed.filter((s) => "error" in s)];

/**
 * shellcheck's answer for each text, asked once: a script the program sends is often a rendered
 * one, byte for byte, and the same text gets the same answer (a finding names the first origin's file).
 */
const checked = new Map<string, Promise<RunResult>>();
function shellcheck(script: Script): Promise<RunResult> {
  const key = `${script.shell}\n${script.text}`;
  if (!checked.has(key)) {
    const file = write(`script.${slug(script.origin)}.sh`, script.text);
    checked.set(key, tool("shellcheck", ["--norc", "--format=gcc", ...(script.shell ? [`--shell=${script.shell}`] : []), file]));
  }
  return checked.get(key)!;
}

const expectClean = async (script: Script) => {
  const result = await shellcheck(script);
  expect({ origin: script.origin, code: result.code, findings: result.stdout + result.stderr }).toEqual({ origin: script.origin, code: 0, findings: "" });
};

/** Scripts the program sends to the host of `stack`, from the resources it declares under mocks. */
async function sentScripts(stack: string): Promise<Script[]> {
  const plan = plansOf().find((p) => p.stack === stack)!;
  const { config, secretKeys } = mockConfig(plan);
  const program = await runProgram(stack, config, secretKeys);
  const scripts: Script[] = [];
  for (const resource of program.byType("command:remote:Command")) {
    for (const key of ["create", "update", "delete"]) {
      const text = resource.inputs[key];
      if (typeof text !== "string") continue;
      const origin = `${stack}: remote command ${resource.name}.${key}`;
      scripts.push(...(isShellScript(text) ? withEmbedded({ origin, text }) : [{ origin, text: `${text}\n`, shell: "bash" as const }]));
    }
    // stdin is a script only when it says so (`bash -s`); otherwise it is data, such as a password.
    scripts.push(...scriptsIn(`${stack}: remote command ${resource.name}.stdin`, resource.inputs.stdin));
  }
  for (const instance of program.byType("aws:lightsail/instance:Instance")) {
    scripts.push(...scriptsIn(`${stack}: ${instance.name}.userData`, instance.inputs.userData));
  }
  return scripts;
}

describe("shellcheck passes every shell script we render", () => {
  it("shellcheck runs", async () => {
    const result = await tool("shellcheck", ["--version"]);
    expect(result.code, result.stderr).toBe(0);
  });

  it("finds the scripts: renderAll's launch, host setup, release and backup tools, the credential script and the disk check", () => {
    const names = renderedOrFailed.map((s) => s.origin);
    for (const expected of ["launch.sh", "host-setup.sh", "release.sh", "renderReleaseTool", "backup.sh", "renderBackupTool", "renderDbCredentialsScript", "renderDiskCheck"]) {
      expect(names.some((n) => n.includes(expected)), `${expected} in ${names.join(", ")}`).toBe(true);
    }
  });

  it.each(rendered.map((s): [string, (typeof rendered)[number]] => [s.origin, s]))("%s", async (_, script) => {
    if ("error" in script) throw new Error(`${script.origin} ${script.error}`);
    await expectClean(script);
  });
});

describe("shellcheck passes every script the program sends to a host (under Pulumi mocks)", () => {
  it.each(catalog.map((d) => d.name))("%s", async (stack) => {
    const scripts = unique(await sentScripts(stack));
    // The credential check and the host setup at least: an empty list would prove nothing.
    expect(scripts.filter((s) => !s.shell).length, scripts.map((s) => s.origin).join(", ")).toBeGreaterThanOrEqual(2);
    const failures: string[] = [];
    for (const script of scripts) {
      const result = await shellcheck(script);
      if (result.code !== 0) failures.push(`${script.origin}:\n${result.stdout}${result.stderr}`);
    }
    expect(failures).toEqual([]);
  });
});

describe("negative control: shellcheck rejects a known mistake", () => {
  it("an unquoted variable (SC2086) fails", async () => {
    const result = await shellcheck({ origin: "negative SC2086", text: '#!/bin/sh\nfile="$1"\nrm $file\n' });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain("SC2086");
  });

  it("the credential script's old quoting (SC2140) fails", async () => {
    const result = await shellcheck({ origin: "negative SC2140", text: '#!/bin/sh\necho "in the definition of stack "prod" in stacks/."\n' });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain("SC2140");
  });
});

/**
 * Maintenance mode through the real `caddy` with each stack's rendered Caddyfile: its routes
 * proxy to a small HTTP server here (standing in for both slots of the backend and the
 * frontend), the maintenance folder is a temp folder, and the page is switched on and off by
 * the same bash functions the host runs. Caddy is started once per stack and never reloaded.
 */
describe.each(plansOf().map((p) => [p.stack] as const))("%s: maintenance mode in the rendered Caddyfile, through the real caddy", (stack) => {
  const MESSAGE = `Back at 10:00 UTC <script>alert("x")</script> & 'soon'`;
  const plan = copyOf(plansOf().find((p) => p.stack === stack)!);
  const domain = plan.domains[0]!;
  const folder = join(dir, `maintenance-${stack}`);
  const { operatorPath, info, retryAfterSeconds } = plan.caddy.maintenance;
  let upstream: Server;
  let caddy: ChildProcess;
  let caddyLog = "";
  /** Requests the upstream received, as `<method> <path>` (Caddy's active health checks left out). */
  const proxied: string[] = [];

  /** A free TCP port on loopback (the OS's choice, released at once). */
  const freePort = async (): Promise<number> => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  };

  /** A request as a browser sends it, to Caddy with the site's Host. */
  const browse = (path: string, method = "GET", body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> =>
    new Promise((resolve, reject) => {
      const headers = { Host: domain, Accept: "text/html,application/xhtml+xml,*/*;q=0.8", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", ...(body ? { "Content-Type": "application/json" } : {}) };
      const req = request({ host: "127.0.0.1", port: plan.caddy.httpPort, path, method, headers }, (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
      req.on("error", reject);
      req.end(body);
    });

  /** The host's own functions (maintenance_on / maintenance_off), run by bash on the temp folder. */
  const hostMaintenance = async (call: string): Promise<void> => {
    const script = write(`maintenance-${stack}-${Date.now()}.sh`, `set -euo pipefail\nmaintenance_dir=${shellQuote(folder)}\n${maintenanceFunctions(plan)}\n${call}\n`);
    const result = await run("bash", [script]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  };
  const pageFile = () => write(`maintenance-page-${stack}.html`, renderMaintenancePage(plan, MESSAGE));

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const healthCheck = req.headers["user-agent"]?.startsWith("Go-http-client") && req.headers.host === plan.caddy.healthHost;
      if (!healthCheck) proxied.push(`${req.method} ${req.url}`);
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end(`the app answers ${req.method} ${req.url}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const app = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    // The stack's Caddyfile, served on free loopback ports over plain HTTP.
    plan.tls = { mode: "off" };
    plan.caddy.bind = "127.0.0.1";
    plan.caddy.httpPort = await freePort();
    plan.caddy.httpsPort = await freePort();
    plan.caddy.adminAddress = `127.0.0.1:${await freePort()}`;
    plan.caddy.routes = plan.caddy.routes.map((r) => ({ ...r, upstreams: [app] }));
    plan.caddy.maintenance.dir = folder;
    mkdirSync(folder, { recursive: true });
    const caddyfile = write(`Caddyfile.maintenance-${stack}`, renderCaddyfile(plan));
    caddy = spawn("caddy", ["run", "--adapter", "caddyfile", "--config", caddyfile], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    caddy.stdout?.on("data", (d) => (caddyLog += d));
    caddy.stderr?.on("data", (d) => (caddyLog += d));
    const failed = new Promise<never>((_, reject) => caddy.on("error", (e) => reject(new Error(`caddy could not be started: ${e.message}; ${INSTALL_HINT}`))));
    const ready = (async () => {
      for (let i = 0; i < 100; i++) {
        if ((await browse("/").catch(() => undefined))?.status === 200) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`caddy did not answer 200 within 10 s:\n${caddyLog}`);
    })();
    await Promise.race([ready, failed]);
  }, 30_000);

  afterAll(async () => {
    caddy?.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    upstream?.close();
  });

  it("off: every route reaches the app", async () => {
    proxied.length = 0;
    for (const path of ["/", "/projects/7", "/api/items", operatorPath, "/assets/index-abc123.js"]) {
      const answer = await browse(path);
      expect({ path, status: answer.status, body: answer.body, retryAfter: answer.headers["retry-after"] }).toEqual({ path, status: 200, body: `the app answers GET ${path}`, retryAfter: undefined });
    }
    expect(proxied).toHaveLength(5);
  });

  it("on: a browser gets the page (503, Retry-After, no-store), the message as text, on every route and method; the operator path still reaches the app", async () => {
    await hostMaintenance(`maintenance_on ${shellQuote(pageFile())} tester@test 'a message'`);
    proxied.length = 0;
    const page = await browse("/");
    expect(page.status).toBe(503);
    expect(page.headers["retry-after"]).toBe(String(retryAfterSeconds));
    expect(page.headers["cache-control"]).toBe("no-store");
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.body).toBe(renderMaintenancePage(plan, MESSAGE));
    expect(page.body).toContain(`<p>${escapeHtml(MESSAGE)}</p>`);
    expect(page.body).toContain("Back at 10:00 UTC &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;soon&#39;");
    expect(page.body).not.toContain("<script>");
    expect(page.body).toContain(`${domain} is down for maintenance`);
    for (const [method, path] of [["GET", "/projects/7"], ["GET", "/assets/index-abc123.js"], ["POST", "/api/items"], ["DELETE", "/api/items/3"], ["GET", "/api/ws/updates"], ["HEAD", "/"]] as const) {
      const answer = await browse(path, method, method === "POST" ? '{"name":"x"}' : undefined);
      expect({ method, path, status: answer.status, retryAfter: answer.headers["retry-after"] }).toEqual({ method, path, status: 503, retryAfter: String(retryAfterSeconds) });
      if (method !== "HEAD") expect(answer.body).toBe(page.body);
    }
    expect(await browse(operatorPath)).toMatchObject({ status: 200, body: `the app answers GET ${operatorPath}` });
    expect(proxied, "only the operator path reached the app").toEqual([`GET ${operatorPath}`]);
    // The info beside the page is never served.
    const asked = await browse(`/${info}`);
    expect(asked.status).toBe(503);
    expect(asked.body).not.toContain("tester@test");
  });

  it("off again: the app answers at once, from the same caddy, never reloaded", async () => {
    await hostMaintenance("maintenance_off");
    const answer = await browse("/projects/7");
    expect({ status: answer.status, body: answer.body }).toEqual({ status: 200, body: "the app answers GET /projects/7" });
    expect(caddy.exitCode).toBeNull();
    // One config load at start, none since: the switch is a file Caddy looks for on each request.
    expect(caddyLog.match(/"msg":"(serving initial configuration|autosaved config)/g) ?? []).toHaveLength(2);
    expect(caddyLog, "no request reached the admin API").not.toContain('"msg":"received request"');
  });
});
