/**
 * The shell commands a user's manual gives (README.md and docs/*.md), read as a user copies
 * them: every line of a ```sh / ```bash block (continued lines joined, heredoc bodies left
 * out), every `$ ` line of a plain block (a command shown with its output), and every inline
 * `npm run …` in the text. test/delivery/doc-commands.test.ts checks what they name.
 */

export interface DocCommand {
  /** The file, relative to the repository, and the line the command starts on. */
  doc: string;
  line: number;
  text: string;
}

const SHELL_FENCES = new Set(["sh", "bash", "shell"]);

/** The commands of one markdown file. */
export function shellCommands(doc: string, markdown: string): DocCommand[] {
  const commands: DocCommand[] = [];
  const lines = markdown.split("\n");
  let fence: string | undefined;
  let heredocEnd: string | undefined;
  let pending: { line: number; text: string } | undefined;
  const prose: string[] = [];
  lines.forEach((raw, index) => {
    const opening = /^\s*```(\w*)\s*$/.exec(raw);
    if (opening) {
      fence = fence === undefined ? opening[1] ?? "" : undefined;
      heredocEnd = undefined;
      pending = undefined;
      prose.push("");
      return;
    }
    if (fence === undefined) {
      prose.push(raw);
      return;
    }
    prose.push("");
    if (heredocEnd !== undefined) {
      if (raw.trim() === heredocEnd) heredocEnd = undefined;
      return;
    }
    let text: string | undefined;
    if (SHELL_FENCES.has(fence)) text = raw.trim();
    else if (fence === "" && /^\s*\$ /.test(raw)) text = raw.trim().slice(2);
    if (text === undefined || text === "") return;
    const start = pending ?? { line: index + 1, text: "" };
    const joined = `${start.text}${text.replace(/\\$/, "")}`;
    if (text.endsWith("\\")) {
      pending = { line: start.line, text: `${joined} ` };
      return;
    }
    pending = undefined;
    commands.push({ doc, line: start.line, text: joined });
    heredocEnd = /<<-?\s*['"]?(\w+)['"]?/.exec(joined)?.[1];
  });
  // Inline code spans may wrap onto the next line of a paragraph (never across a blank line).
  const text = prose.join("\n");
  for (const match of text.matchAll(/`(npm run (?:[^`\n]|\n(?!\s*\n))+)`/g)) {
    const line = text.slice(0, match.index).split("\n").length;
    commands.push({ doc, line, text: (match[1] as string).replace(/\s+/g, " ") });
  }
  return commands;
}

/** The inline code spans of the prose (fenced blocks left out) that are nothing but a path. */
export function inlinePaths(doc: string, markdown: string): DocCommand[] {
  const found: DocCommand[] = [];
  let inFence = false;
  markdown.split("\n").forEach((raw, index) => {
    if (/^\s*```/.test(raw)) inFence = !inFence;
    if (inFence) return;
    for (const match of raw.matchAll(/`([^`\s]+)`/g)) {
      if (repoPaths(match[1] as string).length > 0) found.push({ doc, line: index + 1, text: match[1] as string });
    }
  });
  return found;
}

export interface NpmRun {
  script: string;
  /** The flags given to the script (after npm's `--`, up to a second `--` that hands the rest on). */
  flags: string[];
}

/** Quoted strings become one opaque word: their content is an argument, never a flag or a command. */
const unquote = (text: string) => text.replace(/'[^']*'|"(?:[^"\\]|\\.)*"/g, "QUOTED");

/** Every `npm run <script> …` in a command, with the flags it passes to the script. */
export function npmRuns(command: string): NpmRun[] {
  const runs: NpmRun[] = [];
  // A table cell writes an alternative as `a\\|b`, and `<dump>` is a placeholder: neither a pipe nor a redirection.
  const text = unquote(command).replace(/\\\|/g, " ").replace(/<[^<>\s]+>/g, "PLACEHOLDER");
  for (const match of text.matchAll(/\bnpm run((?:\s+--?[\w-]+)*)\s+([\w:-]+)([^|;&#>)]*)/g)) {
    // Optional parts are written in brackets.
    const words = (match[3] as string).replace(/[[\]]/g, " ").split(/\s+/).filter(Boolean);
    const separator = words.indexOf("--");
    const own = separator < 0 ? [] : words.slice(separator + 1);
    const handedOn = own.indexOf("--");
    const args = handedOn < 0 ? own : own.slice(0, handedOn);
    const flags = args.filter((w) => /^--?[A-Za-z]/.test(w)).map((w) => w.replace(/=.*$/, ""));
    runs.push({ script: match[2] as string, flags });
  }
  return runs;
}

/** The top-level entries of this repository a path may start with. */
const ROOTS = ["infra", "tools", "docs", "rendered", "resources", "stacks", "app-images", "test", ".github", ".ci"];
const PATH = new RegExp(
  String.raw`(?:^|[\s'"=(<:,\[])((?:\./)?(?:(?:${ROOTS.map((r) => r.replace(".", "\\.")).join("|")})/[\w.@+/<>\${}*-]*|Pulumi(?:\.[\w<>\${}-]+)?\.yaml|package\.json|app-version\.json))`,
  "g",
);

/** The repository paths a command (or a code span) names, trailing punctuation dropped. */
export function repoPaths(text: string): string[] {
  return [...text.matchAll(PATH)].map((m) => (m[1] as string).replace(/^\.\//, "").replace(/[.,:]+$/, ""));
}

/** Placeholders that stand for a stack's name in the docs' commands and paths. */
const STACK_PLACEHOLDER = /<stack>|<name>|<s>|\$\{?stack\}?|\$\{?STACK\}?|\$\{\{ ?inputs\.stack ?\}\}/g;

/**
 * The concrete paths a documented path stands for: each placeholder (and each example client
 * name, which no catalog needs to have) replaced by each stack of the catalog.
 */
export function candidates(path: string, stacks: readonly string[], exampleClients: readonly string[]): string[] {
  const example = new RegExp(`(?<![\\w-])(${exampleClients.join("|")})(?![\\w-])`, "g");
  const generic = path.replace(STACK_PLACEHOLDER, "\0").replace(example, "\0");
  if (!generic.includes("\0")) return [path];
  return stacks.map((stack) => generic.replaceAll("\0", stack));
}
