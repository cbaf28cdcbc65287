import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkoutRoot, withCheckoutOf } from "./checkout.js";
import type { Declaration } from "./declare.js";
import { readDeployed, type Deployed } from "../../infra/cli/deployed.js";
import { HARMFUL } from "./flags.js";
import { planChanges } from "./plan-changes.js";
import { renderPreview } from "./render.js";
import { checkedBase, isCommit } from "../../infra/cli/base-ref.js";
import { loadCatalog } from "../../infra/cli/load-catalog.js";
import { knownStack, runCli, UsageError } from "../../infra/cli/run.js";

const USAGE = `usage: npm run preview -- --stack <name> [--base <git-ref>] [--fail-on-flags]

What \`pulumi up\` would do to <name> if the working tree were deployed over what is deployed,
read offline: the program's declared resources on both sides under Pulumi mocks, compared
with the providers' replace rules (tools/changes/provider-rules.ts). Prints a markdown table
(create / update / replace / delete, the inputs that caused each, and flags: DATA LOSS,
BLOCKED BY PROTECT, OUTAGE, NOT APPLIED, DOWNTIME) and a summary line. Secrets are never
printed. No cloud account is needed.
What is deployed: the commit of the stack's last successful \`pulumi up\`, which Pulumi records
(\`pulumi stack history\`, read when the Pulumi CLI is on PATH and logged in). A stack Pulumi
does not have, or has destroyed, is not deployed: everything is a create. Without Pulumi,
nothing is known to be deployed (said so, everything a create): pass --base.
options:
  --stack <name>     a stack of the working tree's stacks/catalog.ts (required)
  --base <git-ref>   compare with this commit instead, as if it were deployed (a pull request
                     compares with its base branch); a stack it does not define is created in full
  --fail-on-flags    exit 1 when any change carries a flag other than DOWNTIME
  -h, --help         print this and exit
Exit code 0; 1 for a mistake in the command line (or a flag, with --fail-on-flags); 2 when
the program could not be run on one side, or the deployed commit is not in this clone.`;

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

const stackNames = async () => (await loadCatalog()).map((env) => env.name);

/** What the preview compares with: `--base` when given, else what Pulumi says is deployed. */
function comparedWith(root: string, stack: string, base: string | undefined): { deployed: Deployed; heading: string; notes: string[] } {
  if (base !== undefined) {
    checkedBase(base, root);
    return { deployed: { kind: "commit", commit: base, source: "--base", notes: [] }, heading: `against \`${base}\``, notes: [] };
  }
  const deployed = readDeployed(root, stack);
  if (deployed.kind === "commit") {
    const short = deployed.commit.slice(0, 12);
    if (!isCommit(root, deployed.commit)) {
      throw new Error(`${stack} is deployed at commit ${short} (${deployed.source}), which this clone does not have: \`git fetch origin\` (\`git fetch --unshallow\` in a shallow clone), or pass --base`);
    }
    return { deployed, heading: `against what is deployed, commit \`${short}\``, notes: [`Deployed: commit ${short}, ${deployed.source}.`, ...deployed.notes] };
  }
  if (deployed.kind === "none") return { deployed, heading: "not deployed yet", notes: [`Not deployed: ${deployed.source}. The first \`pulumi up\` creates every resource.`] };
  return {
    deployed,
    heading: "with nothing known to be deployed",
    notes: [`What is deployed is unknown here: ${deployed.reason}. Every resource is listed as a create. With the Pulumi CLI logged in (\`pulumi login\`), the preview compares with the stack's last deploy; or pass --base <commit>.`],
  };
}

function preview(stack: string, base: string | undefined, failOnFlags: boolean): number {
  const root = checkoutRoot(process.cwd());
  try {
    const { deployed, heading, notes } = comparedWith(root, stack, base);
    const now = declaredIn(root, root, stack);
    if (now.resources.length === 0) throw new Error(`stacks/catalog.ts of the working tree has no stack named "${stack}"`);
    const before: Declaration =
      deployed.kind === "commit" ? withCheckoutOf(root, deployed.commit, (dir) => declaredIn(root, dir, stack)) : { resources: [], secretValues: [] };
    const changes = planChanges(before.resources, now.resources);
    const secretPaths = new Map<string, string[]>();
    for (const r of [...before.resources, ...now.resources]) {
      const key = `${r.type}::${r.name}`;
      secretPaths.set(key, [...(secretPaths.get(key) ?? []), ...r.secretPaths]);
    }
    console.log(renderPreview(stack, heading, changes, { secretPaths, secretValues: [...before.secretValues, ...now.secretValues] }, notes));
    const harmful = changes.some((c) => c.flags.some((f) => HARMFUL.includes(f.kind)));
    return failOnFlags && harmful ? 1 : 0;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    console.error(`preview: ${(error as Error).message}`);
    return 2;
  }
}

await runCli(
  USAGE,
  {
    stack: { type: "string" },
    base: { type: "string" },
    "fail-on-flags": { type: "boolean", default: false },
  },
  async (values) => {
    const stacks = await stackNames();
    if (values.stack === undefined) throw new UsageError(`--stack is required: one of ${stacks.join(", ")}`);
    const stack = knownStack(values.stack, stacks);
    return preview(stack, values.base as string | undefined, values["fail-on-flags"] === true);
  },
  { positionals: false, stacks: stackNames },
);
