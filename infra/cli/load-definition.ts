import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { UsageError } from "./run.js";

/** Reads one environment definition from a JSON or YAML file. */
export function loadDefinitionFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? "unknown error"})`);
  }
  const extension = extname(path).toLowerCase();
  try {
    if (extension === ".json") return JSON.parse(text);
    if (extension === ".yaml" || extension === ".yml") return parseYaml(text);
  } catch (error) {
    throw new UsageError(`${path}: is not valid ${extension.slice(1).toUpperCase()}: ${(error as Error).message.split("\n")[0]}`);
  }
  throw new UsageError(`${path}: must end in .json, .yaml or .yml`);
}
