import { readFileSync, statSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { UsageError } from "./run.js";

/**
 * The largest definition file read. A real one is a few hundred bytes; the schema's own
 * bounds (at most 99 extra domains, 100 variables of 4096 characters, ...) keep a valid one
 * far below this, and a larger file is refused before it is parsed at all.
 */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

const kindOf = (value: unknown) => (Array.isArray(value) ? "a list" : `a ${typeof value}`);

/** Reads one environment definition from a JSON or YAML file; a problem with the file itself is named by the file. */
export function loadDefinitionFile(path: string): unknown {
  const extension = extname(path).toLowerCase();
  if (![".json", ".yaml", ".yml"].includes(extension)) throw new UsageError(`${path}: must end in .json, .yaml or .yml`);
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_DEFINITION_BYTES) {
      throw new UsageError(`${path}: is ${size} bytes; a definition file is at most ${MAX_DEFINITION_BYTES} bytes (1 MB)`);
    }
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? "unknown error"})`);
  }
  if (text.trim() === "") throw new UsageError(`${path}: the file is empty; it must hold one environment definition (at least name and domain)`);
  let definition: unknown;
  try {
    definition = extension === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(`${path}: is not valid ${extension.slice(1).toUpperCase()}: ${(error as Error).message.split("\n")[0]}`);
  }
  if (definition === null || definition === undefined) {
    throw new UsageError(`${path}: holds no definition (only comments or null); it must hold one environment definition (at least name and domain)`);
  }
  if (typeof definition !== "object" || Array.isArray(definition)) {
    throw new UsageError(`${path}: must hold one environment definition (a mapping with at least name and domain), not ${kindOf(definition)}`);
  }
  return definition;
}
