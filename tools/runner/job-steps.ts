import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";

/**
 * What a runner does for the workflows' test jobs (the jobs with a `run: npm test` step), read
 * from .github/workflows/ and never copied by hand: each step in order, as a stand-in for an
 * action (`uses:`) or a shell script (`run:`) with its environment, `${{ }}` expressions
 * evaluated. Pure: tools/runner/jobs.ts runs the steps.
 */

export type Step =
  | { kind: "checkout"; job: string; name: string }
  | { kind: "node"; job: string; name: string; major: number }
  | { kind: "run"; job: string; name: string; script: string; env: Record<string, string>; sameAs?: string };

export interface TestJob {
  /** `<workflow file>/<job id>` */
  id: string;
  /** The event that starts the workflow (its first `on:` key). */
  event: string;
  timeoutMinutes: number;
  steps: Step[];
}

interface WorkflowStep {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, { inputs?: Record<string, { default?: unknown }> } | null>;
  jobs: Record<string, { env?: Record<string, unknown>; "timeout-minutes"?: number; steps?: WorkflowStep[] }>;
}

/** The runner's context for a workflow: the event that starts it, the base branch of a pull request, dispatch inputs at their defaults, no secret. */
function contextFor(workflow: Workflow): Record<string, Record<string, unknown>> {
  const event = Object.keys(workflow.on)[0] ?? "push";
  const inputs = Object.fromEntries(Object.entries(workflow.on.workflow_dispatch?.inputs ?? {}).map(([k, v]) => [k, v.default ?? ""]));
  return { github: { event_name: event, base_ref: event === "pull_request" ? "main" : "", ref: "refs/heads/main" }, inputs, secrets: {}, env: {} };
}

/** `${{ a.b }}` replaced by its value ("" when unset, as GitHub does); anything but a plain property path is refused. */
export function evaluate(text: string, context: Record<string, Record<string, unknown>>, where: string): string {
  return text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expression: string) => {
    const path = /^([a-z_]+)\.([A-Za-z0-9_-]+)$/.exec(expression);
    if (!path || !(path[1]! in context)) throw new Error(`${where}: the runner cannot evaluate \${{ ${expression} }}: only context.property is supported`);
    return String(context[path[1]!]![path[2]!] ?? "");
  });
}

const stepName = (step: WorkflowStep) => step.name ?? step.uses ?? step.run!.split("\n")[0]!;

/** The test jobs of the workflows in `dir`, in file order. */
export function testJobs(dir: string): TestJob[] {
  const jobs: TestJob[] = [];
  for (const file of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const workflow = parseYaml(readFileSync(join(dir, file), "utf8")) as Workflow;
    const context = contextFor(workflow);
    for (const [id, job] of Object.entries(workflow.jobs)) {
      const steps = job.steps ?? [];
      if (!steps.some((s) => s.run?.trim() === "npm test")) continue;
      const jobId = `${file}/${id}`;
      const env = (values: Record<string, unknown> | undefined, where: string) =>
        Object.fromEntries(Object.entries(values ?? {}).map(([k, v]) => [k, evaluate(String(v), context, `${where} env ${k}`)]));
      const jobEnv = env(job.env, jobId);
      jobs.push({
        id: jobId,
        event: String(context.github!.event_name),
        timeoutMinutes: job["timeout-minutes"] ?? 360,
        steps: steps.map((step, i): Step => {
          const where = `${jobId} step ${i + 1} (${stepName(step)})`;
          const name = stepName(step);
          if (step.uses?.startsWith("actions/checkout@")) return { kind: "checkout", job: jobId, name };
          if (step.uses?.startsWith("actions/setup-node@")) return { kind: "node", job: jobId, name, major: Number(step.with?.["node-version"]) };
          if (step.uses) throw new Error(`${where}: the runner has no stand-in for ${step.uses}`);
          return { kind: "run", job: jobId, name, script: evaluate(step.run!, context, where), env: { ...jobEnv, ...env(step.env, where) } };
        }),
      });
    }
  }
  return markRepeats(jobs);
}

/**
 * Every job checks out the same commit into the same image, so a step that an earlier job
 * already ran with the same script and environment is the same command on the same files: it
 * is marked `sameAs` that job and run once (npm test runs once, not once per workflow).
 */
function markRepeats(jobs: TestJob[]): TestJob[] {
  const seen = new Map<string, string>();
  return jobs.map((job) => ({
    ...job,
    steps: job.steps.map((step) => {
      if (step.kind !== "run") return step;
      const key = JSON.stringify([step.script, step.env]);
      const first = seen.get(key);
      if (first === undefined) seen.set(key, job.id);
      return first === undefined ? step : { ...step, sameAs: first };
    }),
  }));
}
