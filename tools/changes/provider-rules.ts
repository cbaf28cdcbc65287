/**
 * What the real providers do when an input changes, one row per resource type the program
 * declares. Read by the offline preview (`npm run preview`), the rehearsal engine and the
 * program tests, so all three agree with a real `pulumi up`. Versions: package-lock.json
 * (@pulumi/aws 7.48, @pulumi/docker 5.2 = kreuzwerker terraform-provider-docker v4.5.0,
 * @pulumi/command 1.2.1, @pulumi/random 4.21). Nothing here was run against AWS; each row
 * names where it was read (see also ../shared/PROVIDER-FACTS.md).
 */

/** Where a resource keeps data that a replace or delete could lose. */
export type HoldsData =
  | "no"
  /** The resource is the data (a block-storage disk). */
  | "always"
  /** A Docker volume: its data is wherever its driver options put it. */
  | "docker-volume"
  /** A machine: whatever lives on its own root disk goes with it. */
  | "own-disk";

export interface ProviderRule {
  /** Inputs whose change replaces the resource; "every other input" = all not listed below. */
  replaces: readonly string[] | "every other input";
  /** Inputs the provider updates in place. */
  inPlace: readonly string[];
  /** Inputs a change of which is written to state and never reaches the real object. */
  neverApplied: readonly string[];
  /** Provider settings used only on create (wait, keep locally ...): a change only rewrites state. */
  stateOnly: readonly string[];
  /**
   * Whether the old resource goes before its replacement exists: always (the provider says
   * so), when the program sets the auto-nameable `name` (the bridge's
   * nameRequiresDeleteBeforeReplace), or never (create, then delete the old one).
   */
  deleteBeforeReplace: "always" | "when-named" | "never";
  holdsData: HoldsData;
  /** Deleting the old one undoes what the new one just did (the firewall, pulumi/pulumi-aws#1511). */
  oldDeleteUndoesNew?: string;
  /** What an in-place update runs, when that is not obvious. */
  onUpdate?: string;
  /** The service interruption a replace causes. */
  downtimeOnReplace?: string;
  source: string;
}

/** Inputs that are all that an in-place change of tags touches on an AWS resource. */
const TAGS = ["tags"] as const;

// pulumi-aws applies auto-naming to every resource with a `name` (pulumi-terraform-bridge
// SetAutonaming), and pulumi-docker does too (pulumi/pulumi-docker provider/resources.go:
// `prov.SetAutonaming(255, "-")`); the bridge then makes a program-set name delete-before-replace
// (pulumi-terraform-bridge pkg/tfbridge schema.go nameRequiresDeleteBeforeReplace).

