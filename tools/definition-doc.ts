import { z } from "zod";
import { EnvironmentSchema } from "../infra/model/schema.js";

/**
 * docs/definition.md, the reference of a stack's definition, written from the schema itself:
 * each field's description (`.describe()` in infra/model/schema.ts), and what zod knows for
 * certain (its type, bounds, choices and default), so the reference cannot drift from what
 * `validate` accepts.
 */

export interface FieldDoc {
  /** Dotted path, as problems name it: `host.adminCidrs`. */
  path: string;
  type: string;
  /** `required`, `—` (optional, no default) or the default as the definition would write it. */
  default: string;
  description: string;
  /** For a field of one variant of a union: the variant, e.g. `source: "build"`. */
  variant?: string;
}

type Def = { type: string; [key: string]: unknown };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** A field's schema under its wrappers, with what the wrappers say: description, default, optional. */
function peel(schema: z.ZodType): { core: z.ZodType; description?: string; default?: unknown; hasDefault: boolean; optional: boolean } {
  let at = schema;
  let description: string | undefined;
  let value: unknown;
  let hasDefault = false;
  let optional = false;
  for (;;) {
    description ??= at.description;
    const def = defOf(at);
    if (def.type === "default" || def.type === "prefault") {
      if (!hasDefault) value = def.defaultValue;
      hasDefault = true;
      at = def.innerType as z.ZodType;
    } else if (def.type === "optional") {
      optional = true;
      at = def.innerType as z.ZodType;
    } else if (def.type === "pipe" && defOf(def.in as z.ZodType).type === "transform") {
      // z.preprocess: the schema that reads the value is the pipe's output.
      at = def.out as z.ZodType;
    } else {
      return { core: at, description, default: value, hasDefault, optional };
    }
  }
}

const code = (text: string) => `\`${text}\``;

/** A short type: `string`, `integer 2..300`, `one of "a", "b"`, `list of string`. */
function typeOf(schema: z.ZodType): string {
  const { core } = peel(schema);
  const def = defOf(core);
  switch (def.type) {
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    case "number": {
      const number = core as z.ZodNumber;
      const integer = number.isInt ? "integer" : "number";
      const low = number.minValue !== null && Number.isFinite(number.minValue) && Math.abs(number.minValue) < Number.MAX_SAFE_INTEGER ? number.minValue : undefined;
      const high = number.maxValue !== null && Number.isFinite(number.maxValue) && Math.abs(number.maxValue) < Number.MAX_SAFE_INTEGER ? number.maxValue : undefined;
      if (low !== undefined && high !== undefined) return `${integer} ${low} to ${high}`;
      if (low !== undefined) return `${integer} ≥ ${low}`;
      return integer;
    }
    case "enum":
      return `one of ${(core as z.ZodEnum).options.map((o) => code(JSON.stringify(o))).join(", ")}`;
    case "literal":
      return code(JSON.stringify((def.values as unknown[])[0]));
    case "array":
      return `list of ${typeOf(def.element as z.ZodType)}`;
    case "record":
      return `map of ${typeOf(def.keyType as z.ZodType)} to ${typeOf(def.valueType as z.ZodType)}`;
    case "object":
      return "object";
    case "union":
      return `object (by ${code(String(def.discriminator))})`;
    default:
      return def.type;
  }
}

/** The default as a definition would write it; an object default of `{}` is its fields' defaults. */
function defaultOf(schema: z.ZodType): string {
  const field = peel(schema);
  if (field.hasDefault) {
    const value = field.default;
    if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0) {
      return defOf(field.core).type === "object" ? "its fields' defaults" : "`{}`";
    }
    return code(JSON.stringify(value));
  }
  return field.optional ? "—" : "required";
}

