/**
 * The AWS API actions behind each resource type the program declares: the one table
 * `npm run iam` writes the deploy and preview roles' policies from (tools/iam/policies.ts).
 * test/tools/iam.test.ts fails when the program declares a type that is in neither table.
 *
 * Which calls a type makes: the provider's create, read, update and delete for the inputs the
 * program sets (terraform-provider-aws internal/service/lightsail/*.go, route53, cloudwatch,
 * sns, which @pulumi/aws 7 wraps; e.g. key_pair.go imports a given public key with
 * ImportKeyPair, then tags it; disk_attachment.go's delete stops the instance, detaches the
 * disk and starts it again; every Lightsail write waits on GetOperation).
 *
 * How each action can be limited: the Service Authorization Reference, "Actions, resources, and
 * condition keys for Amazon Lightsail" (and for Route 53, CloudWatch, SNS)
 * (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonlightsail.html),
 * as iam-floyd's generated statements list it (udondan/iam-floyd
 * lib/generated/policy-statements/lightsail.ts: which actions take aws:ResourceTag,
 * aws:RequestTag and aws:TagKeys). Lightsail ARNs end in an id Lightsail assigns, not the
 * resource's name (Instance/${Id}), so a stack's Lightsail resources are told apart by their
 * `stack` tag; creating a resource with tags also needs lightsail:TagResource (the reference's
 * API operations table: CreateBucket -> lightsail:CreateBucket, lightsail:TagResource).
 * Actions are always named one by one, never `lightsail:Get*`: that would include
 * GetInstanceAccessDetails, which hands out a temporary SSH login key.
 */

/** How a grant's actions are limited to the stack's own resources. */
export type Scope =
  /** Resources that carry the stack's tag (`aws:ResourceTag/stack`). */
  | { by: "stack-tag" }
  /** A create whose request tags the new resource with the stack (`aws:RequestTag/stack`, tag keys `project` and `stack` only). */
  | { by: "request-tag" }
  /** Tagging a resource that has no stack tag yet with this stack's (a create's own tagging, the key pair after its import). */
  | { by: "claim-untagged" }
  /** Tag changes on the stack's own resources that leave the `stack` tag alone. */
  | { by: "own-tags" }
  /** The resources an ARN names: `{name}` is the `name` input of each resource of type `of` (default: the grant's own type). */
  | { by: "arn"; arn: string; of?: string }
  /** Route 53 record changes: only the stack's record names, type A (`route53:ChangeResourceRecordSets*` keys). */
  | { by: "record-names" }
  /** Any resource of the account: the API offers no narrower permission for these actions (`why` says which limit applies). */
  | { by: "account"; why: string };

export interface Grant {
  actions: readonly string[];
  scope: Scope;
  /** For stack-tag grants: the types of the resources the actions act on, each of which must carry the stack tag (default: the grant's own type). */
  on?: readonly string[];
  /**
   * The resource's delete: granted only when the stack has a resource of the type that Pulumi
   * deletes. One kept on delete (`retainOnDelete`: the disk, the static IP, the bucket, the
   * firewall) is dropped from the state without a call.
   */
  delete?: true;
}

export interface TypeActions {
  /** What a refresh reads, always on any resource (`Resource: "*"`): the preview role has these. */
  read: readonly string[];
  /** Creates, changes and deletes: the deploy role of a stack that declares the type. */
  write: readonly Grant[];
}

/** The tag keys the program puts on the resources it tags (infra/components: `{ project, stack }`). */
export const STACK_TAG = "stack";
export const TAG_KEYS = ["project", STACK_TAG] as const;

const INSTANCE = "aws:lightsail/instance:Instance";
const DISK = "aws:lightsail/disk:Disk";
const BUCKET = "aws:lightsail/bucket:Bucket";
const TOPIC = "aws:sns/topic:Topic";
const ALARM = "arn:aws:cloudwatch:*:*:alarm:{name}";
const TOPIC_ARN = "arn:aws:sns:*:*:{name}";
const HEALTH_CHECKS = "arn:aws:route53:::healthcheck/*";

const DOMAIN_WHY = "the DNS zone is a Lightsail domain of the account that no stack owns or tags, and its ARN holds an id";
const STATIC_IP_WHY = "a Lightsail static IP carries no tag (the provider cannot set one) and its ARN holds an id, not its name";
const TAGGED_CREATE: Grant[] = [
  { actions: ["lightsail:TagResource"], scope: { by: "claim-untagged" } },
  { actions: ["lightsail:TagResource", "lightsail:UntagResource"], scope: { by: "own-tags" } },
];

