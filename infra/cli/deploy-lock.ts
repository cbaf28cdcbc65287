import { hostname, userInfo } from "node:os";
import { LOCK_BY_VARIABLE, LOCK_TOOL } from "../render/deploy-lock.js";
import { shellWord } from "../render/shell.js";
import { UsageError } from "./run.js";

/** Longest message a hold (or a maintenance page) takes: one line, read on a status line. */
export const MESSAGE_MAX = 300;

/**
 * Who sends a command, as the host's lock records it beside the SSH user and client address:
 * the CI run (actor and URL) under GitHub Actions, `<user>@<machine>` otherwise. A restore or a
 * rollback sent by the holder of a hold runs under it; anyone else's waits, then is refused.
 */
export function senderIdentity(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GITHUB_ACTIONS === "true" && env.GITHUB_RUN_ID) {
    const run = `${env.GITHUB_SERVER_URL ?? "https://github.com"}/${env.GITHUB_REPOSITORY ?? "?"}/actions/runs/${env.GITHUB_RUN_ID}`;
    return `${env.GITHUB_ACTOR ?? "someone"} in CI run ${run}`;
  }
  let user = env.USER ?? "someone";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for this uid (a container): $USER, or someone.
  }
  return `${user}@${hostname()}`;
}

/** The words before a host tool that say who sent it: `env TIMETRACKER_LOCK_BY=<who>` (to be quoted for the remote shell). */
export const sentBy = (env: NodeJS.ProcessEnv = process.env): string[] => ["env", `${LOCK_BY_VARIABLE}=${senderIdentity(env)}`];

export const LOCK_ACTIONS = ["status", "acquire", "release"] as const;
export type LockAction = (typeof LOCK_ACTIONS)[number];

/** A message as the host keeps it: one line of text, not empty, at most MESSAGE_MAX characters. */
export function checkedMessage(flag: string, text: string): string {
  const message = text.trim();
  if (message === "") throw new UsageError(`${flag}: the message is empty`);
  if (/[\r\n]/.test(message)) throw new UsageError(`${flag}: the message must be one line`);
  if (message.length > MESSAGE_MAX) throw new UsageError(`${flag}: the message has ${message.length} characters; at most ${MESSAGE_MAX}`);
  return message;
}

/** The remote command of `lock <action>`: the host's lock tool as root; an acquire says who sends it and why. */
export function lockCommand(action: LockAction, message: string): string {
  if (action !== "acquire") return ["sudo", "-n", LOCK_TOOL, action].join(" ");
  return ["sudo", "-n", ...sentBy(), LOCK_TOOL, "acquire", message].map(shellWord).join(" ");
}
