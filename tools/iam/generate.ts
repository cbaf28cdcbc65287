import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CatalogError, validateCatalog } from "../../infra/model/catalog.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { iamFiles, repositoryOf, type StackResources } from "./policies.js";

const REPO_ROOT = join(import.meta.dirname, "..", "..");

/** This repository on GitHub, `<owner>/<repo>`, from package.json's `repository`. */
export function repository(root = REPO_ROOT): string {
  return repositoryOf(JSON.parse(readFileSync(join(root, "package.json"), "utf8")));
}

/**
 * The resources the program declares for each stack of the catalog, run under Pulumi mocks as
 * `npm run resources` does (no Pulumi CLI or AWS account is needed), in catalog order.
 */
export async function declaredResources(definitions: readonly EnvironmentDefinition[]): Promise<StackResources[]> {
  const result = validateCatalog(definitions);
  if (!result.ok) throw new CatalogError(result.problems);
  // The Pulumi runtime is loaded only for real work: --help and a mistake stay fast.
  const { runProgram } = await import("../mock-engine.js");
  const { mockConfig } = await import("../mock-config.js");
  const stacks: StackResources[] = [];
  for (const plan of result.plans) {
    const { config, secretKeys } = mockConfig(plan);
    const run = await runProgram(plan.stack, config, secretKeys, { definitions });
    const resources = run.resources.map(({ type, name, inputs, options }) => ({ type, name, inputs, ...(options.retainOnDelete ? { retainOnDelete: true } : {}) }));
    stacks.push({ stack: plan.stack, resources });
  }
  return stacks;
}

/** Every file of iam/ for a catalog, by path relative to iam/. */
export async function generateIam(definitions: readonly EnvironmentDefinition[], root = REPO_ROOT): Promise<Map<string, string>> {
  return iamFiles(repository(root), await declaredResources(definitions));
}