export const ACTIONS: Readonly<Record<string, TypeActions>> = {
  [INSTANCE]: {
    read: ["lightsail:GetInstance", "lightsail:GetInstanceState", "lightsail:GetOperation"],
    write: [
      { actions: ["lightsail:CreateInstances"], scope: { by: "request-tag" } },
      // GetInstanceAccessDetails: the host keys Lightsail reports, which the first SSH contact
      // is checked against (infra/components/lightsail-host-keys.ts); never in the preview role.
      { actions: ["lightsail:GetInstanceAccessDetails"], scope: { by: "stack-tag" } },
      { actions: ["lightsail:DeleteInstance"], scope: { by: "stack-tag" }, delete: true },
      {
        actions: ["lightsail:EnableAddOn", "lightsail:DisableAddOn"],
        scope: { by: "account", why: "the automatic-snapshot add-on actions take no resource-level permission or tag condition" },
      },
      ...TAGGED_CREATE,
    ],
  },
  "aws:lightsail/keyPair:KeyPair": {
    read: ["lightsail:GetKeyPair", "lightsail:GetOperation"],
    write: [
      {
        actions: ["lightsail:ImportKeyPair"],
        scope: { by: "account", why: "ImportKeyPair takes no resource-level permission and no tags (the provider tags the key pair right after)" },
      },
      { actions: ["lightsail:DeleteKeyPair"], scope: { by: "stack-tag" }, delete: true },
      ...TAGGED_CREATE,
    ],
  },
  "aws:lightsail/staticIp:StaticIp": {
    read: ["lightsail:GetStaticIp", "lightsail:GetOperation"],
    write: [
      { actions: ["lightsail:AllocateStaticIp"], scope: { by: "account", why: STATIC_IP_WHY } },
      { actions: ["lightsail:ReleaseStaticIp"], scope: { by: "account", why: STATIC_IP_WHY }, delete: true },
    ],
  },
  "aws:lightsail/staticIpAttachment:StaticIpAttachment": {
    read: ["lightsail:GetStaticIp", "lightsail:GetOperation"],
    write: [
      { actions: ["lightsail:AttachStaticIp"], scope: { by: "account", why: STATIC_IP_WHY } },
      { actions: ["lightsail:DetachStaticIp"], scope: { by: "account", why: STATIC_IP_WHY }, delete: true },
    ],
  },
  [DISK]: {
    read: ["lightsail:GetDisk", "lightsail:GetOperation"],
    write: [
      { actions: ["lightsail:CreateDisk"], scope: { by: "request-tag" } },
      { actions: ["lightsail:DeleteDisk"], scope: { by: "stack-tag" }, delete: true },
      ...TAGGED_CREATE,
    ],
  },
  "aws:lightsail/disk_attachment:Disk_attachment": {
    read: ["lightsail:GetDisk", "lightsail:GetInstanceState", "lightsail:GetOperation"],
    write: [
      { actions: ["lightsail:AttachDisk"], scope: { by: "stack-tag" }, on: [DISK, INSTANCE] },
      // Its delete stops the instance, detaches the disk and starts the instance again.
      {
        actions: ["lightsail:DetachDisk", "lightsail:StopInstance", "lightsail:StartInstance"],
        scope: { by: "stack-tag" },
        on: [DISK, INSTANCE],
        delete: true,
      },
    ],
  },
  "aws:lightsail/instancePublicPorts:InstancePublicPorts": {
    read: ["lightsail:GetInstancePortStates"],
    // The resource's create, and the deploy workflows' port-22 window (.github/workflows).
    write: [
      { actions: ["lightsail:PutInstancePublicPorts"], scope: { by: "stack-tag" }, on: [INSTANCE] },
      { actions: ["lightsail:CloseInstancePublicPorts"], scope: { by: "stack-tag" }, on: [INSTANCE], delete: true },
    ],
  },
  "aws:lightsail/domainEntry:DomainEntry": {
    read: ["lightsail:GetDomain"],
    write: [
      { actions: ["lightsail:CreateDomainEntry"], scope: { by: "account", why: DOMAIN_WHY } },
      { actions: ["lightsail:DeleteDomainEntry"], scope: { by: "account", why: DOMAIN_WHY }, delete: true },
    ],
  },
  [BUCKET]: {
    read: ["lightsail:GetBuckets", "lightsail:GetOperation"],
    write: [
      { actions: ["lightsail:CreateBucket"], scope: { by: "request-tag" } },
      { actions: ["lightsail:UpdateBucket", "lightsail:UpdateBucketBundle"], scope: { by: "stack-tag" } },
      { actions: ["lightsail:DeleteBucket"], scope: { by: "stack-tag" }, delete: true },
      ...TAGGED_CREATE,
    ],
  },
  "aws:lightsail/bucketAccessKey:BucketAccessKey": {
    read: ["lightsail:GetBucketAccessKeys"],
    write: [
      { actions: ["lightsail:CreateBucketAccessKey"], scope: { by: "stack-tag" }, on: [BUCKET] },
      { actions: ["lightsail:DeleteBucketAccessKey"], scope: { by: "stack-tag" }, on: [BUCKET], delete: true },
    ],
  },
  "aws:lightsail/bucketResourceAccess:BucketResourceAccess": {
    read: ["lightsail:GetBuckets"],
    write: [{ actions: ["lightsail:SetResourceAccessForBucket"], scope: { by: "stack-tag" }, on: [BUCKET, INSTANCE] }],
  },
  "aws:route53/record:Record": {
    // With the zone lookup (aws.route53.getZone: ListHostedZones, GetHostedZone, its tags).
    read: ["route53:ListHostedZones", "route53:GetHostedZone", "route53:ListTagsForResource", "route53:ListResourceRecordSets", "route53:GetChange"],
    write: [{ actions: ["route53:ChangeResourceRecordSets"], scope: { by: "record-names" } }],
  },
  "aws:route53/healthCheck:HealthCheck": {
    read: ["route53:GetHealthCheck", "route53:ListTagsForResource"],
    write: [
      { actions: ["route53:CreateHealthCheck"], scope: { by: "account", why: "CreateHealthCheck takes no resource-level permission" } },
      // Route 53 assigns the id and has no tag condition: any health check of the account.
      { actions: ["route53:UpdateHealthCheck", "route53:ChangeTagsForResource"], scope: { by: "arn", arn: HEALTH_CHECKS } },
      { actions: ["route53:DeleteHealthCheck"], scope: { by: "arn", arn: HEALTH_CHECKS }, delete: true },
    ],
  },
  "aws:cloudwatch/metricAlarm:MetricAlarm": {
    read: ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"],
    write: [
      { actions: ["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "cloudwatch:UntagResource"], scope: { by: "arn", arn: ALARM } },
      { actions: ["cloudwatch:DeleteAlarms"], scope: { by: "arn", arn: ALARM }, delete: true },
    ],
  },
  [TOPIC]: {
    read: ["sns:GetTopicAttributes", "sns:ListTagsForResource"],
    write: [
      { actions: ["sns:CreateTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource"], scope: { by: "arn", arn: TOPIC_ARN } },
      { actions: ["sns:DeleteTopic"], scope: { by: "arn", arn: TOPIC_ARN }, delete: true },
    ],
  },
  "aws:sns/topicSubscription:TopicSubscription": {
    read: ["sns:GetSubscriptionAttributes", "sns:ListSubscriptionsByTopic"],
    // On the stack's topic: the reference lists the topic resource (and aws:ResourceTag) for these.
    write: [
      { actions: ["sns:Subscribe", "sns:SetSubscriptionAttributes"], scope: { by: "arn", arn: TOPIC_ARN, of: TOPIC } },
      { actions: ["sns:Unsubscribe"], scope: { by: "arn", arn: TOPIC_ARN, of: TOPIC }, delete: true },
    ],
  },
};

/** Types the program declares that call no AWS API, and why. */
export const NO_AWS_CALLS: Readonly<Record<string, string>> = {
  "pulumi:pulumi:Stack": "the stack itself",
  "pulumi:providers:aws": "an explicit AWS provider (alerts in us-east-1); it asks only sts:GetCallerIdentity, which needs no permission",
  "pulumi:providers:docker": "Docker on the host, over SSH",
  "command:remote:Command": "a command on the host, over SSH",
  "docker:index/container:Container": "Docker on the host, over SSH",
  "docker:index/network:Network": "Docker on the host, over SSH",
  "docker:index/volume:Volume": "Docker on the host, over SSH",
  "docker:index/remoteImage:RemoteImage": "Docker on the host, over SSH",
  "random:index/randomPassword:RandomPassword": "generated in the Pulumi engine",
  "random:index/randomString:RandomString": "generated in the Pulumi engine",
  "timetracker:index:LightsailHost": "a component: its children make the calls",
  "timetracker:index:StackSecrets": "a component: its children make the calls",
  "timetracker:index:TimeTrackerApp": "a component: its children make the calls",
  "timetracker:index:OffHostBackups": "a component: its children make the calls",
  "timetracker:index:SiteAlerts": "a component: its children make the calls",
};
