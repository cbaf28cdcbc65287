import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";
import { catalog } from "../../stacks/catalog.js";
import { ACTIONS, NO_AWS_CALLS } from "../../tools/iam/actions.js";
import { declaredResources, generateIam, repository } from "../../tools/iam/generate.js";
import {
  deployPolicy,
  githubEnvironment,
  IamError,
  previewPolicy,
  repositoryOf,
  type Declared,
  type PolicyDocument,
  type StackResources,
  type Statement,
} from "../../tools/iam/policies.js";

/**
 * iam/: the AWS roles of the GitHub workflows as files, generated from the catalog and the
 * resources the program declares (under Pulumi mocks: no AWS account here). The files are
 * checked for IAM's shape, for the exact OIDC subject of each environment, and for least
 * privilege; the action table must cover every resource type the program can declare.
 */

const REPO = join(import.meta.dirname, "..", "..");
const IAM = join(REPO, "iam");

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [relative(IAM, join(dir, entry.name))],
  );
}
const readJson = (path: string) => JSON.parse(readFileSync(join(IAM, path), "utf8")) as PolicyDocument;

/** Stacks beyond the shipped catalog, so that every optional resource type is declared: DNS in Lightsail or Route 53, the site-down alert. */
const VARIANTS = [
  { name: "zz-test-iam-route53", domain: "timetracker.zz-iam-route53.test.example", host: { dns: "route53" }, alerts: { email: "ops@zz-iam.test.example" } },
  { name: "zz-test-iam-lightsail", domain: "timetracker.zz-iam-lightsail.test.example", host: { dns: "lightsail" } },
] satisfies EnvironmentDefinition[];

/** IAM's condition operators this package may use (IAM JSON policy reference: Condition operators). */
const OPERATORS = /^(ForAllValues:|ForAnyValue:)?(StringEquals|StringLike|StringNotEquals|ArnLike|ArnEquals|Bool|Null)(IfExists)?$/;
/** An action names one API call: service prefix, colon, the call. No wildcard anywhere. */
const ACTION = /^[a-z0-9-]+:[A-Za-z0-9]+$/;
/** IAM's limit for a managed policy, whitespace not counted (IAM and AWS STS quotas). */
const MANAGED_POLICY_LIMIT = 6144;

/** Every way a document breaks IAM's policy grammar or this package's rules, as sentences. */
function shapeProblems(path: string, document: unknown): string[] {
  const problems: string[] = [];
  const doc = document as Partial<PolicyDocument> & Record<string, unknown>;
  if (doc.Version !== "2012-10-17") problems.push(`${path}: Version is not "2012-10-17"`);
  const extraKeys = Object.keys(doc).filter((key) => key !== "Version" && key !== "Statement");
  if (extraKeys.length > 0) problems.push(`${path}: unknown top-level ${extraKeys.join(", ")}`);
  if (!Array.isArray(doc.Statement) || doc.Statement.length === 0) return [...problems, `${path}: Statement is not a non-empty array`];
  const trust = path.endsWith("trust.json");
  const sids = new Set<string>();
  for (const [index, statement] of (doc.Statement as Statement[]).entries()) {
    const at = `${path} statement ${index + 1}`;
    const keys = Object.keys(statement).filter((key) => !["Sid", "Effect", "Principal", "Action", "Resource", "Condition"].includes(key));
    if (keys.length > 0) problems.push(`${at}: unknown ${keys.join(", ")}`);
    if (!/^[A-Za-z0-9]+$/.test(statement.Sid ?? "") || sids.has(statement.Sid)) problems.push(`${at}: Sid must be alphanumeric and unique`);
    sids.add(statement.Sid);
    if (statement.Effect !== "Allow") problems.push(`${at}: Effect must be Allow`);
    const actions = typeof statement.Action === "string" ? [statement.Action] : statement.Action;
    if (!Array.isArray(actions) || actions.length === 0) problems.push(`${at}: Action must be a string or a non-empty array`);
    for (const action of actions ?? []) if (typeof action !== "string" || !ACTION.test(action)) problems.push(`${at}: "${action}" is not one named action`);
    if (Array.isArray(actions) && new Set(actions).size !== actions.length) problems.push(`${at}: an action is listed twice`);
    if (trust) {
      if (statement.Resource !== undefined) problems.push(`${at}: a trust policy has no Resource`);
      if (typeof statement.Principal?.Federated !== "string") problems.push(`${at}: a trust policy names a federated Principal`);
    } else {
      if (statement.Principal !== undefined) problems.push(`${at}: a permission policy has no Principal`);
      const resources = typeof statement.Resource === "string" ? [statement.Resource] : statement.Resource;
      if (!Array.isArray(resources) || resources.length === 0) problems.push(`${at}: Resource must be a string or a non-empty array`);
      for (const resource of resources ?? []) if (resource !== "*" && !/^arn:aws:[a-z0-9-]+:[a-z0-9-*]*:[0-9*]*:.+$/.test(resource)) problems.push(`${at}: "${resource}" is neither * nor an ARN`);
    }
    for (const [operator, entries] of Object.entries(statement.Condition ?? {})) {
      if (!OPERATORS.test(operator)) problems.push(`${at}: unknown condition operator ${operator}`);
      for (const [key, value] of Object.entries(entries)) {
        const values = typeof value === "string" ? [value] : value;
        if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== "string")) problems.push(`${at}: ${operator} ${key} needs string values`);
      }
    }
  }
  if (JSON.stringify(document).replace(/\s/g, "").length > MANAGED_POLICY_LIMIT) problems.push(`${path}: longer than a managed policy may be`);
  return problems;
}

