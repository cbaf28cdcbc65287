import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execOk } from "../process.js";

/** One operator's machine for one command: what a fresh CI runner or another laptop has. */
export interface FreshOperator {
  /** An empty home folder: no known_hosts, no ~/.ssh, nothing from an earlier run. */
  home: string;
  /** Where this operator keeps the stack's key(s), each with its `.pub` beside it when there is one: a new path every time. */
  keyPaths: string[];
  /** The environment the command runs with: this HOME and this operator's own ssh-agent. */
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/**
 * A new operator: a fresh HOME, the given private keys copied to new paths under it and
 * loaded into a new ssh-agent. The only thing it shares with the previous operator is
 * what the caller passes on (the stack's state), as a Pulumi backend carries it.
 */
export async function freshOperator(privateKeys: readonly string[]): Promise<FreshOperator> {
  const root = mkdtempSync(join(tmpdir(), "tt-operator-"));
  const home = join(root, "home");
  mkdirSync(home, { mode: 0o700 });
  const keyDir = join(home, randomBytes(4).toString("hex"));
  mkdirSync(keyDir, { mode: 0o700 });
  const keyPaths = privateKeys.map((key, i) => {
    const path = join(keyDir, `key-${i}`);
    copyFileSync(key, path);
    if (existsSync(`${key}.pub`)) copyFileSync(`${key}.pub`, `${path}.pub`);
    return path;
  });
  const socket = join(root, "agent.sock");
  const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
  for (let waited = 0; !existsSync(socket); waited += 50) {
    if (agent.exitCode !== null || waited > 10_000) throw new Error(`ssh-agent did not start (exit ${agent.exitCode})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, SSH_AUTH_SOCK: socket };
  for (const path of keyPaths) await execOk("ssh-add", ["-q", path], { env });
  return {
    home,
    keyPaths,
    env,
    async close() {
      agent.kill();
      rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    },
  };
}

/** What an operator left in its home folder (a probe checks that nothing was written there). */
export const leftInHome = (operator: FreshOperator) => readdirSync(operator.home).filter((f) => !operator.keyPaths.some((k) => k.startsWith(join(operator.home, f))));
