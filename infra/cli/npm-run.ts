import { spawnSync } from "node:child_process";

/** `npm run <args>` in the checkout at `root`, quietly: whether it passed, and its output to show when not. */
export function npmRun(root: string, args: string[]): { ok: boolean; command: string; output: string } {
  const command = `npm run ${args.join(" ")}`;
  const result = spawnSync("npm", ["run", "--silent", ...args], { cwd: root, encoding: "utf8", timeout: 300_000 });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
  const failure = result.error ? `could not run: ${result.error.message}` : "";
  return { ok: result.status === 0 && !result.error, command, output: failure || output };
}
