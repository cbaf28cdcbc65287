import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { planFor, validateCatalog, CatalogError } from "../model/catalog.js";
import { renderAll } from "../render/index.js";
import { catalog } from "../../stacks/catalog.js";
import { runCli, UsageError } from "./run.js";

const USAGE = `usage: npm run render -- --stack <name> --out <dir>   write one stack's generated files
       npm run render -- --all                         refresh rendered/<stack>/ for every stack`;

function write(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  console.log(`wrote ${Object.keys(files).join(", ")} to ${dir}`);
}

await runCli(USAGE, { stack: { type: "string" }, out: { type: "string" }, all: { type: "boolean" } }, (values) => {
  if (values.all) {
    const result = validateCatalog(catalog);
    if (!result.ok) throw new CatalogError(result.problems);
    for (const plan of result.plans) write(join("rendered", plan.stack), renderAll(plan));
    return 0;
  }
  const stack = values.stack as string | undefined;
  const out = values.out as string | undefined;
  if (!stack || !out) throw new UsageError("both --stack and --out are required");
  write(out, renderAll(planFor(catalog, stack)));
  return 0;
});
