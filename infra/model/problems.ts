import type { z } from "zod";

/** A user-facing validation problem: where (a dotted path into the definitions) and why. */
export interface Problem {
  path: string;
  message: string;
}

export const formatProblem = (p: Problem) => `${p.path}: ${p.message}`;

/** A key as written in a path: itself when plain, else quoted, so a key cannot fake a line of output. */
const PLAIN_KEY = /^[A-Za-z0-9_$-]{1,128}$/;
const quoted = (key: string) => JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key);
const shownKey = (key: string) => (PLAIN_KEY.test(key) ? key : `[${quoted(key)}]`);
const quotedKey = (key: string) => (PLAIN_KEY.test(key) ? `'${key}'` : quoted(key));
/** Unknown fields listed by name: the first ten, then a count. */
const MAX_LISTED_KEYS = 10;

/** Turns zod issues into problems under `prefix` (the stack name or file). */
export function problemsFromZod(prefix: string, error: z.ZodError): Problem[] {
  return error.issues.map((issue) => {
    const path = issue.path.reduce<string>((at, part) => {
      const key = typeof part === "number" ? String(part) : shownKey(String(part));
      return at === "" ? key : key.startsWith("[") ? `${at}${key}` : `${at}.${key}`;
    }, prefix);
    const missing = issue.code === "invalid_type" && issue.message.endsWith("received undefined");
    const unknown = issue.code === "unrecognized_keys";
    const message = missing
      ? "is required"
      : issue.code === "invalid_key"
        ? // A record's key: zod says only "Invalid key in record"; the key's own rule says why.
          issue.issues.map((inner) => inner.message).join("; ")
      : unknown
        ? `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.slice(0, MAX_LISTED_KEYS).map(quotedKey).join(", ")}${
            issue.keys.length > MAX_LISTED_KEYS ? ` and ${issue.keys.length - MAX_LISTED_KEYS} more` : ""
          }`
        : issue.message;
    return { path, message };
  });
}
