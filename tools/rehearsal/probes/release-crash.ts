import type { Plan } from "../../../infra/model/plan.js";
import { drainRuleTag, RELEASE_TOOL, releaseSpec } from "../../../infra/render/release.js";
import type { CommandResult } from "../docker.js";
import { httpRequest, requestLoop, type Endpoint } from "../http.js";
import { check, type ProbeLog } from "../probes.js";

/** What this probe needs of the rehearsal (a structural subset of its context). */
export interface ReleaseCrashContext {
  plan: Plan;
  probes: ProbeLog;
  /** Caddy's address on the static IP, and the Host header its site answers. */
  web: Endpoint;
  host: string;
  /** A command on the stack's host over SSH, as its admin user (sudo -n for root). */
  ssh(command: string, stdin?: string): Promise<CommandResult>;
  /** A normal deploy of the stack's program (`pulumi up`), after changing the backend so it must be released. */
  deployChangedBackend(): Promise<{ ok: boolean; error: string }>;
}

/** The steps of a swap the tool is killed at, in the order a swap reaches them. */
export const CRASH_POINTS = [
  ["started", "the candidate started, before its check"],
  ["renamed-live", "between the two renames: no container under the live name"],
  ["renamed-candidate", "the candidate has taken the live name, the old version still serving"],
  ["rule-added", "the drain rule added"],
  ["draining", "draining the old version"],
] as const;

const DIR = "/run/timetracker-crash";

/**
 * Stand-ins placed before the real `docker`, `iptables` and `sleep` on the tool's PATH, for the
 * killed run only: each runs the real command, then, at the step CRASH_AT names, records its pid
 * and blocks, so the probe kills the tool (kill -9) exactly there. The kill is the real one.
 */
const SHIMS = String.raw`set -euo pipefail
dir=${DIR}
mkdir -p "$dir/bin"
chmod 0700 "$dir"
real_docker=$(command -v docker) real_iptables=$(command -v iptables) real_sleep=$(command -v sleep)
cat > "$dir/bin/docker" <<SH
#!/bin/bash
block() { echo \$\$ > $dir/blocked; exec $real_sleep 600; }
status=0
$real_docker "\$@" || status=\$?
if [ "\$status" -eq 0 ]; then
  case "\${CRASH_AT:-}:\$1:\${2:-}:\${3:-}" in
    started:start:*-candidate:*) block ;;
    renamed-live:rename:*:*-previous) block ;;
    renamed-candidate:rename:*-candidate:*) block ;;
  esac
  # The swap's second rename: the rule and the drain after it are the swap's, not a repair's.
  case "\$1:\${2:-}" in rename:*-candidate) : > $dir/swapped ;; esac
fi
exit "\$status"
SH
cat > "$dir/bin/iptables" <<SH
#!/bin/bash
status=0
$real_iptables "\$@" || status=\$?
if [ "\$status" -eq 0 ] && [ "\${2:-}" = -I ] && [ -e $dir/swapped ]; then
  : > $dir/rule-in
  if [ "\${CRASH_AT:-}" = rule-added ]; then echo \$\$ > $dir/blocked; exec $real_sleep 600; fi
fi
exit "\$status"
SH
cat > "$dir/bin/sleep" <<SH
#!/bin/bash
if [ "\${CRASH_AT:-}" = draining ] && [ -e $dir/rule-in ]; then echo \$\$ > $dir/blocked; exec $real_sleep 600; fi
exec $real_sleep "\$@"
SH
chmod 0755 "$dir/bin/docker" "$dir/bin/iptables" "$dir/bin/sleep"
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The release tool killed with SIGKILL at each step of a swap of the backend, while clients loop
 * on /api/health through Caddy: no request fails, each next run starts by repairing what the
 * killed one left, and then a normal deploy (the program's) succeeds and leaves no drain rule,
 * no candidate and the old version stopped.
 */
export async function releaseCrashProbe(ctx: ReleaseCrashContext): Promise<boolean> {
  const { plan } = ctx;
  const backend = plan.containers.backend;
  const release = backend.release!;
  const secretKeys = Object.entries(backend.env).flatMap(([k, v]) => (typeof v === "string" ? [] : [k]));
  const tag = drainRuleTag(plan);
  const root = async (script: string) => {
    const result = await ctx.ssh("sudo -n bash -s", script);
    check(result.code === 0, `on the host: exit ${result.code}: ${result.stderr.trim().slice(-300)}`);
    return result.stdout;
  };

  return ctx.probes.run(
    `the release tool killed (kill -9) at each step of a swap (${CRASH_POINTS.map(([p]) => p).join(", ")}): no failed request, each next run repairs it, then a normal deploy succeeds`,
    async () => {
      await root(SHIMS);
      const loop = requestLoop(ctx.web, "/api/health", ctx.host, { clients: 4 });
      const seen: string[] = [];
      let stopped = false;
      try {
        for (const [index, [point]] of CRASH_POINTS.entries()) {
          // A version the tool must really release: the live image under a tag of its own.
          const image = (
            await root(`set -euo pipefail
