import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog } from "../../stacks/catalog.js";
import { removeTree } from "../scratch.js";
import { tsxCommand } from "../tsx-command.js";
import { commitAll, copyRepo, REPO, removeCopies, treeHash } from "./repo-copy.js";

/**
 * `npm run remove-client` on a throw-away copy of this repository: a client that new-client
 * added is removed down to the byte (the local .build folder aside), and every refusal changes
 * nothing. Whether the client is deployed is asked of Pulumi (`pulumi stack history`): there is
 * no Pulumi CLI or account here, so a stand-in `pulumi` on PATH answers as the real one does.
 */

/**
 * The client is added to a copy, never beside the user's stacks, so it takes a name a user
 * would give (the README's own example when the catalog has no such stack yet) and a domain
 * and address that are not placeholders.
 */
const NAME = ["acme", "acme-corp", "globex", "initech"].find((name) => !catalog.some((d) => d.name === name)) as string;
const DOMAIN = `timetracker.${NAME}-removal-check.com`;
const SECRET_SUFFIX = NAME.toUpperCase().replace(/-/g, "_");
const STACK_TRACE = /^\s+at .+:\d+:\d+\)?$/m;

/** The tree without the program's local build folder (.gitignore'd, made by generate). */
const committed = (root: string) => new Map([...treeHash(root)].filter(([path]) => !path.startsWith(".build")));

const scratch = mkdtempSync(join(tmpdir(), "remove-client-bin-"));
/** A PATH with this machine's node and git, and a stand-in `pulumi` answering `pulumi stack history` (or none). */
function pathWith(label: string, pulumi?: { stdout?: string; stderr?: string; code?: number }): string {
  const bin = join(scratch, label);
  mkdirSync(bin, { recursive: true });
  for (const tool of ["node", "git", "npm", "sh"]) {
    const found = (process.env.PATH ?? "").split(":").map((p) => join(p, tool)).find((p) => existsSync(p));
    if (found) symlinkSync(found, join(bin, tool));
  }
  if (pulumi) {
    const quoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
    writeFileSync(join(bin, "pulumi"), `#!/bin/sh\nprintf '%s' ${quoted(pulumi.stdout ?? "")}\nprintf '%s\\n' ${quoted(pulumi.stderr ?? "")} >&2\nexit ${pulumi.code ?? 0}\n`, {
      mode: 0o755,
    });
  }
  return bin;
}
const NO_STACK = { stderr: `error: no stack named '${NAME}' found`, code: 255 };

