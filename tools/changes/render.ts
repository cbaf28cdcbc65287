import type { Change } from "./plan-changes.js";
import type { FlagKind } from "./flags.js";
import { PROVIDER_RULES } from "./provider-rules.js";

const SHOWN = 40;
const escape = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** A short scalar is shown as it is; anything long, structured or secret only by its name. */
function shown(value: unknown, secrets: readonly string[]): string | undefined {
  if (value === undefined) return "(none)";
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") return undefined;
  const text = String(value);
  if (text.length > SHOWN || text.includes("\n") || secrets.some((s) => text.includes(s))) return undefined;
  return `\`${text}\``;
}

const isSecretInput = (paths: readonly string[] | undefined, input: string) =>
  (paths ?? []).some((p) => p === input || p.startsWith(`${input}.`) || p.startsWith(`${input}[`));

/** A cause that names a changed input gets its old and new value when both are short and not secret. */
function describe(change: Change, text: string, isSecret: (input: string) => boolean, secrets: readonly string[]): string {
  const { now, before } = change;
  // Other causes ("host-instance replaced (via instanceName)") are not input names.
  if (!now || !before || !(text in now.inputs || text in before.inputs)) return text;
  if (isSecret(text)) return `${text} (secret)`;
  const from = shown(before.inputs[text], secrets);
  const to = shown(now.inputs[text], secrets);
  return from && to ? `${text}: ${from} → ${to}` : text;
}

export interface Redaction {
  /** Secret paths by resource (`type::name`), from both programs. */
  secretPaths: ReadonlyMap<string, readonly string[]>;
  secretValues: readonly string[];
}

const ACTION_MARK: Record<Change["action"], string> = { create: "+", update: "~", replace: "+-", delete: "-", same: "" };

/**
 * The preview of one stack as markdown: a heading that says what it is compared with
 * (`against \`main\``, `not deployed yet`), notes on that, a table of every change, then a
 * summary line.
 */
export function renderPreview(stack: string, comparedWith: string, changes: readonly Change[], redaction: Redaction, notes: readonly string[] = []): string {
  const visible = changes.filter((c) => c.action !== "same");
  const rows = visible.map((c) => {
    const paths = redaction.secretPaths.get(`${c.type}::${c.name}`);
    const isSecret = (input: string) => isSecretInput(paths, input);
    const why = [...c.causes.map((t) => describe(c, t, isSecret, redaction.secretValues)), ...c.ignored.map((i) => `${i} (never applied)`)];
    const onUpdate = c.action === "update" ? PROVIDER_RULES[c.type]?.onUpdate : undefined;
    const action = c.action === "replace" ? `replace (${c.deleteFirst ? "delete first" : "create first"})` : onUpdate ? `update: ${onUpdate}` : c.action;
    const flags = c.flags.map((f) => `**${f.kind}**: ${f.reason}`);
    return `| ${ACTION_MARK[c.action]} | \`${c.name}\` (${c.type}) | ${action} | ${escape(why.join("; "))} | ${escape(flags.join("<br>"))} |`;
  });
  return [
    `### Changes to \`${stack}\` ${comparedWith} (offline, from the provider rules)`,
    "",
    ...notes.flatMap((note) => [note, ""]),
    ...(rows.length > 0 ? ["| | resource | action | why | flags |", "|---|---|---|---|---|", ...rows, ""] : ["No changes.", ""]),
    summaryLine(stack, changes),
    "",
  ].join("\n");
}

function summaryLine(stack: string, changes: readonly Change[]): string {
  const count = (action: Change["action"]) => changes.filter((c) => c.action === action).length;
  const flagCounts = new Map<FlagKind, number>();
  for (const f of changes.flatMap((c) => c.flags)) flagCounts.set(f.kind, (flagCounts.get(f.kind) ?? 0) + 1);
  const flags = [...flagCounts].map(([kind, n]) => `${n} ${kind}`).join(", ") || "none";
  return `**${stack}**: ${count("create")} to create, ${count("update")} to update, ${count("replace")} to replace, ${count("delete")} to delete, ${count("same")} unchanged. Flags: ${flags}.`;
}
