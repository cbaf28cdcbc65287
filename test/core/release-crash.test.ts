import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planFor } from "../../infra/model/catalog.js";
import type { Plan } from "../../infra/model/plan.js";
import { HOLD_WAIT_SECONDS, LOCK_REFUSED_EXIT, LOCK_TOOL, LOCK_WAIT_SECONDS, RELEASE_LOCK, renderLockTool } from "../../infra/render/deploy-lock.js";
import { renderHostSetup } from "../../infra/render/host-setup.js";
import { renderAll } from "../../infra/render/index.js";
import { drainRuleTag, ENV_FILE_PREFIX, releaseSpec, renderReleaseTool, type ReleasedService } from "../../infra/render/release.js";
import { catalog } from "../../stacks/catalog.js";
import { copyOf, run, tempDir } from "./helpers.js";

/**
 * The release tool killed with SIGKILL at each step of a swap, for real: the rendered tool runs
 * in bash with stand-in `docker`, `iptables`, `curl` and `sleep` executables on PATH that keep a
 * tiny host in a folder (containers by name with their slot and state, the firewall's rules).
 * Like Docker, the stand-in refuses to start a container on a port a running one holds, and the
 * stand-in curl is refused on a slot a REJECT rule covers. The stand-in blocks at the chosen
 * step; the test then kills the tool's whole process group with SIGKILL (the trap never runs),
 * and runs the tool again. Each case has a host of its own, so the cases whose time is mostly
 * the tools' waits (crashes, locks) run concurrently.
 */

const { dir, cleanup } = tempDir("release-crash");
afterAll(cleanup);

const STUB_DOCKER = String.raw`#!/bin/bash
# A stand-in Docker: containers are folders under $HOST/containers/<name>.
c="$HOST/containers"
mkdir -p "$c"
printf '%s\n' "$*" >> "$HOST/docker.log"
crash() { if [ "%{CRASH_AT:-}" = "$1" ]; then : > "$HOST/crashed"; exec /bin/sleep 600; fi; }
label_re='\{\{index \.Config\.Labels "([^"]+)"\}\}'
cmd=$1; shift
case "$cmd" in
  inspect)
    if [ "$1" = -f ]; then template=$2; n=$3; else template=""; n=$1; fi
    [ -d "$c/$n" ] || { echo "Error: No such object: $n" >&2; exit 1; }
    case "$template" in
      "") echo "[{}]" ;;
      '{{.State.Running}}') cat "$c/$n/running" ;;
      *'.State.Health'*) if [ "$(cat "$c/$n/running")" = true ]; then echo healthy; else echo none; fi ;;
      *'.State.Status'*) echo "exited, exit code 0" ;;
      *'.HostConfig.PortBindings'*) cat "$c/$n/port" ;;
      '{{.Config.Image}}') cat "$c/$n/image" ;;
      *'.Config.Env'*) cat "$c/$n/env" ;;
      *'.Config.Labels'*)
        out=$template
        while [[ $out =~ $label_re ]]; do
          value=$(grep -m1 "^%{BASH_REMATCH[1]}=" "$c/$n/labels" | cut -d= -f2- || true)
          out=%{out/"%{BASH_REMATCH[0]}"/$value}
        done
        printf '%s\n' "$out" ;;
      *) echo '[]' ;;
    esac ;;
  create)
    n="" port="" labels="" env=""
    while [ "$#" -gt 1 ]; do
      case "$1" in
        --name) n=$2 ;;
        --publish) port=$(printf '%s' "$2" | cut -d: -f2) ;;
        --label) labels+="$2"$'\n' ;;
        --env-file) env+="$(cat "$2")"$'\n' ;;
        --env) env+="$2"$'\n' ;;
      esac
      shift 2
    done
    [ ! -d "$c/$n" ] || { echo "Conflict. The container name \"/$n\" is already in use" >&2; exit 1; }
    mkdir -p "$c/$n"
    printf '%s' "$1" > "$c/$n/image"; printf '%s\n' "$port" > "$c/$n/port"; printf '%s' "$labels" > "$c/$n/labels"
    printf '%s' "$env" > "$c/$n/env"; echo false > "$c/$n/running"
    echo "id-$n" ;;
  start)
    n=$1
    [ -d "$c/$n" ] || exit 1
    port=$(cat "$c/$n/port")
    for other in "$c"/*; do
      [ "$other" != "$c/$n" ] && [ "$(cat "$other/running")" = true ] && [ "$(cat "$other/port")" = "$port" ] || continue
      echo "Error response from daemon: driver failed programming external connectivity: Bind for 127.0.0.1:$port failed: port is already allocated" >&2
      exit 1
    done
    echo true > "$c/$n/running"
    case "$n" in *-candidate) crash started ;; esac ;;
  rename)
    [ -d "$c/$1" ] && [ ! -d "$c/$2" ] || { echo "Error response from daemon: cannot rename $1 to $2" >&2; exit 1; }
    case "$1" in *-candidate) if [ "%{CRASH_AT:-}" = fail-second-rename ]; then echo "Error response from daemon: rename failed" >&2; exit 1; fi ;; esac
    mv "$c/$1" "$c/$2"
    case "$2" in *-previous) crash renamed-live ;; esac
    case "$1" in *-candidate) crash renamed-candidate ;; esac ;;
  stop)
    [ "$1" = -t ] && shift 2
    [ -d "$c/$1" ] || exit 1
    crash stopping
    echo false > "$c/$1/running" ;;
  rm)
    [ "$1" = -f ] && shift
    [ -d "$c/$1" ] || exit 1
    rm -rf "%{c:?}/$1" ;;
  cp|logs|wait) ;;
  run) ;; # the release command, in a one-off container: succeeds
  *) echo "stand-in docker: unexpected $cmd $*" >&2; exit 9 ;;
esac
`.replaceAll("%{", "${");