function removeClient(root: string, path: string, ...args: string[]) {
  const result = spawnSync(...tsxCommand(join(REPO, "infra/cli/remove-client.ts"), ...args, "--root", root), {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, PATH: path },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

afterAll(() => {
  removeCopies();
  removeTree(scratch);
});

describe("remove-client", () => {
  let root: string;
  let pristine: Map<string, string>;
  let withClient: Map<string, string>;

  beforeAll(() => {
    root = copyRepo("remove-client");
    // A clone, as a user's is (validate reads what main commits).
    commitAll(root, "the repository as it is");
    pristine = committed(root);
    const added = spawnSync(...tsxCommand(join(REPO, "infra/cli/new-client.ts"), NAME, "--domain", DOMAIN, "--admin-cidr", "100.64.0.7/32", "--root", root), {
      cwd: root,
      encoding: "utf8",
      timeout: 120_000,
    });
    if (added.status !== 0) throw new Error(`new-client failed:\n${added.stderr}`);
    withClient = committed(root);
  }, 180_000);

  const expectUnchanged = (result: ReturnType<typeof removeClient>) => {
    expect(result.status, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(committed(root)).toEqual(withClient);
  };

  it.each([
    { name: "prod", says: `"prod" is not a client: remove-client removes only stacks defined in stacks/clients/ (there is no stacks/clients/prod.ts)` },
    { name: "staging", says: `"staging" is not a client: remove-client removes only stacks defined in stacks/clients/ (there is no stacks/clients/staging.ts)` },
    // The catalog's own clients, if it has any, are listed too.
    { name: `${NAME}-typo`, says: `no client is named "${NAME}-typo": the clients are ` },
  ])("refuses $name in one line and changes nothing", ({ name, says }) => {
    const result = removeClient(root, pathWith(`refuse-${name}`, NO_STACK), name);
    expectUnchanged(result);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(says);
    if (says.endsWith("are ")) expect(result.stderr).toContain(NAME);
  });

  it("refuses a deployed client, printing the take-down in order, and changes nothing (stand-in pulumi: an update succeeded)", () => {
    const history = [{ version: 3, kind: "update", result: "succeeded", startTime: "2026-01-03T10:00:00Z", environment: { "git.head": "c".repeat(40), "git.dirty": "false" } }];
    const result = removeClient(root, pathWith("deployed", { stdout: JSON.stringify(history) }), NAME);
    expectUnchanged(result);
    expect(result.stderr).toContain(`${NAME} is deployed (the last successful \`pulumi up\` of ${NAME} (Pulumi update 3, 2026-01-03T10:00:00Z)). Take it down first`);
    const order = ["backupBucket", "--show-secrets databasePassword", "pulumi state unprotect --stack", "pulumi destroy --stack", "pulumi stack rm --stack"].map((step) => result.stderr.indexOf(step));
    expect(order.every((at, i) => at > 0 && (i === 0 || at > (order[i - 1] as number))), result.stderr).toBe(true);
    expect(result.stderr).toContain(`ssh-add ~/.ssh/timetracker-${NAME}`);
  });

  it("without Pulumi (no CLI), refuses unless --taken-down says it is down, and changes nothing", () => {
    const result = removeClient(root, pathWith("no-pulumi"), NAME);
    expectUnchanged(result);
    expect(result.stderr).toContain(`cannot tell whether ${NAME} is deployed: the Pulumi CLI is not installed`);
    expect(result.stderr).toContain("run again with --taken-down");
  });

  it("removes a client Pulumi has no stack for down to the byte, and prints the rest: pull request, GitHub, the kept data (stand-in pulumi)", () => {
    const result = removeClient(root, pathWith("removed", NO_STACK), NAME);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(committed(root)).toEqual(pristine);
    expect(existsSync(join(root, ".build", NAME))).toBe(false);
    expect(result.stdout).toContain(`Removed client "${NAME}" (${DOMAIN}) from this repository:`);
    expect(result.stdout).toContain(`Pulumi: Pulumi has no stack ${NAME}`);
    for (const line of [
      `git add --all stacks/clients/${NAME}.ts stacks/catalog.ts Pulumi.${NAME}.yaml rendered/${NAME} resources/${NAME}.md iam/deploy-${NAME} iam/README.md\n`,
      `gh api -X DELETE "repos/{owner}/{repo}/environments/client-${NAME}"`,
      `gh secret delete SSH_PUBLIC_KEY_${SECRET_SUFFIX}`,
      `aws lightsail delete-disk --region us-east-1 --disk-name timetracker-${NAME}-data`,
      `aws lightsail release-static-ip --region us-east-1 --static-ip-name timetracker-${NAME}-ip`,
      "--force-delete",
    ]) {
      expect(result.stdout).toContain(line);
    }
    // No stack in Pulumi: nothing to `pulumi stack rm`.
    expect(result.stdout).not.toContain("pulumi stack rm");
    // The shipped prod and staging keep their placeholder adminCidrs: every other check runs.
    const validate = spawnSync(...tsxCommand("infra/cli/validate.ts", "--allow-placeholders"), { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(validate.status, validate.stderr).toBe(0);
    expect(readFileSync(join(root, "stacks/catalog.ts"), "utf8")).not.toContain(NAME);
  });
});

describe("remove-client when another client's ports were given in catalog order", () => {
  it("refuses, naming the client whose plan would move, and changes nothing (stand-in pulumi)", () => {
    const root = copyRepo("remove-client-moves");
    const [first, second] = ["acme", "acme-corp", "globex", "initech", "umbrella"].filter((name) => !catalog.some((d) => d.name === name));
    const ident = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    mkdirSync(join(root, "stacks", "clients"), { recursive: true });
    for (const name of [first, second] as string[]) {
      // Written by hand, without ports: the catalog gives them in order.
      writeFileSync(
        join(root, "stacks", "clients", `${name}.ts`),
        `export const ${ident(name)} = { name: "${name}", domain: "timetracker.${name}-removal-check.com", host: { adminCidrs: ["100.64.0.7/32"] } };\n`,
      );
    }
    const catalogPath = join(root, "stacks", "catalog.ts");
    const source = readFileSync(catalogPath, "utf8")
      .replace(/^(import .*\n)(?!import)/m, `$1import { ${ident(first as string)} } from "./clients/${first}.js";\nimport { ${ident(second as string)} } from "./clients/${second}.js";\n`)
      .replace(/^\];?$/m, `  ${ident(first as string)},\n  ${ident(second as string)},\n];`);
    writeFileSync(catalogPath, source);
    const before = committed(root);
    const result = removeClient(root, pathWith("moves", NO_STACK), first as string);
    expect(result.status, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain(`removing ${first} changes the plan of ${second} (ports given in catalog order move)`);
    expect(committed(root)).toEqual(before);
  });
});
