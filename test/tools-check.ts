import { spawnSync } from "node:child_process";
import { join } from "node:path";

/**
 * vitest's global setup: before any test file is collected, `tools/prerequisites.sh --check`
 * says whether this machine has every tool the tests run (caddy, nginx, shellcheck, rclone and
 * rclone 1.53.3, ssh, jq, git...). When one is missing the run stops here, in a second, with
 * the script's one line naming what is missing and the command that installs it, instead of
 * each test failing on its own (or waiting in a tool's retry loop). `npm test` runs the same
 * check before its typecheck, so under it this one is not repeated.
 */
export default function checkTools(): void {
  if (process.env.npm_lifecycle_event === "test") return;
  const script = join(import.meta.dirname, "..", "tools", "prerequisites.sh");
  const result = spawnSync("bash", [script, "--check"], { encoding: "utf8" });
  if (result.status === 0) return;
  // One line, not vitest's report of an error in its setup (a stack trace and "no test files").
  process.stderr.write(`\n${result.error ? `bash could not run ${script}: ${result.error.message}` : result.stderr.trim()}\n\n`);
  process.exit(1);
}
