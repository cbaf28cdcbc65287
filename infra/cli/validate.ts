import { spawnSync } from "node:child_process";
import { validateCatalog } from "../model/catalog.js";
import { bucketLockProblems, deployedBucket, type DeployedBucket } from "../model/bucket-lock.js";
import { deployProblems } from "../model/deployable.js";
import { checkIdentity, deployedIdentity, identityOf, type StackIdentity } from "../model/identity.js";
import type { Plan } from "../model/plan.js";
import { checkPostgresUpgrade, databaseOf, deployedDatabase, identityUnderUpgrade, type DeployedDatabase } from "../model/postgres-upgrade.js";
import { formatProblem, type Problem } from "../model/problems.js";
import { EnvironmentSchema } from "../model/schema.js";
import { checkedBase } from "./base-ref.js";
import { loadCatalog, REPO_ROOT } from "./load-catalog.js";
import { loadDefinitionFile } from "./load-definition.js";
import { knownStack, runCli } from "./run.js";

const USAGE = `usage: npm run validate -- [--stack <name>] [--file <path>] [--base <git-ref>] [--allow-placeholders]
Checks the stacks of stacks/catalog.ts together (ports, names and domains are only valid
against each other), that each can be deployed (no documentation address, example domain
or unset host.adminCidrs left: each is named with what to put there), and each stack's
identity against the plan committed at --base.
Prints "valid: <stacks>" and exits 0, or every problem as "<path>: <reason>" and exits 1.
options:
  --stack <name>     validate the whole catalog, then report only <name>: its problems
                     (a clash with another stack included), its identity lock, and a
                     summary of its plan. A problem in another stack still fails (exit 1),
                     counted in one line; \`npm run validate\` lists it
  --file <path>      one definition (JSON or YAML, the shape of stacks/*.ts) that replaces
                     the catalog's stack of the same name, or joins the catalog as a new
                     one; the file's stack is reported, unless --stack names another
  --base <git-ref>   where each stack's deployed identity is read: its committed
                     rendered/<stack>/plan.json (default: main; a ref that is not a commit
                     here is refused); changing it is refused unless the definition carries
                     a matching dataMove (docs/move-data.md), another Postgres major
                     unless it carries a matching postgresUpgrade (docs/postgres-upgrade.md);
                     the stack's region and its backup bucket's name never change
  --allow-placeholders
                     accept what only a test or a rehearsal may hold: documentation
                     addresses (RFC 5737), example domains (RFC 2606), an unset
                     host.adminCidrs, fixture-* names; a deploy still refuses them
  -h, --help         print this and exit`;

/** rendered/ is read from the repository this package lives in, whatever the caller's folder. */
const git = (...args: string[]) => spawnSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" });

/** The committed text of `path` at `ref`, or undefined when the ref has no such file. */
function committedFile(ref: string, path: string): string | undefined {
  const shown = git("show", `${ref}:${path}`);
  return shown.status === 0 ? shown.stdout : undefined;
}

interface Deployed {
  identities: Map<string, StackIdentity>;
  buckets: Map<string, DeployedBucket>;
  databases: Map<string, DeployedDatabase>;
  problems: Problem[];
  notes: string[];
}

/** The deployed identity and bucket of each stack: what the base ref commits in rendered/<stack>/plan.json. */
function readDeployed(base: string, stacks: string[]): Deployed {
  const deployed: Deployed = { identities: new Map(), buckets: new Map(), databases: new Map(), problems: [], notes: [] };
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
    const bucket = deployedBucket(text);
    if (bucket) deployed.buckets.set(stack, bucket);
    const database = deployedDatabase(text);
    if (database) deployed.databases.set(stack, database);
    else if (read.ok) deployed.problems.push({ path: stack, message: `the Postgres major cannot be checked: ${path} at ${base} has neither database.major nor a postgres image tag naming one` });
  }
  return deployed;
}

/**
 * The lock over every plan: a changed identity needs a matching dataMove in its definition,
 * another Postgres major a matching postgresUpgrade (which also moves the database volume); the
 * bucket never changes.
 */
function identityCheck(base: string, plans: Plan[], definitions: readonly unknown[]): { problems: Problem[]; notes: string[] } {
  const deployed = readDeployed(
    base,
    plans.map((p) => p.stack),
  );
  const problems = [...deployed.problems];
  const notes = [...deployed.notes];
  plans.forEach((plan, index) => {
    // validateCatalog parsed every definition already; this reads the field the Plan leaves out.
    const { dataMove, postgresUpgrade } = EnvironmentSchema.parse(definitions[index]);
    const upgrade = checkPostgresUpgrade(plan.stack, deployed.databases.get(plan.stack), databaseOf(plan), postgresUpgrade, dataMove !== undefined);
    const identity = deployed.identities.get(plan.stack);
    const held = identity && upgrade.majorChanges ? identityUnderUpgrade(identity, databaseOf(plan)) : identity;
    const result = checkIdentity(plan.stack, held, identityOf(plan), dataMove);
    problems.push(...upgrade.problems, ...result.problems, ...bucketLockProblems(plan.stack, deployed.buckets.get(plan.stack), plan.backup.bucket));
    notes.push(...upgrade.notes, ...result.notes);
  });
  return { problems, notes };
}

