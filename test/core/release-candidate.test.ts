import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planFor } from "../../infra/model/catalog.js";
import { releaseSpec, renderReleaseTool } from "../../infra/render/release.js";
import { catalog } from "../../stacks/catalog.js";
import { run, tempDir } from "./helpers.js";

/**
 * Each rule of the release tool's candidate check (start_candidate) and of a deploy's
 * "already live" answer, run in bash against stand-ins: `docker` answers the candidate's
 * running state and Docker health, `curl` its readiness answer, each from a timeline by the
 * second, and `sleep` moves the clock the tool reads (SECONDS, made an ordinary variable) instead of waiting.
 */

const { dir, cleanup } = tempDir("release-candidate");
afterAll(cleanup);

const plan = planFor(catalog, "staging");
const tool = renderReleaseTool(plan);
const backend = plan.containers.backend;
const check = backend.healthCheck;
/** What the tool waits for a candidate that never answers: Docker's time to call it unhealthy, plus 30 s. */
const WAIT_SECONDS = check.startPeriodSeconds + check.retries * (check.intervalSeconds + check.timeoutSeconds) + 30;
const READY_GRACE_SECONDS = 30;
const IMAGE = "timetracker-staging-backend:0123456789ab";

/** The tool's definitions (variables, functions): everything above its main section. */
function definitions(): string {
  const at = tool.indexOf('\ninstall -d -m 0700 "$state_dir"\n');
  if (at < 0) throw new Error("the release tool has no main section");
  return tool.slice(0, at + 1);
}

// Bash's own braces are written %{ } here, so that the template leaves them alone.
const STAND_INS = String.raw`
# The timeline: lines "<from second> <docker health> <http code> <running>"; the last line whose
# second has come is the candidate's state now.
now() { awk -v t="$SECONDS" '$1 <= t { line = $0 } END { print line }' "$state/timeline"; }
field() { now | cut -d' ' -f"$1"; }
docker() {
  printf '%s\n' "$*" >> "$state/calls"
  case "$1" in
    inspect)
      case "$3" in
        *'.State.Health'*) field 2 ;;
        '{{.State.Running}}') field 4 ;;
        *'.State.Status'*) echo "exited, exit code 3" ;;
        *'.Config.Healthcheck.Test'*) echo '["CMD-SHELL","curl -fs localhost:8080/api/health"]' ;;
        *) return 1 ;;
      esac ;;
    logs) printf '%s\n' "candidate log: starting" "candidate log: database not ready" ;;
    *) return 0 ;;
  esac
}
curl() {
  local code
  code=$(field 3)
  case " $* " in
    *" -w "*) printf '%s' "$code" ;;
    *) printf 'body of a %s answer' "$code" ;;
  esac
  [ "$code" != 000 ] || return 7
}
sleep() {
  SECONDS=$((SECONDS + %{1%.*}))
  if [ "$SECONDS" -gt 1000 ]; then echo "the check was still going at 1000 s" >&2; exit 99; fi
}
put_files() { :; }
env_hash() { echo 0123456789abcdef; }
service=backend
service_spec backend
trap 'printf "%s\n" "$SECONDS" > "$state/ended"' EXIT
# Unset, SECONDS loses its special meaning (bash(1)): only the stand-in sleep moves this clock,
# however long the run really takes.
unset SECONDS
SECONDS=0
`.replaceAll("%{", "${");

let runs = 0;

/** Runs start_candidate against a timeline; says when it ended (bash's clock) and what it did. */
async function candidate(timeline: string[]) {
  const state = join(dir, `candidate-${(runs += 1)}`);
  mkdirSync(state);
  writeFileSync(join(state, "timeline"), `${timeline.join("\n")}\n`);
  const file = join(state, "run.sh");
  writeFileSync(file, `${definitions()}\nstate='${state}'\n${STAND_INS}\nstart_candidate '${IMAGE}' '${state}/env' ${backend.ports[1]!.external}\n`);
  const result = await run("bash", [file]);
  const calls = readFileSync(join(state, "calls"), "utf8").split("\n").filter(Boolean);
  return {
    code: result.code,
    stdout: result.stdout,
    stderr: result.stderr,
    endedAt: Number(readFileSync(join(state, "ended"), "utf8")),
    /** Calls after the candidate was started: a removal of the candidate, and nothing done to the live version. */
    afterStart: calls.slice(calls.findIndex((c) => c.startsWith("start ")) + 1).filter((c) => !c.startsWith("inspect ")),
  };
}

const refusal = (what: string) =>
  `refused: the candidate ${backend.release!.candidateName} from ${IMAGE} failed its check: ${what}. It was removed; ${backend.name} was not touched.\nIts last log lines:\ncandidate log: starting\ncandidate log: database not ready\n`;
const REMOVED = [`logs --tail 20 ${backend.release!.candidateName}`, `rm -f ${backend.release!.candidateName}`];

