import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { planFor } from "../../infra/model/catalog.js";
import { catalog } from "../../stacks/catalog.js";
import { runProgram } from "../../tools/mock-engine.js";
import { mockConfig, MOCK_ADOPTED_PASSWORD } from "../../tools/mock-config.js";
import { RELEASE_TOOL, RELEASED_SERVICES, releaseSpec } from "../../infra/render/release.js";
import { MOCK_HOST_KEY } from "../../tools/mock-engine.js";
import { renderResourceList } from "../../tools/resource-list.js";
import { COMMAND, CONTAINER, expectWellFormedStack, IMAGE, imageRefFor, releaseFor, secretLinesOf, secretValueOf } from "./expectations.js";

const run = (stack: string, override: Record<string, string> = {}) => {
  const { config, secretKeys } = mockConfig(planFor(catalog, stack));
  return runProgram(stack, { ...config, ...override }, secretKeys);
};

/**
 * One run per stack with its committed config, shared by the tests that only read what it
 * declared (none changes it); a test that compares two runs, or needs another day or config,
 * starts its own as well.
 */
const committedRuns = new Map<string, ReturnType<typeof run>>();
const committedRun = (stack: string) => committedRuns.get(stack) ?? committedRuns.set(stack, run(stack)).get(stack)!;

