import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { validateCatalog } from "../model/catalog.js";
import type { Plan } from "../model/plan.js";
import { formatProblem } from "../model/problems.js";
import { readDeployed } from "./deployed.js";
import { loadCatalog } from "./load-catalog.js";
import { npmRun } from "./npm-run.js";
import { runCli, UsageError } from "./run.js";

const USAGE = `usage: npm run remove-client -- <name> [--taken-down] [--root <dir>]

Removes a client's stack from this repository: stacks/clients/<name>.ts, its import and entry
in stacks/catalog.ts, Pulumi.<name>.yaml, rendered/<name>/, resources/<name>.md and
iam/deploy-<name>/; then prints the pull request to open, the GitHub settings to delete, and
the data kept on AWS with the commands that delete it. Nothing on AWS is touched.
The stack must be taken down first: while Pulumi says it is deployed (its last successful
update, \`pulumi stack history\`), it refuses and prints the take-down (pulumi state unprotect,
pulumi destroy, pulumi stack rm: the disk, the static IP and the backup bucket are kept).
prod and staging are not clients: refused.
options:
  <name>         the client's stack name (a stacks/clients/<name>.ts)
  --taken-down   the stack is taken down, or was never deployed: needed when Pulumi cannot be
                 asked (no Pulumi CLI, or not logged in)
  --root <dir>   the repository to change (default: the current directory)
  -h, --help     print this and exit`;

interface Catalog {
  definitions: { name?: unknown }[];
  source: string;
}

