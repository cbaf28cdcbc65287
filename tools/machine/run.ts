import { execOk } from "../process.js";

export { exec as run, execOk as runOk, type CommandResult as RunResult } from "../process.js";

/** docker CLI of the outer engine; returns trimmed stdout. */
export async function docker(...args: string[]): Promise<string> {
  return (await execOk("docker", args)).stdout.trim();
}
