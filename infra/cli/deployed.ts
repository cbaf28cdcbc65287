import { spawnSync } from "node:child_process";

/**
 * What is deployed on a stack, as the offline preview and remove-client read it. The source
 * of truth is Pulumi's own record: every `pulumi up` stores, with its result, the git commit
 * of the checkout it ran in (`environment["git.head"]`, and `git.dirty`: pulumi/pulumi
 * sdk/go/common/apitype/history.go), and `pulumi stack history --json` prints it
 * (pkg/cmd/pulumi/stack/stack_history.go, updateInfoJSON). CI deploys run in a checkout of the
 * commit they deploy, so the last successful update's commit is the program that made the
 * stack's state. Nothing has to be committed back to the repository for it.
 */
export type Deployed =
  /** A commit of this repository whose program is what the stack runs. */
  | { kind: "commit"; commit: string; source: string; notes: string[] }
  /** Nothing is deployed: no stack (`stackExists` false), no successful update, or destroyed since. */
  | { kind: "none"; source: string; stackExists: boolean }
  /** Pulumi could not be asked (no CLI, not logged in): nothing is known. */
  | { kind: "unknown"; reason: string };

/** One update, as `pulumi stack history --json` prints it (fields this reads). */
export interface HistoryEntry {
  version?: number;
  kind?: string;
  result?: string;
  startTime?: string;
  environment?: Record<string, string>;
}

/** The kinds of update that change what runs; a refresh, preview, import or rename leaves the program's commit as it was. */
const DEPLOYS = new Set(["update", "destroy"]);

/** What the history says is deployed. Entries come newest first; `version`, when every entry has it, decides. */
export function deployedFrom(stack: string, history: readonly HistoryEntry[]): Deployed {
  const ordered = history.every((h) => typeof h.version === "number") ? [...history].sort((a, b) => (b.version as number) - (a.version as number)) : history;
  const last = ordered.find((h) => h.result === "succeeded" && DEPLOYS.has(h.kind ?? ""));
  if (!last) return { kind: "none", source: `Pulumi has no successful \`pulumi up\` of ${stack} (\`pulumi stack history\`)`, stackExists: true };
  const which = `update ${last.version ?? "?"}${last.startTime ? `, ${last.startTime}` : ""}`;
  if (last.kind === "destroy") return { kind: "none", source: `${stack} was destroyed by its last successful update (Pulumi ${which})`, stackExists: true };
  const commit = last.environment?.["git.head"];
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) {
    throw new Error(`Pulumi's last update of ${stack} (${which}) records no git commit (it ran outside a git checkout): pass --base <the commit it deployed>`);
  }
  const notes =
    last.environment?.["git.dirty"] === "true"
      ? [`That \`pulumi up\` ran in a checkout with uncommitted changes: what is deployed may differ from commit ${commit.slice(0, 12)}.`]
      : [];
  return { kind: "commit", commit, source: `the last successful \`pulumi up\` of ${stack} (Pulumi ${which})`, notes };
}

export type Run = typeof spawnSync;

/** Asks the Pulumi CLI (on PATH, logged in) for the stack's update history, from the project at `root`. */
export function readDeployed(root: string, stack: string, run: Run = spawnSync): Deployed {
  const result = run("pulumi", ["stack", "history", "--stack", stack, "--json", "--page-size", "50", "--non-interactive"], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
    env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" },
  });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") return { kind: "unknown", reason: "the Pulumi CLI is not installed (no `pulumi` on PATH)" };
  if (result.error) return { kind: "unknown", reason: `\`pulumi stack history\` could not run: ${result.error.message}` };
  const stderr = String(result.stderr ?? "");
  if (result.status !== 0) {
    if (/no stack named '[^']*' found/.test(stderr)) return { kind: "none", source: `Pulumi has no stack ${stack} (\`pulumi stack history\`)`, stackExists: false };
    const line = stderr.split("\n").map((l) => l.replace(/^error:\s*/, "").trim()).find((l) => l !== "") ?? `exit code ${result.status}`;
    return { kind: "unknown", reason: `\`pulumi stack history\` failed: ${line}` };
  }
  let history: unknown;
  try {
    history = JSON.parse(String(result.stdout ?? "") || "[]");
  } catch {
    return { kind: "unknown", reason: "`pulumi stack history --json` printed something that is not JSON" };
  }
  if (!Array.isArray(history)) return { kind: "unknown", reason: "`pulumi stack history --json` printed no list of updates" };
  return deployedFrom(stack, history as HistoryEntry[]);
}