const STUB_IPTABLES = String.raw`#!/bin/bash
# A stand-in iptables for the OUTPUT chain: one rule per line in $HOST/rules.
rules="$HOST/rules"
touch "$rules"
printf '%s\n' "$*" >> "$HOST/iptables.log"
[ "$1" = -w ] && shift
op=$1 chain=$2; shift 2
[ "$chain" = OUTPUT ] || { echo "stand-in iptables: chain $chain" >&2; exit 9; }
case "$op" in
  -I) printf '%s\n' "$*" >> "$rules"
      if [ "%{CRASH_AT:-}" = rule-added ]; then : > "$HOST/crashed"; exec /bin/sleep 600; fi ;;
  -D) line=$(grep -nxF -- "$*" "$rules" | head -n1 | cut -d: -f1)
      [ -n "$line" ] || { echo "iptables: Bad rule (does a matching rule exist in that chain?)." >&2; exit 1; }
      sed -i "%{line}d" "$rules" ;;
  # As iptables-save prints them: a comment with a colon is quoted.
  -S) echo "-P OUTPUT ACCEPT"
      sed -E 's/--comment ([^ ]+)/--comment "\1"/; s/^/-A OUTPUT /' "$rules" ;;
  *) echo "stand-in iptables: unexpected $op" >&2; exit 9 ;;
esac
`.replaceAll("%{", "${");

const STUB_CURL = String.raw`#!/bin/bash
# A stand-in curl for http://127.0.0.1:<slot>/...: 200 when a running container holds the slot
# and no REJECT rule covers it, 000 (refused) otherwise.
url="" code=""
for a in "$@"; do case "$a" in http://*) url=$a ;; esac; done
port=$(printf '%s' "$url" | sed -E 's#^http://[^:/]+:([0-9]+).*#\1#')
for c in "$HOST"/containers/*; do
  [ -d "$c" ] && [ "$(cat "$c/running")" = true ] && [ "$(cat "$c/port")" = "$port" ] && code=200
done
if grep -q -- "--dport $port " "$HOST/rules" 2>/dev/null; then code=""; fi
case " $* " in
  *" -w "*) printf '%s' "%{code:-000}" ;;
  *) [ -n "$code" ] && echo ok ;;
esac
[ -n "$code" ] || exit 7
`.replaceAll("%{", "${");

const STUB_SLEEP = String.raw`#!/bin/bash
# A short sleep; the drain (a sleep while a rule is in place) is where a crash can be asked for.
if [ "%{CRASH_AT:-}" = draining ] && [ -s "$HOST/rules" ]; then : > "$HOST/crashed"; exec /bin/sleep 600; fi
exec /bin/sleep 0.01
`.replaceAll("%{", "${");

const SECRETS = "DB_PASSWORD=db\nREDIS_PASSWORD=redis\nSECRET_KEY=key\n";

interface Host {
  root: string;
  bin: string;
  tool: string;
}

/**
 * The plan with every folder the tool writes on the data disk moved under `root`: the tests run
 * as any user (a CI runner's is not root) and never touch this machine's /mnt.
 */
