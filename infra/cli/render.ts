import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { planFor, validateCatalog, CatalogError } from "../model/catalog.js";
import { renderAll, RENDERED_FILES } from "../render/index.js";
import { loadCatalog } from "./load-catalog.js";
import { loadDefinitionFile } from "./load-definition.js";
import { InputError, knownStack, runCli, UsageError } from "./run.js";

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

/** Why a folder cannot be written, as the user can act on it (the path is the user's; the errno says what is in the way). */
const WRITE_FAILURES: Record<string, string> = {
  EEXIST: "is a file, not a folder: name a folder (it is created if missing)",
  ENOTDIR: "runs through a file where a folder is needed: name a folder (it is created if missing)",
  EACCES: "is not writable by you",
  EPERM: "is not writable by you",
  EROFS: "is on a read-only file system",
  ENOSPC: "is on a full disk",
};

function write(dir: string, files: Record<string, string>): void {
  try {
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    const why = WRITE_FAILURES[code];
    if (why === undefined) throw error;
    throw new InputError(`${dir}: ${why} (${code})`);
  }
  console.log(`wrote ${Object.keys(files).join(", ")} to ${dir}`);
}

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
      for (const plan of result.plans) write(join("rendered", plan.stack), renderAll(plan));
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
      write(out, renderAll(planFor(definitions, name)));
      return 0;
    }
    if (values.stack === undefined || !out) throw new UsageError("both --stack and --out are required (or --all)");
    const stack = knownStack(values.stack, stacks);
    write(out, renderAll(planFor(catalog, stack)));
    return 0;
  },
  { positionals: false, stacks: async () => (await loadCatalog()).map((env) => env.name) },
);
