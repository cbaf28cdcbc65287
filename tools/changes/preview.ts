import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkoutRoot, withCheckoutOf } from "./checkout.js";
import type { Declaration } from "./declare.js";
import { HARMFUL } from "./flags.js";
import { planChanges } from "./plan-changes.js";
import { renderPreview } from "./render.js";
import { knownStack, runCli, UsageError } from "../../infra/cli/run.js";
import { catalog } from "../../stacks/catalog.js";

const USAGE = `usage: npm run preview -- --stack <name> [--base <git-ref>] [--fail-on-flags]

What \`pulumi up\` would do to <name> if the working tree were deployed over <git-ref>
(default main), read offline: the program's declared resources on both sides under Pulumi
mocks, compared with the providers' replace rules (tools/changes/provider-rules.ts). Prints
a markdown table (create / update / replace / delete, the inputs that caused each, and
flags: DATA LOSS, BLOCKED BY PROTECT, OUTAGE, NOT APPLIED, DOWNTIME) and a summary line.
Secrets are never printed. No cloud account or Pulumi CLI is needed.
options:
  --stack <name>     a stack of the working tree's stacks/catalog.ts (required)
  --base <git-ref>   what is deployed, as a commit of this repository (default: main); a
                     stack the base does not define yet is created in full
  --fail-on-flags    exit 1 when any change carries a flag other than DOWNTIME
  -h, --help         print this and exit
Exit code 0; 1 for a mistake in the command line (or a flag, with --fail-on-flags); 2 when
the program could not be run on one side.`;

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

const stacks = catalog.map((env) => env.name);

/** Whether `ref` names a commit of the checkout at `root`. */
const isCommit = (root: string, ref: string) =>
  spawnSync("git", ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { cwd: root, encoding: "utf8" }).status === 0;

function preview(stack: string, base: string, failOnFlags: boolean): number {
  const root = checkoutRoot(process.cwd());
  // A ref is passed to git as an argument: one that starts with '-' would be read as an option.
  if (base === "" || base.startsWith("-") || !isCommit(root, base)) throw new UsageError(`--base: "${base}" is not a commit of this repository`);
  try {
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
    return failOnFlags && harmful ? 1 : 0;
  } catch (error) {
    console.error(`preview: ${(error as Error).message}`);
    return 2;
  }
}

await runCli(
  USAGE,
  {
    stack: { type: "string" },
    base: { type: "string", default: "main" },
    "fail-on-flags": { type: "boolean", default: false },
  },
  (values) => {
    if (values.stack === undefined) throw new UsageError(`--stack is required: one of ${stacks.join(", ")}`);
    const stack = knownStack(values.stack, stacks);
    return preview(stack, values.base as string, values["fail-on-flags"] === true);
  },
  { positionals: false, stacks },
);
