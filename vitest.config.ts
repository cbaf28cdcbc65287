import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The tools the tests run are checked once, first: a missing one stops the run in seconds.
    globalSetup: ["test/tools-check.ts"],
    // Program tests install Pulumi mocks per process: keep files isolated.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
