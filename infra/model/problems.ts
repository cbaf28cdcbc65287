import type { z } from "zod";

/** A user-facing validation problem: where (a dotted path into the definitions) and why. */
export interface Problem {
  path: string;
  message: string;
}

export const formatProblem = (p: Problem) => `${p.path}: ${p.message}`;

/** Turns zod issues into problems under `prefix` (the stack name or file). */
export function problemsFromZod(prefix: string, error: z.ZodError): Problem[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter((part) => part !== "").join(".");
    const missing = issue.code === "invalid_type" && issue.message.endsWith("received undefined");
    const unknown = issue.code === "unrecognized_keys";
    const message = missing
      ? "is required"
      : unknown
        ? `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`
        : issue.message;
    return { path, message };
  });
}