/** Every field under `schema` (which sits at `path`), the objects themselves included, in the schema's order. */
export function fieldsOf(schema: z.ZodType, path = "", variant?: string): FieldDoc[] {
  const field = peel(schema);
  const def = defOf(field.core);
  const own: FieldDoc[] = path
    ? [{ path, type: typeOf(schema), default: defaultOf(schema), description: field.description ?? "", ...(variant ? { variant } : {}) }]
    : [];
  const under = (key: string) => (path ? `${path}.${key}` : key);
  if (def.type === "object") {
    const shape = (field.core as z.ZodObject).shape as Record<string, z.ZodType>;
    return [...own, ...Object.entries(shape).flatMap(([key, value]) => fieldsOf(value, under(key), variant))];
  }
  if (def.type === "union" && typeof def.discriminator === "string") {
    const key = def.discriminator;
    const options = (def.options as z.ZodObject[]).map((option) => ({ option, value: defOf((option.shape as Record<string, z.ZodType>)[key] as z.ZodType).values as unknown[] }));
    const values = options.map((o) => JSON.stringify(o.value[0]));
    const tag: FieldDoc = { path: under(key), type: `one of ${values.map(code).join(", ")}`, default: "required", description: `Which kind of ${code(path)} this is; the fields below say which kind each belongs to.` };
    return [
      ...own,
      tag,
      ...options.flatMap(({ option, value }) =>
        Object.entries(option.shape as Record<string, z.ZodType>)
          .filter(([name]) => name !== key)
          .flatMap(([name, child]) => fieldsOf(child, under(name), `${key}: ${JSON.stringify(value[0])}`)),
      ),
    ];
  }
  return own;
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n+/g, " ");

function table(fields: readonly FieldDoc[]): string[] {
  return [
    "| field | type | default | what it is |",
    "| --- | --- | --- | --- |",
    ...fields.map((f) => `| ${code(f.path)}${f.variant ? ` (${cell(code(f.variant))})` : ""} | ${cell(f.type)} | ${cell(f.default)} | ${cell(f.description)} |`),
  ];
}

/** Whether a section may be left out, and what it is then. */
function presence(field: FieldDoc): string {
  if (field.default === "required") return "Required.";
  if (field.default === "—") return "Optional.";
  if (field.default === "its fields' defaults") return "Left out, each field takes its default.";
  return `Default: ${field.default}.`;
}

/** The whole of docs/definition.md. */
export function definitionDoc(): string {
  const fields = fieldsOf(EnvironmentSchema);
  const topLevel = Object.keys(EnvironmentSchema.shape);
  const groups = topLevel.map((key) => ({ key, fields: fields.filter((f) => f.path === key || f.path.startsWith(`${key}.`)) }));
  const sections = groups.filter((g) => g.fields.length > 1);
  const plain = groups.filter((g) => g.fields.length === 1).flatMap((g) => g.fields);
  return [
    "# The definition of a stack",
    "",
    "<!-- Generated by `npm run generate` (tools/definition.ts) from infra/model/schema.ts. Do not edit: change a field's `.describe()` there. -->",
    "",
    "A stack is one object in `stacks/` (`stacks/prod.ts`, `stacks/staging.ts`, a client's",
    "`stacks/clients/<name>.ts`), or a JSON or YAML file of the same shape for",
    "`npm run validate -- --file`. Only `name` and `domain` are required; every other field has",
    "the default below. `npm run validate` checks the whole catalog against these rules, and",
    "`rendered/<name>/plan.json` shows a stack with every default filled in.",
    "",
    "Fields: " + [["top-level", "#top-level-fields"], ...sections.map((s) => [s.key, `#${s.key.toLowerCase()}`])].map(([label, anchor]) => `[${label}](${anchor})`).join(", ") + ".",
    "",
    "## Top-level fields",
    "",
    ...table(plain),
    "",
    ...sections.flatMap((section) => {
      const [head, ...rest] = section.fields as [FieldDoc, ...FieldDoc[]];
      return [`## ${section.key}`, "", head.description, "", `Type: ${head.type}. ${presence(head)}`, "", ...table(rest), ""];
    }),
  ].join("\n");
}
