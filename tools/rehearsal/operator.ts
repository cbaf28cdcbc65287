import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { exec } from "./docker.js";
import type { DeployProgress, Step } from "./engine.js";
import { freshOperator } from "./fresh-operator.js";
import type { HostAccess } from "./host-access.js";
import { withDefinition } from "./localize.js";
import type { World } from "./world.js";

/** What one `pulumi up` of the stack is given: its stack, the operator's files, its state. */
export interface Operator {
  stackName: string;
  workdir: string;
  /** The app's source tree the program builds the images from. */
  appSource: string;
  /** The stack's SSH key (the public half is at `${keyPath}.pub`). */
  keyPath: string;
  /** The stack's state, as a Pulumi backend carries it from one `up` to the next. */
  stateFile: string;
  world: World;
  /** The stack's configuration (mockConfig) and which of its keys are secrets. */
  config: Record<string, string>;
  secretKeys: string[];
  /** The rehearsal's own way onto the host; re-pointed at its daemon after each deploy. */
  admin: HostAccess;
}

export interface DeployResult {
  ok: boolean;
  /** The first error the deploy reported ("" when it succeeded). */
  error: string;
  /** "<name> <action>" of every resource that changed. */
  changed: string[];
  /** The step a resource of that name took, if it changed. */
  action(name: string): Step | undefined;
  progress: DeployProgress;
  /** When the deploy's process had ended (ms since the epoch), before the rehearsal reached the host again. */
  finishedAt: number;
}

/** The keys an operator's agent holds: the stack's, and during a key change the old one as well. */
export interface AgentKeys {
  /** Private key files, the first being the one whose public half the stack declares. */
  keys?: string[];
}

/**
 * Runs the real program for the stack, in its own process as `pulumi up` would be; never throws.
 * The one place a deploy is started: everything an operator's `up` is given is written here.
 * Each run is a fresh operator (fresh-operator.ts): an empty HOME and working folder, the
 * key at a new path and only in its own ssh-agent; the state is all that carries over.
 */
export async function deploy(
  operator: Operator,
  definition: EnvironmentDefinition,
  secretConfig: Record<string, string> = {},
  agent: AgentKeys = {},
): Promise<DeployResult> {
  const fresh = await freshOperator(agent.keys ?? [operator.keyPath]);
  try {
    return await deployAs(operator, fresh, definition, secretConfig);
  } finally {
    await fresh.close();
  }
}

async function deployAs(
  operator: Operator,
  fresh: Awaited<ReturnType<typeof freshOperator>>,
  definition: EnvironmentDefinition,
  secretConfig: Record<string, string>,
): Promise<DeployResult> {
  const { stackName, workdir, appSource, stateFile, world, config, secretKeys, admin } = operator;
  const progressFile = join(workdir, "progress.json");
  // A fresh checkout has no build folder: the program assembles the contexts again.
  const buildDir = relative(process.cwd(), join(workdir, "build"));
  rmSync(buildDir, { recursive: true, force: true });
  writeFileSync(join(workdir, "definitions.json"), JSON.stringify(withDefinition(catalog, definition)));
  writeFileSync(join(workdir, "world.json"), JSON.stringify(world));
  writeFileSync(
    join(workdir, "config.json"),
    JSON.stringify({
      config: {
        ...config,
        ...secretConfig,
        "timetracker:appSource": appSource,
        // Inside the checkout and relative, as `.build` is on a runner: the build context's path
        // is an input of the image, so an absolute path of one machine would replace it on the next.
        "timetracker:buildDir": buildDir,
        "timetracker:sshPublicKeyPath": `${fresh.keyPaths[0]}.pub`,
        "timetracker:bucketEndpoint": world.bucket.endpoint,
      },
      secretKeys: [...secretKeys, ...Object.keys(secretConfig)],
    }),
    { mode: 0o600 },
  );
  rmSync(progressFile, { force: true });
  const run = await exec("npx", [
    "tsx", "tools/rehearsal/deploy-once.ts",
    "--stack", stackName,
    "--definitions", join(workdir, "definitions.json"),
    "--config", join(workdir, "config.json"),
    "--state", stateFile,
    "--world", join(workdir, "world.json"),
    "--progress", progressFile,
  ], { env: fresh.env });
  const finishedAt = Date.now();
  const progress: DeployProgress = existsSync(progressFile) ? JSON.parse(readFileSync(progressFile, "utf8")) : { changes: {}, calls: [], errors: [], timings: {} };
  const steps = Object.entries(progress.changes).filter(([, s]) => s.action !== "same");
  const changed = steps.map(([k, s]) => `${k.split("::")[1]} ${s.action}`);
  const failed = run.code !== 0 || progress.errors.length > 0;
  const error = progress.errors[0] ?? (run.code !== 0 ? `deploy exited ${run.code}: ${run.stderr.trim().split("\n").slice(-5).join("\n")}` : "");
  const action = (name: string) => steps.find(([k]) => k.endsWith(`::${name}`))?.[1];
  // The deploy may have replaced the host: the probes' Docker calls go to the current one.
  await admin.docker().catch(() => undefined);
  return { ok: !failed, error, changed, action, progress, finishedAt };
}

/**
 * `pulumi destroy` as a fresh operator, in its own process: every delete through the
 * settings the state recorded. Throws with the engine's first error when it fails.
 */
export async function destroy(operator: Operator, options: { unprotect: boolean }): Promise<{ removed: string[]; kept: string[] }> {
  const { workdir, keyPath, stateFile } = operator;
  const fresh = await freshOperator([keyPath]);
  try {
    const progressFile = join(workdir, "progress.json");
    const resultFile = join(workdir, "destroyed.json");
    rmSync(resultFile, { force: true });
    writeFileSync(join(workdir, "world.json"), JSON.stringify(operator.world));
    const run = await exec(
      "npx",
      ["tsx", "tools/rehearsal/destroy-once.ts", "--state", stateFile, "--world", join(workdir, "world.json"), "--progress", progressFile, "--result", resultFile, ...(options.unprotect ? ["--unprotect"] : [])],
      { env: fresh.env },
    );
    if (run.code !== 0 || !existsSync(resultFile)) {
      const progress = existsSync(progressFile) ? (JSON.parse(readFileSync(progressFile, "utf8")) as DeployProgress) : undefined;
      throw new Error(progress?.errors[0] ?? `destroy exited ${run.code}: ${run.stderr.trim().split("\n").slice(-5).join("\n")}`);
    }
    return JSON.parse(readFileSync(resultFile, "utf8"));
  } finally {
    await fresh.close();
  }
}

/**
 * One of the package's host commands (`npm run ops`, `rollback`, `restore`) as a fresh
 * operator: its own HOME and agent, the key at a new path (`--key` points there).
 */
export async function hostCommand(operator: Operator, script: string, args: string[]): Promise<Awaited<ReturnType<typeof exec>>> {
  const fresh = await freshOperator([operator.keyPath]);
  try {
    const [key] = fresh.keyPaths;
    return await exec("npx", ["tsx", script, ...args.map((a) => (a === operator.keyPath ? String(key) : a))], { env: fresh.env });
  } finally {
    await fresh.close();
  }
}
