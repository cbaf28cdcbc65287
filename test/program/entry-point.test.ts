import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mockConfig } from "../../tools/mock-config.js";
import { runProgram } from "../../tools/mock-engine.js";
import { planFor } from "../../infra/model/catalog.js";
import { catalog } from "../../stacks/catalog.js";

describe("the Pulumi entry point (infra/index.ts), under mocks (no Pulumi CLI here)", () => {
  it("exports every output the program returns: rollback and ops read them with `pulumi stack output`", async () => {
    const stack = "staging";
    const { config, secretKeys } = mockConfig(planFor(catalog, stack));
    const result = await runProgram(stack, config, secretKeys);
    const source = readFileSync("infra/index.ts", "utf8");
    const exported = [...(source.match(/export const \{([^}]*)\}/)?.[1] ?? "").matchAll(/\b([A-Za-z]+)\b/g)].map((m) => m[1]);
    expect(exported.sort()).toEqual(Object.keys(result.outputs).sort());
  });
});
