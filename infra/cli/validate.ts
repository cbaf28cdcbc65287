import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { validateCatalog } from "../model/catalog.js";
import { checkIdentity, deployedIdentity, identityOf, type StackIdentity } from "../model/identity.js";
import type { Plan } from "../model/plan.js";
import { formatProblem, type Problem } from "../model/problems.js";
import { EnvironmentSchema } from "../model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { loadDefinitionFile } from "./load-definition.js";
import { runCli, UsageError } from "./run.js";

const USAGE = `usage: npm run validate                      validate every stack in stacks/catalog.ts
       npm run validate -- --file <path>     validate one definition (JSON or YAML) against the catalog
       --base <git-ref>                      where the deployed identity of each stack is read: its committed
                                             rendered/<stack>/plan.json (default: main); changing it is refused`;

/** rendered/ is read from the repository this package lives in, whatever the caller's folder. */
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const git = (...args: string[]) => spawnSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" });

/** Whether `ref` names a commit here (false when git or the repository is missing). */
const refExists = (ref: string) => git("rev-parse", "--verify", "--quiet", `${ref}^{commit}`).status === 0;

/** The committed text of `path` at `ref`, or undefined when the ref has no such file. */
function committedFile(ref: string, path: string): string | undefined {
  const shown = git("show", `${ref}:${path}`);
  return shown.status === 0 ? shown.stdout : undefined;
}

interface Deployed {
  identities: Map<string, StackIdentity>;
  problems: Problem[];
  notes: string[];
}

/** The deployed identity of each stack: what the base ref commits in rendered/<stack>/plan.json. */
function readDeployed(base: string, stacks: string[]): Deployed {
  const deployed: Deployed = { identities: new Map(), problems: [], notes: [] };
  if (!refExists(base)) {
    deployed.notes.push(`identity lock: "${base}" is not a commit in this repository, so every stack counts as new and nothing is locked (pass --base <ref>)`);
    return deployed;
  }
  for (const stack of stacks) {
    const path = `rendered/${stack}/plan.json`;
    const text = committedFile(base, path);
    if (text === undefined) {
      deployed.notes.push(`${stack}: new stack (no ${path} at ${base}): its identity is not locked yet`);
      continue;
    }
    const read = deployedIdentity(text);
    if (read.ok) deployed.identities.set(stack, read.identity);
    else deployed.problems.push({ path: stack, message: `the identity cannot be checked: ${path} at ${base} ${read.message}` });
  }
  return deployed;
}

/** The lock over every plan: a changed identity needs a matching dataMove in its definition. */
function identityCheck(base: string, plans: Plan[], definitions: readonly unknown[]): { problems: Problem[]; notes: string[] } {
  const deployed = readDeployed(
    base,
    plans.map((p) => p.stack),
  );
  const problems = [...deployed.problems];
  const notes = [...deployed.notes];
  plans.forEach((plan, index) => {
    // validateCatalog parsed every definition already; this reads the field the Plan leaves out.
    const { dataMove } = EnvironmentSchema.parse(definitions[index]);
    const result = checkIdentity(plan.stack, deployed.identities.get(plan.stack), identityOf(plan), dataMove);
    problems.push(...result.problems);
    notes.push(...result.notes);
  });
  return { problems, notes };
}

function report(problems: Problem[]): number {
  for (const problem of problems) console.error(formatProblem(problem));
  console.error(`\n${problems.length} problem${problems.length === 1 ? "" : "s"} found.`);
  return 1;
}

await runCli(USAGE, { file: { type: "string" }, base: { type: "string", default: "main" } }, (values) => {
  const file = values.file as string | undefined;
  const base = values.base as string;
  // A ref is passed to git as an argument: one that starts with '-' would be read as an option.
  if (base === "" || base.startsWith("-")) throw new UsageError(`--base: "${base}" is not a git ref`);
  let definitions: unknown[] = catalog;
  if (file) {
    const definition = loadDefinitionFile(file);
    const name = (definition as { name?: unknown } | null)?.name;
    // The file stands in for the catalog's stack of the same name, or joins the catalog.
    definitions = [...catalog.filter((env) => env.name !== name), definition];
  }
  const result = validateCatalog(definitions);
  if (!result.ok) return report(result.problems);

  const identity = identityCheck(base, result.plans, definitions);
  for (const note of identity.notes) console.log(note);
  if (identity.problems.length > 0) return report(identity.problems);
  const stacks = file ? [result.plans.at(-1)?.stack] : result.plans.map((p) => p.stack);
  console.log(`valid: ${stacks.join(", ")}`);
  return 0;
});