/** The catalog of `root`, through the loader every command shares: a broken stack file is one line naming its file and line. */
async function catalogOf(root: string): Promise<Catalog> {
  const path = join(root, "stacks", "catalog.ts");
  if (!existsSync(path)) throw new UsageError(`${root} is not this repository: it has no stacks/catalog.ts (see --root)`);
  return { definitions: await loadCatalog(root), source: readFileSync(path, "utf8") };
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** stacks/catalog.ts without the client's import and list entry, as new-client wrote them. */
function withoutClient(source: string, name: string): string {
  const lines = source.split("\n");
  const importLine = new RegExp(`^import \\{ (\\w+) \\} from "\\./clients/${escape(name)}\\.js";\\s*$`);
  const imports = lines.flatMap((line, i) => (importLine.test(line) ? [i] : []));
  const identifier = imports.length === 1 ? importLine.exec(lines[imports[0] as number] as string)?.[1] : undefined;
  const entries = identifier ? lines.flatMap((line, i) => (new RegExp(`^\\s*${identifier},?\\s*$`).test(line) ? [i] : [])) : [];
  if (!identifier || entries.length !== 1) {
    throw new UsageError(`stacks/catalog.ts: cannot find the one import of ./clients/${name}.js and its one list entry that new-client writes; remove them by hand, then run this again`);
  }
  const drop = new Set([imports[0], entries[0]]);
  return lines.filter((_, i) => !drop.has(i)).join("\n");
}

/** The stacks (other than the client) whose Plan would change without it: a port allocated in catalog order moves. */
function movedBy(before: readonly Plan[], after: readonly Plan[]): string[] {
  const was = new Map(before.map((plan) => [plan.stack, JSON.stringify(plan)]));
  return after.filter((plan) => was.get(plan.stack) !== JSON.stringify(plan)).map((plan) => plan.stack);
}

/** The take-down, in order, for a client whose names come from its Plan. */
function takeDown(plan: Plan): string[] {
  const stack = plan.stack;
  return [
    `# from an address in host.adminCidrs (${plan.host.adminCidrs.join(", ") || "none"}), with AWS credentials, Pulumi logged in,`,
    `# and the stack's key in your ssh-agent (ssh-add ~/.ssh/timetracker-${stack}): the destroy removes the containers over SSH`,
    `pulumi stack output --stack ${stack} backupBucket                     # the backup bucket's name: it is kept`,
    `pulumi stack output --stack ${stack} --show-secrets databasePassword  # keep it safe if the client may come back (its data stays on the disk)`,
    `pulumi state unprotect --stack ${stack} --all --yes                   # the disk, the static IP and the bucket are protected`,
    `pulumi destroy --stack ${stack} --yes                                 # deletes the rest; keeps the disk, the static IP and the bucket`,
    `pulumi stack rm --stack ${stack} --yes                                # the stack's (now empty) state; also deletes Pulumi.${stack}.yaml`,
  ];
}

/** What is left once the repository no longer has the client: the pull request, GitHub's settings, the kept data. */
function nextSteps(plan: Plan, paths: string[], stackExists: boolean): string[][] {
  const stack = plan.stack;
  const region = plan.host.region;
  const bucket = plan.backup.bucket;
  return [
    [
      `git switch -c remove-client-${stack}`,
      `git add --all ${paths.join(" ")}`,
      `git commit -m "Remove client ${stack}"`,
      `git push -u origin remove-client-${stack} && gh pr create --fill`,
    ],
    [
      "# GitHub: the client's environment (its SSH key pair) and the previews' public key",
      `gh api -X DELETE "repos/{owner}/{repo}/environments/client-${stack}"`,
      `gh secret delete SSH_PUBLIC_KEY_${stack.toUpperCase().replace(/-/g, "_")}`,
      ...(stackExists ? [`pulumi stack rm --stack ${stack} --yes   # if \`pulumi stack ls\` still lists it (nothing deployed, state kept)`] : []),
    ],
    [
      `# Kept on AWS with the client's data: the disk ${plan.host.dataDisk.name} (database, Redis, certificates, dumps),`,
      `# the static IP ${plan.host.staticIpName} and the backup bucket (the dumps' copies). Delete them only when the data is no longer wanted:`,
      `aws lightsail delete-disk --region ${region} --disk-name ${plan.host.dataDisk.name}`,
      `aws lightsail release-static-ip --region ${region} --static-ip-name ${plan.host.staticIpName}`,
      bucket.name
        ? `aws lightsail delete-bucket --region ${region} --bucket-name ${bucket.name} --force-delete`
        : `aws lightsail get-buckets --region ${region} --query "buckets[?starts_with(name, '${bucket.namePrefix ?? ""}')].name"   # its name, then:\n` +
          `aws lightsail delete-bucket --region ${region} --bucket-name <that name> --force-delete`,
    ],
  ];
}

const indent = (groups: string[][]) => groups.map((group) => group.flatMap((line) => line.split("\n")).map((line) => `  ${line}`).join("\n")).join("\n\n");

await runCli(
  USAGE,
  { "taken-down": { type: "boolean", default: false }, root: { type: "string" } },
  async (values, positionals) => {
    if (positionals.length === 0) throw new UsageError("the client's name is required, e.g. npm run remove-client -- acme");
    if (positionals.length > 1) throw new UsageError(`expected one name, got ${positionals.length}: ${positionals.join(" ")}`);
    const name = positionals[0] as string;
    const root = resolve((values.root as string | undefined) ?? process.cwd());
    const { definitions, source } = await catalogOf(root);
    const names = definitions.map((d) => String(d.name));
    const definitionPath = join("stacks", "clients", `${name}.ts`);
    const clients = names.filter((n) => existsSync(join(root, "stacks", "clients", `${n}.ts`)));

    if (names.includes(name) && !clients.includes(name)) {
      console.error(`"${name}" is not a client: remove-client removes only stacks defined in stacks/clients/ (there is no ${definitionPath})`);
      return 1;
    }
    if (!clients.includes(name)) {
      console.error(`no client is named "${name}": ${clients.length > 0 ? `the clients are ${clients.join(", ")}` : "stacks/catalog.ts has no client"}`);
      return 1;
    }

    const before = validateCatalog(definitions);
    if (!before.ok) {
      console.error(["stacks/catalog.ts is invalid; fix it first (npm run validate):", ...before.problems.map((p) => `  ${formatProblem(p)}`)].join("\n"));
      return 1;
    }
    const plan = before.plans.find((p) => p.stack === name) as Plan;
    const after = validateCatalog(definitions.filter((d) => d.name !== name));
    if (!after.ok) {
      console.error(["the catalog without it is invalid:", ...after.problems.map((p) => `  ${formatProblem(p)}`)].join("\n"));
      return 1;
    }
    const moved = movedBy(before.plans, after.plans);
    if (moved.length > 0) {
      console.error(`removing ${name} changes the plan of ${moved.join(", ")} (ports given in catalog order move): write their ports in their definitions first. Nothing was changed.`);
      return 1;
    }
    const newCatalog = withoutClient(source, name);

    const deployed = readDeployed(root, name);
    const steps = `Take it down first, then run this again (docs/remove-a-client.md):\n${indent([takeDown(plan)])}`;
    if (deployed.kind === "commit") {
      console.error(`${name} is deployed (${deployed.source}). ${steps}\nNothing was changed.`);
      return 1;
    }
    if (deployed.kind === "unknown" && values["taken-down"] !== true) {
      console.error(
        `cannot tell whether ${name} is deployed: ${deployed.reason}. ${steps}\nIf it is taken down, or was never deployed, run again with --taken-down. Nothing was changed.`,
      );
      return 1;
    }

    const removed: [string, string][] = [];
    rmSync(join(root, definitionPath));
    removed.push([definitionPath, "deleted"]);
    // new-client made the folder for its first client.
    if (readdirSync(join(root, "stacks", "clients")).length === 0) rmdirSync(join(root, "stacks", "clients"));
    writeFileSync(join(root, "stacks", "catalog.ts"), newCatalog);
    removed.push(["stacks/catalog.ts", `its import and entry removed`]);
    for (const path of [`Pulumi.${name}.yaml`, `rendered/${name}/`, `resources/${name}.md`]) {
      const there = existsSync(join(root, path));
      rmSync(join(root, path), { recursive: true, force: true });
      removed.push([path, there ? "deleted" : "already gone"]);
    }
    // The roles' files come from the whole catalog (iam/README.md lists every role): made again without it.
    const roleThere = existsSync(join(root, "iam", `deploy-${name}`));
    const iam = npmRun(root, ["iam"]);
    if (!iam.ok) console.error(`${iam.command} failed, run it again to update iam/:\n${iam.output.replace(/^/gm, "  ")}`);
    removed.push([`iam/deploy-${name}/`, iam.ok ? (roleThere ? "deleted, iam/README.md made again" : "already gone") : "not updated: npm run iam failed"]);
    // The program's local build folder for the stack (not committed: .gitignore).
    rmSync(join(root, ".build", name), { recursive: true, force: true });
    const width = Math.max(...removed.map(([path]) => path.length));
    console.log(`Removed client "${name}" (${plan.domains[0]}) from this repository:
${removed.map(([path, what]) => `  ${path.padEnd(width)}  ${what}`).join("\n")}
The catalog validates without it, and no other stack's plan changed.
${deployed.kind === "none" ? `Pulumi: ${deployed.source}.` : `Not deployed, as --taken-down says (${deployed.reason}).`}

Next (docs/remove-a-client.md):
${indent(nextSteps(plan, [...removed.map(([path]) => path.replace(/\/$/, "")), ...(iam.ok ? ["iam/README.md"] : [])], deployed.kind === "none" ? deployed.stackExists : true))}`);
    return 0;
  },
);