export const PROVIDER_RULES: Readonly<Record<string, ProviderRule>> = {
  "aws:lightsail/instance:Instance": {
    replaces: ["name", "availabilityZone", "blueprintId", "bundleId", "keyPairName", "userData"],
    inPlace: [...TAGS, "addOn", "ipAddressType"],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "own-disk",
    downtimeOnReplace: "the instance is deleted before the new one is created: the site is down until the new one boots and every container is healthy again",
    source: "terraform-provider-aws internal/service/lightsail/instance.go (ForceNew on each replacing input; addOn disable then enable)",
  },
  "aws:lightsail/keyPair:KeyPair": {
    replaces: ["name", "namePrefix", "publicKey", "pgpKey"],
    inPlace: TAGS,
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "no",
    source: "terraform-provider-aws internal/service/lightsail/key_pair.go (a new comment in the public key counts)",
  },
  "aws:lightsail/staticIp:StaticIp": {
    replaces: ["name"],
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "no",
    source: "terraform-provider-aws internal/service/lightsail/static_ip.go (no update function: a new address)",
  },
  "aws:lightsail/staticIpAttachment:StaticIpAttachment": {
    replaces: ["staticIpName", "instanceName"],
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "terraform-provider-aws internal/service/lightsail/static_ip_attachment.go",
  },
  "aws:lightsail/instancePublicPorts:InstancePublicPorts": {
    replaces: ["instanceName", "portInfos"],
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    oldDeleteUndoesNew:
      "create calls PutInstancePublicPorts (the whole set), then the old one's delete calls CloseInstancePublicPorts for each port it listed, 80 and 443 included",
    source:
      "hashicorp/terraform-provider-aws internal/service/lightsail/instance_public_ports.go (no Update; create = PutInstancePublicPorts, delete = CloseInstancePublicPorts per port_info); pulumi/pulumi-aws#1511",
  },
  "aws:lightsail/domainEntry:DomainEntry": {
    replaces: "every other input",
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "no",
    source: "terraform-provider-aws internal/service/lightsail/domain_entry.go (every argument ForceNew)",
  },
  "aws:lightsail/disk:Disk": {
    replaces: ["name", "availabilityZone", "sizeInGb"],
    inPlace: TAGS,
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "always",
    source: "terraform-provider-aws internal/service/lightsail/disk.go",
  },
  "aws:lightsail/disk_attachment:Disk_attachment": {
    replaces: ["diskName", "instanceName", "diskPath"],
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    downtimeOnReplace: "the old attachment's delete stops the instance, detaches the disk and starts the instance again",
    source: "terraform-provider-aws internal/service/lightsail/disk_attachment.go",
  },
  // The off-host copies (infra/components/backups.ts). The bucket is the data; the key and the
  // access grant only let the host reach it.
  "aws:lightsail/bucket:Bucket": {
    replaces: ["name"],
    inPlace: [...TAGS, "bundleId"],
    neverApplied: [],
    // Read only by Delete (empty the bucket first); the program never sets it.
    stateOnly: ["forceDelete"],
    deleteBeforeReplace: "when-named",
    holdsData: "always",
    onUpdate: "UpdateBucketBundle for bundleId; tags through the tagging API",
    source: "hashicorp/terraform-provider-aws internal/service/lightsail/bucket.go (ForceNew: name; Update: tags, bundle_id via UpdateBucketBundle; force_delete read by Delete)",
  },
  "aws:lightsail/bucketAccessKey:BucketAccessKey": {
    replaces: ["bucketName"],
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    // No name: a replacement is a new key (a new secret, which the host is sent) made before the old one goes.
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "hashicorp/terraform-provider-aws internal/service/lightsail/bucket_access_key.go (bucket_name ForceNew, no Update; secret_access_key is returned only by Create)",
  },
  "aws:lightsail/bucketResourceAccess:BucketResourceAccess": {
    replaces: ["bucketName", "resourceName"],
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "hashicorp/terraform-provider-aws internal/service/lightsail/bucket_resource_access.go (both arguments ForceNew, no Update; Delete sets access to deny)",
  },
  "aws:route53/record:Record": {
    replaces: ["name", "zoneId"],
    inPlace: ["type", "ttl", "records", "aliases", "setIdentifier", "allowOverwrite", "healthCheckId"],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "hashicorp/terraform-provider-aws internal/service/route53/record.go (ForceNew: name, zone_id; the rest through UPSERT)",
  },
  // The site-down alert (infra/components/alerts.ts). None of it holds data or serves the site:
  // a replace or delete only re-creates or removes monitoring.
  "aws:route53/healthCheck:HealthCheck": {
    replaces: ["type", "requestInterval", "measureLatency", "referenceName", "routingControlArn"],
    inPlace: [
      ...TAGS,
      "fqdn", "port", "resourcePath", "failureThreshold", "enableSni", "ipAddress", "searchString", "invertHealthcheck", "disabled",
      "regions", "childHealthThreshold", "childHealthchecks", "cloudwatchAlarmName", "cloudwatchAlarmRegion", "insufficientDataHealthStatus", "triggers",
    ],
    neverApplied: [],
    stateOnly: [],
    // No name: a replacement is a new check (new id) made before the old one goes; the alarm follows its id in place.
    deleteBeforeReplace: "never",
    holdsData: "no",
    source:
      "hashicorp/terraform-provider-aws internal/service/route53/health_check.go (ForceNew: type, request_interval, measure_latency, reference_name, routing_control_arn; the rest through UpdateHealthCheck, tags through the tagging API)",
  },
  "aws:cloudwatch/metricAlarm:MetricAlarm": {
    replaces: ["name", "region"],
    inPlace: [
      ...TAGS,
      "actionsEnabled", "alarmActions", "alarmDescription", "comparisonOperator", "datapointsToAlarm", "dimensions", "evaluateLowSampleCountPercentiles",
      "evaluationPeriods", "extendedStatistic", "insufficientDataActions", "metricName", "metricQueries", "namespace", "okActions", "period",
      "statistic", "threshold", "thresholdMetricId", "treatMissingData", "unit", "evaluationCriteria", "evaluationInterval", "warmUpConfiguration",
    ],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "no",
    source:
      "hashicorp/terraform-provider-aws internal/service/cloudwatch/metric_alarm.go (ForceNew: alarm_name, Pulumi's `name`; Update calls PutMetricAlarm with every argument); `region` is the per-resource region of terraform-provider-aws v6 / @pulumi/aws 7, which moves the alarm",
  },
  "aws:sns/topic:Topic": {
    replaces: ["name", "namePrefix", "fifoTopic", "region"],
    inPlace: [
      ...TAGS,
      "displayName", "policy", "deliveryPolicy", "kmsMasterKeyId", "signatureVersion", "tracingConfig", "archivePolicy", "contentBasedDeduplication",
      "fifoThroughputScope",
      ...["application", "firehose", "http", "lambda", "sqs"].flatMap((p) => [`${p}FailureFeedbackRoleArn`, `${p}SuccessFeedbackRoleArn`, `${p}SuccessFeedbackSampleRate`]),
    ],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "no",
    source:
      "hashicorp/terraform-provider-aws internal/service/sns/topic.go (ForceNew: name, name_prefix, fifo_topic; the attributes through SetTopicAttributes)",
  },
  "aws:sns/topicSubscription:TopicSubscription": {
    replaces: ["endpoint", "protocol", "topic", "region"],
    inPlace: ["deliveryPolicy", "filterPolicy", "filterPolicyScope", "rawMessageDelivery", "redrivePolicy", "replayPolicy", "subscriptionRoleArn"],
    neverApplied: [],
    // Read only while creating (how long to wait for a confirmation; e-mail never waits).
    stateOnly: ["confirmationTimeoutInMinutes", "endpointAutoConfirms"],
    // A new address is a new subscription: AWS sends it a confirmation e-mail, and it gets nothing until the link is clicked.
    deleteBeforeReplace: "never",
    holdsData: "no",
    source:
      "hashicorp/terraform-provider-aws internal/service/sns/topic_subscription.go (ForceNew: endpoint, protocol, topic_arn, Pulumi's `topic`; the rest through SetSubscriptionAttributes; confirmation_timeout_in_minutes and endpoint_auto_confirms only read by Create's wait; Delete of a subscription pending confirmation is skipped)",
  },
  "tls:index/privateKey:PrivateKey": {
    replaces: "every other input",
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "hashicorp/terraform-provider-tls internal/provider/resource_private_key.go (algorithm, openssh_comment, rsa_bits, ecdsa_curve: RequiresReplace; Update is a no-op)",
  },
  "random:index/randomPassword:RandomPassword": {
    replaces: "every other input",
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "terraform-provider-random internal/provider/resource_password.go (every attribute RequiresReplace, keepers included)",
  },
  "random:index/randomString:RandomString": {
    replaces: "every other input",
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "terraform-provider-random internal/provider/resource_string.go (every attribute RequiresReplace, keepers included)",
  },
  "command:remote:Command": {
    replaces: ["triggers"],
    inPlace: ["connection", "create", "update", "delete", "stdin", "environment", "addPreviousOutputInEnv", "logging", "stdinFile"],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    onUpdate: "runs `update`, or `create` again when no `update` is given",
    source:
      "pulumi/pulumi-command provider/pkg/provider/common/inputs.go (Triggers: provider:\"replaceOnChanges\"; Update: \"if empty, create will run again\"); @pulumi/command remote/command.js replaceOnChanges [\"triggers[*]\"]",
  },
  "docker:index/network:Network": {
    replaces: "every other input",
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "no",
    source: "kreuzwerker/terraform-provider-docker internal/provider/resource_docker_network.go (every argument ForceNew, no Update)",
  },
  "docker:index/volume:Volume": {
    replaces: "every other input",
    inPlace: [],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "when-named",
    holdsData: "docker-volume",
    source: "kreuzwerker/terraform-provider-docker internal/provider/resource_docker_volume.go (name, driver, driver_opts, labels ForceNew)",
  },
  "docker:index/remoteImage:RemoteImage": {
    replaces: ["name", "triggers", "build", "pullTriggers", "platform"],
    inPlace: [],
    neverApplied: [],
    stateOnly: ["keepLocally", "forceRemove"],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source: "kreuzwerker/terraform-provider-docker internal/provider/resource_docker_image.go (name, triggers, build ForceNew)",
  },
  "docker:index/container:Container": {
    replaces: "every other input",
    inPlace: ["restart", "maxRetryCount", "cpuShares", "cpuSet", "memory", "memorySwap"],
    neverApplied: ["healthcheck"],
    stateOnly: ["wait", "waitTimeout", "mustRun", "start", "attach", "logs", "rm", "destroyGraceSeconds", "removeVolumes"],
    deleteBeforeReplace: "always",
    holdsData: "no",
    source:
      "kreuzwerker/terraform-provider-docker internal/provider/resource_docker_container.go (ForceNew on almost every argument; healthcheck, wait, must_run ... neither ForceNew nor read by Update), resource_docker_container_funcs.go resourceDockerContainerUpdate (restart, resources only); pulumi/pulumi-docker provider/resources.go DeleteBeforeReplace: true",
  },
  "pulumi:providers:docker": {
    replaces: [],
    inPlace: "host sshOpts caFile certPath keyFile registryAuth version disableDockerDaemonCheck".split(" "),
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source:
      "pulumi/pulumi-terraform-bridge#1683 (DiffConfig replaces only for ForcesProviderReplace fields; pulumi-docker marks none), pulumi/pulumi#18509 (explicit providers defer to DiffConfig)",
  },
  // The alerts' explicit provider (us-east-1, where Route 53's metrics are). Its region is fixed.
  "pulumi:providers:aws": {
    replaces: [],
    inPlace: ["region", "profile", "skipCredentialsValidation", "skipRegionValidation", "skipMetadataApiCheck", "skipRequestingAccountId", "version"],
    neverApplied: [],
    stateOnly: [],
    deleteBeforeReplace: "never",
    holdsData: "no",
    source:
      "pulumi/pulumi-terraform-bridge#1683 (DiffConfig replaces only for ForcesProviderReplace fields); pulumi/pulumi-aws#5656 (region no longer ForcesProviderReplace from @pulumi/aws 7: a new region would leave the resources where they are, so the program never changes it)",
  },
};

