import { describe, expect, it, vi } from "vitest";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";

/**
 * Off-host copies: every stack gets a Lightsail bucket (protected, kept on delete), an access
 * key, the instance's access grant, and a step that hands the key to the host on stdin.
 */

// A client that names its bucket and keeps a count of copies.
const named = {
  name: "zz-test-named-bucket",
  domain: "timetracker.zz-named.test.example",
  backup: { bucket: { name: "zz-named-timetracker-dumps", bundle: "medium_1_0", keepCount: 45 } },
} satisfies EnvironmentDefinition;

vi.mock("../../stacks/catalog.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../stacks/catalog.js")>();
  return { catalog: [...original.catalog, named] };
});

const { planFor, validateCatalog } = await import("../../infra/model/catalog.js");
const { formatProblem } = await import("../../infra/model/problems.js");
const { renderBucketCredentials } = await import("../../infra/render/bucket-credentials.js");
const { BACKUP_TOOL } = await import("../../infra/render/backup.js");
const { renderAll } = await import("../../infra/render/index.js");
const { catalog } = await import("../../stacks/catalog.js");
const { runProgram } = await import("../../tools/mock-engine.js");
const { mockConfig } = await import("../../tools/mock-config.js");

const BUCKET = "aws:lightsail/bucket:Bucket";
const KEY = "aws:lightsail/bucketAccessKey:BucketAccessKey";
const ACCESS = "aws:lightsail/bucketResourceAccess:BucketResourceAccess";
const SUFFIX = "random:index/randomString:RandomString";
const COMMAND = "command:remote:Command";

const runs = new Map<string, ReturnType<typeof runProgram>>();
const run = (stack: string) => {
  if (!runs.has(stack)) {
    const { config, secretKeys } = mockConfig(planFor(catalog, stack));
    runs.set(stack, runProgram(stack, config, secretKeys));
  }
  return runs.get(stack)!;
};

describe.each(catalog.map((d) => d.name))("the off-host copies of stack %s under Pulumi mocks (no Pulumi CLI here)", (stack) => {
  const plan = planFor(catalog, stack);

  it("creates a bucket that is protected and kept if the stack is destroyed", async () => {
    const bucket = (await run(stack)).one(BUCKET, "backups-bucket");
    expect(bucket.options).toMatchObject({ protect: true, retainOnDelete: true });
    expect(bucket.inputs.bundleId).toBe(plan.backup.bucket.bundle);
    expect(bucket.inputs.tags).toEqual({ project: "timetracker", stack });
    const name = String(bucket.inputs.name);
    expect(name).toMatch(/^[a-z0-9][a-z0-9-]{1,52}[a-z0-9]$/);
    if (plan.backup.bucket.name) expect(name).toBe(plan.backup.bucket.name);
    else expect(name.startsWith(String(plan.backup.bucket.namePrefix))).toBe(true);
  });

  it("names a bucket the definition does not name once, with random characters kept in state", async () => {
    const suffixes = (await run(stack)).byType(SUFFIX);
    if (plan.backup.bucket.name) {
      expect(suffixes).toEqual([]);
      return;
    }
    expect(suffixes.map((s) => s.inputs)).toEqual([{ length: 8, special: false, upper: false }]);
    // Nothing from the definition reaches it: no edit of the stack can rename (replace) the bucket.
    expect(suffixes[0]?.inputDeps).toEqual({});
    expect((await run(stack)).one(BUCKET, "backups-bucket").inputDeps.name).toEqual(["backups-bucket-suffix"]);
  });

  it("grants the instance access and makes a key for the bucket", async () => {
    const result = await run(stack);
    const key = result.one(KEY, "backups-bucket-key");
    expect(key.inputDeps).toEqual({ bucketName: ["backups-bucket"] });
    const access = result.one(ACCESS, "backups-bucket-access");
    expect(access.inputs.resourceName).toBe(plan.host.name);
    // A replaced instance replaces the grant: its resourceName comes from the instance.
    expect(access.inputDeps).toEqual({ bucketName: ["backups-bucket"], resourceName: ["host-instance"] });
  });

  it("hands the key to the host's backup tool on stdin only, after host setup, again on a new instance", async () => {
    const result = await run(stack);
    const credentials = result.one(COMMAND, "backups-credentials");
    expect(credentials.inputs.create).toBe(`sudo -n ${BACKUP_TOOL} set-credentials`);
    expect(credentials.secretPaths.sort()).toEqual(["connection", "stdin"]);
    const key = result.one(KEY, "backups-bucket-key");
    const bucketName = String(result.one(BUCKET, "backups-bucket").inputs.name);
    expect(credentials.inputs.stdin).toBe(
      renderBucketCredentials(plan.backup.bucket, {
        bucketName,
        accessKeyId: String(key.state?.accessKeyId),
        secretAccessKey: String(key.state?.secretAccessKey),
      }),
    );
    expect(String(credentials.inputs.create)).not.toContain(String(key.state?.secretAccessKey));
    expect(credentials.inputDeps.triggers).toEqual(["host-instance"]);
    expect(credentials.options.dependsOn).toEqual(expect.arrayContaining(["host-setup", "backups-bucket-access"]));
  });

  it("exports the bucket's name, and the key in no output or rendered file", async () => {
    const result = await run(stack);
    // What the user writes back into the definition to keep the bucket: the name the definition
    // gives, or the prefix followed by every one of the random characters the mock chose.
    const random = result.byType(SUFFIX).map((s) => String(s.state?.result));
    expect(random.every((r) => r.length === 8)).toBe(true);
    expect(result.outputs.backupBucket).toBe(plan.backup.bucket.name ?? `${plan.backup.bucket.namePrefix}${random[0]}`);
    const secret = String(result.one(KEY, "backups-bucket-key").state?.secretAccessKey);
    expect(result.secretValues).toContain(secret);
    expect(JSON.stringify(result.outputs)).not.toContain(secret);
    expect(Object.values(renderAll(plan)).join("\n")).not.toContain(secret);
  });
});

