import { mkdirSync, writeFileSync } from "node:fs";
import { CatalogError, validateCatalog } from "../infra/model/catalog.js";
import { loadCatalog } from "../infra/cli/load-catalog.js";
import { knownStack, runCli } from "../infra/cli/run.js";
import { runStacks } from "./generate/stack-runs.js";

const USAGE = `usage: npm run resources -- [--stack <name>]...
Writes resources/<stack>.md: the resources the program declares for the stack under Pulumi
mocks, with their inputs (secrets redacted). Part of \`npm run generate\`; commit the result.
options:
  --stack <name>   only this stack of stacks/catalog.ts (repeat for several); default: every stack
  -h, --help       print this and exit
The whole catalog is validated first: nothing is written when any stack has a problem.`;

await runCli(
  USAGE,
  { stack: { type: "string", multiple: true } },
  async (values) => {
    const catalog = await loadCatalog();
    const stacks = catalog.map((env) => env.name);
    const wanted = ((values.stack as string[] | undefined) ?? []).map((name) => knownStack(name, stacks));
    const result = validateCatalog(catalog);
    if (!result.ok) throw new CatalogError(result.problems);
    const { renderResourceList } = await import("./resource-list.js");
    mkdirSync("resources", { recursive: true });
    for (const { stack, run } of await runStacks(catalog, result.plans.filter((p) => wanted.length === 0 || wanted.includes(p.stack)))) {
      writeFileSync(`resources/${stack}.md`, renderResourceList(stack, run.resources, run.secretValues));
      console.log(`wrote resources/${stack}.md (${run.resources.length} resources)`);
    }
    return 0;
  },
  { positionals: false, stacks: async () => (await loadCatalog()).map((env) => env.name) },
);
