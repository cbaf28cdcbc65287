import { ACTIONS, NO_AWS_CALLS, STACK_TAG, TAG_KEYS, type Grant, type Scope } from "./actions.js";

/**
 * The IAM roles the GitHub workflows assume, as files (iam/): one trust policy per GitHub
 * environment with its exact OIDC subject, and permission policies written from the resources
 * each stack declares and the action table (tools/iam/actions.ts). Pure: no file, no AWS.
 */

export interface Statement {
  Sid: string;
  Effect: "Allow";
  Principal?: { Federated: string };
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

/** A resource the program declares: what the policies need of it. */
export interface Declared {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** Kept on delete: Pulumi drops it from the state and calls no delete. */
  retainOnDelete?: boolean;
}

/** Something the catalog and the table disagree on: one line naming the resource and the fix. */
export class IamError extends Error {}

/** GitHub's OIDC issuer (docs.github.com: "OpenID Connect reference"). */
export const OIDC_ISSUER = "token.actions.githubusercontent.com";
/** Stands for the AWS account id in the trust policies; iam/README.md says how to fill it in. */
export const ACCOUNT_PLACEHOLDER = "ACCOUNT_ID";
/** The environment of the pull request's `pulumi preview` (.github/workflows/pull-request.yml). */
export const PREVIEW_ENVIRONMENT = "preview";
const PROJECT = "timetracker";

/** The GitHub environment a stack deploys from: the one its workflow job names. */
export function githubEnvironment(stack: string): string {
  if (stack === "prod") return "production";
  if (stack === "staging") return "staging";
  return `client-${stack}`;
}

/**
 * Who may assume a role: a job of `repository` running in `environment`, and nothing else.
 * A job that names an environment gets the subject `repo:<owner>/<repo>:environment:<name>`
 * (docs.github.com, OIDC: "Filtering for a specific environment"), whatever its branch or event.
 */
export function trustPolicy(repository: string, environment: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "GitHubEnvironment",
        Effect: "Allow",
        Principal: { Federated: `arn:aws:iam::${ACCOUNT_PLACEHOLDER}:oidc-provider/${OIDC_ISSUER}` },
        Action: "sts:AssumeRoleWithWebIdentity",
        Condition: {
          StringEquals: {
            [`${OIDC_ISSUER}:aud`]: "sts.amazonaws.com",
            [`${OIDC_ISSUER}:sub`]: `repo:${repository}:environment:${environment}`,
          },
        },
      },
    ],
  };
}

const sorted = (values: Iterable<string>) => [...new Set(values)].sort();
const one = (values: string[]) => (values.length === 1 ? (values[0] as string) : values);

/** The table's entry for every AWS type among the resources; a type in neither table is refused. */
function awsTypes(resources: readonly Declared[]): string[] {
  const types = sorted(resources.map((r) => r.type));
  for (const type of types) {
    if (!ACTIONS[type] && !NO_AWS_CALLS[type]) {
      const example = resources.find((r) => r.type === type)?.name;
      throw new IamError(`${type} (${example}): the program declares it, but tools/iam/actions.ts lists no AWS actions for it (add it to ACTIONS, or to NO_AWS_CALLS if it calls no AWS API)`);
    }
  }
  return types.filter((type) => ACTIONS[type]);
}

const readsOf = (types: readonly string[]) => sorted(types.flatMap((type) => ACTIONS[type]?.read ?? []));

/** The resources a tag-scoped grant acts on must carry the stack's tag, or AWS would deny the call. */
function checkTags(stack: string, type: string, grant: Grant, resources: readonly Declared[]) {
  const tagsOf = (r: Declared) => (r.inputs.tags ?? {}) as Record<string, unknown>;
  const targets = grant.scope.by === "request-tag" ? [type] : (grant.on ?? [type]);
  for (const resource of resources.filter((r) => targets.includes(r.type))) {
    const tags = tagsOf(resource);
    if (tags[STACK_TAG] !== stack) {
      throw new IamError(`${resource.type} ${resource.name}: has no tag ${STACK_TAG}=${stack}, so ${grant.actions.join(", ")} (limited to the stack's tagged resources) would be denied`);
    }
    const extra = Object.keys(tags).filter((key) => !(TAG_KEYS as readonly string[]).includes(key));
    if (grant.scope.by === "request-tag" && extra.length > 0) {
      throw new IamError(`${resource.type} ${resource.name}: tags ${extra.join(", ")} besides ${TAG_KEYS.join(" and ")}, which the create's tag-key condition refuses`);
    }
  }
}

