import { defineConfig } from "vitest/config";

/** Where a runner wants vitest's JSON report as well (tools/runner/jobs.ts sets it; the workflows' `npm test` stays as written). */
const report = process.env.TT_TEST_REPORT;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The tools the tests run are checked once, first: a missing one stops the run in seconds.
    globalSetup: ["test/tools-check.ts"],
    ...(report ? { reporters: ["default", "json"], outputFile: { json: report } } : {}),
    // Program tests install Pulumi mocks per process: keep files isolated.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
