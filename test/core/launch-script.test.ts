import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { APT_ATTEMPTS, DPKG_LOCK_WAIT_SECONDS, LAUNCH_PACKAGES, READY_MARKER, renderLaunchScript } from "../../infra/render/launch-script.js";
import { LAUNCH_RERUN_LOG, renderReadyCheck } from "../../infra/render/ready-check.js";
import { tempDir } from "./helpers.js";

/**
 * The launch script and the ready check, run for real in bash with stand-in `apt-get`,
 * `systemctl`, `sleep`, `cloud-init`, `sudo` and `docker` on PATH, and the host's absolute
 * paths (the marker's folder, the re-run log, the host key) moved into a temp folder.
 */
const { dir: root, cleanup } = tempDir("launch");
afterAll(cleanup);

let cases = 0;
function host(options: { aptFailures: number; cloudInit?: number; marker?: boolean; dockerExit?: number; touchWritesNothing?: boolean }) {
  const dir = join(root, `case-${cases++}`);
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  // apt-get fails its first `aptFailures` calls, then succeeds; every call is logged
  stub("apt-get", `echo "$*" >> ${dir}/apt.log; n=$(wc -l < ${dir}/apt.log); echo "apt output $n"; [ "$n" -gt ${options.aptFailures} ]`);
  stub("systemctl", `echo "$*" >> ${dir}/systemctl.log`);
  stub("sleep", `echo "$*" >> ${dir}/sleep.log`);
  stub("dpkg", `echo "$*" >> ${dir}/dpkg.log`);
  stub("cloud-init", `exit ${options.cloudInit ?? 0}`);
  stub("sudo", `[ "$1" = -n ] && shift; exec "$@"`);
  stub("docker", `exit ${options.dockerExit ?? 0}`);
  if (options.touchWritesNothing) stub("touch", "exit 0");
  writeFileSync(join(dir, "host_key.pub"), "ssh-ed25519 AAAATEST root@host\n");
  const move = (text: string) =>
    text
      .replaceAll(READY_MARKER.slice(0, READY_MARKER.lastIndexOf("/")), join(dir, "instance"))
      .replaceAll(LAUNCH_RERUN_LOG, join(dir, "rerun.log"))
      .replaceAll("/etc/ssh/ssh_host_ed25519_key.pub", join(dir, "host_key.pub"));
  const marker = move(READY_MARKER);
  if (options.marker) {
    mkdirSync(join(dir, "instance"), { recursive: true });
    writeFileSync(marker, "");
  }
  const runScript = (text: string) => {
    const file = join(dir, "script.sh");
    writeFileSync(file, move(text));
    const r = spawnSync("bash", [file], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: "utf8", timeout: 20_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const lines = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), "utf8").trim().split("\n") : []);
  return { runScript, marker, lines };
}

