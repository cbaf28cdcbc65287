import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { testJobs } from "../../tools/runner/job-steps.js";
import { tempDir } from "../core/helpers.js";

/** tools/runner/job-steps.ts: the steps the runner-like job test runs, read from workflow files. */

const { dir, cleanup } = tempDir("runner-jobs");
afterAll(cleanup);

function workflows(name: string, files: Record<string, string>): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(folder, file), text);
  return folder;
}

const PULL_REQUEST = `on:
  pull_request:
    branches: [main]
jobs:
  test:
    timeout-minutes: 20
    env:
      SHARED: one
    steps:
      - uses: actions/checkout@0123456789012345678901234567890123456789 # v4.4.0
      - uses: actions/setup-node@0123456789012345678901234567890123456789 # v4.4.0
        with:
          node-version: 20
      - run: npm ci
      - run: npm test
      - name: Identity lock
        env:
          BASE_REF: \${{ github.base_ref }}
          TOKEN: \${{ secrets.PULUMI_ACCESS_TOKEN }}
        run: git fetch origin "$BASE_REF"
  preview:
    steps:
      - uses: pulumi/actions@0123456789012345678901234567890123456789
`;
const DEPLOY = `on:
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      stack:
        default: staging
jobs:
  test:
    env:
      SHARED: one
    steps:
      - uses: actions/checkout@0123456789012345678901234567890123456789
      - run: npm ci
      - run: npm test
      - run: echo \${{ inputs.stack }} \${{ github.event_name }}
`;

describe("the workflows' test jobs, as the runner-like job test runs them", () => {
  it("takes the jobs with a `run: npm test` step, each step as a stand-in or a script with its environment evaluated", () => {
    const jobs = testJobs(workflows("two", { "pull-request.yml": PULL_REQUEST, "deploy.yml": DEPLOY }));
    expect(jobs.map((j) => [j.id, j.event, j.timeoutMinutes])).toEqual([
      ["deploy.yml/test", "push", 360],
      ["pull-request.yml/test", "pull_request", 20],
    ]);
    const [deploy, pullRequest] = jobs;
    expect(deploy!.steps.map((s) => s.kind)).toEqual(["checkout", "run", "run", "run"]);
    expect(deploy!.steps[3]).toMatchObject({ kind: "run", script: "echo staging push" });
    expect(pullRequest!.steps[1]).toMatchObject({ kind: "node", major: 20 });
    // No secret reaches a test job: an unset context value is "" as on GitHub.
    expect(pullRequest!.steps[4]).toMatchObject({ kind: "run", env: { SHARED: "one", BASE_REF: "main", TOKEN: "" } });
  });

  it("runs a step once when an earlier job ran the same script with the same environment", () => {
    const [deploy, pullRequest] = testJobs(workflows("repeats", { "pull-request.yml": PULL_REQUEST, "deploy.yml": DEPLOY }));
    expect(deploy!.steps.filter((s) => s.kind === "run").map((s) => s.kind === "run" && s.sameAs)).toEqual([undefined, undefined, undefined]);
    expect(pullRequest!.steps.filter((s) => s.kind === "run").map((s) => s.kind === "run" && s.sameAs)).toEqual(["deploy.yml/test", "deploy.yml/test", undefined]);
  });

  it("a step whose environment differs runs again", () => {
    const [, pullRequest] = testJobs(workflows("env-differs", { "pull-request.yml": PULL_REQUEST, "deploy.yml": DEPLOY.replace("SHARED: one", "SHARED: two") }));
    expect(pullRequest!.steps.filter((s) => s.kind === "run").every((s) => s.kind === "run" && s.sameAs === undefined)).toBe(true);
  });

  it("refuses an action it has no stand-in for, and an expression beyond context.property, naming the step", () => {
    const withAction = PULL_REQUEST.replace("      - run: npm ci\n", "      - uses: actions/cache@0123456789012345678901234567890123456789\n      - run: npm ci\n");
    expect(() => testJobs(workflows("action", { "pull-request.yml": withAction }))).toThrow("pull-request.yml/test step 3 (actions/cache@0123456789012345678901234567890123456789): the runner has no stand-in for actions/cache@");
    const withFunction = DEPLOY.replace("${{ inputs.stack }}", "${{ format('{0}', inputs.stack) }}");
    expect(() => testJobs(workflows("function", { "deploy.yml": withFunction }))).toThrow("the runner cannot evaluate ${{ format('{0}', inputs.stack) }}");
  });
});