function onDataDiskAt(plan: Plan, root: string): Plan {
  const disk = plan.host.dataDisk.mount;
  const moved = (path: string) => {
    if (!path.startsWith(`${disk}/`)) throw new Error(`${path} is not on the data disk ${disk}`);
    return join(root, "data", path.slice(disk.length + 1));
  };
  plan.host.stateDir = moved(plan.host.stateDir);
  plan.host.lockDir = moved(plan.host.lockDir);
  const assets = plan.frontendAssets;
  Object.assign(assets, { hostDir: moved(assets.hostDir), filesDir: moved(assets.filesDir), releasesDir: moved(assets.releasesDir) });
  return plan;
}

let hosts = 0;
/** A fresh stand-in host with the staging tool rendered for it (its paths moved into the host's folder). */
function newHost(): Host {
  const root = join(dir, `host-${(hosts += 1)}`);
  const bin = join(root, "bin");
  mkdirSync(join(root, "containers"), { recursive: true });
  mkdirSync(join(root, "run"), { recursive: true });
  mkdirSync(bin, { recursive: true });
  for (const [name, text] of Object.entries({ docker: STUB_DOCKER, iptables: STUB_IPTABLES, curl: STUB_CURL, sleep: STUB_SLEEP })) {
    writeFileSync(join(bin, name), text);
    chmodSync(join(bin, name), 0o755);
  }
  writeFileSync(join(root, "rules"), "");
  const plan = onDataDiskAt(copyOf(planFor(catalog, "staging")), root);
  // The tool as rendered, but for the host paths outside its state folder.
  const text = renderReleaseTool(plan)
    .replaceAll(RELEASE_LOCK, join(root, "release.lock"))
    .replaceAll(ENV_FILE_PREFIX, join(root, "run", "timetracker-env."));
  const tool = join(root, "timetracker-release");
  writeFileSync(tool, text);
  chmodSync(tool, 0o755);
  return { root, bin, tool };
}

const plan = planFor(catalog, "staging");
const names = (service: ReleasedService) => {
  const c = plan.containers[service];
  return { live: c.name, candidate: c.release!.candidateName, previous: c.release!.previousName, slots: c.release!.slots.map(String) };
};

interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  crashed: boolean;
}

/** Runs the tool; with `crashAt`, kills its process group with SIGKILL once the stand-ins reach that step. */
function runTool(host: Host, args: string[], options: { stdin?: string; crashAt?: string } = {}): Promise<RunOutcome> {
  const marker = join(host.root, "crashed");
  rmSync(marker, { force: true });
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [host.tool, ...args], {
      detached: true,
      env: { PATH: `${host.bin}:${process.env.PATH}`, HOST: host.root, ...(options.crashAt ? { CRASH_AT: options.crashAt } : {}) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(options.stdin ?? "");
    const started = Date.now();
    const timer = setInterval(() => {
      if (options.crashAt && existsSync(marker)) {
        clearInterval(timer);
        process.kill(-child.pid!, "SIGKILL");
      } else if (Date.now() - started > 30_000) {
        clearInterval(timer);
        process.kill(-child.pid!, "SIGKILL");
        stderr += "\n(the test stopped the tool after 30 s)";
      }
    }, 20);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, stdout, stderr, crashed: existsSync(marker) });
    });
  });
}

const deploy = (host: Host, service: ReleasedService, image: string, crashAt?: string) =>
  runTool(host, ["deploy", service, image, releaseSpec(plan, service)], { stdin: service === "backend" ? SECRETS : "", crashAt });

/** The stand-in host's containers: name -> image, slot, running. */
function containers(host: Host): Record<string, { image: string; port: string; running: boolean }> {
  const c = join(host.root, "containers");
  return Object.fromEntries(
    readdirSync(c).map((n) => [
      n,
      {
        image: readFileSync(join(c, n, "image"), "utf8"),
        port: readFileSync(join(c, n, "port"), "utf8").trim(),
        running: readFileSync(join(c, n, "running"), "utf8").trim() === "true",
      },
    ]),
  );
}
const rules = (host: Host) => readFileSync(join(host.root, "rules"), "utf8").split("\n").filter((l) => l !== "");
const blocked = (host: Host, port: string) => rules(host).some((r) => r.includes(`--dport ${port} `));

/** Slots Caddy would find answering: a running container holds it and no rule refuses it. */
function answering(host: Host, service: ReleasedService): string[] {
  const { slots } = names(service);
  const all = Object.values(containers(host));
  return slots.filter((s) => all.some((c) => c.running && c.port === s) && !blocked(host, s));
}

const v = (service: ReleasedService, n: number) => `timetracker-staging-${service}:${String(n).repeat(12)}`;

/** Runs `deploy` once, for the one outcome the suite needs from it: success. */
async function deployed(host: Host, service: ReleasedService, image: string) {
  const result = await deploy(host, service, image);
  expect({ code: result.code, stderr: result.stderr }, result.stdout).toEqual({ code: 0, stderr: "" });
  return result;
}