/** Where the program mounts the Lightsail disk: a Docker volume bound under it keeps its data across a new instance. */
export { DATA_MOUNT as DATA_DISK_MOUNT } from "../../infra/model/derive.js";

// How the engine applies the options (tools/changes/decide.ts and flags.ts follow these):
// - retainOnDelete skips the provider's Delete "when deleting or replacing the resource"
//   (https://www.pulumi.com/docs/iac/concepts/resources/options/retainondelete/; pulumi/pulumi#8746:
//   "or replaces it in the state file in the case of replaces"): a retained firewall's old
//   ports are never closed.
// - protect refuses a replace only when the old and the new state are both protected
//   (pulumi/pulumi#8810, #8873, step_generator.go), and any delete of a resource protected in
//   state (step.go DeleteStep); the whole run stops.
// - a delete-before-replace resource's dependents are replaced too, and deleted before it,
//   when the dependent input is replace-on-change for them (step_generator.go
//   calculateDependentReplacements); dependsOn alone replaces nothing.

/** A type's own package ("aws", "docker", "timetracker" ...): components have no provider row. */
const packageOf = (type: string) => (type.startsWith("pulumi:providers:") ? "pulumi:providers" : type.split(":")[0] ?? "");
const PROVIDER_PACKAGES = new Set(Object.keys(PROVIDER_RULES).map(packageOf));

/** Component resources and the stack itself: the engine only records them. */
export const isComponent = (type: string) => type === "pulumi:pulumi:Stack" || !PROVIDER_PACKAGES.has(packageOf(type));

export type InputEffect = "replace" | "in place" | "never applied" | "state only";

/** What changing `input` does to a resource of `type`; an input the table does not know replaces, to be safe. */
export function effectOf(type: string, input: string): InputEffect {
  const rule = PROVIDER_RULES[type];
  if (!rule) return "replace";
  if (rule.inPlace.includes(input)) return "in place";
  if (rule.neverApplied.includes(input)) return "never applied";
  if (rule.stateOnly.includes(input)) return "state only";
  return "replace";
}

/** Whether the table names `input` for `type` (tests: every declared input is classified). */
export function isClassified(type: string, input: string): boolean {
  const rule = PROVIDER_RULES[type];
  if (!rule) return false;
  return (
    rule.replaces === "every other input" ||
    [rule.replaces, rule.inPlace, rule.neverApplied, rule.stateOnly].some((list) => (list as readonly string[]).includes(input))
  );
}