// Every stack in the catalog, clients included: a new client is covered without a hand edit.
describe.each(catalog.map((d) => d.name))("the program for %s under Pulumi mocks (no Pulumi CLI here)", (stack) => {
  const plan = planFor(catalog, stack);

  it("declares a well-formed stack: firewall, loopback ports, names, volumes, files, order, secrets", async () => {
    await expectWellFormedStack(plan, await committedRun(stack));
  });

  it("places the committed rendered Caddyfile into Caddy, and installs the committed release tool that places nginx.conf", async () => {
    const result = await committedRun(stack);
    const committed = (name: string) => readFileSync(`rendered/${stack}/${name}`, "utf8");
    const uploads = result.one(CONTAINER, "app-caddy").inputs.uploads as { file: string; content: string }[];
    expect(uploads).toEqual([{ file: "/etc/caddy/Caddyfile", content: committed("Caddyfile") }]);
    // Host setup (sent as the host-setup command's stdin) installs the tool; the tool writes nginx.conf into each frontend it starts.
    const setup = String(result.one(COMMAND, "host-setup").inputs.stdin);
    expect(setup).toBe(committed("host-setup.sh"));
    expect(setup).toContain(`put ${RELEASE_TOOL} 0755 <<'SH' || true\n${committed("release.sh")}SH\n`);
    expect(committed("release.sh")).toContain(`cat > "$f" <<'FILE_0'\n${committed("nginx.conf")}FILE_0\n    chmod 0644 "$f"\n    docker cp "$f" "$2:/etc/nginx/nginx.conf"\n`);
    // Each deploy sends the spec of the committed tool: a host with another tool refuses it.
    for (const service of RELEASED_SERVICES) {
      const spec = String(releaseFor(result, service).inputs.create).split(" ").at(-1);
      expect(committed("release.sh")).toContain(`\n  ${service})\n    name='${plan.containers[service].name}'\n`);
      expect(committed("release.sh").slice(committed("release.sh").indexOf(`\n  ${service})\n`))).toMatch(new RegExp(`^    spec=${spec}$`, "m"));
    }
  });

  it("releases the backend and the frontend through the release tool, each with its image, spec and secrets", async () => {
    const result = await committedRun(stack);
    expect(result.byType(CONTAINER).map((c) => c.name).sort()).toEqual(["app-caddy", "app-db", "app-redis"]);
    for (const service of RELEASED_SERVICES) {
      const release = releaseFor(result, service);
      const ref = imageRefFor(plan, result, service);
      expect(release.inputs.create).toBe(`sudo -n /usr/local/bin/timetracker-release deploy ${service} ${ref} ${releaseSpec(plan, service)}`);
      // The SSH key in the connection, and the secrets on stdin: nothing else.
      expect([...release.secretPaths].sort()).toEqual(["connection", "stdin"]);
      expect(release.options.dependsOn).toEqual(expect.arrayContaining(["host-setup", "app-network", `app-image-${service}`, "app-caddy"]));
      expect(release.options.deleteBeforeReplace).toBeFalsy();
    }
    const backend = releaseFor(result, "backend");
    expect(backend.inputs.stdin).toBe(
      [
        `DB_PASSWORD=${secretValueOf(plan, result, "dbPassword")}`,
        `REDIS_PASSWORD=${secretValueOf(plan, result, "redisPassword")}`,
        `SECRET_KEY=${secretValueOf(plan, result, "appSecretKey")}`,
        "",
      ].join("\n"),
    );
    expect(backend.inputs.stdin).toBe(secretLinesOf(plan, result, "backend"));
    // The same values the database and Redis get.
    expect(result.one(CONTAINER, "app-db").inputs.envs).toContain(`POSTGRES_PASSWORD=${secretValueOf(plan, result, "dbPassword")}`);
    expect(result.one(CONTAINER, "app-redis").inputs.envs).toContain(`REDIS_PASSWORD=${secretValueOf(plan, result, "redisPassword")}`);
    expect(backend.options.dependsOn).toEqual(expect.arrayContaining(["app-redis", "app-db-credentials", "app-predeploy-dump"]));
    expect(releaseFor(result, "frontend").inputs.stdin).toBe("");
    // The caddy container goes first: its routes name both slots before a release drains one.
    for (const service of RELEASED_SERVICES) expect(result.one(CONTAINER, "app-caddy").options.dependsOn).not.toContain(`app-release-${service}`);
  });

  it("stops the database, Redis and Caddy with a grace period when their containers go (the provider's default kills them); a release command's delete removes the tool's containers", async () => {
    const result = await committedRun(stack);
    const grace = Object.fromEntries(result.byType(CONTAINER).map((c) => [c.name, c.inputs.destroyGraceSeconds]));
    expect(grace).toEqual({ "app-db": 60, "app-redis": 30, "app-caddy": 30 });
    for (const service of RELEASED_SERVICES) {
      const c = plan.containers[service];
      const removal = String(releaseFor(result, service).inputs.delete);
      for (const name of [c.name, c.release?.previousName, c.release?.candidateName]) expect(removal).toContain(name);
      expect(removal).toContain(`docker stop -t ${c.stopGraceSeconds}`);
    }
  });

  it("names built images <repository>:<12 hex of the hash of every build input>, the ref the release command deploys", async () => {
    const result = await committedRun(stack);
    for (const service of RELEASED_SERVICES) {
      const image = plan.containers[service].image;
      const declared = result.one(IMAGE, `app-image-${service}`);
      if (image.source === "build") {
        expect(image.repository).toBe(plan.containers[service].name);
        expect(declared.inputs.name).toMatch(new RegExp(`^${image.repository}:[0-9a-f]{12}$`));
        expect(declared.inputs.name).toBe(`${image.repository}:${(declared.inputs.triggers as { buildHash: string }).buildHash.slice(0, 12)}`);
      }
      const [, , tool, verb, named, ref] = String(releaseFor(result, service).inputs.create).split(" ");
      expect([tool, verb, named, ref]).toEqual([RELEASE_TOOL, "deploy", service, declared.inputs.name]);
    }
  });

  it("dumps the database before the database image, the backend image or its release command changes", async () => {
    const result = await committedRun(stack);
    const dump = result.one(COMMAND, "app-predeploy-dump");
    expect(dump.inputs.create).toBe("sudo -n /usr/local/bin/timetracker-release dump predeploy");
    expect(dump.inputs.triggers).toEqual([plan.containers.db.image.source === "registry" ? plan.containers.db.image.ref : "", imageRefFor(plan, result, "backend"), "alembic upgrade head"]);
    expect(dump.options.dependsOn).toContain("host-setup");
    // The host holds the bucket's key first, so this dump is copied off the host too.
    expect(dump.options.dependsOn).toContain("backups-credentials");
    expect(result.one(CONTAINER, "app-db").options.dependsOn).toContain("app-predeploy-dump");
    expect(releaseFor(result, "backend").options.dependsOn).toContain("app-predeploy-dump");
  });

  it("outputs the SSH user, the pinned host key and the released images", async () => {
    const result = await committedRun(stack);
    expect(result.outputs.sshUser).toBe(plan.host.sshUser);
    expect(result.outputs.hostKey).toBe(MOCK_HOST_KEY);
    expect(result.outputs.releasedImages).toEqual({ backend: imageRefFor(plan, result, "backend"), frontend: imageRefFor(plan, result, "frontend") });
    const containers = result.outputs.containers as { service: string; name: string; published: string }[];
    expect(containers.find((c) => c.service === "backend")).toEqual({
      service: "backend",
      name: plan.containers.backend.name,
      published: plan.containers.backend.ports.map((p) => `127.0.0.1:${p.external}->${p.internal}`).join(", "),
    });
  });

  it("gives identical inputs for every resource on two runs, the second on another day", async () => {
    const first = await committedRun(stack);
    // Only Date is faked: the Pulumi runtime's own timers keep running.
    vi.useFakeTimers({ toFake: ["Date"], now: new Date("2031-07-04T23:59:59Z") });
    const second = await run(stack).finally(() => vi.useRealTimers());
    const shape = (r: typeof first) => r.resources.map((x) => ({ type: x.type, name: x.name, inputs: x.inputs })).sort((a, b) => `${a.type}${a.name}`.localeCompare(`${b.type}${b.name}`));
    expect(shape(second)).toEqual(shape(first));
    expect(first.resources.length).toBeGreaterThan(20);
  });

  it("matches the committed resource list (run `npm run resources` after a change)", async () => {
    const result = await committedRun(stack);
    const committed = readFileSync(`resources/${stack}.md`, "utf8");
    expect(renderResourceList(stack, result.resources, result.secretValues)).toBe(committed);
    for (const secret of result.secretValues) expect(committed).not.toContain(secret);
  });
});

