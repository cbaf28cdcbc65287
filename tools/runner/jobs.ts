import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { testJobs, type Step, type TestJob } from "./job-steps.js";

/**
 * Runs the workflows' test jobs as a GitHub runner would, in a clean container of the
 * runner-like image (tools/runner/image.sh) on the current Docker engine: the committed
 * HEAD cloned from an `origin` of its own, then each job's steps as user `runner`, `run:`
 * steps with `bash --noprofile --norc -eo pipefail` and CI=true. vitest's JSON report goes to
 * --report (TT_TEST_REPORT in the jobs' environment; vitest.config.ts reads it).
 *
 *   tsx tools/runner/jobs.ts --image <tag> --report <file.json>
 *
 * Ends with one line per job and exits 1 when a step failed.
 */

const HOME = "/home/runner";
const WORKSPACE = `${HOME}/work/repo/repo`;
const RUNNER_UID = 1001;
const LOCAL_CAS = "/usr/local/share/ca-certificates";

const { values } = parseArgs({ options: { image: { type: "string" }, report: { type: "string" } } });
if (!values.image || !values.report) {
  console.error("usage: tsx tools/runner/jobs.ts --image <tag> --report <file.json>");
  process.exit(2);
}
const repo = resolve(import.meta.dirname, "../..");
const report = resolve(values.report);
const jobs = testJobs(join(repo, ".github", "workflows"));

function docker(args: string[]): string {
  const result = spawnSync("docker", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`docker ${args.slice(0, 3).join(" ")} failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** A command in the container as `runner`, its output streamed here; resolves to its exit code (null: out of time). */
function inContainer(container: string, argv: string[], env: Record<string, string>, timeoutMs: number, cwd = WORKSPACE): Promise<number | null> {
  const flags = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  return new Promise((done) => {
    const child = spawn("docker", ["exec", "-u", "runner", "-w", cwd, ...flags, container, ...argv], { stdio: ["ignore", "inherit", "inherit"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      done(null);
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      done(code);
    });
  });
}

const scratch = mkdtempSync(join(tmpdir(), "tt-runner-"));
// The container's `origin`: a bare clone of this checkout's commits, as GitHub is the runner's.
const origin = join(scratch, "origin.git");
const cloned = spawnSync("git", ["clone", "--quiet", "--bare", repo, origin], { encoding: "utf8" });
if (cloned.status !== 0) throw new Error(`git clone --bare failed: ${cloned.stderr}`);
spawnSync("chown", ["-R", `${RUNNER_UID}:${RUNNER_UID}`, origin]);
chmodSync(dirname(report), 0o777);
const container = docker([
  "run", "--detach", "--name", `tt-runner-${process.pid}`,
  "-v", `${origin}:${HOME}/origin.git:ro`, "-v", `${dirname(report)}:${HOME}/report`,
  values.image, "sleep", "infinity",
]);

// This machine's network may reach the registries through a TLS proxy whose CA the machine
// trusts (/usr/local/share/ca-certificates): the runner on it trusts the same, as a runner on
// such a network is set up to. GitHub's own runner needs nothing of the kind.
const localCas = existsSync(LOCAL_CAS) ? readdirSync(LOCAL_CAS).filter((f) => f.endsWith(".crt")) : [];
if (localCas.length > 0) {
  for (const ca of localCas) docker(["cp", join(LOCAL_CAS, ca), `${container}:${LOCAL_CAS}/${ca}`]);
  docker(["exec", "-u", "root", container, "update-ca-certificates"]);
  console.log(`runner: trusts this machine's own CAs as well (${localCas.join(", ")})`);
}

const baseEnv = {
  ...(localCas.length > 0 ? { NODE_EXTRA_CA_CERTS: "/etc/ssl/certs/ca-certificates.crt" } : {}),
  CI: "true",
  GITHUB_ACTIONS: "true",
  GITHUB_WORKSPACE: WORKSPACE,
  RUNNER_TEMP: `${HOME}/work/_temp`,
  HOME,
  TT_TEST_REPORT: `${HOME}/report/${basename(report)}`,
};
const outcomes: string[] = [];
let failed = false;
let checkedOut = false;
/** The outcome of each job's run steps, for the steps of later jobs that are the same. */
const passedIn = new Map<string, boolean>();
try {
  for (const job of jobs) {
    const deadline = Date.now() + job.timeoutMinutes * 60_000;
    let jobFailed: string | undefined;
    console.log(`\n==== ${job.id} (timeout ${job.timeoutMinutes} min)`);
    for (const step of job.steps) {
      const started = Date.now();
      const code = await runStep(job, step, deadline);
      const seconds = Math.round((Date.now() - started) / 1000);
      if (typeof code === "object" && code !== null) {
        const passed = step.kind !== "run" || passedIn.get(`${step.sameAs}\n${step.name}`) === true;
        console.log(`---- ${step.name}: ${code.same}, not run again: ${passed ? "passed" : "did not pass there"}`);
        if (passed) continue;
        jobFailed = step.name;
        break;
      }
      if (step.kind === "run") passedIn.set(`${job.id}\n${step.name}`, code === 0);
      console.log(`---- ${step.name}: ${code === 0 ? "passed" : code === null ? "out of the job's time" : `failed (exit ${code})`} in ${seconds} s`);
      if (code !== 0) {
        jobFailed = step.name;
        break;
      }
    }
    outcomes.push(`runner: ${job.id}: ${jobFailed === undefined ? "passed" : `FAILED at ${jobFailed}`}`);
    failed ||= jobFailed !== undefined;
  }
} finally {
  docker(["rm", "--force", container]);
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`\n${outcomes.join("\n")}`);
process.exit(failed ? 1 : 0);

/** A step's exit code (null: out of the job's time), or why it is not run again. */
async function runStep(job: TestJob, step: Step, deadline: number): Promise<number | null | { same: string }> {
  const left = Math.max(0, deadline - Date.now());
  const env = { ...baseEnv, GITHUB_EVENT_NAME: job.event };
  switch (step.kind) {
    case "checkout":
      if (checkedOut) return { same: "the same commit, checked out by an earlier job" };
      checkedOut = true;
      console.log(`---- ${step.name}: git clone of HEAD into ${WORKSPACE}`);
      return inContainer(container, ["bash", "-c", `mkdir -p ${HOME}/work/_temp && git clone --quiet ${HOME}/origin.git ${WORKSPACE}`], env, left, HOME);
    case "node":
      console.log(`---- ${step.name}: the image's node must be ${step.major}.x`);
      return inContainer(container, ["bash", "-c", `node --version && npm --version && [[ $(node --version) == v${step.major}.* ]]`], env, left);
    case "run":
      if (step.sameAs) return { same: `the same script and environment as in ${step.sameAs}, on the same commit` };
      console.log(`---- ${step.name}\n${step.script.trimEnd().replace(/^/gm, "  | ")}`);
      return inContainer(container, ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.script], { ...env, ...step.env }, left);
  }
}
