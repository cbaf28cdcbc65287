import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { renderCaddyfile } from "../../infra/render/caddyfile.js";
import { renderNginxConf } from "../../infra/render/nginx-conf.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { planFromDefinition, plansOf, run, tempDir, type RunResult } from "./helpers.js";

/**
 * Tier 3: the generated files through the real tools. A missing tool is a failure,
 * never a skip: a green suite must mean the configs were really checked.
 */
const INSTALL_HINT = "run `.ci/run`, or install the tools with `apt-get install caddy nginx-light`";

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
