import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HOST_KEYS_WAIT, lightsailHostKeys } from "../../infra/components/lightsail-host-keys.js";
import type { ReportedHostKey } from "../../infra/components/known-hosts.js";
import { planFor } from "../../infra/model/catalog.js";
import { catalog } from "../../stacks/catalog.js";
import { mockConfig } from "../../tools/mock-config.js";
import { computed, MOCK_HOST_KEY, runProgram, type DeclaredResource } from "../../tools/mock-engine.js";
import { startLightsailApi } from "../../tools/rehearsal/lightsail-api.js";

/**
 * The program checks the first contact's host key against the keys Lightsail reports (AWS SDK,
 * GetInstanceAccessDetails) before anything but the ready check goes to the host. The SDK talks
 * HTTP to the rehearsal's stand-in of the Lightsail API; the engine is Pulumi's mocks (no
 * Pulumi CLI or AWS here).
 */
const plan = planFor(catalog, "staging");
const [algorithm, material] = MOCK_HOST_KEY.split(" ");
const another = "AAAAC3NzaC1lZDI1NTE5AAAAIAnotherHostKeyForTheTestXXXXXXXXXXXXXXXXXXXX";

let reported: (ReportedHostKey[] | undefined)[] = [];
const asked: string[] = [];
let api: Awaited<ReturnType<typeof startLightsailApi>>;
beforeAll(async () => {
  api = await startLightsailApi(async (instanceName) => {
    asked.push(instanceName);
    return reported.length > 1 ? reported.shift() : reported[0];
  });
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_LIGHTSAIL: api.url,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_EC2_METADATA_DISABLED: "true",
  });
});
afterAll(() => api.close());
beforeEach(() => {
  asked.length = 0;
});

async function up(preview: boolean) {
  const { config, secretKeys } = mockConfig(plan);
  const declared: string[] = [];
  const respond = async (resource: DeclaredResource) => {
    declared.push(resource.name);
    return computed(resource.type, resource.name, resource.inputs);
  };
  try {
    const run = await runProgram("staging", config, secretKeys, { preview, respond });
    return { outputs: run.outputs, declared };
  } catch (error) {
    return { error: (error as Error).message, declared };
  }
}

describe("the host key is pinned only when Lightsail reports it (stand-in Lightsail API, Pulumi mocks)", () => {
  it("a preview asks nothing: the call hands out a temporary login key a read-only role must not get", async () => {
    reported = [[{ algorithm, publicKey: another }]];
    const r = await up(true);
    expect(r.error).toBeUndefined();
    expect(asked).toEqual([]);
  });

  it("an up pins the key Lightsail reports for the instance", async () => {
    reported = [[{ algorithm, publicKey: material }]];
    const r = await up(false);
    expect(r.error).toBeUndefined();
    expect(r.outputs?.hostKey).toBe(MOCK_HOST_KEY);
    expect(asked).toEqual([plan.host.name]);
    expect(r.declared).toContain("host-setup");
  });

  it("an up whose first contact saw another key stops before the host setup, the app or the Docker provider", async () => {
    reported = [[{ algorithm, publicKey: another }]];
    const r = await up(false);
    expect(r.error).toMatch(new RegExp(`^host key verification failed for ${plan.host.name}: the first SSH contact was answered with SHA256:`));
    expect(r.declared).toContain("host-ready");
    expect(r.declared.filter((name) => name === "host-setup" || name === "host-docker" || name.startsWith("app-"))).toEqual([]);
  });

  it("the SDK waits while Lightsail lists no key yet (a new instance), then returns what it lists", async () => {
    reported = [[], [], [{ algorithm, publicKey: material }]];
    await expect(lightsailHostKeys(plan.host.region, plan.host.name, { ...HOST_KEYS_WAIT, intervalMs: 10 })).resolves.toEqual([{ algorithm, publicKey: material, fingerprintSHA256: undefined }]);
    expect(asked).toHaveLength(3);
  });

  it("an instance Lightsail does not know is an error naming it", async () => {
    reported = [undefined];
    await expect(lightsailHostKeys(plan.host.region, "no-such-instance", { attempts: 1, intervalMs: 10 })).rejects.toThrow(
      /could not read the host keys Lightsail reports for no-such-instance \(GetInstanceAccessDetails\): The Instance does not exist: no-such-instance/,
    );
  });
});
