import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bucketLockProblems, deployedBucket } from "../../infra/model/bucket-lock.js";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { planOf, problemAt } from "./helpers.js";

/** The bucket lock: a deployed stack's bucket keeps its name and region (see infra/model/bucket-lock.ts). */

const committed = readFileSync("rendered/prod/plan.json", "utf8");
const prodWith = (edit: (d: EnvironmentDefinition) => EnvironmentDefinition) =>
  planOf("prod", catalog.map((d) => (d.name === "prod" ? edit(structuredClone(d)) : d)));
const withBucketName = (name: string) => (d: EnvironmentDefinition) => ({ ...d, backup: { ...d.backup, bucket: { ...d.backup?.bucket, name } } });

describe("deployedBucket", () => {
  it("reads prod's bucket from its committed plan.json: a generated name, in its region", () => {
    expect(deployedBucket(committed)).toEqual({ namePrefix: "timetracker-prod-backups-", region: "us-east-1" });
  });

  it("reads only the region from a plan committed before buckets existed, and nothing from text that is no plan", () => {
    const plan = JSON.parse(committed);
    delete plan.backup.bucket;
    expect(deployedBucket(JSON.stringify(plan))).toEqual({ region: "us-east-1" });
    expect(deployedBucket("{ nope")).toBeUndefined();
  });
});

describe("bucketLockProblems", () => {
  const deployed = deployedBucket(committed);

  it("accepts the deployed bucket, and edits that keep it (retention, bundle)", () => {
    expect(bucketLockProblems("prod", deployed, planOf("prod").backup.bucket)).toEqual([]);
    const edited = prodWith((d) => ({ ...d, backup: { ...d.backup, bucket: { bundle: "medium_1_0", keepCount: 20 } } }));
    expect(bucketLockProblems("prod", deployed, edited.backup.bucket)).toEqual([]);
  });

  it("refuses a written name on a stack whose bucket was named by the program, at backup.bucket.name", () => {
    const problems = bucketLockProblems("prod", deployed, prodWith(withBucketName("tt-prod-dumps")).backup.bucket);
    expect(problems).toEqual([problemAt("prod.backup.bucket.name", 'gives the bucket the name "tt-prod-dumps", but the deployed stack\'s bucket is named by the program')]);
    expect(problems[0]!.message).toContain("cannot be renamed");
    expect(problems[0]!.message).toContain("Keep the name left out");
  });

  it("accepts the generated name written out (a stack brought back over its kept bucket), but no other under its prefix", () => {
    expect(bucketLockProblems("prod", deployed, prodWith(withBucketName("timetracker-prod-backups-0rwfnrz1")).backup.bucket)).toEqual([]);
    for (const name of ["timetracker-prod-backups-0rwfnrz1x", "timetracker-prod-backups-archive", "timetracker-staging-backups-0rwfnrz1"]) {
      expect(bucketLockProblems("prod", deployed, prodWith(withBucketName(name)).backup.bucket), name).toHaveLength(1);
    }
  });

  it("refuses a new written name and a name taken out, naming the deployed one", () => {
    const named = { name: "tt-prod-dumps", region: "us-east-1" };
    expect(bucketLockProblems("prod", named, prodWith(withBucketName("tt-prod-copies")).backup.bucket)).toEqual([
      problemAt("prod.backup.bucket.name", 'Keep name: "tt-prod-dumps"'),
    ]);
    expect(bucketLockProblems("prod", named, planOf("prod").backup.bucket)).toEqual([problemAt("prod.backup.bucket.name", 'is "tt-prod-dumps"')]);
  });

  it("refuses another region, at host.region, naming the data disk and the bucket", () => {
    const elsewhere = { ...planOf("prod").backup.bucket, region: "eu-west-1" };
    const problems = bucketLockProblems("prod", deployed, elsewhere);
    expect(problems).toEqual([problemAt("prod.host.region", 'is "eu-west-1", but the deployed stack is in "us-east-1"')]);
    expect(problems[0]!.message).toContain("neither its data disk nor its bucket moves");
  });

  it("a stack deployed before buckets: any bucket name is its first, the region is still locked", () => {
    const beforeBuckets = { region: "us-east-1" };
    expect(bucketLockProblems("prod", beforeBuckets, prodWith(withBucketName("tt-prod-dumps")).backup.bucket)).toEqual([]);
    expect(bucketLockProblems("prod", beforeBuckets, { ...planOf("prod").backup.bucket, region: "eu-west-1" })).toEqual([problemAt("prod.host.region")]);
  });

  it("does not lock a stack that was never deployed", () => {
    expect(bucketLockProblems("prod", undefined, prodWith(withBucketName("tt-prod-dumps")).backup.bucket)).toEqual([]);
  });
});
