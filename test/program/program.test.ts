import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { planFor } from "../../infra/model/catalog.js";
import { catalog } from "../../stacks/catalog.js";
import { runProgram } from "../../tools/mock-engine.js";
import { mockConfig, MOCK_ADOPTED_PASSWORD } from "../../tools/mock-config.js";
import { renderResourceList } from "../../tools/resource-list.js";
import { CONTAINER, expectWellFormedStack } from "./expectations.js";

const run = (stack: string, override: Record<string, string> = {}) => {
  const { config, secretKeys } = mockConfig(planFor(catalog, stack));
  return runProgram(stack, { ...config, ...override }, secretKeys);
};

// Every stack in the catalog, clients included: a new client is covered without a hand edit.
describe.each(catalog.map((d) => d.name))("the program for %s under Pulumi mocks (no Pulumi CLI here)", (stack) => {
  const plan = planFor(catalog, stack);

  it("declares a well-formed stack: firewall, loopback ports, names, volumes, files, order, secrets", async () => {
    await expectWellFormedStack(plan, await run(stack));
  });

  it("places the committed rendered Caddyfile and nginx.conf into their containers", async () => {
    const result = await run(stack);
    const content = (service: string) => (result.one(CONTAINER, `app-${service}`).inputs.uploads as { content: string }[])[0]?.content;
    expect(content("caddy")).toBe(readFileSync(`rendered/${stack}/Caddyfile`, "utf8"));
    expect(content("frontend")).toBe(readFileSync(`rendered/${stack}/nginx.conf`, "utf8"));
  });

  it("gives identical inputs for every resource on two runs", async () => {
    const first = await run(stack);
    const second = await run(stack);
    const shape = (r: typeof first) => r.resources.map((x) => ({ type: x.type, name: x.name, inputs: x.inputs })).sort((a, b) => `${a.type}${a.name}`.localeCompare(`${b.type}${b.name}`));
    expect(shape(second)).toEqual(shape(first));
    expect(first.resources.length).toBeGreaterThan(20);
  });

  it("matches the committed resource list (run `npm run resources` after a change)", async () => {
    const result = await run(stack);
    const committed = readFileSync(`resources/${stack}.md`, "utf8");
    expect(renderResourceList(stack, result.resources, result.secretValues)).toBe(committed);
    for (const secret of result.secretValues) expect(committed).not.toContain(secret);
  });
});

describe("production specifics under Pulumi mocks", () => {
  it("adopts the database password from the stack secret; the instance is disposable, the disk and static IP protected", async () => {
    const result = await run("prod");
    const db = result.one(CONTAINER, "app-db");
    expect(db.inputs.envs).toContain(`POSTGRES_PASSWORD=${MOCK_ADOPTED_PASSWORD}`);
    expect(db.secretPaths).toContain("envs");
    expect(result.byType("random:index/randomPassword:RandomPassword").map((r) => r.name).sort()).toEqual([
      "secrets-appSecretKey",
      "secrets-redisPassword",
    ]);
    expect(result.one("aws:lightsail/instance:Instance", "host-instance").options.protect).toBeFalsy();
    expect(result.outputs.url).toBe("https://timetracker.shaemarcus.com");
    expect(result.outputs.sshCommand).toBe("ssh -i tools/fixtures/mock-ssh-key ubuntu@198.51.100.7");
  });

  it("fails with the config command to run when the adopted secret is missing", async () => {
    const { config } = mockConfig(planFor(catalog, "prod"));
    delete config["timetracker:adoptedDbPassword"];
    await expect(runProgram("prod", config, [])).rejects.toThrow(/adoptedDbPassword/);
  });
});

describe("stack selection and config checks under Pulumi mocks", () => {
  it("refuses an unknown stack and lists the known ones", async () => {
    const { config } = mockConfig(planFor(catalog, "staging"));
    await expect(runProgram("nosuch", config)).rejects.toThrow(/no environment is named "nosuch"; the catalog has: prod, staging/);
  });

  it("refuses a region that disagrees with the typed source", async () => {
    await expect(run("staging", { "aws:region": "eu-west-1" })).rejects.toThrow(
      /aws:region is eu-west-1 in Pulumi.staging.yaml, but stacks\/staging.ts puts the host in us-east-1/,
    );
  });

  it("names the missing app source instead of failing inside Docker", async () => {
    await expect(run("staging", { "timetracker:appSource": "/nonexistent/app" })).rejects.toThrow(
      /images.backend: app source folder \/nonexistent\/app\/backend does not exist/,
    );
  });

  it("rotates a secret only through its counter", async () => {
    const before = await run("staging");
    const again = await run("staging");
    const keepers = (r: typeof before) => r.byType("random:index/randomPassword:RandomPassword").map((x) => [x.name, x.inputs.keepers]);
    expect(keepers(again)).toEqual(keepers(before));
    expect(keepers(before)).toContainEqual(["secrets-dbPassword", { rotation: "0" }]);
  });
});
