import type { Plan } from "../../infra/model/plan.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import type { ProgramRun } from "../mock-engine.js";

/** One stack's program run under Pulumi mocks: what resources/<stack>.md and iam/ are written from. */
export interface StackRun {
  stack: string;
  run: ProgramRun;
}

/**
 * The program run once for each of `plans` (plans of `definitions`, a valid catalog), under
 * Pulumi mocks: no Pulumi CLI or AWS account is needed. The Pulumi runtime is loaded only here,
 * so --help and a mistake stay fast.
 */
export async function runStacks(definitions: readonly EnvironmentDefinition[], plans: readonly Plan[]): Promise<StackRun[]> {
  const { runProgram } = await import("../mock-engine.js");
  const { mockConfig } = await import("../mock-config.js");
  const runs: StackRun[] = [];
  for (const plan of plans) {
    const { config, secretKeys } = mockConfig(plan);
    runs.push({ stack: plan.stack, run: await runProgram(plan.stack, config, secretKeys, { definitions }) });
  }
  return runs;
}
