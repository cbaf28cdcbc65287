import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog } from "../../stacks/catalog.js";
import { removeTree } from "../scratch.js";
import { type DocCommand, shellCommands } from "./doc-commands.js";
import { REPO, secretKeyOf } from "./repo-copy.js";
import { SEEN_FROM, standInCurl } from "./stand-in-curl.js";

/**
 * A new user's first run through the docs, as written: a fresh `git clone` of this
 * repository's HEAD (node_modules linked, as `npm ci` would make it), then the commands of the
 * README's quickstart and of docs/add-a-client.md, in order, each run by bash exactly as the
 * doc writes it, comments and all. A command runs unless a rule of SKIPPED says why it cannot
 * here (a cloud account, root, GitHub): so a command added to those sections runs, and one
 * that does not work as written fails this test. A comment `prints "<text>"` on a command is
 * what it must print. Only the network is a stand-in: `curl https://checkip.amazonaws.com`
 * (AWS, out of reach here) answers with an address.
 */

const SKIPPED: { command: RegExp; why: string }[] = [
  { command: /^npm ci$/, why: "the install: the clone links this checkout's node_modules" },
  { command: /^sudo /, why: "root and apt" },
  { command: /^npm test$/, why: "CI runs it (this test is part of it)" },
  { command: /^npm run rehearse\b/, why: "root and a Docker engine (.ci/run runs the rehearsal)" },
  { command: /^pulumi /, why: "a Pulumi Cloud account and AWS" },
  { command: /^gh /, why: "GitHub" },
  { command: /^git push /, why: "GitHub" },
  { command: /^curl -fsS https:\/\//, why: "the deployed site" },
];

/** A doc of the commit under test, as the clone has it. */
const committed = (doc: string) => spawnSync("git", ["show", `HEAD:${doc}`], { cwd: REPO, encoding: "utf8" }).stdout;

/** The text from a heading to the next heading of the same level (or the end). */
function section(markdown: string, heading: string): { text: string; firstLine: number } {
  const start = markdown.split("\n").findIndex((line) => line === heading);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const lines = markdown.split("\n").slice(start);
  const level = heading.split(" ")[0] as string;
  const end = lines.findIndex((line, i) => i > 0 && line.startsWith(`${level} `));
  return { text: lines.slice(0, end < 0 ? undefined : end).join("\n"), firstLine: start + 1 };
}

/** The commands of a section's shell blocks (not the prose's inline ones), comment lines left out, with their line in the doc. */
function blockCommands(doc: string, { text, firstLine }: { text: string; firstLine: number }): DocCommand[] {
  const fenced = new Set<number>();
  let open = false;
  text.split("\n").forEach((line, i) => {
    if (/^\s*```/.test(line)) open = !open;
    else if (open) fenced.add(i + 1);
  });
  return shellCommands(doc, text)
    .filter((c) => fenced.has(c.line) && !c.text.startsWith("#"))
    .map((c) => ({ ...c, line: c.line + firstLine - 1 }));
}

/** A command without its trailing comment, and what the comment says it prints. */
function parts(text: string): { code: string; prints: string[] } {
  const comment = /\s#\s(.*)$/.exec(text);
  return { code: comment ? text.slice(0, comment.index).trim() : text, prints: [...(comment?.[1] ?? "").matchAll(/prints "([^"]+)"/g)].map((m) => m[1] as string) };
}

/** The docs are written for the client acme; a catalog that has one already gets the walk-through under another name. */
const NAME = ["acme", "globex", "initech", "umbrella"].find((name) => !catalog.some((d) => d.name === name)) as string;
const forName = (text: string) => text.replaceAll("ACME", secretKeyOf(NAME)).replaceAll("acme", NAME);

const QUICKSTART = blockCommands("README.md", section(committed("README.md"), "## Quickstart"));
const ADD_A_CLIENT = blockCommands("docs/add-a-client.md", { text: committed("docs/add-a-client.md"), firstLine: 1 }).map((c) => ({ ...c, text: forName(c.text) }));
const STEPS = [...QUICKSTART, ...ADD_A_CLIENT].map((c) => ({ ...c, ...parts(c.text), skipped: SKIPPED.find((s) => s.command.test(parts(c.text).code)) }));
const RUN = STEPS.filter((s) => !s.skipped);

const scratch = mkdtempSync(join(tmpdir(), "docs-walkthrough-"));
const clone = join(scratch, "timetracker-infra");
const home = join(scratch, "home");
const curlBin = standInCurl();
const env = {
  ...process.env,
  HOME: home,
  // What a command makes with mktemp goes with the scratch folder.
  TMPDIR: scratch,
  PATH: `${curlBin}:${process.env.PATH}`,
  GIT_AUTHOR_NAME: "New User",
  GIT_AUTHOR_EMAIL: "new.user@example.invalid",
  GIT_COMMITTER_NAME: "New User",
  GIT_COMMITTER_EMAIL: "new.user@example.invalid",
  NO_COLOR: "1",
  FORCE_COLOR: "0",
};

beforeAll(() => {
  const cloned = spawnSync("git", ["clone", "--quiet", REPO, clone], { encoding: "utf8" });
  if (cloned.status !== 0) throw new Error(`git clone failed: ${cloned.stderr}`);
  // A user's clone is on main (validate and preview compare with it); a CI checkout of a pull
  // request is a detached merge commit with no main, so the clone gets main at the commit under test.
  const onMain = spawnSync("git", ["checkout", "--quiet", "-B", "main"], { cwd: clone, encoding: "utf8" });
  if (onMain.status !== 0) throw new Error(`git checkout -B main failed: ${onMain.stderr}`);
  symlinkSync(join(REPO, "node_modules"), join(clone, "node_modules"), "dir");
  // .gitignore's `node_modules/` matches a folder, not the link.
  appendFileSync(join(clone, ".git", "info", "exclude"), "/node_modules\n");
  // A user's ~/.ssh: ssh-keygen makes it itself only under the account's home from passwd, not under $HOME.
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
});

afterAll(() => {
  removeTree(scratch);
  removeTree(curlBin);
});

describe("the README's quickstart, then docs/add-a-client.md, on a fresh clone, command by command as written", () => {
  it("finds the commands, and every rule that skips one says why and skips something", () => {
    for (const script of ["validate", "render", "preview"]) expect(QUICKSTART.map((c) => c.text).join("\n")).toMatch(new RegExp(`^npm run ${script}\\b`, "m"));
    expect(ADD_A_CLIENT[0]?.text).toMatch(new RegExp(`^npm run new-client -- ${NAME} `));
    for (const rule of SKIPPED) expect(STEPS.some((s) => s.skipped === rule), `${rule.command} skips nothing: drop it`).toBe(true);
    expect(RUN.length).toBeGreaterThanOrEqual(8);
  });

  it.each(RUN.map((step) => [`${step.doc}:${step.line}: ${step.code}`, step] as const))("%s", (_, step) => {
    const result = spawnSync("bash", ["-c", step.text], { cwd: clone, env, encoding: "utf8", timeout: 280_000 });
    const output = `${result.stdout}${result.stderr}`;
    expect(output, "a stack trace").not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(result.status, output).toBe(0);
    for (const text of step.prints) expect(result.stdout, `the doc says it prints "${text}"`).toContain(text);
  }, 300_000);

  it("leaves nothing uncommitted: the documented git add names every file new-client wrote", () => {
    const status = spawnSync("git", ["status", "--porcelain"], { cwd: clone, encoding: "utf8", env });
    expect(status.stdout).toBe("");
    const branch = spawnSync("git", ["branch", "--show-current"], { cwd: clone, encoding: "utf8", env });
    expect(branch.stdout.trim()).toBe(`add-client-${NAME}`);
  });

  it(`the client's SSH window is the address the user is seen from (${SEEN_FROM}/32, from curl checkip.amazonaws.com)`, () => {
    const definition = spawnSync("git", ["show", `HEAD:stacks/clients/${NAME}.ts`], { cwd: clone, encoding: "utf8", env });
    expect(definition.stdout).toContain(`"${SEEN_FROM}/32"`);
  });

  it("the README's day-two line for a new client is the runbook's command", () => {
    const readme = committed("README.md").replace(/\s+/g, " ");
    const runbook = (ADD_A_CLIENT[0] as DocCommand).text.replace(/\s+#\s.*$/, "").replace(/\s+/g, " ");
    const inReadme = /`(npm run new-client -- [^`]+)`/.exec(readme)?.[1];
    expect(inReadme, "README.md gives `npm run new-client -- …`").toBeDefined();
    expect(runbook.startsWith(forName(inReadme as string))).toBe(true);
  });
});