/** The `{name}` ARNs of an arn grant: one per resource of the scope's type. */
function arnsOf(scope: Extract<Scope, { by: "arn" }>, type: string, resources: readonly Declared[]): string[] {
  if (!scope.arn.includes("{name}")) return [scope.arn];
  const of = scope.of ?? type;
  return sorted(
    resources
      .filter((r) => r.type === of)
      .map((r) => {
        if (typeof r.inputs.name !== "string") throw new IamError(`${r.type} ${r.name}: no name input, so its ARN cannot be written`);
        return scope.arn.replace("{name}", r.inputs.name);
      }),
  );
}

/** Route 53 record names as the condition key compares them: lower case, no final dot. */
const normalizedRecordNames = (resources: readonly Declared[]) =>
  sorted(resources.filter((r) => r.type === "aws:route53/record:Record").map((r) => String(r.inputs.name).toLowerCase().replace(/\.$/, "")));

const service = (action: string) => action.split(":")[0] as string;
const capital = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

/**
 * The deploy role of one stack: reads on anything, and writes limited to the stack's own
 * resources as far as each API allows (the scope kinds of tools/iam/actions.ts).
 */
export function deployPolicy(stack: string, resources: readonly Declared[]): PolicyDocument {
  const types = awsTypes(resources);
  const deleted = (type: string) => resources.some((r) => r.type === type && !r.retainOnDelete);
  const grants = types.flatMap((type) => (ACTIONS[type]?.write ?? []).filter((grant) => !grant.delete || deleted(type)).map((grant) => ({ type, grant })));
  for (const { type, grant } of grants) {
    if (grant.scope.by === "stack-tag" || grant.scope.by === "request-tag") checkTags(stack, type, grant, resources);
  }
  const actionsBy = (by: Scope["by"]) => sorted(grants.filter(({ grant }) => grant.scope.by === by).flatMap(({ grant }) => grant.actions));
  const statements: Statement[] = [{ Sid: "Read", Effect: "Allow", Action: readsOf(types), Resource: "*" }];
  const add = (Sid: string, actions: string[], Resource: string | string[], Condition?: Statement["Condition"]) => {
    if (actions.length > 0) statements.push({ Sid, Effect: "Allow", Action: one(actions), Resource, ...(Condition ? { Condition } : {}) });
  };
  const stackTag = { [`aws:ResourceTag/${STACK_TAG}`]: stack };
  add("CreateTaggedWithTheStack", actionsBy("request-tag"), "*", {
    StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: stack },
    "ForAllValues:StringEquals": { "aws:TagKeys": [...TAG_KEYS] },
  });
  add("TagNewResourcesWithTheStack", actionsBy("claim-untagged"), "*", {
    Null: { [`aws:ResourceTag/${STACK_TAG}`]: "true" },
    StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: stack },
    "ForAllValues:StringEquals": { "aws:TagKeys": [...TAG_KEYS] },
  });
  add("TheStacksTaggedResources", actionsBy("stack-tag"), "*", { StringEquals: stackTag });
  add("RetagTheStacksResourcesNotItsStackTag", actionsBy("own-tags"), "*", {
    StringEquals: stackTag,
    "ForAllValues:StringEquals": { "aws:TagKeys": TAG_KEYS.filter((key) => key !== STACK_TAG) },
  });
  const names = normalizedRecordNames(resources);
  add("TheStacksDnsRecords", actionsBy("record-names"), "arn:aws:route53:::hostedzone/*", {
    "ForAllValues:StringEquals": {
      "route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
      "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
    },
  });
  // ARN-scoped grants, one statement per set of ARNs (an SNS topic's own and its subscription's actions share one).
  const byArns = new Map<string, { actions: string[]; arns: string[] }>();
  for (const { type, grant } of grants) {
    if (grant.scope.by !== "arn") continue;
    const arns = arnsOf(grant.scope, type, resources);
    const key = JSON.stringify(arns);
    const entry = byArns.get(key) ?? { actions: [], arns };
    entry.actions.push(...grant.actions);
    byArns.set(key, entry);
  }
  const sids = new Map<string, number>();
  for (const { actions, arns } of [...byArns.values()].sort((a, b) => a.arns.join().localeCompare(b.arns.join()))) {
    const prefix = `${capital(service(actions[0] as string))}ByName`;
    const count = (sids.get(prefix) ?? 0) + 1;
    sids.set(prefix, count);
    add(count === 1 ? prefix : `${prefix}${count}`, sorted(actions), one(arns));
  }
  add("AccountWide", actionsBy("account"), "*");
  return { Version: "2012-10-17", Statement: statements };
}

