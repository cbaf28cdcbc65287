import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "../core/helpers.js";
import { testJobs } from "../../tools/runner/job-steps.js";
import { REPO } from "./repo-copy.js";

/**
 * tools/prerequisites.sh, the one script that installs what `npm test` needs, and the check
 * `npm test` (and vitest's global setup) runs first: on a PATH that lacks caddy, the run stops
 * in seconds with one line naming caddy and the command that installs it.
 */

const SCRIPT = join(REPO, "tools", "prerequisites.sh");
const { dir, cleanup } = tempDir("prerequisites");
// Open to the other user the refusal runs as (its PATH and apt-get's record are in here), as /tmp is.
chmodSync(dir, 0o1777);
afterAll(cleanup);

/** The script's own table: `command:package` lines between `TOOLS=(` and `)`. */
const TOOLS = (() => {
  const text = readFileSync(SCRIPT, "utf8");
  const table = text.slice(text.indexOf("TOOLS=(\n"), text.indexOf("\n)\n", text.indexOf("TOOLS=(\n")));
  return [...table.matchAll(/^ {2}([a-z0-9-]+):([a-z0-9.+-]+)$/gm)].map((m) => ({ command: m[1]!, package: m[2]! }));
})();

const where = (command: string) =>
  spawnSync("bash", ["-c", `PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v ${command}`], { encoding: "utf8" }).stdout.trim();

/** A folder to use as the whole PATH: every command the tests and npm need, less `omit`. */
function binWithout(name: string, omit: string[], extra: Record<string, string> = {}): string {
  const bin = join(dir, name);
  mkdirSync(bin, { recursive: true });
  const commands = new Set([...TOOLS.map((t) => t.command), "node", "npm", "sh", "env", "cat", "mkdir", "rm"]);
  for (const command of commands) {
    if (omit.includes(command)) continue;
    const real = where(command);
    if (real) symlinkSync(real, join(bin, command));
  }
  for (const [command, body] of Object.entries(extra)) {
    writeFileSync(join(bin, command), body);
    chmodSync(join(bin, command), 0o755);
  }
  return bin;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}
