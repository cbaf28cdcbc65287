import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCatalog } from "../infra/cli/load-catalog.js";
import { runCli, UsageError } from "../infra/cli/run.js";
import { writeFolder } from "../infra/cli/write-folder.js";
import { CatalogError, validateCatalog } from "../infra/model/catalog.js";
import { renderAll } from "../infra/render/index.js";
import { definitionDoc } from "./definition-doc.js";
import { runStacks } from "./generate/stack-runs.js";
import { repository, stackResources } from "./iam/generate.js";
import { iamFiles, IamError } from "./iam/policies.js";
import { writeIamFolder } from "./iam/write.js";
import { renderResourceList } from "./resource-list.js";

const USAGE = `usage: npm run generate
Writes every file made from the catalog and the schema, as render:all, resources, definition
and iam do one by one, in one process that runs the program once per stack:
  rendered/<stack>/     each stack's generated files (npm run render:all)
  resources/<stack>.md  the resources the program declares under Pulumi mocks (npm run resources)
  docs/definition.md    the reference of a stack's definition (npm run definition)
  iam/                  the GitHub environments' roles (npm run iam)
Commit the result. The catalog is validated and every file computed first: nothing is written
when a stack has a problem.
options:
  -h, --help   print this and exit`;

await runCli(
  USAGE,
  {},
  async () => {
    const catalog = await loadCatalog();
    const result = validateCatalog(catalog);
    if (!result.ok) throw new CatalogError(result.problems);
    const rendered = result.plans.map((plan) => ({ dir: join("rendered", plan.stack), files: renderAll(plan) }));
    const runs = await runStacks(catalog, result.plans);
    let iam: Map<string, string>;
    try {
      iam = iamFiles(repository(), runs.map(stackResources));
    } catch (error) {
      if (error instanceof IamError) throw new UsageError(error.message);
      throw error;
    }

    const definition = definitionDoc();

    for (const { dir, files } of rendered) writeFolder(dir, files);
    mkdirSync("resources", { recursive: true });
    for (const { stack, run } of runs) {
      writeFileSync(`resources/${stack}.md`, renderResourceList(stack, run.resources, run.secretValues));
      console.log(`wrote resources/${stack}.md (${run.resources.length} resources)`);
    }
    writeFileSync("docs/definition.md", definition);
    console.log("wrote docs/definition.md");
    writeIamFolder(iam);
    return 0;
  },
  { positionals: false },
);