/** The state every run must leave behind: the image live under its name, serving, nothing stale. */
function expectSettled(host: Host, service: ReleasedService, image: string) {
  const n = names(service);
  const now = containers(host);
  expect(now[n.live], `${n.live} exists`).toBeDefined();
  expect(now[n.live]).toMatchObject({ image, running: true });
  expect(answering(host, service)).toEqual([now[n.live]!.port]);
  expect(now[n.candidate], "no candidate left").toBeUndefined();
  if (now[n.previous]) expect(now[n.previous]!.running, "the previous version is stopped").toBe(false);
  expect(rules(host), "no firewall rule left").toEqual([]);
}

const CRASH_POINTS = [
  ["started", "the candidate is started (before its check)"],
  ["renamed-live", "the live container is renamed to previous (before the candidate takes the name)"],
  ["renamed-candidate", "the candidate has taken the live name"],
  ["rule-added", "the drain rule is added"],
  ["draining", "the old version drains"],
  ["stopping", "the old version is being stopped"],
] as const;

describe("the release tool survives SIGKILL at each step of a swap", { timeout: 60_000 }, () => {
  it.concurrent.each(CRASH_POINTS)("killed when %s (%s): the site keeps answering, the next run repairs it and the next deploy succeeds", async (point) => {
    for (const service of ["backend", "frontend"] as const) {
      const host = newHost();
      await deployed(host, service, v(service, 1));
      expectSettled(host, service, v(service, 1));

      const killed = await deploy(host, service, v(service, 2), point);
      expect(killed.crashed, `the tool reached "${point}": ${killed.stdout}${killed.stderr}`).toBe(true);
      expect(killed.signal).toBe("SIGKILL");
      // At the moment of the kill, one slot still answers.
      expect(answering(host, service).length, JSON.stringify({ containers: containers(host), rules: rules(host) })).toBeGreaterThan(0);
      // A rule left behind names the tool, the stack and the service.
      for (const rule of rules(host)) expect(rule).toContain(`-m comment --comment ${drainRuleTag(plan)}:${service} `);
      if (["rule-added", "draining", "stopping"].includes(point)) expect(rules(host)).toHaveLength(1);

      // The next deploy succeeds, from whatever the killed run left.
      await deployed(host, service, v(service, 3));
      expectSettled(host, service, v(service, 3));
      // And the one after it: the slots alternate as usual.
      const slotBefore = containers(host)[names(service).live]!.port;
      await deployed(host, service, v(service, 4));
      expectSettled(host, service, v(service, 4));
      expect(containers(host)[names(service).live]!.port).not.toBe(slotBefore);
    }
  });

  it.concurrent.each(CRASH_POINTS)("killed when %s: the tool's next start alone repairs it, the same way twice", async (point) => {
    const service = "backend";
    const host = newHost();
    await deployed(host, service, v(service, 1));
    const killed = await deploy(host, service, v(service, 2), point);
    expect(killed.crashed).toBe(true);

    // `dump` does nothing here (no database container), so what changes is the start's repair.
    const first = await runTool(host, ["dump", "test"]);
    expect({ code: first.code, stderr: first.stderr }, first.stdout).toEqual({ code: 0, stderr: "" });
    const n = names(service);
    const after = containers(host);
    expect(after[n.live]?.running, `${n.live} after the repair: ${JSON.stringify(after)}`).toBe(true);
    expect(answering(host, service)).toEqual([after[n.live]!.port]);
    expect(after[n.candidate]).toBeUndefined();
    expect(rules(host)).toEqual([]);
    expect(readdirSync(join(host.root, "run")), "no env file (secrets) left by the killed run").toEqual([]);

    const second = await runTool(host, ["dump", "test"]);
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: "" });
    expect(containers(host)).toEqual(after);
    expect(rules(host)).toEqual([]);
  });

  it("a failed second rename leaves the previous version under the live name", async () => {
    const service = "backend";
    const host = newHost();
    await deployed(host, service, v(service, 1));
    const failed = await deploy(host, service, v(service, 2), "fail-second-rename");
    expect(failed.code).not.toBe(0);
    const n = names(service);
    const now = containers(host);
    expect(now[n.live], JSON.stringify(now)).toMatchObject({ image: v(service, 1), running: true });
    expect(answering(host, service).length).toBeGreaterThan(0);
    await deployed(host, service, v(service, 3));
    expectSettled(host, service, v(service, 3));
  });

  it("clears a drain rule an older tool left without a comment, and only the tool's rules", async () => {
    const host = newHost();
    const { slots } = names("backend");
    const legacy = `-o lo -p tcp --dport ${slots[1]} --syn -j REJECT --reject-with tcp-reset`;
    const foreign = "-o eth0 -p tcp --dport 25 -j REJECT";
    writeFileSync(join(host.root, "rules"), `${legacy}\n${foreign}\n`);
    await deployed(host, "backend", v("backend", 1));
    await deployed(host, "backend", v("backend", 2));
    expect(rules(host)).toEqual([foreign]);
    expect(containers(host)[names("backend").live]).toMatchObject({ image: v("backend", 2), port: slots[1], running: true });
  });
});