/** Runs a command with `env` as its whole environment (npm's and vitest's markers left out). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = REPO): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], timeout: 120_000, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (error) => (stderr += error.message));
    child.on("close", (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
}
const bare = (path: string): NodeJS.ProcessEnv => ({ PATH: path, HOME: process.env.HOME ?? "/root", NO_COLOR: "1" });

const root = process.getuid?.() === 0;
const sudo = where("sudo");
const sudoWorks = !root && sudo !== "" && spawnSync(sudo, ["-n", "true"]).status === 0;
/** `argv` run as root: directly when this is root, else through passwordless sudo (a CI runner's), keeping PATH. */
const asRoot = (path: string, argv: string[]) => (root ? argv : [sudo, "-n", where("env"), `PATH=${path}`, ...argv]);
/** `argv` run as a user other than root: directly when this is not root, else as nobody. */
const asUser = (argv: string[]) => (root ? [where("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", ...argv] : argv);

describe("tools/prerequisites.sh --check: what npm test needs, named with the command that installs it", () => {
  it("the table names the tools the tests run, each with its package", () => {
    expect(TOOLS.map((t) => t.command)).toEqual(expect.arrayContaining(["caddy", "nginx", "shellcheck", "rclone", "ssh", "ssh-keygen", "ssh-agent", "ssh-add", "jq", "git"]));
    expect(Object.fromEntries(TOOLS.map((t) => [t.command, t.package]))).toMatchObject({ caddy: "caddy", ssh: "openssh-client", rclone: "rclone" });
  });

  it("passes on this machine, silently", async () => {
    const result = await run("bash", [SCRIPT, "--check"], process.env);
    expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
  });

  it("without caddy: exit 1 in a second, one line naming caddy, its package and the command", async () => {
    const bin = binWithout("no-caddy", ["caddy"]);
    const result = await run(join(bin, "bash"), [SCRIPT, "--check"], bare(bin));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toEqual([
      `npm test needs caddy (packages: caddy), which this machine lacks: run \`${root ? "" : "sudo "}bash tools/prerequisites.sh\` (Debian or Ubuntu)`,
    ]);
    expect(result.seconds).toBeLessThan(2);
  });

  it("without rclone 1.53.3 in .cache/: names it and the same script, which needs no root for it", async () => {
    const repo = join(dir, "no-oldest");
    mkdirSync(join(repo, "tools"), { recursive: true });
    cpSync(SCRIPT, join(repo, "tools", "prerequisites.sh"));
    const result = await run("bash", [join(repo, "tools", "prerequisites.sh"), "--check"], process.env, repo);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("npm test needs rclone 1.53.3 (.cache/rclone-1.53.3/rclone), which this machine lacks: run `bash tools/prerequisites.sh` (Debian or Ubuntu)");
  });

  it("with nginx installed in /usr/sbin but PATH without it: says to add the folder, not to install nginx", async () => {
    const nginx = where("nginx");
    expect(nginx, "nginx is installed").not.toBe("");
    const bin = binWithout("no-nginx-on-path", ["nginx"]);
    const result = await run(join(bin, "bash"), [SCRIPT, "--check"], bare(bin));
    expect(result.code).toBe(1);
    if (/^\/(usr\/(local\/)?)?sbin\//.test(nginx)) {
      expect(result.stderr.trim()).toBe(`npm test needs nginx on PATH, which this machine lacks: add the folder of ${nginx} to PATH`);
    } else {
      expect(result.stderr.trim()).toContain("npm test needs nginx (packages: nginx)");
    }
  });
});

describe("npm test and vitest check the tools first", () => {
  const bin = binWithout("no-caddy-runs", ["caddy"]);
  const line = `npm test needs caddy (packages: caddy), which this machine lacks: run \`${root ? "" : "sudo "}bash tools/prerequisites.sh\` (Debian or Ubuntu)`;

  it("npm test stops before its typecheck: the line, exit non-zero, in seconds", async () => {
    const result = await run(join(bin, "npm"), ["test"], bare(bin));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(line);
    expect(result.stdout + result.stderr).not.toMatch(/Test Files|error TS/);
    expect(result.seconds).toBeLessThan(15);
  });

  it("vitest run on its own stops in its global setup: the line, exit 1, no test file run", async () => {
    const result = await run(join(bin, "node"), [join(REPO, "node_modules", "vitest", "vitest.mjs"), "run", "test/core/derive.test.ts"], bare(bin));
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(line);
    expect(result.stdout).not.toMatch(/Test Files|derive\.test/);
    expect(result.seconds).toBeLessThan(20);
  });
});

describe("tools/prerequisites.sh installs only what is missing", () => {
  /** apt-get stand-in: records its arguments, installs nothing. */
  const aptGet = (record: string) => `#!/bin/sh\necho "$*" >> ${record}\n`;

  it.runIf(root || sudoWorks)("as root, with nothing missing: no apt-get at all", async () => {
    const record = join(dir, "apt-nothing-missing");
    const bin = binWithout("all-there", [], { "apt-get": aptGet(record) });
    const [command, ...args] = asRoot(bin, [join(bin, "bash"), SCRIPT]);
    const result = await run(command!, args, bare(bin));
    expect({ code: result.code, stdout: result.stdout.trim() }).toEqual({ code: 0, stdout: "npm test has what it needs" });
    expect(existsSync(record)).toBe(false);
  });

  it.runIf(root || sudoWorks)("as root, without caddy and jq: apt-get update, then one install of their packages", async () => {
    const record = join(dir, "apt-two-missing");
    const bin = binWithout("no-caddy-jq", ["caddy", "jq"], { "apt-get": aptGet(record) });
    const [command, ...args] = asRoot(bin, [join(bin, "bash"), SCRIPT]);
    const result = await run(command!, args, bare(bin));
    expect(readFileSync(record, "utf8").trim().split("\n")).toEqual(["update -qq", "install -y -qq --no-install-recommends ca-certificates jq caddy"]);
    // The stand-in installed nothing: the final check says so, and the script fails.
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("npm test needs jq caddy (packages: jq caddy)");
  });

  it("as another user, without caddy: refuses before apt-get, naming caddy and `sudo bash tools/prerequisites.sh`", async () => {
    const record = join(dir, "apt-not-root");
    const bin = binWithout("no-caddy-user", ["caddy"], { "apt-get": aptGet(record) });
    const [command, ...args] = asUser([join(bin, "bash"), SCRIPT]);
    const result = await run(command!, args, bare(bin));
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("tools/prerequisites.sh: missing caddy (packages: caddy); installing them needs root: run `sudo bash tools/prerequisites.sh`");
    expect(existsSync(record)).toBe(false);
  });
});

describe("the workflows install what npm test needs", () => {
  it("every job that runs npm test runs `sudo bash tools/prerequisites.sh` before it (the runner has sudo, not caddy or rclone)", () => {
    const jobs = testJobs(join(REPO, ".github", "workflows"));
    expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining(["pull-request.yml/test", "deploy.yml/test"]));
    for (const job of jobs) {
      const scripts = job.steps.map((s) => (s.kind === "run" ? s.script.trim() : s.kind));
      const prerequisites = scripts.indexOf("sudo bash tools/prerequisites.sh");
      expect(prerequisites, job.id).toBeGreaterThanOrEqual(0);
      expect(prerequisites, job.id).toBeLessThan(scripts.indexOf("npm test"));
    }
  });
});
