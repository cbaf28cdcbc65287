import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * Tests against this machine's own Docker engine (default socket) and the stand-in images, as
 * root: not part of `npm test` (a runner without a Docker engine runs that). Run with
 * `npx vitest run --config test/engine/vitest.config.ts`.
 */
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/engine/**/*.engine.ts"],
    pool: "forks",
    testTimeout: 180_000,
    hookTimeout: 600_000,
  },
});