describe("the bucket's definition fields", () => {
  it("takes a name, a bundle and a count, as the named client does", () => {
    const plan = planFor(catalog, named.name);
    expect(plan.backup.bucket).toMatchObject({ name: "zz-named-timetracker-dumps", bundle: "medium_1_0", keep: { count: 45 } });
    expect(plan.backup.bucket.namePrefix).toBeUndefined();
  });

  it("defaults to 30 days in small_1_0, with a prefix that leaves room for the random characters", () => {
    const longName = "a".repeat(31) + "z";
    const plan = planFor([...catalog, { name: longName, domain: "timetracker.zz-long.test.example" }], longName);
    expect(plan.backup.bucket).toMatchObject({ bundle: "small_1_0", keep: { days: 30 } });
    expect(String(plan.backup.bucket.namePrefix).length + 8).toBeLessThanOrEqual(54);
  });

  const refused = (backup: unknown) => {
    const result = validateCatalog([...catalog, { name: "zz-bad", domain: "zz.example.com", backup }]);
    if (result.ok) throw new Error("accepted");
    return result.problems.map(formatProblem).join("\n");
  };

  it.each([
    [{ bucket: { keepDays: 30, keepCount: 10 } }, /backup\.bucket\.keepCount.*keepDays or keepCount, not both/],
    [{ bucket: { keepDays: 0 } }, /backup\.bucket\.keepDays/],
    [{ bucket: { keepDays: 3651 } }, /backup\.bucket\.keepDays/],
    [{ bucket: { keepCount: 0 } }, /backup\.bucket\.keepCount/],
    [{ bucket: { keepCount: 10001 } }, /backup\.bucket\.keepCount/],
    [{ bucket: { name: "Has_Upper" } }, /backup\.bucket\.name.*3-54 characters/],
    [{ bucket: { bundle: "huge_1_0" } }, /backup\.bucket\.bundle/],
    [{ bucket: { region: "us-east-1" } }, /backup\.bucket/],
  ])("refuses %j with a message naming the field", (backup, message) => {
    expect(refused(backup)).toMatch(message);
  });
});

describe("rclone's configuration for the host (renderBucketCredentials)", () => {
  const bucket = planFor(catalog, "prod").backup.bucket;
  const access = { bucketName: "timetracker-prod-backups-abc12345", accessKeyId: "AKIAEXAMPLE", secretAccessKey: "s3cr3t/with+chars" };

  it("reaches Lightsail's bucket as AWS S3 in the stack's region, under the dumps' prefix", () => {
    const text = renderBucketCredentials(bucket, access);
    expect(text).toContain("provider = AWS\n");
    expect(text).toContain(`endpoint = https://s3.${bucket.region}.amazonaws.com\n`);
    expect(text).toContain(`[${bucket.remote}]\ntype = alias\nremote = ${bucket.remote}-s3:timetracker-prod-backups-abc12345/dumps/\n`);
    expect(text).toContain("secret_access_key = s3cr3t/with+chars\n");
    expect(text).not.toContain("force_path_style");
  });

  it("takes another S3-compatible endpoint with path-style names (the rehearsal's stand-in)", () => {
    const text = renderBucketCredentials(bucket, { ...access, endpoint: "http://172.17.0.1:4560" });
    expect(text).toContain("provider = Other\n");
    expect(text).toContain("endpoint = http://172.17.0.1:4560\n");
    expect(text).toContain("force_path_style = true\n");
  });
});
