import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderAll } from "../../infra/render/index.js";
import { plansOf, REPO_ROOT } from "./helpers.js";

const RENDERED = join(REPO_ROOT, "rendered");
const HINT = "rendered/ is stale: run `npm run render -- --all` and commit the result";

describe("rendered/ matches the catalog byte for byte", () => {
  const plans = plansOf();

  it.each(plans.map((p) => [p.stack, p] as const))("rendered/%s/ holds exactly the files renderAll produces", (stack, plan) => {
    const dir = join(RENDERED, stack);
    expect(existsSync(dir), `${dir} is missing: ${HINT}`).toBe(true);
    const expected = renderAll(plan);
    expect(readdirSync(dir).sort(), `${dir}: ${HINT}`).toEqual(Object.keys(expected).sort());
    const stale = Object.entries(expected)
      .filter(([name, content]) => !existsSync(join(dir, name)) || readFileSync(join(dir, name), "utf8") !== content)
      .map(([name]) => `rendered/${stack}/${name}`);
    expect(stale, `these files differ from what the catalog renders; ${HINT}`).toEqual([]);
  });

  it("rendered/ holds no stack that the catalog lacks", () => {
    const known = plans.map((p) => p.stack).sort();
    const present = readdirSync(RENDERED, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(present, `rendered/ should hold only ${known.join(", ")}; delete the others, then ${HINT}`).toEqual(known);
  });
});
