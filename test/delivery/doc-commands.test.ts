import { execFile, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { catalog } from "../../stacks/catalog.js";
import { candidates, type DocCommand, inlinePaths, npmRuns, repoPaths, shellCommands } from "./doc-commands.js";
import { tsxCommand } from "../tsx-command.js";
import { REPO } from "./repo-copy.js";

/**
 * Every command the user's manual gives (README.md and docs/*.md, fenced shell blocks and
 * inline `npm run …`) names only what exists: each `npm run` script is in package.json, each
 * flag it passes is one the script's command lists in its --help, and each repository path
 * a command or a code span names is there (for a placeholder such as `<stack>` or an example
 * client such as `acme`: for some stack of the catalog).
 */

const DOCS = ["README.md", ...readdirSync(join(REPO, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];
const read = (doc: string) => readFileSync(join(REPO, doc), "utf8");
const COMMANDS = DOCS.flatMap((doc) => shellCommands(doc, read(doc)));
const STACKS = catalog.map((d) => d.name);
/** Client names the docs use as examples: what new-client would add, not what the catalog must have. */
const EXAMPLE_CLIENTS = ["acme", "acme-corp"];
/** Where new-client writes a client's definition (test/delivery/new-client.test.ts checks it does). */
const CLIENT_DEFINITION = /^stacks\/clients\/(<name>|<stack>|[a-z][a-z0-9-]*)\.ts$/;

const SCRIPTS = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
/** npm's own commands, which `npm run` also runs. */
const NPM_BUILTIN = new Set(["test", "start", "stop", "restart"]);

/** The command `npm run <script> -- <args>` hands its arguments to: the last `tsx <file> [args]` of the script. */
function entryPoint(script: string): string[] | undefined {
  const commands = (SCRIPTS[script] ?? "").split("&&").map((c) => c.trim().split(/\s+/));
  const last = commands.at(-1);
  return last?.[0] === "tsx" && last[1] ? last.slice(1) : undefined;
}

const where = (c: DocCommand) => `${c.doc}:${c.line}: ${c.text}`;

describe("the docs' commands", () => {
  const usages = new Map<string, string>();

  beforeAll(async () => {
    const wanted = new Set(COMMANDS.flatMap((c) => npmRuns(c.text)).filter((r) => r.flags.length > 0).map((r) => r.script));
    await Promise.all(
      [...wanted].filter((s) => entryPoint(s)).map(async (script) => {
        const [file, ...args] = entryPoint(script) as string[];
        const { stdout } = await promisify(execFile)(...tsxCommand(file as string, ...args, "--help"), { cwd: REPO, timeout: 60_000 });
        usages.set(script, stdout);
      }),
    );
  }, 120_000);

  it("are found: shell blocks and inline npm run commands in README.md and every doc", () => {
    expect(DOCS).toContain("docs/README.md");
    for (const doc of ["README.md", "docs/README.md", "docs/restore-database.md"]) {
      expect(COMMANDS.filter((c) => c.doc === doc).length, doc).toBeGreaterThan(3);
    }
    expect(COMMANDS.flatMap((c) => npmRuns(c.text)).length).toBeGreaterThan(40);
  });

  it("run only npm scripts that package.json has", () => {
    const missing = COMMANDS.flatMap((c) => npmRuns(c.text).filter((r) => !(r.script in SCRIPTS) && !NPM_BUILTIN.has(r.script)).map((r) => `${where(c)} (no script "${r.script}")`));
    expect(missing).toEqual([]);
  });

  it("pass only flags the command lists in its --help", () => {
    const wrong = COMMANDS.flatMap((c) =>
      npmRuns(c.text).flatMap((run) => {
        if (run.flags.length === 0) return [];
        const usage = usages.get(run.script);
        if (usage === undefined) return [`${where(c)} (npm run ${run.script} takes no arguments: it is not a tsx command)`];
        const listed = new Set(usage.match(/(?<![\w-])--?[A-Za-z][\w-]*/g) ?? []);
        return run.flags.filter((f) => !listed.has(f)).map((f) => `${where(c)} (${f} is not in npm run ${run.script} -- --help)`);
      }),
    );
    expect(wrong).toEqual([]);
  });

  it("name only files and folders of this repository that exist", () => {
    const named = [...COMMANDS, ...DOCS.flatMap((doc) => inlinePaths(doc, read(doc)))];
    expect(named.flatMap((c) => repoPaths(c.text)).length).toBeGreaterThan(50);
    const missing = named.flatMap((c) =>
      repoPaths(c.text)
        .filter((path) => !CLIENT_DEFINITION.test(path))
        .filter((path) => !candidates(path, STACKS, EXAMPLE_CLIENTS).some((p) => existsSync(join(REPO, p.replace(/\*.*$/, "")))))
        .map((path) => `${where(c)} (${path})`),
    );
    expect(missing).toEqual([]);
  });
});

describe("what the runbooks leave behind, the tools find", () => {
  it("the cutover dump of bring-production-under-pulumi.md is named as prod's backup tool names a host dump (so it is listed, shipped and restored)", () => {
    const doc = read("docs/bring-production-under-pulumi.md");
    const assignment = COMMANDS.filter((c) => c.doc === "docs/bring-production-under-pulumi.md").find((c) => /^cutover=/.test(c.text));
    expect(assignment, "the runbook names the cutover dump in a cutover=... line").toBeDefined();
    const tool = readFileSync(join(REPO, "rendered/prod/backup.sh"), "utf8");
    const hostRe = /^host_re=(.*)$/m.exec(tool)?.[1];
    expect(hostRe).toBeDefined();
    // The runbook's own line, run by bash, then the tool's own test of a name.
    const result = spawnSync("bash", ["-c", `${assignment?.text}\nhost_re=${hostRe}\nprintf '%s' "$cutover"; [[ $cutover =~ $host_re ]]`], { encoding: "utf8" });
    expect(result.status, `${result.stdout} does not match ${hostRe}`).toBe(0);
    expect(doc).toContain(`npm run restore -- --stack prod --from "$cutover"`);
    expect(doc).toContain("sudo timetracker-backup ship /mnt/timetracker-data/dumps/$cutover");
  });
});

describe("the reading of a doc's commands", () => {
  const doc = [
    "Run `npm run validate -- --stack",
    "staging` first.",
    "```sh",
    "npm run restore -- --stack prod \\",
    "  --from latest --yes   # a comment",
    "cat > x.json <<JSON",
    "npm run never -- --inside-a-heredoc",
    "JSON",
    "npm run ops -- --stack prod exec backend -- alembic --version",
    "```",
    "```",
    "$ npm run render -- --out rendered/<stack>/",
    "output, not a command: npm run nope",
    "```",
  ].join("\n");

  it("joins continued lines, skips heredoc bodies and output, reads wrapped inline code", () => {
    const commands = shellCommands("x.md", doc);
    expect(commands.map((c) => [c.line, c.text])).toEqual([
      [4, "npm run restore -- --stack prod  --from latest --yes   # a comment"],
      [6, "cat > x.json <<JSON"],
      [9, "npm run ops -- --stack prod exec backend -- alembic --version"],
      [12, "npm run render -- --out rendered/<stack>/"],
      [1, "npm run validate -- --stack staging"],
    ]);
  });

  it("takes the flags up to a second --, never inside quotes or after a comment", () => {
    expect(npmRuns("npm run ops -- --stack prod exec backend -- alembic --version")).toEqual([{ script: "ops", flags: ["--stack"] }]);
    expect(npmRuns(`npm run --silent validate -- --base "--not-a-flag" # --nor-this`)).toEqual([{ script: "validate", flags: ["--base"] }]);
    expect(npmRuns("npm run restore -- --stack staging [--from latest\\|<dump>] [--dry-run]")).toEqual([{ script: "restore", flags: ["--stack", "--from", "--dry-run"] }]);
  });

  it("reads repository paths and stands each placeholder for every stack", () => {
    expect(repoPaths(`jq . rendered/$stack/plan.json > /tmp/x; cat /etc/tools/x "docs/move-data.md".`)).toEqual(["rendered/$stack/plan.json", "docs/move-data.md"]);
    expect(candidates("resources/acme.md", ["prod", "staging"], ["acme"])).toEqual(["resources/prod.md", "resources/staging.md"]);
    expect(candidates("rendered/<stack>/plan.json", ["prod"], ["acme"])).toEqual(["rendered/prod/plan.json"]);
  });
});