describe("launch.sh: waits for the dpkg lock and retries apt", () => {
  it("passes every apt call a lock wait, installs docker.io, cron and rclone, and writes the marker last", () => {
    const h = host({ aptFailures: 0 });
    const r = h.runScript(renderLaunchScript());
    expect(r.code).toBe(0);
    expect(existsSync(h.marker)).toBe(true);
    const apt = h.lines("apt.log");
    expect(apt).toHaveLength(2);
    for (const call of apt) expect(call).toContain(`-o DPkg::Lock::Timeout=${DPKG_LOCK_WAIT_SECONDS}`);
    expect(apt[0]).toMatch(/ update$/);
    expect(apt[1]).toMatch(new RegExp(` install -y .* ${LAUNCH_PACKAGES.join(" ")}$`));
    expect(h.lines("systemctl.log")).toEqual(["enable --now docker cron"]);
    expect(h.lines("sleep.log")).toEqual([]);
    expect(h.lines("dpkg.log")).toEqual([]);
  });

  it("retries a failed apt step after a pause and then succeeds", () => {
    const h = host({ aptFailures: 2 });
    const r = h.runScript(renderLaunchScript());
    expect(r.code).toBe(0);
    expect(existsSync(h.marker)).toBe(true);
    expect(h.lines("sleep.log")).toHaveLength(2);
    expect(r.stderr).toContain(`apt failed (attempt 2 of ${APT_ATTEMPTS})`);
    // an interrupted dpkg run is configured before each new attempt
    expect(h.lines("dpkg.log")).toEqual(Array(2).fill("--force-confdef --force-confold --configure -a"));
  });

  it(`gives up after ${APT_ATTEMPTS} attempts with the reason, and writes no marker`, () => {
    const h = host({ aptFailures: 1000 });
    const r = h.runScript(renderLaunchScript());
    expect(r.code).toBe(1);
    expect(existsSync(h.marker)).toBe(false);
    expect(h.lines("apt.log")).toHaveLength(APT_ATTEMPTS);
    expect(h.lines("sleep.log")).toHaveLength(APT_ATTEMPTS - 1);
    expect(r.stderr).toContain(`failed ${APT_ATTEMPTS} times`);
    expect(h.lines("systemctl.log")).toEqual([]);
  });
});

describe("the ready check (host-ready's create)", () => {
  it("with the marker: runs nothing again, prints the host key last", () => {
    const h = host({ aptFailures: 0, marker: true });
    const r = h.runScript(renderReadyCheck());
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").pop()).toBe("ssh-ed25519 AAAATEST root@host");
    expect(h.lines("apt.log")).toEqual([]);
  });

  it("without the marker (first boot failed, cloud-init reports an error): re-runs the launch script as root and recovers; stdout is only the host key", () => {
    const h = host({ aptFailures: 0, cloudInit: 1 });
    const r = h.runScript(renderReadyCheck());
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("running it again");
    expect(existsSync(h.marker)).toBe(true);
    expect(r.stdout).toBe("ssh-ed25519 AAAATEST root@host\n");
    expect(h.lines("apt.log")).toHaveLength(2);
    expect(h.lines("rerun.log").join("\n")).toContain("apt output 2");
  });

  it("without the marker, when the launch script fails again: exits non-zero with the reason", () => {
    const h = host({ aptFailures: 1000, cloudInit: 1 });
    const r = h.runScript(renderReadyCheck());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the launch script failed again");
    expect(r.stderr).toContain(`failed ${APT_ATTEMPTS} times`);
    expect(r.stdout).toBe("");
    expect(existsSync(h.marker)).toBe(false);
  });

  it("with the marker but cloud-init failed otherwise: exits non-zero", () => {
    const h = host({ aptFailures: 0, cloudInit: 1, marker: true });
    const r = h.runScript(renderReadyCheck());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cloud-init failed (1)");
  });

  it("with the marker and cloud-init done with recoverable errors (exit 2): ready", () => {
    const h = host({ aptFailures: 0, cloudInit: 2, marker: true });
    const r = h.runScript(renderReadyCheck());
    expect(r).toEqual({ code: 0, stdout: "ssh-ed25519 AAAATEST root@host\n", stderr: "" });
  });

  it("without the marker, when the launch script succeeds again but leaves no marker: exits non-zero, no host key", () => {
    const h = host({ aptFailures: 0, cloudInit: 1, touchWritesNothing: true });
    const r = h.runScript(renderReadyCheck());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the launch script ran again but left no");
    expect(r.stdout).toBe("");
  });

  it("when Docker does not answer: exits non-zero, no host key", () => {
    const h = host({ aptFailures: 0, marker: true, dockerExit: 1 });
    const r = h.runScript(renderReadyCheck());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Docker does not answer on the host");
    expect(r.stdout).toBe("");
  });

  it("embeds the launch script byte for byte", () => {
    expect(renderReadyCheck()).toContain(`<<'LAUNCH'\n${renderLaunchScript()}LAUNCH\n`);
  });
});
