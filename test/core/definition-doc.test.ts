import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { definitionDoc, fieldsOf } from "../../tools/definition-doc.js";
import { EnvironmentSchema } from "../../infra/model/schema.js";
import { REPO_ROOT } from "./helpers.js";

/** docs/definition.md is the schema's own account of itself, and says something of every field. */

const FIELDS = fieldsOf(EnvironmentSchema);

describe("docs/definition.md", () => {
  it("is what npm run generate writes from the schema today, byte for byte (run `npm run generate` and commit it)", () => {
    expect(readFileSync(join(REPO_ROOT, "docs/definition.md"), "utf8")).toBe(definitionDoc());
  });

  it("describes every field of the schema: what it is, in a sentence of its own", () => {
    const undescribed = FIELDS.filter((f) => f.description.trim().length < 20).map((f) => f.path);
    expect(undescribed).toEqual([]);
  });

  it("lists every field a definition may write, with the schema's own default", () => {
    const paths = FIELDS.map((f) => f.path);
    for (const path of ["name", "domain", "ports.backend", "host.adminCidrs", "backup.bucket.keepCount", "images.backend.context", "tls.email", "dataMove.from.volumes.redis"]) {
      expect(paths).toContain(path);
    }
    const parsed = EnvironmentSchema.parse({ name: "zz-doc", domain: "doc.example.com" });
    const field = (path: string) => FIELDS.find((f) => f.path === path);
    expect(field("host.bundle")?.default).toBe(`\`${JSON.stringify(parsed.host.bundle)}\``);
    expect(field("app.healthCheckIntervalSeconds")?.default).toBe(`\`${parsed.app.healthCheckIntervalSeconds}\``);
    expect(field("name")?.default).toBe("required");
    expect(field("containerPrefix")?.default).toBe("—");
    expect(field("host.diskWarningPercent")?.type).toBe("integer 50 to 99");
  });

  it("reads a description on any wrapper, and a union's kinds from its discriminator", () => {
    const schema = z.object({
      a: z.number().int().min(1).max(3).describe("inner wrapper holds this").optional(),
      b: z.discriminatedUnion("k", [z.object({ k: z.literal("x"), v: z.string().describe("only for x, long enough") })]).describe("a union, long enough"),
    });
    expect(fieldsOf(schema)).toEqual([
      { path: "a", type: "integer 1 to 3", default: "—", description: "inner wrapper holds this" },
      { path: "b", type: "object (by `k`)", default: "required", description: "a union, long enough" },
      { path: "b.k", type: 'one of `"x"`', default: "required", description: "Which kind of `b` this is; the fields below say which kind each belongs to." },
      { path: "b.v", type: "string", default: "required", description: "only for x, long enough", variant: 'k: "x"' },
    ]);
  });
});