/**
 * The deploy lock on a stand-in host: the rendered lock tool and release tool run in bash, every
 * host path moved into a temp folder, with stand-in `docker` (no container exists) and
 * `iptables` (no rule; it blocks on request, so a run holds the lock while the test looks, and
 * is killed there with SIGKILL). The waits are cut to seconds; everything else is as rendered.
 */

const WAIT = { lock: 3, hold: 1 };

const LOCK_STUB_DOCKER = `#!/bin/bash
printf '%s\\n' "$*" >> "$HOST/docker.log"
case "$1" in
  inspect) echo "Error: No such object: \${*: -1}" >&2; exit 1 ;;
  *) exit 0 ;;
esac
`;

const LOCK_STUB_IPTABLES = `#!/bin/bash
printf '%s\\n' "$*" >> "$HOST/iptables.log"
if [ -e "$HOST/block" ]; then : > "$HOST/blocked"; exec /bin/sleep 600; fi
# No rule exists: deleting one fails, as iptables does.
[ "$2" != -D ] || exit 1
`;

interface LockHost {
  root: string;
  records: string;
  lockTool: string;
  releaseTool: string;
  env: Record<string, string>;
}

let lockHosts = 0;
function lockHost(): LockHost {
  const root = join(dir, `lock-host-${(lockHosts += 1)}`);
  const bin = join(root, "bin");
  mkdirSync(bin, { recursive: true });
  mkdirSync(join(root, "run"));
  for (const [name, text] of Object.entries({ docker: LOCK_STUB_DOCKER, iptables: LOCK_STUB_IPTABLES })) {
    writeFileSync(join(bin, name), text);
    chmodSync(join(bin, name), 0o755);
  }
  const lockPlan = onDataDiskAt(copyOf(planFor(catalog, "staging")), root);
  const moved = (text: string) =>
    text
      .replaceAll(RELEASE_LOCK, join(root, "release.lock"))
      .replaceAll(ENV_FILE_PREFIX, join(root, "run", "timetracker-env."))
      .replace(`\nlock_wait=${LOCK_WAIT_SECONDS}\n`, `\nlock_wait=${WAIT.lock}\n`)
      .replace(`\nhold_wait=${HOLD_WAIT_SECONDS}\n`, `\nhold_wait=${WAIT.hold}\n`);
  const lockTool = join(root, "timetracker-lock");
  const releaseTool = join(root, "timetracker-release");
  writeFileSync(lockTool, moved(renderLockTool(lockPlan)));
  writeFileSync(releaseTool, moved(renderReleaseTool(lockPlan)));
  for (const text of [readFileSync(lockTool, "utf8"), readFileSync(releaseTool, "utf8")]) {
    expect(text).toContain(`\nlock_wait=${WAIT.lock}\n`);
    expect(text).toContain(`\nhold_wait=${WAIT.hold}\n`);
  }
  return { root, records: lockPlan.host.lockDir, lockTool, releaseTool, env: { PATH: `${bin}:${process.env.PATH}`, HOST: root, SUDO_USER: "ubuntu", SSH_CLIENT: "203.0.113.7 50022 22" } };
}