describe("the release tool's candidate check (start_candidate), rule by rule", () => {
  it("is ready once the readiness path answers 200 twice in a row while Docker's health is not unhealthy ('starting' is fine)", async () => {
    const r = await candidate(["0 starting 000 true", "3 starting 200 true", "4 starting 503 true", "6 starting 200 true"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    // 200 at 3 s alone is not enough: 503 at 4 s starts the count again; 200 at 6 and 7 s is.
    expect(r.endedAt).toBe(7);
    expect(r.stdout).toContain(`candidate ready: GET ${backend.release!.readyPath} with Host ${plan.caddy.healthHost} answered 200 (Docker health: starting)`);
    expect(r.afterStart).toEqual([]);
  });

  it("refuses a candidate Docker calls unhealthy at once, though it never answered", async () => {
    const r = await candidate(["0 starting 000 true", "5 unhealthy 000 true"]);
    expect(r.code).toBe(1);
    expect(r.endedAt).toBe(5);
    expect(r.stderr).toBe(refusal(`its Docker health check ["CMD-SHELL","curl -fs localhost:8080/api/health"] failed`));
    expect(r.afterStart).toEqual(REMOVED);
  });

  it("never takes a candidate that answers 200 while Docker calls it unhealthy", async () => {
    const r = await candidate(["0 unhealthy 200 true"]);
    expect(r.code).toBe(1);
    expect(r.endedAt).toBe(1);
    expect(r.stdout).not.toContain("candidate ready");
    expect(r.stderr).toContain("its Docker health check");
  });

  it("refuses a candidate that stopped, with its exit code", async () => {
    const r = await candidate(["0 starting 000 true", "4 starting 000 false"]);
    expect(r.code).toBe(1);
    expect(r.endedAt).toBe(4);
    expect(r.stderr).toBe(refusal("it stopped (exited, exit code 3)"));
    expect(r.afterStart).toEqual(REMOVED);
  });

  it(`refuses a candidate that answers, but not 200, for ${READY_GRACE_SECONDS} s, with the status and the answer's start`, async () => {
    const r = await candidate(["0 starting 000 true", "2 starting 503 true"]);
    expect(r.code).toBe(1);
    expect(r.endedAt).toBe(2 + READY_GRACE_SECONDS);
    expect(r.stderr).toBe(refusal(`GET ${backend.release!.readyPath} with Host ${plan.caddy.healthHost} answered 503 for ${READY_GRACE_SECONDS} s: body of a 503 answer`));
    expect(r.afterStart).toEqual(REMOVED);
  });

  it(`refuses a candidate that never answers and stays 'starting' once Docker would have called it unhealthy (${WAIT_SECONDS} s)`, async () => {
    expect(WAIT_SECONDS).toBeGreaterThan(READY_GRACE_SECONDS);
    const r = await candidate(["0 starting 000 true"]);
    expect(r.code).toBe(1);
    expect(r.endedAt).toBe(WAIT_SECONDS);
    expect(r.stderr).toBe(refusal(`GET ${backend.release!.readyPath} did not answer within ${WAIT_SECONDS} s`));
    expect(r.afterStart).toEqual(REMOVED);
  });
});

describe("deploy: what is already live, what it refuses before anything starts, and the release command", () => {
  const spec = releaseSpec(plan, "backend");

  /** One `deploy` with the live container running `live` (its image, spec and env labels) in Docker health `health`. */
  async function deploy(args: { image?: string; spec?: string; health?: string; rolledBack?: string; stdin?: string }) {
    const state = join(dir, `deploy-${(runs += 1)}`);
    mkdirSync(join(state, "releases"), { recursive: true });
    if (args.rolledBack) writeFileSync(join(state, "releases", "backend.rolled-back"), `${args.rolledBack}\n`);
    writeFileSync(join(state, "stdin"), args.stdin ?? "");
    const file = join(state, "run.sh");
    writeFileSync(
      file,
      `${definitions()}
state_dir='${state}/releases'
mktemp() { command mktemp '${state}/env.XXXXXX'; }
env_hash() { echo 0123456789abcdef; }
running() { true; }
docker() {
  case "$3" in
    *'.Config.Labels'*) echo '${IMAGE} ${spec} 0123456789abcdef' ;;
    *'.State.Health.Status'*) echo '${args.health ?? "healthy"}' ;;
  esac
}
release_command() { echo "release command for $1"; }
release() { echo "released $1"; }
service=backend
service_spec backend
deploy '${args.image ?? IMAGE}' '${args.spec ?? spec}' < '${state}/stdin'
`,
    );
    return run("bash", [file]);
  }

  it("takes the same image, spec and environment as already live while its Docker health is not unhealthy", async () => {
    const r = await deploy({});
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`backend: ${IMAGE} is already live as ${backend.name}\n`);
  });

  it("releases the same image again when the live one is unhealthy", async () => {
    const r = await deploy({ health: "unhealthy" });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("already live");
    expect(r.stdout).toContain(`released ${IMAGE}`);
  });

  it("refuses a spec other than the tool's own, before anything runs", async () => {
    const r = await deploy({ spec: "ffffffffffff" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refused: the release tool on this host was rendered for another definition of backend (spec ${spec}, the deploy sent ffffffffffff)`);
    expect(r.stdout).toBe("");
  });

  it("refuses an image that was rolled back, before anything runs; another image goes ahead", async () => {
    const other = "timetracker-staging-backend:ba9876543210";
    const refused = await deploy({ image: other, rolledBack: other });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`refused: ${other} was rolled back on this host (npm run rollback)`);
    expect(refused.stdout).toBe("");
    const allowed = await deploy({ image: other, rolledBack: IMAGE });
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain(`released ${other}`);
  });

  it("refuses a variable on stdin the service does not read, before anything runs", async () => {
    const r = await deploy({ stdin: "DB_PASSWORD=one\nAWS_SECRET=two\n" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refused: stdin names AWS_SECRET, which ${backend.name} does not read`);
    expect(r.stdout).toBe("");
  });

  it("runs the release command once per image: again for the same image it says so, another image runs it", async () => {
    const state = join(dir, `release-command-${(runs += 1)}`);
    mkdirSync(join(state, "releases"), { recursive: true });
    const file = join(state, "run.sh");
    writeFileSync(
      file,
      `${definitions()}
state_dir='${state}/releases'
running() { false; }
docker() { [ "$1" = run ] && printf '%s\\n' "$*" >> '${state}/runs'; return 0; }
service=backend
service_spec backend
release_command '${IMAGE}' '${state}/env'
release_command '${IMAGE}' '${state}/env'
release_command 'timetracker-staging-backend:ba9876543210' '${state}/env'
`,
    );
    const r = await run("bash", [file]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain(`release command already ran for ${IMAGE}`);
    const ran = readFileSync(join(state, "runs"), "utf8").split("\n").filter(Boolean);
    expect(ran.map((line) => line.split(" ").find((word) => word.startsWith("timetracker-staging-backend:")))).toEqual([IMAGE, "timetracker-staging-backend:ba9876543210"]);
  });
});

describe("rollback: what it refuses before anything starts", () => {
  const PREVIOUS_IMAGE = "timetracker-staging-backend:ba9876543210";

  /** One `rollback` of the backend: which containers exist and run, and the variables the live one has. */
  async function rollback(args: { previous: boolean; liveRunning: boolean; liveEnv: string[] }) {
    const state = join(dir, `rollback-${(runs += 1)}`);
    mkdirSync(join(state, "releases"), { recursive: true });
    const file = join(state, "run.sh");
    writeFileSync(
      file,
      `${definitions()}
state_dir='${state}/releases'
mktemp() { command mktemp '${state}/env.XXXXXX'; }
exists() { [ "$1" = '${backend.name}' ] || { [ "$1" = '${backend.release!.previousName}' ] && ${args.previous}; }; }
running() { [ "$1" = '${backend.name}' ] && ${args.liveRunning}; }
docker() {
  case "$3 $4" in
    '{{.Config.Image}} ${backend.release!.previousName}') echo '${PREVIOUS_IMAGE}' ;;
    '{{.Config.Image}} ${backend.name}') echo '${IMAGE}' ;;
    *'.Config.Env'*) printf '%s\\n' ${args.liveEnv.map((line) => `'${line}'`).join(" ")} ;;
  esac
}
dump() { echo "dumped before the rollback"; }
release() { echo "released $1"; }
service=backend
service_spec backend
rollback
`,
    );
    return run("bash", [file]);
  }
  const LIVE_ENV = ["DB_PASSWORD=one", "REDIS_PASSWORD=two", "SECRET_KEY=three", "DEBUG=false"];

  it("rolls back to the previous version's image with the live version's secrets", async () => {
    const r = await rollback({ previous: true, liveRunning: true, liveEnv: LIVE_ENV });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain(`released ${PREVIOUS_IMAGE}`);
  });

  it("refuses without a previous version", async () => {
    const r = await rollback({ previous: false, liveRunning: true, liveEnv: LIVE_ENV });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refused: there is no previous version of backend on this host to roll back to");
    expect(r.stdout).not.toContain("released");
  });

  it("refuses when the live version is not running", async () => {
    const r = await rollback({ previous: true, liveRunning: false, liveEnv: LIVE_ENV });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refused: ${backend.name} is not running: deploy instead of rolling back`);
    expect(r.stdout).not.toContain("released");
  });

  it("refuses when the live version lacks a secret the service reads", async () => {
    const r = await rollback({ previous: true, liveRunning: true, liveEnv: LIVE_ENV.filter((line) => !line.startsWith("REDIS_PASSWORD=")) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refused: the live ${backend.name} has no REDIS_PASSWORD: roll back by deploying instead`);
    expect(r.stdout).not.toContain("released");
  });
});
