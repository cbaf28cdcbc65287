import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { mockConfig } from "../mock-config.js";
import { runProgram } from "../mock-engine.js";
import type { Declared } from "./decide.js";

/** What one checkout's program declares for a stack, as the preview reads it. */
export interface Declaration {
  resources: (Declared & { secretPaths: string[] })[];
  /** Values to keep out of anything printed. */
  secretValues: string[];
}

/**
 * Runs the program of the checkout at `--root` for `--stack` under Pulumi mocks and writes
 * what it declares to `--out`. A separate process per checkout: each program brings its
 * own model and catalog, and the Pulumi runtime holds one program per process.
 */
const { values } = parseArgs({ options: { root: { type: "string" }, stack: { type: "string" }, out: { type: "string" } } });
const { root, stack, out } = values;
if (!root || !stack || !out) throw new Error("usage: declare.ts --root <checkout> --stack <stack> --out <file>");

const load = (path: string) => import(pathToFileURL(join(root, path)).href);
const { catalog } = (await load("stacks/catalog.ts")) as typeof import("../../stacks/catalog.js");
const { planFor } = (await load("infra/model/catalog.ts")) as typeof import("../../infra/model/catalog.js");

let declaration: Declaration = { resources: [], secretValues: [] };
// A stack the checkout does not define yet declares nothing there: every resource is new.
if (catalog.some((d) => d.name === stack)) {
  const { config, secretKeys } = mockConfig(planFor(catalog, stack));
  const run = await runProgram(stack, config, secretKeys, { programModule: join(root, "infra/program.ts") });
  declaration = {
    resources: run.resources.map(({ type, name, inputs, inputDeps, secretPaths, options }) => ({
      type,
      name,
      inputs,
      inputDeps,
      secretPaths,
      options: { protect: options.protect, retainOnDelete: options.retainOnDelete, deleteBeforeReplace: options.deleteBeforeReplace },
    })),
    secretValues: run.secretValues,
  };
}
writeFileSync(out, JSON.stringify(declaration), { mode: 0o600 });
