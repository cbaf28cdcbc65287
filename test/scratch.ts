import { rmSync } from "node:fs";

/**
 * Removes a test's scratch tree. Retried: a child a test started (a killed `tsx`, a shell
 * in the background) may still be closing files in it, and an afterAll hook that throws
 * fails its whole file though every test passed. This module imports nothing of the
 * package, so a test that mocks a module of it can still use it.
 */
export const removeTree = (path: string) => rmSync(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