live=$(docker inspect -f '{{.Config.Image}}' ${backend.name} 2>/dev/null || docker inspect -f '{{.Config.Image}}' ${release.previousName})
image="\${live%:*}:crash-${index}-${Date.now().toString(36)}"
docker tag "$live" "$image"
echo "$image"`)
          ).trim();
          await root(`set -euo pipefail
cd ${DIR}
rm -f blocked rule-in swapped pid log
from=${backend.name}; docker inspect ${backend.name} >/dev/null 2>&1 || from=${release.previousName}
(umask 077; docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$from" | grep -E '^(${secretKeys.join("|")})=' > stdin)
setsid bash -c 'echo $$ > ${DIR}/pid; exec env PATH=${DIR}/bin:$PATH CRASH_AT=${point} ${RELEASE_TOOL} deploy backend ${image} ${releaseSpec(plan, "backend")} < ${DIR}/stdin > ${DIR}/log 2>&1' < /dev/null > /dev/null 2>&1 &`);
          const deadline = Date.now() + 300_000;
          for (;;) {
            const state = await root(`cd ${DIR}; if [ -s blocked ]; then echo blocked; elif [ -s pid ] && ! kill -0 "$(cat pid)" 2>/dev/null; then echo ended; else echo running; fi`);
            if (state.trim() === "blocked") break;
            const log = state.trim() === "ended" || Date.now() > deadline ? await root(`cat ${DIR}/log`) : "";
            check(state.trim() !== "ended", `the tool ended before it reached "${point}": ${log.trim().slice(-400)}`);
            check(Date.now() <= deadline, `the tool did not reach "${point}" in 300 s: ${log.trim().slice(-400)}`);
            await sleep(300);
          }
          await root(`cd ${DIR}; kill -9 "$(cat pid)"; kill -9 "$(cat blocked)" 2>/dev/null || true; rm -f stdin`);
          const names = await root(`docker ps -a --filter label=timetracker.service=backend --format '{{.Names}}:{{.State}}' | sort | tr '\\n' ' '; iptables -w -S OUTPUT | grep -c -- '${tag}:' || true`);
          const answer = await httpRequest(ctx.web, "/api/health", ctx.host);
          check(answer.status === 200, `killed at "${point}": /api/health answered ${answer.status}`);
          seen.push(`${point}: ${names.trim().replace(/\s+(\d+)$/, " ($1 rules)")}`);
        }
        const deployed = await ctx.deployChangedBackend();
        check(deployed.ok, `the deploy after the kills failed: ${deployed.error}`);
        const traffic = await loop.stop();
        stopped = true;
        check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed: ${traffic.failures.slice(0, 3).join("; ")}`);
        const after = await root(`set -euo pipefail
docker inspect -f '{{.State.Running}}' ${backend.name}
docker inspect ${release.candidateName} >/dev/null 2>&1 && echo candidate-left || echo no-candidate
docker inspect -f '{{.State.Running}}' ${release.previousName} 2>/dev/null || echo no-previous
iptables -w -S OUTPUT | grep -c -- '${tag}:' || true
ls ${"/run/timetracker-env."}* 2>/dev/null | wc -l
rm -rf ${DIR}`);
        const [liveRunning, candidate, previousRunning, rules, envFiles] = after.trim().split("\n");
        check(liveRunning === "true", `${backend.name} is not running after the deploy`);
        check(candidate === "no-candidate", "a candidate was left");
        check(previousRunning !== "true", `${release.previousName} still runs`);
        check(rules === "0", `${rules} drain rules left`);
        check(envFiles === "0", `${envFiles} env files left in /run`);
        return `${seen.join("; ")}; then deployed; ${traffic.sent} requests, none failed, worst ${traffic.worst.toFixed(3)} s`;
      } finally {
        if (!stopped) await loop.stop();
      }
    },
  );
}
