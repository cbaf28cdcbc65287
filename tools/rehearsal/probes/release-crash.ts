import { drainRuleTag, ENV_FILE_PREFIX, RELEASE_TOOL, releaseSpec } from "../../../infra/render/release.js";
import { CLIENTS, type Rehearsal } from "../context.js";
import { httpRequest } from "../http.js";
import { check } from "../probes.js";

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
 * The stand-ins' folder: not under /run, which is mounted noexec (on the host as on Ubuntu), so
 * bash would pass over stand-ins there without a word and run the real commands: the tool would
 * never block, and run its whole deploy.
 */
const BIN = "/usr/local/lib/timetracker-crash";

/**
 * Stand-ins placed before the real `docker`, `iptables` and `sleep` on the tool's PATH, for the
 * killed run only: each runs the real command, then, at the step CRASH_AT names, records its pid
 * and blocks, so the probe kills the tool (kill -9) exactly there. The kill is the real one.
 */
const SHIMS = String.raw`set -euo pipefail
dir=${DIR} bin=${BIN}
mkdir -p "$dir" "$bin"
chmod 0700 "$dir" "$bin"
real_docker=$(command -v docker) real_iptables=$(command -v iptables) real_sleep=$(command -v sleep)
cat > "$bin/docker" <<SH
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
cat > "$bin/iptables" <<SH
#!/bin/bash
status=0
$real_iptables "\$@" || status=\$?
if [ "\$status" -eq 0 ] && [ "\${2:-}" = -I ] && [ -e $dir/swapped ]; then
  : > $dir/rule-in
  if [ "\${CRASH_AT:-}" = rule-added ]; then echo \$\$ > $dir/blocked; exec $real_sleep 600; fi
fi
exit "\$status"
SH
cat > "$bin/sleep" <<SH
#!/bin/bash
if [ "\${CRASH_AT:-}" = draining ] && [ -e $dir/rule-in ]; then echo \$\$ > $dir/blocked; exec $real_sleep 600; fi
exec $real_sleep "\$@"
SH
chmod 0755 "$bin/docker" "$bin/iptables" "$bin/sleep"
# The tool must find them first: a folder it cannot execute from is passed over silently.
for c in docker iptables sleep; do
  found=$(PATH="$bin:$PATH" bash -c "command -v $c")
  [ "$found" = "$bin/$c" ] || { echo "the stand-in $bin/$c is not the $c the tool runs (it runs $found)" >&2; exit 1; }
done
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The release tool killed with SIGKILL at each step of a swap of the backend, while clients loop
 * on /api/health through Caddy: no request fails, each next run starts by repairing what the
 * killed one left, and then a normal deploy (the program's) succeeds and leaves no drain rule,
 * no candidate, no env file and the old version stopped.
 */
export async function releaseCrash(r: Rehearsal): Promise<void> {
  const { plan, probes, admin, web, host, say } = r;
  const backend = plan.containers.backend;
  const release = backend.release!;
  const secretKeys = Object.entries(backend.env).flatMap(([k, v]) => (typeof v === "string" ? [] : [k]));
  const tag = drainRuleTag(plan);
  const root = async (script: string) => {
    const result = await admin.ssh("sudo -n bash -s", script);
    check(result.code === 0, `on the host: exit ${result.code}: ${result.stderr.trim().slice(-300)}`);
    return result.stdout;
  };
  /** Starts the tool on the host (a deploy of `image`), in the background, with CRASH_AT set. */
  const startKilledRun = (point: string, image: string) =>
    root(`set -euo pipefail
