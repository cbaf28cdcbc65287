import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkoutRoot, withCheckoutOf } from "./checkout.js";
import type { Declaration } from "./declare.js";
import { HARMFUL } from "./flags.js";
import { planChanges } from "./plan-changes.js";
import { renderPreview } from "./render.js";

const USAGE = `usage: npm run preview -- --stack <stack> [--base <git-ref>] [--fail-on-flags]

What \`pulumi up\` would do to <stack> if the working tree were deployed over <git-ref>
(default main), read offline: the program's declared resources on both sides under Pulumi
mocks, compared with the providers' replace rules (tools/changes/provider-rules.ts). Prints
a markdown table (create / update / replace / delete, the inputs that caused each, and
flags: DATA LOSS, BLOCKED BY PROTECT, OUTAGE, NOT APPLIED, DOWNTIME) and a summary line.
Secrets are never printed. Exit code 0; with --fail-on-flags, 1 when any flag but DOWNTIME.`;

/** Runs tools/changes/declare.ts of this checkout against the program of `checkout`. */
function declaredIn(root: string, checkout: string, stack: string): Declaration {
  const scratch = mkdtempSync(join(tmpdir(), "tt-preview-"));
  const out = join(scratch, "declared.json");
  try {
    const child = spawnSync(
      join(root, "node_modules", ".bin", "tsx"),
      [join(root, "tools", "changes", "declare.ts"), "--root", checkout, "--stack", stack, "--out", out],
      // The program reads its key fixtures, app source and build folder relative to its checkout.
      { cwd: checkout, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    if (child.status !== 0) throw new Error(`the program at ${checkout} failed for ${stack}:\n${child.stderr || child.stdout}`);
    return JSON.parse(readFileSync(out, "utf8")) as Declaration;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function main(): number {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      base: { type: "string", default: "main" },
      "fail-on-flags": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.stack) {
    console.error(USAGE);
    return 2;
  }
  const { stack, base } = values;
  const root = checkoutRoot(process.cwd());
  const now = declaredIn(root, root, stack);
  if (now.resources.length === 0) throw new Error(`stacks/catalog.ts of the working tree has no stack named "${stack}"`);
  const before = withCheckoutOf(root, base, (dir) => declaredIn(root, dir, stack));
  const changes = planChanges(before.resources, now.resources);
  const secretPaths = new Map<string, string[]>();
  for (const r of [...before.resources, ...now.resources]) {
    const key = `${r.type}::${r.name}`;
    secretPaths.set(key, [...(secretPaths.get(key) ?? []), ...r.secretPaths]);
  }
  console.log(renderPreview(stack, base, changes, { secretPaths, secretValues: [...before.secretValues, ...now.secretValues] }));
  const harmful = changes.some((c) => c.flags.some((f) => HARMFUL.includes(f.kind)));
  return values["fail-on-flags"] && harmful ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (error) {
  console.error(`preview: ${(error as Error).message}`);
  process.exitCode = 2;
}
