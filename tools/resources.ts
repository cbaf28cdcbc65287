import { mkdirSync, writeFileSync } from "node:fs";
import { validateCatalog } from "../infra/model/catalog.js";
import { catalog } from "../stacks/catalog.js";
import { runProgram } from "./mock-engine.js";
import { mockConfig } from "./mock-config.js";
import { renderResourceList } from "./resource-list.js";

/** Writes resources/<stack>.md for every stack (or those named on the command line). */
const result = validateCatalog(catalog);
if (!result.ok) {
  for (const p of result.problems) console.error(`${p.path}: ${p.message}`);
  process.exit(1);
}
const wanted = process.argv.slice(2);
mkdirSync("resources", { recursive: true });
for (const plan of result.plans.filter((p) => wanted.length === 0 || wanted.includes(p.stack))) {
  const { config, secretKeys } = mockConfig(plan);
  const run = await runProgram(plan.stack, config, secretKeys);
  writeFileSync(`resources/${plan.stack}.md`, renderResourceList(plan.stack, run.resources, run.secretValues));
  console.log(`wrote resources/${plan.stack}.md (${run.resources.length} resources)`);
}
