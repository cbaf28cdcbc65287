import { validateCatalog } from "../model/catalog.js";
import { formatProblem } from "../model/problems.js";
import { catalog } from "../../stacks/catalog.js";
import { loadDefinitionFile } from "./load-definition.js";
import { runCli } from "./run.js";

const USAGE = `usage: npm run validate                      validate every stack in stacks/catalog.ts
       npm run validate -- --file <path>     validate one definition (JSON or YAML) against the catalog`;

await runCli(USAGE, { file: { type: "string" } }, (values) => {
  const file = values.file as string | undefined;
  let definitions: unknown[] = catalog;
  if (file) {
    const definition = loadDefinitionFile(file);
    const name = (definition as { name?: unknown } | null)?.name;
    // The file stands in for the catalog's stack of the same name, or joins the catalog.
    definitions = [...catalog.filter((env) => env.name !== name), definition];
  }
  const result = validateCatalog(definitions);
  if (!result.ok) {
    for (const problem of result.problems) console.error(formatProblem(problem));
    console.error(`\n${result.problems.length} problem${result.problems.length === 1 ? "" : "s"} found.`);
    return 1;
  }
  const stacks = file ? [result.plans.at(-1)?.stack] : result.plans.map((p) => p.stack);
  console.log(`valid: ${stacks.join(", ")}`);
  return 0;
});