/** The preview role: the reads of every type any stack declares, nothing else. */
export function previewPolicy(resources: readonly Declared[]): PolicyDocument {
  return { Version: "2012-10-17", Statement: [{ Sid: "ReadOnly", Effect: "Allow", Action: readsOf(awsTypes(resources)), Resource: "*" }] };
}

/** The account-wide grants a stack's role gets, with why no narrower one exists (iam/README.md lists them). */
export function accountWide(stacks: readonly StackResources[]): { actions: readonly string[]; why: string }[] {
  const found = new Map<string, string[]>();
  for (const { stack, resources } of stacks) {
    const granted = new Set(deployPolicy(stack, resources).Statement.filter((s) => s.Sid === "AccountWide").flatMap((s) => s.Action));
    for (const type of awsTypes(resources)) {
      for (const grant of ACTIONS[type]?.write ?? []) {
        const actions = grant.actions.filter((action) => granted.has(action));
        if (grant.scope.by === "account" && actions.length > 0) found.set(grant.scope.why, [...(found.get(grant.scope.why) ?? []), ...actions]);
      }
    }
  }
  return [...found].map(([why, actions]) => ({ actions: sorted(actions), why })).sort((a, b) => (a.actions[0] ?? "").localeCompare(b.actions[0] ?? ""));
}

export interface Role {
  /** The IAM role's name. */
  name: string;
  /** Its folder under iam/. */
  folder: string;
  /** The GitHub environment whose jobs assume it. */
  environment: string;
  trust: PolicyDocument;
  permissions: PolicyDocument;
}

export interface StackResources {
  stack: string;
  resources: readonly Declared[];
}

/** Every role: the preview role, then one deploy role per stack in catalog order. */
export function roles(repository: string, stacks: readonly StackResources[]): Role[] {
  return [
    {
      name: `${PROJECT}-preview`,
      folder: "preview",
      environment: PREVIEW_ENVIRONMENT,
      trust: trustPolicy(repository, PREVIEW_ENVIRONMENT),
      permissions: previewPolicy(stacks.flatMap((s) => s.resources)),
    },
    ...stacks.map(({ stack, resources }) => ({
      name: `${PROJECT}-deploy-${stack}`,
      folder: `deploy-${stack}`,
      environment: githubEnvironment(stack),
      trust: trustPolicy(repository, githubEnvironment(stack)),
      permissions: deployPolicy(stack, resources),
    })),
  ];
}

