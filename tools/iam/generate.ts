import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CatalogError, validateCatalog } from "../../infra/model/catalog.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { runStacks, type StackRun } from "../generate/stack-runs.js";
import { iamFiles, repositoryOf, type StackResources } from "./policies.js";

const REPO_ROOT = join(import.meta.dirname, "..", "..");

/** This repository on GitHub, `<owner>/<repo>`, from package.json's `repository`. */
export function repository(root = REPO_ROOT): string {
  return repositoryOf(JSON.parse(readFileSync(join(root, "package.json"), "utf8")));
}

/** What the policies read of a stack's run: each resource's type, name and inputs, and whether it is retained on delete. */
export function stackResources({ stack, run }: StackRun): StackResources {
  const resources = run.resources.map(({ type, name, inputs, options }) => ({ type, name, inputs, ...(options.retainOnDelete ? { retainOnDelete: true } : {}) }));
  return { stack, resources };
}

/**
 * The resources the program declares for each stack of the catalog, run under Pulumi mocks as
 * `npm run resources` does (no Pulumi CLI or AWS account is needed), in catalog order.
 */
export async function declaredResources(definitions: readonly EnvironmentDefinition[]): Promise<StackResources[]> {
  const result = validateCatalog(definitions);
  if (!result.ok) throw new CatalogError(result.problems);
  return (await runStacks(definitions, result.plans)).map(stackResources);
}

/** Every file of iam/ for a catalog, by path relative to iam/. */
export async function generateIam(definitions: readonly EnvironmentDefinition[], root = REPO_ROOT): Promise<Map<string, string>> {
  return iamFiles(repository(root), await declaredResources(definitions));
}