interface LockOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a tool to its end; `extra` adds to (or, with "", removes from) the host's environment. */
function runOn(host: LockHost, tool: string, args: string[], extra: Record<string, string> = {}): Promise<LockOutcome> {
  const started = Date.now();
  const env = Object.fromEntries(Object.entries({ ...host.env, ...extra }).filter(([, v]) => v !== ""));
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [tool, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
}

const lock = (host: LockHost, args: string[], extra: Record<string, string> = {}) => runOn(host, host.lockTool, args, extra);
/** A release tool run that needs no container: a dump with no database, then nothing. */
const dumpOn = (host: LockHost, extra: Record<string, string> = {}) => runOn(host, host.releaseTool, ["dump", "test"], extra);
const deployOn = (host: LockHost, extra: Record<string, string> = {}) => runOn(host, host.releaseTool, ["deploy", "backend", "timetracker-staging-backend:2222", "0123abcd"], extra);

/** Starts a release run that holds the lock until it is killed: its stand-in iptables blocks. */
async function holdingRun(host: LockHost): Promise<{ pid: number; exited: Promise<void> }> {
  rmSync(join(host.root, "blocked"), { force: true });
  writeFileSync(join(host.root, "block"), "");
  const child = spawn("bash", [host.releaseTool, "dump", "test"], { env: host.env, stdio: "ignore", detached: true });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  for (let i = 0; i < 200 && !existsSync(join(host.root, "blocked")); i++) await new Promise((r) => setTimeout(r, 50));
  expect(existsSync(join(host.root, "blocked")), "the run reached its blocking step").toBe(true);
  return { pid: child.pid!, exited };
}

/**
 * Resolves once no process of the group `pgid` is left (5 s at most). SIGKILL is delivered, not
 * waited for: a stand-in's `sleep` killed with its group can still hold the lock's file for a
 * moment after its parent's exit was seen.
 */
async function groupGone(pgid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const firstLine = (text: string) => text.split("\n")[0] ?? "";
const STAMP = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/.source;

describe("the lock tool: status, a hold taken on purpose, release", () => {
  it("is free on a new host; acquire records who (user, SSH client, sender), since when and why; status shows it; release frees it", async () => {
    const host = lockHost();
    expect(await lock(host, ["status"])).toMatchObject({ code: 0, stdout: "lock: free\n", stderr: "" });

    const acquired = await lock(host, ["acquire", "restoring last night's dump by hand"], { TIMETRACKER_LOCK_BY: "alice@laptop" });
    expect(acquired.code, acquired.stderr).toBe(0);
    const held = new RegExp(`^lock: held on purpose since ${STAMP} \\(\\d+ s ago\\) by ubuntu \\(ssh from 203\\.0\\.113\\.7, alice@laptop\\): restoring last night's dump by hand$`);
    expect(firstLine(acquired.stdout)).toMatch(held);
    const status = await lock(host, ["status"]);
    expect(status.stdout.split("\n")).toEqual([
      expect.stringMatching(held),
      `  deploys, rollbacks and restores wait ${WAIT.hold} s for it, then are refused; release it with: npm run ops -- --stack staging lock release`,
      "",
    ]);

    // The record: root only, whole (no temp file left), key=value lines.
    expect(statSync(host.records).mode & 0o777).toBe(0o700);
    expect(readdirSync(host.records)).toEqual(["hold"]);
    expect(statSync(join(host.records, "hold")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(host.records, "hold"), "utf8")).toMatch(
      new RegExp(`^kind=hold\\npid=\\d+\\nuser=ubuntu\\nfrom=ssh from 203\\.0\\.113\\.7\\nby=alice@laptop\\nsince=${STAMP}\\nwhy=restoring last night's dump by hand\\n$`),
    );

    const released = await lock(host, ["release"]);
    expect(released.code).toBe(0);
    expect(released.stdout).toMatch(/^released the hold: held on purpose since .* restoring last night's dump by hand\nlock: free\n$/);
    expect(readdirSync(host.records)).toEqual([]);
    expect((await lock(host, ["release"])).stdout).toBe("nothing to release\nlock: free\n");
  });

  it("a second hold is refused (exit 75) naming the first; the first stays", async () => {
    const host = lockHost();
    expect((await lock(host, ["acquire", "data move"], { TIMETRACKER_LOCK_BY: "alice@laptop" })).code).toBe(0);
    const second = await lock(host, ["acquire", "mine now"], { TIMETRACKER_LOCK_BY: "bob@desk" });
    expect(second.code).toBe(LOCK_REFUSED_EXIT);
    expect(second.stderr).toMatch(/^refused: the deploy lock is already held on purpose since .* by ubuntu \(ssh from 203\.0\.113\.7, alice@laptop\): data move; release it first: npm run ops -- --stack staging lock release\n$/);
    expect(readFileSync(join(host.records, "hold"), "utf8")).toContain("why=data move\n");
  });

  it("finds the SSH client up the process tree when the tool's own environment has none (sudo drops it)", async () => {
    const host = lockHost();
    const { SSH_CLIENT: _dropped, ...withoutClient } = host.env;
    const result = await new Promise<LockOutcome>((resolve) => {
      // The outer bash has SSH_CLIENT (the SSH session's shell); the tool below it has not.
      const child = spawn("bash", ["-c", `env -u SSH_CLIENT bash '${host.lockTool}' acquire 'from a session'; echo "exit $?"`], {
        env: { ...withoutClient, SSH_CLIENT: "198.51.100.23 41000 22" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.on("close", (code) => resolve({ code, stdout, stderr: "", seconds: 0 }));
    });
    expect(result.stdout).toContain("exit 0");
    expect(readFileSync(join(host.records, "hold"), "utf8")).toContain("from=ssh from 198.51.100.23\n");
    // Without any session up the tree: the host itself.
    const local = lockHost();
    expect((await lock(local, ["acquire", "on the console"], { SSH_CLIENT: "" })).code).toBe(0);
    expect(readFileSync(join(local.records, "hold"), "utf8")).toContain("from=on the host, no SSH session\n");
  });

  it("usage mistakes exit 2 and change nothing", async () => {
    const host = lockHost();
    for (const args of [[], ["acquire"], ["acquire", ""], ["status", "x"], ["frobnicate"]]) {
      const result = await lock(host, args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toContain("usage: timetracker-lock status | acquire <message> | release");
    }
    expect(existsSync(host.records)).toBe(false);
  });
});

describe("deploys, rollbacks and dumps of the release tool meet the lock", { timeout: 60_000 }, () => {
  it.concurrent("a deploy meeting someone else's hold says who holds it and why, waits hold_wait s, then is refused (exit 75); nothing ran", async () => {
    const host = lockHost();
    expect((await lock(host, ["acquire", "moving the data to a bigger disk"], { TIMETRACKER_LOCK_BY: "alice@laptop" })).code).toBe(0);
    const refused = await deployOn(host);
    expect(refused.code).toBe(LOCK_REFUSED_EXIT);
    expect(refused.stdout).toMatch(new RegExp(`^waiting up to ${WAIT.hold} s for the deploy lock, held by a hold taken on purpose since ${STAMP} \\(\\d+ s ago\\) by ubuntu \\(ssh from 203\\.0\\.113\\.7, alice@laptop\\): moving the data to a bigger disk\\n$`));
    expect(refused.stderr).toMatch(
      /^refused: the deploy lock is held by a hold taken on purpose since .* by ubuntu \(ssh from 203\.0\.113\.7, alice@laptop\): moving the data to a bigger disk; waited \d+ s, nothing was changed\.\nThe holder releases it with: npm run ops -- --stack staging lock release\n$/,
    );
    expect(refused.seconds).toBeGreaterThanOrEqual(WAIT.hold);
    expect(existsSync(join(host.root, "docker.log")), "nothing ran: no docker call").toBe(false);
    // Another sender is refused the same way; the hold is untouched, and no run record is left.
    expect((await dumpOn(host, { TIMETRACKER_LOCK_BY: "bob@desk" })).code).toBe(LOCK_REFUSED_EXIT);
    expect(readdirSync(host.records)).toEqual(["hold"]);

    // Released: the same deploy goes on (to its own usage check, past the lock and the recovery).
    expect((await lock(host, ["release"])).code).toBe(0);
    const after = await dumpOn(host);
    expect({ code: after.code, stderr: after.stderr }).toEqual({ code: 0, stderr: "" });
    expect(after.stdout).toContain("nothing to dump");
    expect(readdirSync(host.records), "the run's record went with it").toEqual([]);
  });

  it.concurrent("a run sent by the hold's holder (TIMETRACKER_LOCK_BY) runs under the hold, which stays", async () => {
    const host = lockHost();
    expect((await lock(host, ["acquire", "restore drill"], { TIMETRACKER_LOCK_BY: "alice@laptop" })).code).toBe(0);
    const own = await dumpOn(host, { TIMETRACKER_LOCK_BY: "alice@laptop" });
    expect({ code: own.code, stderr: own.stderr }).toEqual({ code: 0, stderr: "" });
    expect(own.stdout).toMatch(/^runs under its sender's hold: held on purpose since .* alice@laptop\): restore drill\n/);
    expect(readdirSync(host.records)).toEqual(["hold"]);
    // Without a sender (a pulumi up), it is someone else's.
    expect((await deployOn(host)).code).toBe(LOCK_REFUSED_EXIT);
  });

  it.concurrent("a running release: status names it (what, who, pid); another deploy waits lock_wait s, then is refused naming it", async () => {
    const host = lockHost();
    const running = await holdingRun(host);
    try {
      const status = await lock(host, ["status"]);
      expect(status.stdout).toMatch(new RegExp(`^lock: held since ${STAMP} \\(\\d+ s ago\\) by ubuntu \\(ssh from 203\\.0\\.113\\.7\\): dump test \\(pid ${running.pid}\\)\\n$`));
      const refused = await deployOn(host, { TIMETRACKER_LOCK_BY: "bob@desk" });
      expect(refused.code).toBe(LOCK_REFUSED_EXIT);
      expect(refused.stdout).toMatch(new RegExp(`^waiting up to ${WAIT.lock} s for the deploy lock, held by a run since .*: dump test \\(pid ${running.pid}\\)\\n$`));
      expect(refused.stderr).toMatch(new RegExp(`^refused: the deploy lock is held by a run since .*: dump test \\(pid ${running.pid}\\); waited \\d+ s, nothing was changed\\.\\n$`));
      expect(refused.seconds).toBeGreaterThanOrEqual(WAIT.lock);
      // A hold cannot be taken under a running release either.
      expect((await lock(host, ["acquire", "too late"])).code).toBe(LOCK_REFUSED_EXIT);
      expect(existsSync(join(host.records, "hold"))).toBe(false);
    } finally {
      process.kill(-running.pid, "SIGKILL");
      await running.exited;
    }
  });

  it.concurrent("a run killed with SIGKILL: its record is stale (status says so); release clears it, or the next run replaces it", async () => {
    const host = lockHost();
    const running = await holdingRun(host);
    // The tool alone is killed: the blocked iptables it started still holds the lock's file.
    process.kill(running.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const orphan = await lock(host, ["status"]);
    expect(orphan.stdout).toMatch(new RegExp(`^lock: held since .*: dump test\\n  its pid ${running.pid} is gone, but a process it started still holds the lock: it ends with that process\\n$`));
    // The whole run goes: nothing holds the lock, the record stays behind.
    process.kill(-running.pid, "SIGKILL");
    await running.exited;
    await groupGone(running.pid);
    const stale = await lock(host, ["status"]);
    expect(stale.stdout.split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^lock: stale since ${STAMP} \\(\\d+ s ago\\) by ubuntu \\(ssh from 203\\.0\\.113\\.7\\): dump test$`)),
      `  a killed run left this record: its pid ${running.pid} is gone and nothing holds the lock; lock release clears it (the next run replaces it)`,
      "",
    ]);
    const released = await lock(host, ["release"]);
    expect(released.stdout).toMatch(/^cleared the record a killed run left: held since .*: dump test\nlock: free\n$/);

    // Killed again; this time the next run finds the record and replaces it.
    const again = await holdingRun(host);
    process.kill(-again.pid, "SIGKILL");
    await again.exited;
    await groupGone(again.pid);
    rmSync(join(host.root, "block"));
    const next = await dumpOn(host);
    expect({ code: next.code, stderr: next.stderr }).toEqual({ code: 0, stderr: "" });
    expect(next.stdout).toMatch(/^the deploy lock was free, but a killed run left its record \(held since .*: dump test\): replaced\n/);
    expect((await lock(host, ["status"])).stdout).toBe("lock: free\n");
  });

  it("status does not wait for a hold, and takes no record", async () => {
    const host = lockHost();
    expect((await lock(host, ["acquire", "hands off"])).code).toBe(0);
    const status = await runOn(host, host.releaseTool, ["status"]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain("backend live:     none");
    expect(status.seconds).toBeLessThan(WAIT.hold + 1);
    expect(readdirSync(host.records)).toEqual(["hold"]);
  });
});

describe("the lock tool as shipped", () => {
  const shipped = planFor(catalog, "staging");

  it("shellcheck finds nothing in it; host setup installs it byte for byte with its root-only records folder; renderAll ships it as lock.sh", async () => {
    const tool = renderLockTool(shipped);
    const file = join(dir, "lock.sh");
    writeFileSync(file, tool);
    const checked = await run("shellcheck", ["--norc", "--format=gcc", file]);
    expect(checked.spawnError?.code, "shellcheck is not installed: apt-get install shellcheck").toBeUndefined();
    expect({ code: checked.code, findings: checked.stdout + checked.stderr }).toEqual({ code: 0, findings: "" });
    const setup = renderHostSetup(shipped);
    const header = `put ${LOCK_TOOL} 0755 <<'SH' || true\n`;
    const start = setup.indexOf(header) + header.length;
    expect(start).toBeGreaterThan(header.length);
    expect(setup.slice(start, setup.indexOf("\nSH\n", start) + 1)).toBe(tool);
    expect(setup).toContain(`\ninstall -d -m 0700 ${shipped.host.lockDir}\n`);
    expect(renderAll(shipped)["lock.sh"]).toBe(tool);
  });

  it("the records are on the data disk (a hold outlives a reboot and the instance), the lock file in /run", () => {
    expect(shipped.host.lockDir.startsWith(`${shipped.host.dataDisk.mount}/`)).toBe(true);
    expect(RELEASE_LOCK.startsWith("/run/")).toBe(true);
  });
});