/** `<owner>/<repo>` from package.json's `repository` ("github:<owner>/<repo>", or a GitHub URL). */
export function repositoryOf(packageJson: unknown): string {
  const field = (packageJson as { repository?: unknown } | undefined)?.repository;
  const text = typeof field === "string" ? field : typeof field === "object" && field !== null ? (field as { url?: unknown }).url : undefined;
  const match = typeof text === "string" ? /^(?:github:|(?:git\+)?https:\/\/github\.com\/)?([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+?)(?:\.git)?$/.exec(text) : null;
  if (!match) {
    throw new IamError(`package.json repository: expected "github:<owner>/<repo>" (this repository on GitHub, which the trust policies name), got ${JSON.stringify(field)}`);
  }
  return match[1] as string;
}

/** Whether `repository` is still the shipped placeholder. */
export const isPlaceholderRepository = (repository: string) => repository === "OWNER/REPO";

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** iam/README.md: which role is which, what is account-wide and why, how to create the roles. */
function readme(repository: string, all: readonly Role[], stacks: readonly StackResources[]): string {
  const rows = all.map((r) => `| \`${r.name}\` | \`${r.environment}\` | \`repo:${repository}:environment:${r.environment}\` | [trust](${r.folder}/trust.json), [permissions](${r.folder}/permissions.json) |`);
  const wide = accountWide(stacks).map((w) => `- ${w.actions.map((a) => `\`${a}\``).join(", ")}: ${w.why}.`);
  return [
    "# IAM roles of the GitHub workflows",
    "",
    "Generated by `npm run iam` (part of `npm run generate`, which `npm run new-client` runs) from the catalog",
    "(`stacks/`), the resources the program declares for each stack, the action table `tools/iam/actions.ts`",
    `and package.json's \`repository\` (\`${repository}\`). Do not edit: \`npm test\` fails when these files are`,
    "stale (after a change of what a stack declares, run `npm run generate` and commit iam/).",
    "",
    "| role | GitHub environment | trusted OIDC subject | files |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
    "Each trust policy admits one subject: a job of this repository that runs in that environment (audience",
    "`sts.amazonaws.com`), never `environment:*`. A deploy role writes only its stack's resources where the API",
    `allows it: Lightsail resources by their \`${STACK_TAG}\` tag (a create must tag the new resource with the stack),`,
    "the alarm and the topic by name, DNS records by name. These actions have no narrower permission and reach",
    "the whole account:",
    "",
    ...(wide.length > 0 ? wide : ["- none"]),
    "",
    "The preview role reads only, and never `lightsail:GetInstanceAccessDetails` (it hands out a login key).",
    "",
    "Create a role, or update it after `npm run iam` changed its files (an account administrator, once; the",
    `workflows never get IAM rights). \`${ACCOUNT_PLACEHOLDER}\` in the trust policy is the account's id:`,
    "",
    "```sh",
    `aws iam create-open-id-connect-provider --url https://${OIDC_ISSUER} --client-id-list sts.amazonaws.com   # once per account`,
    "account=$(aws sts get-caller-identity --query Account --output text)",
    `role=deploy-staging   # or preview, deploy-prod, deploy-<client>`,
    `sed "s/${ACCOUNT_PLACEHOLDER}/$account/" iam/$role/trust.json > /tmp/trust.json`,
    `aws iam create-role --role-name ${PROJECT}-$role --assume-role-policy-document file:///tmp/trust.json`,
    `aws iam put-role-policy --role-name ${PROJECT}-$role --policy-name ${PROJECT}-$role --policy-document file://iam/$role/permissions.json`,
    "```",
    "",
    "Then store the role's ARN as the environment's secret: `AWS_DEPLOY_ROLE_ARN` (deploy roles) or",
    "`AWS_PREVIEW_ROLE_ARN` (the `preview` environment); docs/README.md lists every setting.",
    "",
  ].join("\n");
}

/** Every file of iam/, by path relative to it. */
export function iamFiles(repository: string, stacks: readonly StackResources[]): Map<string, string> {
  const all = roles(repository, stacks);
  const files = new Map<string, string>([["README.md", readme(repository, all, stacks)]]);
  for (const role of all) {
    files.set(`${role.folder}/trust.json`, json(role.trust));
    files.set(`${role.folder}/permissions.json`, json(role.permissions));
  }
  return files;
}
