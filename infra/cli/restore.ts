/**
 * `npm run restore -- --stack <name> [--from latest|<dump>] [--dry-run] [--yes]`: puts one
 * of the stack's dumps (on its host, or its copy in the stack's bucket) back as the stack's
 * database, through the host's backup tool, over SSH with the stack's pinned host key.
 *
 * Output (the rehearsal and the runbook match it):
 *   `dumps of <stack> (<user>@<host>):`
 *   `WHERE   NAME   SIZE   TIME (UTC)` then one row per dump, oldest first, host and bucket
 *   `bucket: not listed: <why>`   when the tool could not read the bucket (its warning), or
 *   `bucket: no copies yet`       when it could, and it holds none
 *   `chosen: <where> <name> (<time>)`
 *   the tool's own output, streamed
 *   dry run:  `dry run of <name> on <stack>: exit <code> after <s> s; nothing was changed`
 *   restore:  `restored <name> (<where>, <time>) into <database> of <stack> in <s> s`
 *             `  <table>  <rows> rows` per table the tool counted
 *             or `restore of <name> on <stack> FAILED: exit <code> after <s> s (...)`
 *             or `restore of <name> on <stack> not started: the deploy lock is held (...)`
 * Exit: the tool's exit code (255: the host was not reached; 75: the deploy lock is held by a
 * run or by someone else's hold, and nothing was changed); 1 with a message when the dump is
 * unknown or the restore was not confirmed, and then nothing was changed.
 * The tool turns maintenance mode on while it replaces the database (docs/operations.md).
 */
import { createInterface } from "node:readline/promises";
import { planFor } from "../model/catalog.js";
import { BACKUP_TOOL, dumpNamePatterns } from "../render/backup.js";
import { shellWord } from "../render/shell.js";
import { LOCK_REFUSED_EXIT } from "../render/deploy-lock.js";
import { sentBy } from "./deploy-lock.js";
import { checkedConnection, CONNECTION_USAGE, readFromHost, SSH_CONNECTION_FAILED, streamFromHost, unreachableMessage } from "./host-ssh.js";
import { loadCatalog } from "./load-catalog.js";
import { InputError, knownStack, runCli, UsageError } from "./run.js";

const USAGE = `usage: npm run restore -- --stack <name> [--from latest|<dump>] [--dry-run] [--yes]
           list the stack's dumps (on its host and in its bucket), then replace the stack's
           database with one of them
options:
  --from latest|<dump>
           the dump to restore, by the name the list shows (default: latest, the newest dump
           that is not a prerestore one; a prerestore dump is the database just before a
           restore: name it to undo that restore)
  --dry-run
           print the steps the restore would take; changes nothing
  --yes    restore without asking; needed when stdin is not a terminal (in a terminal you are
           asked to type the stack's name)
${CONNECTION_USAGE}
  --help   print this and exit
Runs \`sudo -n ${BACKUP_TOOL} list\`, then its \`restore <dump> [--dry-run]\`, on the
host over SSH, accepting only the stack's pinned host key. Port 22 is open only to
host.adminCidrs. The tool dumps the database first (a prerestore dump) and puts it back if
the restore fails. Meanwhile the site answers a maintenance page (503), unless maintenance
mode was on already; it takes the host's deploy lock: a hold you took runs it, anyone else's
stops it.`;

const OPTIONS = {
  stack: { type: "string" },
  from: { type: "string", default: "latest" },
  "dry-run": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  host: { type: "string" },
  user: { type: "string" },
  key: { type: "string" },
  "host-key": { type: "string" },
} as const;

/** One dump as the tool's `list` prints it: `<where>\t<name>\t<bytes>\t<UTC ISO time>`. */
interface Dump {
  where: "host" | "bucket";
  name: string;
  bytes: number;
  time: string;
}

/** The listing split into dumps and whatever else it said (the bucket's warning). */
function parseList(output: string): { dumps: Dump[]; notes: string[] } {
  const dumps: Dump[] = [];
  const notes: string[] = [];
  for (const text of output.split("\n")) {
    const fields = text.split("\t");
    const [where, name, bytes, time] = fields;
    if (fields.length === 4 && (where === "host" || where === "bucket") && name && /^\d+$/.test(bytes ?? "") && time) {
      dumps.push({ where, name, bytes: Number(bytes), time });
    } else if (text.trim() !== "") {
      notes.push(text.trim());
    }
  }
  return { dumps, notes };
}

