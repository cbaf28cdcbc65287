/**
 * The test files of test/core and test/program whose checks run for each stack of the catalog,
 * and what each checks. A whole run (`npm test`, no file named) runs them once, inside
 * two-clients.test.ts's copy of the repository, over the catalog with two clients added
 * (vitest.config.ts leaves them out of the run itself); named on vitest's command line, they
 * run as any file does, over this checkout's catalog. Imported by vitest.config.ts: nothing
 * here imports the package.
 */
export const CATALOG_WIDE: Record<string, string> = {
  "test/core/rendered-fresh.test.ts": "rendered/<stack>/ for every stack, and no other folder",
  "test/core/derive.test.ts": "every plan's ports and their standby twins, none shared",
  "test/core/invariants.test.ts": "every plan's invariants",
  "test/core/incidents.test.ts": "every plan against each past incident",
  "test/core/render.test.ts": "every plan's rendered files, their determinism and the committed ones",
  "test/core/release.test.ts": "every stack's release tool",
  "test/core/disk-warning.test.ts": "every plan's disk check",
  "test/core/host-status.test.ts": "every stack's status writer in its host setup and through shellcheck",
  "test/core/tools.test.ts": "caddy validate, nginx -t and shellcheck on every stack's files and sent scripts",
  "test/program/program.test.ts": "the program for every stack under Pulumi mocks",
  "test/program/backups.test.ts": "every stack's off-host copies under Pulumi mocks",
  "test/program/alerts.test.ts": "every stack with alerts declares its checks and alarms, every stack without declares none",
  "test/program/client-stack.test.ts": "client-shaped stacks of its own appended to the catalog",
};
