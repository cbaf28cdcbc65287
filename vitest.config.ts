import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { CATALOG_WIDE } from "./test/delivery/catalog-wide.js";

/** Where a runner wants vitest's JSON report as well (tools/runner/jobs.ts sets it; the workflows' `npm test` stays as written). */
const report = process.env.TT_TEST_REPORT;

/**
 * No file named on vitest's command line (`vitest [run|list] [<filter>...]`): the whole suite, where
 * the catalog-wide files run once, inside two-clients.test.ts's copy over the catalog with two
 * clients added (test/delivery/catalog-wide.ts), and not a second time here. A flag's value
 * written after a space reads as a filter: that only keeps them in.
 */
const wholeSuite = process.argv.slice(2).every((arg) => ["run", "watch", "dev", "list"].includes(arg) || arg.startsWith("-"));

/**
 * The files that take longest from start to end (a run of their own in a copy of the
 * repository, commands that wait on each other), started first so that no worker is left
 * with one of them while the other has nothing to do. The rest keep vitest's order.
 */
const LONGEST_FIRST = [
  "test/delivery/two-clients.test.ts",
  "test/core/release-crash.test.ts",
  "test/program/changes.test.ts",
  "test/core/backup-tool.test.ts",
  "test/core/ops-cli.test.ts",
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
    exclude: [...configDefaults.exclude, ...(wholeSuite ? Object.keys(CATALOG_WIDE) : [])],
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
