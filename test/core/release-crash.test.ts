import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planFor } from "../../infra/model/catalog.js";
import { RELEASE_LOCK } from "../../infra/render/backup.js";
import { drainRuleTag, ENV_FILE_PREFIX, releaseSpec, renderReleaseTool, type ReleasedService } from "../../infra/render/release.js";
import { catalog } from "../../stacks/catalog.js";
import { copyOf, tempDir } from "./helpers.js";

/**
 * The release tool killed with SIGKILL at each step of a swap, for real: the rendered tool runs
 * in bash with stand-in `docker`, `iptables`, `curl` and `sleep` executables on PATH that keep a
 * tiny host in a folder (containers by name with their slot and state, the firewall's rules).
 * Like Docker, the stand-in refuses to start a container on a port a running one holds, and the
 * stand-in curl is refused on a slot a REJECT rule covers. The stand-in blocks at the chosen
 * step; the test then kills the tool's whole process group with SIGKILL (the trap never runs),
 * and runs the tool again.
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
  const plan = copyOf(planFor(catalog, "staging"));
  plan.host.stateDir = join(root, "state");
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
  it.each(CRASH_POINTS)("killed when %s (%s): the site keeps answering, the next run repairs it and the next deploy succeeds", async (point) => {
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

  it.each(CRASH_POINTS)("killed when %s: the tool's next start alone repairs it, the same way twice", async (point) => {
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
