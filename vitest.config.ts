import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** Where a runner wants vitest's JSON report as well (tools/runner/jobs.ts sets it; the workflows' `npm test` stays as written). */
const report = process.env.TT_TEST_REPORT;

/**
 * The files that take longest from start to end (a run of their own in a copy of the
 * repository, commands that wait on each other), started first so that no worker is left
 * with one of them while the other has nothing to do. The rest keep vitest's order.
 */
const LONGEST_FIRST = [
  "test/delivery/two-clients.test.ts",
  "test/core/release-crash.test.ts",
  "test/core/backup-tool.test.ts",
  "test/delivery/new-client.test.ts",
  "test/program/changes.test.ts",
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const at = LONGEST_FIRST.findIndex((path) => file.moduleId.endsWith(`/${path}`));
      return at < 0 ? LONGEST_FIRST.length : at;
    };
    const sorted = await super.sort(files);
    return sorted.map((file, at) => ({ file, at })).sort((a, b) => rank(a.file) - rank(b.file) || a.at - b.at).map(({ file }) => file);
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The tools the tests run are checked once, first: a missing one stops the run in seconds.
    globalSetup: ["test/tools-check.ts"],
    ...(report ? { reporters: ["default", "json"], outputFile: { json: report } } : {}),
    // Program tests install Pulumi mocks per process: keep files isolated.
    pool: "forks",
    // vitest's default is one worker less than the cores: one on a 2-core runner. The tests
    // mostly wait on the commands they run, so two files at once keep both cores busy.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