function report(problems: Problem[], elsewhere = ""): number {
  for (const problem of problems) console.error(formatProblem(problem));
  if (elsewhere) console.error(elsewhere);
  const count = problems.length;
  if (count > 0) console.error(`\n${count} problem${count === 1 ? "" : "s"} found.`);
  return 1;
}

/** Whether a problem is about `stack`: at its path, or a clash with it reported at the other stack's path. */
const concerns = (problem: Problem, stack: string) =>
  problem.path === stack || problem.path.startsWith(`${stack}.`) || problem.message.includes(`used by ${stack} (`);

/** The stacks a problem's path names, for the line that counts the problems of other stacks. */
const stackOf = (problem: Problem) => problem.path.split(".")[0] ?? problem.path;

/** One line saying what `--stack` leaves out, or "" when nothing is. */
function othersLine(others: Problem[]): string {
  if (others.length === 0) return "";
  const stacks = [...new Set(others.map(stackOf))].join(", ");
  return `the catalog also fails on ${others.length} problem${others.length === 1 ? "" : "s"} of other stacks (${stacks}): npm run validate lists ${others.length === 1 ? "it" : "them"}`;
}

const hostPorts = (container: Plan["containers"]["backend"]) => container.ports.map((p) => p.external).join(" and ");

/** A few lines on what the stack's plan holds; \`npm run render\` writes all of it. */
function summary(plan: Plan): string[] {
  const c = plan.containers;
  return [
    `${plan.stack}: ${plan.publicUrl} (${plan.domains.join(", ")}), environment ${plan.environment}, TLS ${plan.tls.mode}`,
    `${plan.stack}: containers ${Object.values(c).map((x) => x.name).join(", ")}; host ports frontend ${hostPorts(c.frontend)}, backend ${hostPorts(c.backend)}`,
    `${plan.stack}: the whole plan: rendered/${plan.stack}/plan.json (npm run render -- --stack ${plan.stack} --out <dir>)`,
  ];
}

/** The stacks a deploy would refuse, unless --allow-placeholders: placeholders and fixture names (model/deployable.ts). */
function notDeployable(stacks: readonly string[], definitions: readonly unknown[], plans: readonly Plan[]): Problem[] {
  return stacks.flatMap((stack) => deployProblems(EnvironmentSchema.parse(definitions[plans.findIndex((p) => p.stack === stack)])));
}

await runCli(
  USAGE,
  { stack: { type: "string" }, file: { type: "string" }, base: { type: "string" }, "allow-placeholders": { type: "boolean" } },
  async (values) => {
    const file = values.file as string | undefined;
    const base = checkedBase((values.base as string | undefined) ?? "main", REPO_ROOT, values.base === undefined);
    const catalog = await loadCatalog();
    let definitions: unknown[] = catalog;
    let fileStack: string | undefined;
    if (file) {
      const { definition, warnings } = loadDefinitionFile(file);
      for (const warning of warnings) console.error(`warning: ${warning}`);
      const name = (definition as { name?: unknown }).name;
      fileStack = typeof name === "string" ? name : undefined;
      // The file stands in for the catalog's stack of the same name, or joins the catalog.
      definitions = [...catalog.filter((env) => env.name !== name), definition];
    }
    let stack: string | undefined;
    if (values.stack !== undefined) {
      const names = catalog.map((env) => env.name);
      stack = knownStack(values.stack, fileStack && !names.includes(fileStack) ? [...names, fileStack] : names);
    }

    const result = validateCatalog(definitions);
    if (!result.ok) {
      if (stack === undefined) return report(result.problems);
      const own = result.problems.filter((p) => concerns(p, stack));
      if (own.length === 0) console.error(`${stack}: no problem of its own`);
      return report(own, othersLine(result.problems.filter((p) => !concerns(p, stack))));
    }

    const checked = stack === undefined ? result.plans : result.plans.filter((p) => p.stack === stack);
    const identity = identityCheck(
      base,
      checked,
      checked.map((plan) => definitions[result.plans.indexOf(plan)]),
    );
    for (const note of identity.notes) console.log(note);
    const reported = stack !== undefined ? [stack] : file ? [result.plans.at(-1)!.stack] : result.plans.map((p) => p.stack);
    const placeholders = values["allow-placeholders"] === true ? [] : notDeployable(reported, definitions, result.plans);
    const problems = [...identity.problems, ...placeholders];
    if (problems.length > 0) return report(problems);
    if (stack !== undefined) for (const line of summary(checked[0]!)) console.log(line);
    console.log(`valid: ${reported.join(", ")}`);
    return 0;
  },
  { positionals: false, stacks: async () => (await loadCatalog()).map((env) => env.name) },
);
