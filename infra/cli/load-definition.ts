import { readFileSync, statSync } from "node:fs";
import { extname } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parse as parseYaml, parseDocument, type Node } from "yaml";
import { InputError } from "./errors.js";

/**
 * The largest definition file read. A real one is a few hundred bytes; the schema's own
 * bounds (at most 99 extra domains, 100 variables of 4096 characters, ...) keep a valid one
 * far below this, and a larger file is refused before it is parsed at all.
 */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

export interface LoadedDefinition {
  definition: unknown;
  /** `<file>: <field>: <why>` lines about something the file says that a reader may take otherwise. */
  warnings: string[];
}

const kindOf = (value: unknown) => (Array.isArray(value) ? "a list" : `a ${typeof value}`);

/** A number written with a leading zero (`03005`): JSON forbids it, YAML 1.2 reads it as decimal, YAML 1.1 as octal. */
const LEADING_ZERO = /^[-+]?0\d+$/;

/** How YAML 1.1 tools read a number written with a leading zero. */
const yaml11Reading = (source: string) => (/^[-+]?0[0-7]+$/.test(source) ? `as octal ${parseInt(source, 8)}` : "as text");

interface Finding {
  path: string;
  message: string;
}

/**
 * What JSON.parse and YAML's parser would pass over in silence: a key given twice in one
 * mapping (JSON.parse keeps the last; YAML refuses it without naming the field) and numbers
 * written with a leading zero. Read from the file's syntax tree (YAML 1.2 reads every JSON
 * document), with the field's path and line.
 */
function scan(text: string): { duplicates: Finding[]; leadingZeros: (Finding & { source: string })[] } {
  const lines = new LineCounter();
  const document = parseDocument(text, { uniqueKeys: false, keepSourceTokens: true, lineCounter: lines });
  const duplicates: Finding[] = [];
  const leadingZeros: (Finding & { source: string })[] = [];
  if (document.errors.length > 0) return { duplicates, leadingZeros };
  const lineOf = (node: unknown) => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? lines.linePos(range[0]).line : undefined;
  };
  const walk = (node: Node | null | undefined, path: string[]) => {
    if (isMap(node)) {
      const seen = new Map<string, number | undefined>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const field = [...path, key].join(".");
        const line = lineOf(pair.key);
        if (seen.has(key)) duplicates.push({ path: field, message: `is given twice (lines ${seen.get(key)} and ${line}): keep one` });
        else seen.set(key, line);
        walk(pair.value as Node | null, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => walk(item as Node | null, [...path, String(index)]));
    } else if (isScalar(node) && node.type === "PLAIN") {
      const source = (node.srcToken as { source?: string } | undefined)?.source ?? "";
      if (LEADING_ZERO.test(source)) leadingZeros.push({ path: path.join("."), message: "", source });
    }
  };
  walk(document.contents as Node | null, []);
  return { duplicates, leadingZeros };
}

/**
 * Reads one environment definition from a JSON or YAML file; a problem with the file itself
 * is named by the file (and the field, when it is one). A key given twice is refused; a
 * number with a leading zero is refused in JSON and warned about in YAML.
 */
export function loadDefinitionFile(path: string): LoadedDefinition {
  const extension = extname(path).toLowerCase();
  if (![".json", ".yaml", ".yml"].includes(extension)) throw new InputError(`${path}: must end in .json, .yaml or .yml`);
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_DEFINITION_BYTES) {
      throw new InputError(`${path}: is ${size} bytes; a definition file is at most ${MAX_DEFINITION_BYTES} bytes (1 MB)`);
    }
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? "unknown error"})`);
  }
  if (text.trim() === "") throw new InputError(`${path}: the file is empty; it must hold one environment definition (at least name and domain)`);
  const json = extension === ".json";
  const { duplicates, leadingZeros } = scan(text);
  const [duplicate] = duplicates;
  if (duplicate) throw new InputError(`${path}: ${duplicate.path}: ${duplicate.message}`);
  const [zero] = leadingZeros;
  if (json && zero) {
    throw new InputError(`${path}: ${zero.path}: ${zero.source} has a leading zero, which JSON does not allow (YAML 1.1 tools read it ${yaml11Reading(zero.source)}): write ${Number(zero.source)}`);
  }
  let definition: unknown;
  try {
    definition = json ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new InputError(`${path}: is not valid ${extension.slice(1).toUpperCase()}: ${(error as Error).message.split("\n")[0]}`);
  }
  if (definition === null || definition === undefined) {
    throw new InputError(`${path}: holds no definition (only comments or null); it must hold one environment definition (at least name and domain)`);
  }
  if (typeof definition !== "object" || Array.isArray(definition)) {
    throw new InputError(`${path}: must hold one environment definition (a mapping with at least name and domain), not ${kindOf(definition)}`);
  }
  const warnings = leadingZeros.map(
    (z) => `${path}: ${z.path}: ${z.source} has a leading zero: read here as ${Number(z.source)}, but YAML 1.1 tools read it ${yaml11Reading(z.source)}; write ${Number(z.source)}`,
  );
  return { definition, warnings };
}