/**
 * When a dump was taken: the time in its name when the name is one of the tool's
 * (dumpNamePatterns: the host's, the nightly job's older ones, the bucket's), else the
 * listed time, as the tool itself ranks them. A bucket copy is written after its host dump:
 * its listed time would wrongly make it newer. A name that only holds something like a time
 * (a copy made by hand) is not read for one.
 */
function takenAt(dump: Dump, databaseName: string): number {
  const names = dumpNamePatterns(databaseName);
  const stamp =
    new RegExp(names.host).exec(dump.name)?.[2] ?? new RegExp(names.object).exec(dump.name)?.[1] ?? new RegExp(names.legacy).exec(dump.name)?.[1];
  const parts = stamp ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?/.exec(stamp) : null;
  if (parts) {
    const [, y, mo, d, h, mi, s] = parts;
    return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0));
  }
  const listed = Date.parse(dump.time);
  return Number.isNaN(listed) ? 0 : listed;
}

const isPrerestore = (dump: Dump) => /(^|[-_])prerestore([-_.]|$)/.test(dump.name);

/**
 * The dump `latest` means: the newest by when it was taken, a host dump before its bucket
 * copy (no download). Prerestore dumps are left out: after a restore that went wrong, the
 * newest would be the database the operator is trying to leave (on a new host, an empty one).
 */
function latestDump(dumps: readonly Dump[], databaseName: string): Dump | undefined {
  const candidates = dumps.filter((d) => !isPrerestore(d));
  const taken = (dump: Dump) => takenAt(dump, databaseName);
  return [...candidates].sort((a, b) => taken(b) - taken(a) || (a.where === "host" ? -1 : 0) - (b.where === "host" ? -1 : 0))[0];
}

/** Levenshtein distance: how far a mistyped dump name is from each real one. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The `count` names closest to `wanted`, nearest first. */
function closestNames(wanted: string, dumps: readonly Dump[], count = 3): string[] {
  const names = [...new Set(dumps.map((d) => d.name))];
  return names
    .map((name) => ({ name, d: distance(wanted, name) }))
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
    .slice(0, count)
    .map((n) => n.name);
}

function size(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2))).join("").trimEnd());
}

/** What the tool printed after a restore: its `table\trows` lines and its last line. */
function parseRestoreOutput(output: string): { rows: [string, number][]; done?: { name: string; db: string; seconds: string } } {
  const rows: [string, number][] = [];
  let done: { name: string; db: string; seconds: string } | undefined;
  for (const text of output.split("\n")) {
    const count = /^([A-Za-z_][\w.$]*)\t(\d+)$/.exec(text);
    if (count) rows.push([count[1] as string, Number(count[2])]);
    const last = /^restored (\S+) into (\S+) in (\d+(?:\.\d+)?) s$/.exec(text.trim());
    if (last) done = { name: last[1] as string, db: last[2] as string, seconds: last[3] as string };
  }
  return done ? { rows, done } : { rows };
}

/** ssh missing is the user's to fix, not a stack trace. */
async function onHost<T>(what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new InputError("ssh is not installed (or not on PATH): install the OpenSSH client");
    throw error;
  }
}

/** Asks the operator to type the stack's name; true only when they did. */
async function confirmed(stack: string, question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await prompt.question(`${question}\nType the stack's name (${stack}) to restore, anything else to stop: `);
    return answer.trim() === stack;
  } finally {
    prompt.close();
  }
}

const line = (...words: string[]) => words.map(shellWord).join(" ");
const seconds = (started: number) => ((Date.now() - started) / 1000).toFixed(1);