describe("production specifics under Pulumi mocks", () => {
  it("adopts the database password from the stack secret; the instance is disposable, the disk and static IP protected", async () => {
    const result = await committedRun("prod");
    const db = result.one(CONTAINER, "app-db");
    expect(db.inputs.envs).toContain(`POSTGRES_PASSWORD=${MOCK_ADOPTED_PASSWORD}`);
    expect(db.secretPaths).toContain("envs");
    expect(result.byType("random:index/randomPassword:RandomPassword").map((r) => r.name).sort()).toEqual([
      "secrets-appSecretKey",
      "secrets-hostStatusToken",
      "secrets-redisPassword",
    ]);
    expect(result.one("aws:lightsail/instance:Instance", "host-instance").options.protect).toBeFalsy();
    expect(result.outputs.url).toBe("https://timetracker.shaemarcus.com");
    // No path of the machine that ran the deploy (a CI runner's temp folder) in an output.
    expect(result.outputs.sshCommand).toBe("ssh ubuntu@198.51.100.7");
    expect(JSON.stringify(result.outputs)).not.toContain("mock-ssh-key");
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
    await expect(runProgram("nosuch", config)).rejects.toThrow(`no environment is named "nosuch"; the catalog has: ${catalog.map((d) => d.name).join(", ")}`);
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
    const before = await committedRun("staging");
    const again = await run("staging");
    const keepers = (r: typeof before) => r.byType("random:index/randomPassword:RandomPassword").map((x) => [x.name, x.inputs.keepers]);
    expect(keepers(again)).toEqual(keepers(before));
    expect(keepers(before)).toContainEqual(["secrets-dbPassword", { rotation: "0" }]);
  });
});
