import { join } from "node:path";
import { planFor, validateCatalog, CatalogError } from "../model/catalog.js";
import { renderAll, RENDERED_FILES } from "../render/index.js";
import { loadCatalog } from "./load-catalog.js";
import { loadDefinitionFile } from "./load-definition.js";
import { knownStack, runCli, UsageError } from "./run.js";
import { writeFolder } from "./write-folder.js";

const USAGE = `usage: npm run render -- --stack <name> --out <dir>
           write one stack's generated files to <dir>:
           ${RENDERED_FILES.join(", ")}
       npm run render -- --file <path> --out <dir>
           the same for a definition file (JSON or YAML), validated with the catalog as
           npm run validate -- --file does: it replaces the catalog's stack of its name or joins it
       npm run render:all      (npm run render -- --all)
           refresh rendered/<stack>/ for every stack of stacks/catalog.ts (commit the result)
options:
  --stack <name>   a stack of stacks/catalog.ts
  --file <path>    a definition file instead of a catalog stack (--stack, if given, must be its name)
  --out <dir>      where one stack's files are written (created if missing)
  --all            every stack, each into rendered/<stack>/; takes no other option
  -h, --help       print this and exit
The whole catalog is validated first: nothing is written when any stack has a problem.`;

await runCli(
  USAGE,
  { stack: { type: "string" }, file: { type: "string" }, out: { type: "string" }, all: { type: "boolean" } },
  async (values) => {
    const catalog = await loadCatalog();
    const stacks = catalog.map((env) => env.name);
    const out = values.out as string | undefined;
    const file = values.file as string | undefined;
    if (values.all) {
      const extra = (["stack", "file", "out"] as const).filter((name) => values[name] !== undefined);
      if (extra.length > 0) throw new UsageError(`--all writes every stack into rendered/<stack>/: it takes no ${extra.map((n) => `--${n}`).join(" or ")}`);
      const result = validateCatalog(catalog);
      if (!result.ok) throw new CatalogError(result.problems);
      for (const plan of result.plans) writeFolder(join("rendered", plan.stack), renderAll(plan));
      return 0;
    }
    if (file) {
      if (!out) throw new UsageError("--out is required: where the stack's files are written");
      const { definition, warnings } = loadDefinitionFile(file);
      for (const warning of warnings) console.error(`warning: ${warning}`);
      const name = (definition as { name?: unknown }).name;
      if (typeof name !== "string" || name === "") throw new UsageError(`${file}: the definition has no name, so it names no stack`);
      if (values.stack !== undefined && values.stack !== name) throw new UsageError(`--stack ${String(values.stack)}: --file ${file} defines stack "${name}"`);
      const definitions = [...catalog.filter((env) => env.name !== name), definition];
      writeFolder(out, renderAll(planFor(definitions, name)));
      return 0;
    }
    if (values.stack === undefined || !out) throw new UsageError("both --stack and --out are required (or --all)");
    const stack = knownStack(values.stack, stacks);
    writeFolder(out, renderAll(planFor(catalog, stack)));
    return 0;
  },
  { positionals: false, stacks: async () => (await loadCatalog()).map((env) => env.name) },
);