const actionsOf = (statement: Statement) => (typeof statement.Action === "string" ? [statement.Action] : statement.Action);
const allActions = (doc: PolicyDocument) => doc.Statement.flatMap(actionsOf);

let shipped: StackResources[];
let variants: StackResources[];
beforeAll(async () => {
  shipped = await declaredResources(catalog);
  variants = (await declaredResources([...catalog, ...VARIANTS])).filter((s) => s.stack.startsWith("zz-test-iam-"));
}, 120_000);
const resourcesOf = (stacks: StackResources[], stack: string) => stacks.find((s) => s.stack === stack)?.resources ?? [];

describe("iam/ is generated: fresh, and nothing else in it", () => {
  it("regenerating it from the catalog gives the same files, byte for byte", async () => {
    const expected = await generateIam(catalog);
    const onDisk = filesUnder(IAM).sort();
    expect(onDisk, "iam/ is stale: run npm run iam").toEqual([...expected.keys()].sort());
    for (const [path, content] of expected) expect(readFileSync(join(IAM, path), "utf8"), `iam/${path} is stale: run npm run iam`).toBe(content);
  });

  it("holds the preview role and one deploy role per stack of the catalog", () => {
    const folders = readdirSync(IAM, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect(folders).toEqual(["preview", ...catalog.map((env) => `deploy-${env.name}`)].sort());
    for (const folder of folders) expect(readdirSync(join(IAM, folder)).sort()).toEqual(["permissions.json", "trust.json"]);
  });
});

describe("every file is a valid IAM policy", () => {
  const jsonFiles = () => filesUnder(IAM).filter((path) => path.endsWith(".json"));

  it("Version 2012-10-17, a Statement array, Effect, named actions (no *), Resource or Principal, known condition operators", () => {
    expect(jsonFiles().length).toBeGreaterThan(0);
    expect(jsonFiles().flatMap((path) => shapeProblems(path, readJson(path)))).toEqual([]);
  });

  it("the shape check refuses broken documents (negative control)", () => {
    const good = readJson("deploy-staging/permissions.json");
    const broken = (change: (doc: PolicyDocument & Record<string, unknown>) => void) => {
      const copy = structuredClone(good) as PolicyDocument & Record<string, unknown>;
      change(copy);
      return shapeProblems("deploy-staging/permissions.json", copy);
    };
    expect(broken((d) => ((d as { Version: string }).Version = "2008-10-17"))).toContainEqual(expect.stringMatching(/Version/));
    expect(broken((d) => ((d as { Statement: unknown }).Statement = {}))).toContainEqual(expect.stringMatching(/Statement is not a non-empty array/));
    expect(broken((d) => ((d.Statement[0] as Statement).Action = "*"))).toContainEqual(expect.stringMatching(/"\*" is not one named action/));
    expect(broken((d) => ((d.Statement[0] as Statement).Action = ["lightsail:Get*"]))).toContainEqual(expect.stringMatching(/"lightsail:Get\*" is not one named action/));
    expect(broken((d) => ((d.Statement[0] as Statement).Effect = "Deny" as "Allow"))).toContainEqual(expect.stringMatching(/Effect must be Allow/));
    expect(broken((d) => delete (d.Statement[0] as Partial<Statement>).Resource)).toContainEqual(expect.stringMatching(/Resource must be/));
    expect(broken((d) => ((d.Statement[1] as Statement).Condition = { StringEqualz: { a: "b" } }))).toContainEqual(expect.stringMatching(/unknown condition operator/));
    expect(broken((d) => ((d.Statement[1] as Statement).Sid = "Read"))).toContainEqual(expect.stringMatching(/Sid must be alphanumeric and unique/));
    expect(broken((d) => ((d.Statement[0] as Statement).Resource = "timetracker-staging"))).toContainEqual(expect.stringMatching(/neither \* nor an ARN/));
  });
});

describe("each role trusts exactly one GitHub environment of this repository", () => {
  it("trust.json: AssumeRoleWithWebIdentity from GitHub's OIDC provider, audience sts.amazonaws.com, the exact environment subject", () => {
    const repo = repository();
    const expected = new Map([["preview", "preview"], ...catalog.map((env) => [`deploy-${env.name}`, githubEnvironment(env.name)] as [string, string])]);
    for (const [folder, environment] of expected) {
      const [statement, ...more] = readJson(`${folder}/trust.json`).Statement;
      expect(more).toEqual([]);
      expect(statement?.Action).toBe("sts:AssumeRoleWithWebIdentity");
      expect(statement?.Principal).toEqual({ Federated: "arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com" });
      // StringEquals, not StringLike: no wildcard can widen the subject.
      expect(statement?.Condition).toEqual({
        StringEquals: {
          "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
          "token.actions.githubusercontent.com:sub": `repo:${repo}:environment:${environment}`,
        },
      });
      expect(JSON.stringify(statement)).not.toContain("*");
    }
  });

  it("the environments are the ones the workflows' jobs run in", () => {
    const workflow = (name: string) => parseYaml(readFileSync(join(REPO, ".github", "workflows", name), "utf8")) as { jobs: Record<string, { environment?: string | { name: string } }> };
    const environmentOf = (name: string, job: string) => {
      const env = workflow(name).jobs[job]?.environment;
      return typeof env === "string" ? env : env?.name;
    };
    expect(environmentOf("deploy.yml", "staging")).toBe(githubEnvironment("staging"));
    expect(environmentOf("deploy.yml", "production")).toBe(githubEnvironment("prod"));
    expect(environmentOf("deploy-client.yml", "deploy")).toBe(githubEnvironment("${{ inputs.stack }}"));
    expect(environmentOf("deploy-client.yml", "rollback")).toBe(githubEnvironment("${{ inputs.stack }}"));
    expect(environmentOf("pull-request.yml", "cloud-preview")).toBe("preview");
  });

  it("the repository comes from package.json; a malformed one is refused in one line", () => {
    expect(repository()).toBe(repositoryOf(JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"))));
    expect(repositoryOf({ repository: "github:acme/timetracker-infra" })).toBe("acme/timetracker-infra");
    expect(repositoryOf({ repository: { type: "git", url: "git+https://github.com/acme/infra.git" } })).toBe("acme/infra");
    for (const bad of [{}, { repository: "acme" }, { repository: "github:acme/*" }, { repository: "gitlab:acme/infra" }]) {
      expect(() => repositoryOf(bad)).toThrow(IamError);
      expect(() => repositoryOf(bad)).toThrow(/^package\.json repository: expected "github:<owner>\/<repo>"/);
    }
  });
});

describe("the action table covers every resource type the program declares", () => {
  it("every type of every stack (the catalog, DNS in Lightsail and Route 53, the site-down alert) is in the table or called out as making no AWS call", () => {
    const declared = new Set([...shipped, ...variants].flatMap((s) => s.resources.map((r) => r.type)));
    const uncovered = [...declared].filter((type) => !ACTIONS[type] && !NO_AWS_CALLS[type]);
    expect(uncovered).toEqual([]);
    // And the table has no entry the program never declares.
    expect(Object.keys(ACTIONS).filter((type) => !declared.has(type))).toEqual([]);
    expect(Object.keys(NO_AWS_CALLS).filter((type) => !declared.has(type))).toEqual([]);
  });

  it("a type added without actions stops the generation, naming it (negative control)", () => {
    const resources: Declared[] = [...resourcesOf(shipped, "staging"), { type: "aws:lightsail/loadBalancer:LoadBalancer", name: "lb", inputs: {} }];
    expect(() => deployPolicy("staging", resources)).toThrow(IamError);
    expect(() => deployPolicy("staging", resources)).toThrow(/^aws:lightsail\/loadBalancer:LoadBalancer \(lb\): the program declares it, but tools\/iam\/actions\.ts lists no AWS actions/);
    expect(() => previewPolicy(resources)).toThrow(IamError);
  });

  it("a tag-scoped resource without its stack tag stops the generation: the deploy would be denied (negative control)", () => {
    const resources = resourcesOf(shipped, "staging").map((r) => (r.type === "aws:lightsail/disk:Disk" ? { ...r, inputs: { ...r.inputs, tags: { project: "timetracker" } } } : r));
    expect(() => deployPolicy("staging", resources)).toThrow(/^aws:lightsail\/disk:Disk host-disk: has no tag stack=staging/);
    const extraTag = resourcesOf(shipped, "staging").map((r) => (r.type === "aws:lightsail/instance:Instance" ? { ...r, inputs: { ...r.inputs, tags: { project: "timetracker", stack: "staging", owner: "x" } } } : r));
    expect(() => deployPolicy("staging", extraTag)).toThrow(/tags owner besides project and stack/);
  });
});

describe("least privilege", () => {
  const statement = (doc: PolicyDocument, sid: string) => doc.Statement.find((s) => s.Sid === sid);

  it("the preview role only reads, and cannot fetch an instance's login key", () => {
    const preview = readJson("preview/permissions.json");
    const actions = allActions(preview);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) expect(action).toMatch(/^[a-z0-9]+:(Get|List|Describe)[A-Za-z]*$/);
    expect(actions).not.toContain("lightsail:GetInstanceAccessDetails");
    const reads = new Set(Object.values(ACTIONS).flatMap((a) => a.read));
    for (const action of actions) expect(reads.has(action), action).toBe(true);
  });

  it.each(catalog.map((env) => env.name))("%s: writes only with the stack's own tag or name; what reaches the whole account is the table's account-wide list", (stack) => {
    const policy = readJson(`deploy-${stack}/permissions.json`);
    const others = catalog.map((env) => env.name).filter((name) => name !== stack);
    for (const other of others) expect(JSON.stringify(policy)).not.toContain(`"${other}"`);
    const accountActions = new Set(Object.values(ACTIONS).flatMap((a) => a.write.filter((g) => g.scope.by === "account").flatMap((g) => g.actions)));
    for (const s of policy.Statement) {
      const unconditioned = s.Resource === "*" && s.Condition === undefined;
      if (s.Sid === "Read") {
        for (const action of actionsOf(s)) expect(action).toMatch(/^[a-z0-9]+:(Get|List|Describe)[A-Za-z]*$/);
        expect(actionsOf(s)).not.toContain("lightsail:GetInstanceAccessDetails");
      } else if (unconditioned) {
        expect(s.Sid).toBe("AccountWide");
        for (const action of actionsOf(s)) expect(accountActions.has(action), action).toBe(true);
      } else if (s.Resource === "*") {
        // Every other "*" statement is held to the stack by its tag, on the resource or in the request.
        expect(Object.keys(s.Condition?.StringEquals ?? {}).every((key) => /^aws:(Resource|Request)Tag\/stack$/.test(key)), s.Sid).toBe(true);
        expect(Object.values(s.Condition?.StringEquals ?? {}), s.Sid).toEqual([stack]);
      }
    }
    expect(statement(policy, "CreateTaggedWithTheStack")?.Condition).toEqual({
      StringEquals: { "aws:RequestTag/stack": stack },
      "ForAllValues:StringEquals": { "aws:TagKeys": ["project", "stack"] },
    });
    // A resource without a stack tag may get this one; a tagged one keeps its stack tag.
    expect(statement(policy, "TagNewResourcesWithTheStack")?.Condition).toMatchObject({ Null: { "aws:ResourceTag/stack": "true" } });
    expect(statement(policy, "RetagTheStacksResourcesNotItsStackTag")?.Condition).toEqual({
      StringEquals: { "aws:ResourceTag/stack": stack },
      "ForAllValues:StringEquals": { "aws:TagKeys": ["project"] },
    });
  });

  it("the deploy role can open the port-22 window and read the host keys the first contact is checked against", () => {
    const own = statement(readJson("deploy-staging/permissions.json"), "TheStacksTaggedResources");
    expect(actionsOf(own as Statement)).toEqual(expect.arrayContaining(["lightsail:PutInstancePublicPorts", "lightsail:GetInstanceAccessDetails"]));
    expect(actionsOf(statement(readJson("deploy-staging/permissions.json"), "Read") as Statement)).toContain("lightsail:GetInstancePortStates");
  });

  it("a resource kept on delete gets no delete permission; one Pulumi deletes does", () => {
    const staging = resourcesOf(shipped, "staging");
    const granted = allActions(deployPolicy("staging", staging));
    for (const kept of ["lightsail:DeleteDisk", "lightsail:ReleaseStaticIp", "lightsail:DeleteBucket", "lightsail:CloseInstancePublicPorts"]) expect(granted).not.toContain(kept);
    expect(granted).toEqual(expect.arrayContaining(["lightsail:DeleteInstance", "lightsail:DeleteKeyPair", "lightsail:DetachDisk"]));
    const deletable = staging.map((r) => (r.type === "aws:lightsail/disk:Disk" ? { ...r, retainOnDelete: false } : r));
    expect(allActions(deployPolicy("staging", deletable))).toContain("lightsail:DeleteDisk");
  });

  it("DNS in Route 53: record changes only for the stack's names, type A; DNS in Lightsail: the domain's entries", () => {
    const route53 = deployPolicy("zz-test-iam-route53", resourcesOf(variants, "zz-test-iam-route53"));
    expect(statement(route53, "TheStacksDnsRecords")).toEqual({
      Sid: "TheStacksDnsRecords",
      Effect: "Allow",
      Action: "route53:ChangeResourceRecordSets",
      Resource: "arn:aws:route53:::hostedzone/*",
      Condition: {
        "ForAllValues:StringEquals": {
          "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["timetracker.zz-iam-route53.test.example"],
          "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
        },
      },
    });
    const lightsail = deployPolicy("zz-test-iam-lightsail", resourcesOf(variants, "zz-test-iam-lightsail"));
    expect(actionsOf(statement(lightsail, "AccountWide") as Statement)).toEqual(expect.arrayContaining(["lightsail:CreateDomainEntry", "lightsail:DeleteDomainEntry"]));
    expect(allActions(lightsail)).not.toContain("route53:ChangeResourceRecordSets");
  });

  it("the alerts: the four alarms and the topic by their names, the health checks of the account", () => {
    const resources = resourcesOf(variants, "zz-test-iam-route53");
    const alarms = resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm").map((r) => String(r.inputs.name));
    const topic = resources.find((r) => r.type === "aws:sns/topic:Topic")?.inputs.name;
    const policy = deployPolicy("zz-test-iam-route53", resources);
    // The site-down alarm and one per condition of the host status.
    expect(alarms.sort()).toEqual(["backup-stale", "disk-full", "nightly-dump-failed", "site-down"].map((alarm) => `timetracker-zz-test-iam-route53-${alarm}`));
    expect(statement(policy, "CloudwatchByName")?.Resource).toEqual(alarms.map((alarm) => `arn:aws:cloudwatch:*:*:alarm:${alarm}`));
    expect(actionsOf(statement(policy, "CloudwatchByName") as Statement)).toEqual(["cloudwatch:DeleteAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "cloudwatch:UntagResource"]);
    expect(statement(policy, "SnsByName")?.Resource).toBe(`arn:aws:sns:*:*:${topic}`);
    expect(actionsOf(statement(policy, "SnsByName") as Statement)).toEqual(expect.arrayContaining(["sns:CreateTopic", "sns:Subscribe", "sns:Unsubscribe"]));
    expect(statement(policy, "Route53ByName")?.Resource).toBe("arn:aws:route53:::healthcheck/*");
    expect(shapeProblems("variant.json", policy)).toEqual([]);
    // A stack without the alert gets none of it.
    expect(JSON.stringify(readJson("deploy-staging/permissions.json"))).not.toMatch(/cloudwatch:|sns:|route53:/);
  });
});