await runCli(
  USAGE,
  OPTIONS,
  async (values) => {
    const started = Date.now();
    const catalog = await loadCatalog();
    const stacks = catalog.map((env) => env.name);
    if (values.stack === undefined) throw new UsageError(`--stack is required: one of ${stacks.join(", ")}`);
    const stack = knownStack(values.stack, stacks);
    const from = (values.from as string).trim();
    if (from === "") throw new UsageError("--from: give latest or a dump's name as the list shows it");
    const dryRun = values["dry-run"] === true;
    const tty = process.stdin.isTTY === true;
    // Refused before anything runs: a script must say it means to replace the database.
    if (!dryRun && values.yes !== true && !tty) {
      throw new UsageError(
        `restoring replaces the database of ${stack}: stdin is not a terminal to confirm it, so pass --yes (or --dry-run to see the steps first)`,
      );
    }

    const plan = planFor(catalog, stack);
    const connection = await checkedConnection(stack, values);
    const unreachable = (code: number) => {
      if (code === SSH_CONNECTION_FAILED) console.error(unreachableMessage(connection, stack, plan.host.adminCidrs));
      return code;
    };

    const listing = await onHost(() => readFromHost(connection, [`${line("sudo", "-n", BACKUP_TOOL, "list")} 2>&1`]));
    if (listing.code === SSH_CONNECTION_FAILED) return unreachable(listing.code);
    const { dumps, notes } = parseList(listing.stdout);
    if (listing.code !== 0) {
      for (const text of notes) console.error(text);
      // sudo's answer on a host set up before the tool existed.
      const missing = notes.some((n) => /command not found/.test(n)) ? ` (the host has no ${BACKUP_TOOL}: run pulumi up to install it)` : "";
      console.error(`could not list the dumps of ${stack}: sudo -n ${BACKUP_TOOL} list exited ${listing.code}${missing}; nothing was changed`);
      return listing.code;
    }

    console.log(`dumps of ${stack} (${connection.user}@${connection.host}):`);
    if (dumps.length > 0) {
      for (const text of table([["WHERE", "NAME", "SIZE", "TIME (UTC)"], ...dumps.map((d) => [d.where, d.name, size(d.bytes), d.time])])) console.log(text);
    }
    // A bucket the tool could not read is its one warning line (on stderr, merged here): the table lacks its copies.
    const why = notes.map((n) => n.replace(/^warning:\s*/, "").replace(/;\s*only the host's dumps are listed\.?$/, "")).join("; ");
    if (notes.length > 0) console.log(`bucket: not listed: ${why}`);
    else if (!dumps.some((d) => d.where === "bucket")) console.log("bucket: no copies yet");
    if (dumps.length === 0) {
      console.error(`nothing to restore from: no dump on the host${notes.length > 0 ? " and the bucket could not be read" : " or in the bucket"}; nothing was changed`);
      return 1;
    }

    const chosen = from === "latest" ? latestDump(dumps, plan.database.name) : dumps.find((d) => d.name === from);
    if (!chosen) {
      const reason = from === "latest" ? "every dump listed is a prerestore one: name the one to restore" : `no dump is named "${from}"`;
      console.error(`--from: ${reason}; the closest: ${closestNames(from, dumps).join(", ")}. Nothing was changed.`);
      return 1;
    }
    const what = `${chosen.where} ${chosen.name} (${chosen.time})`;

    if (dryRun) {
      console.log(`\nchosen: ${what}`);
      const dry = await onHost(() => streamFromHost(connection, [line("sudo", "-n", BACKUP_TOOL, "restore", chosen.name, "--dry-run")]));
      const result = `dry run of ${chosen.name} on ${stack}: exit ${dry.code} after ${seconds(started)} s; nothing was changed`;
      if (dry.code === 0) console.log(result);
      else console.error(result);
      return unreachable(dry.code);
    }

    if (values.yes !== true) {
      const question = `\nThis replaces the database ${plan.database.name} of ${stack} with ${what}. The host dumps the database first (a prerestore dump) and stops the backend until the restore ends; the site shows a maintenance page meanwhile.`;
      if (!(await confirmed(stack, question))) {
        console.error("not confirmed: nothing was changed");
        return 1;
      }
    }

    console.log(`\nchosen: ${what}`);
    // Sent as its sender's: under the sender's own hold on the deploy lock, the restore runs.
    const run = await onHost(() => streamFromHost(connection, [line("sudo", "-n", ...sentBy(), BACKUP_TOOL, "restore", chosen.name)]));
    if (run.code === SSH_CONNECTION_FAILED) return unreachable(run.code);
    if (run.code === LOCK_REFUSED_EXIT) {
      console.error(`\nrestore of ${chosen.name} on ${stack} not started: the deploy lock is held (the tool says by whom, above); nothing was changed`);
      return run.code;
    }
    const { rows, done } = parseRestoreOutput(run.stdout);
    if (run.code !== 0) {
      console.error(
        `\nrestore of ${chosen.name} on ${stack} FAILED: exit ${run.code} after ${seconds(started)} s (the tool put the previous data back; its output is above)`,
      );
      return run.code;
    }
    console.log(`\nrestored ${chosen.name} (${chosen.where}, ${chosen.time}) into ${done?.db ?? plan.database.name} of ${stack} in ${done?.seconds ?? seconds(started)} s`);
    const width = Math.max(0, ...rows.map(([name]) => name.length));
    for (const [name, count] of rows) console.log(`  ${name.padEnd(width)}  ${count} rows`);
    if (rows.length === 0) console.log("  (the tool printed no row counts)");
    if (!done) console.log(`  (the tool did not print its last line "restored <dump> into <database> in <s> s")`);
    return 0;
  },
  { positionals: false, stacks: async () => (await loadCatalog()).map((env) => env.name) },
);