cd ${DIR}
rm -f blocked rule-in swapped pid log
from=${backend.name}; docker inspect ${backend.name} >/dev/null 2>&1 || from=${release.previousName}
(umask 077; docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$from" | grep -E '^(${secretKeys.join("|")})=' > stdin)
setsid bash -c 'echo $$ > ${DIR}/pid; exec env PATH=${BIN}:$PATH CRASH_AT=${point} ${RELEASE_TOOL} deploy backend ${image} ${releaseSpec(plan, "backend")} < ${DIR}/stdin > ${DIR}/log 2>&1' < /dev/null > /dev/null 2>&1 &`);

  /** Kills the tool at each step in turn (each run starts by repairing the last), then deploys normally. */
  const killEachStep = async (seen: string[]) => {
    for (const [index, [point]] of CRASH_POINTS.entries()) {
      // A version the tool must really release: the live image under a tag of its own.
      const image = (
        await root(`set -euo pipefail
# (a missing container still prints an empty line with -f: the second inspect replaces the first's output)
live=$(docker inspect -f '{{.Config.Image}}' ${backend.name} 2>/dev/null) || live=$(docker inspect -f '{{.Config.Image}}' ${release.previousName})
image="\${live%:*}:crash-${index}-${r.runId}"
docker tag "$live" "$image"
echo "$image"`)
      ).trim();
      await startKilledRun(point, image);
      const deadline = Date.now() + 300_000;
      for (;;) {
        const state = (await root(`cd ${DIR} || exit 1; if [ -s blocked ]; then echo blocked; elif [ -s pid ] && ! kill -0 "$(cat pid)" 2>/dev/null; then echo ended; else echo running; fi`)).trim();
        if (state === "blocked") break;
        if (state === "ended" || Date.now() > deadline) {
          const log = await root(`cat ${DIR}/log`);
          check(false, `the tool ${state === "ended" ? "ended before it reached" : "did not reach in 300 s"} "${point}": ${log.trim().slice(-1500)}`);
        }
        await sleep(300);
      }
      // kill -9 the tool; the command it was held at goes too (it had done its step).
      await root(`cd ${DIR} || exit 1; kill -9 "$(cat pid)"; kill -9 "$(cat blocked)" 2>/dev/null || true; rm -f stdin`);
      const answer = await httpRequest(web, "/api/health", host);
      check(answer.status === 200, `killed at "${point}": /api/health answered ${answer.status}`);
      const left = await root(`docker ps -a --filter label=timetracker.service=backend --format '{{.Names}}={{.State}}' | sort | tr '\\n' ' '; iptables -w -S OUTPUT | grep -c -- '${tag}:' || true`);
      seen.push(`${point}: ${left.trim().replace(/\s+(\d+)$/, ", $1 rule(s)")}`);
    }
    r.touchBackend(1000);
    return r.deploy(r.current);
  };

  say("the release tool killed with kill -9 at each step of a swap");
  await probes.run(
    `the release tool killed (kill -9) at each step of a backend swap (${CRASH_POINTS.map(([p]) => p).join(", ")}) under ${CLIENTS} clients: no failed request, each next run repairs what it left, then a normal deploy succeeds`,
    async () => {
      const seen: string[] = [];
      try {
        await root(SHIMS);
        // The action never throws, so the clients' loop always stops; a failure is rethrown after it.
        const { result, traffic, seconds } = await r.underTraffic("/api/health", () =>
          killEachStep(seen).then(
            (deployed) => ({ deployed, error: undefined }),
            (error: Error) => ({ deployed: undefined, error }),
          ),
        );
        r.measurements.swaps["kill -9"] = { ...traffic, seconds };
        if (result.error) throw new Error(`${result.error.message} (after ${seen.join("; ") || "no kill"}; ${r.trafficSummary(traffic)})`);
        check(result.deployed!.ok, `the deploy after the kills failed: ${result.deployed!.error}`);
        check(traffic.failed === 0, `${traffic.failed} of ${traffic.sent} requests failed: ${traffic.failures.slice(0, 3).join("; ")}`);
        const after = await root(`set -euo pipefail
docker inspect -f '{{.State.Running}}' ${backend.name}
docker inspect ${release.candidateName} >/dev/null 2>&1 && echo candidate-left || echo no-candidate
docker inspect -f '{{.State.Running}}' ${release.previousName} 2>/dev/null || echo no-previous
iptables -w -S OUTPUT | grep -c -- '${tag}:' || true
find ${ENV_FILE_PREFIX.slice(0, ENV_FILE_PREFIX.lastIndexOf("/"))} -maxdepth 1 -name '${ENV_FILE_PREFIX.slice(ENV_FILE_PREFIX.lastIndexOf("/") + 1)}*' | wc -l`);
        const [liveRunning, candidate, previousRunning, rules, envFiles] = after.trim().split("\n");
        check(liveRunning === "true", `${backend.name} is not running after the deploy`);
        check(candidate === "no-candidate", "a candidate was left");
        check(previousRunning !== "true", `${release.previousName} still runs`);
        check(rules === "0", `${rules} drain rule(s) left`);
        check(envFiles === "0", `${envFiles} env file(s) left in /run`);
        await r.apiHealth();
        return `${seen.join("; ")}; then deployed; ${r.trafficSummary(traffic)}; ${seconds.toFixed(1)} s`;
      } finally {
        // A run the probe did not get to kill would hold the release lock for every later deploy.
        await admin.ssh("sudo -n bash -s", `rm -rf ${BIN}; cd ${DIR} 2>/dev/null || exit 0; for f in pid blocked; do [ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done; cd /; rm -rf ${DIR}`);
      }
    },
  );
}
