import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AlertsPlan } from "../model/plan.js";

export interface SiteAlertsArgs {
  /** The stack's name, for the tags. */
  stack: string;
  /** `plan.alerts`: the checks, the alarms, the topic and the address, every name and value resolved. */
  alerts: AlertsPlan;
  /** The secret end of the host status's path (secret hostStatusToken, which Caddy has too). */
  hostStatusToken: pulumi.Input<string>;
  /**
   * The stack's `aws:profile`, if it sets one. The alarm and the topic go through an explicit
   * provider (they must be in `alerts.region`), and an explicit provider reads no `aws:*`
   * stack config: without it, they could be created with other credentials than the rest.
   */
  awsProfile?: string;
}

/** Route 53 publishes 1 (healthy) or 0 (unhealthy) for each health check, once a minute, in us-east-1 only. */
const HEALTH_METRIC = { namespace: "AWS/Route53", metricName: "HealthCheckStatus" } as const;

/**
 * An e-mail when the site is down: a Route 53 health check of the public site (requested from
 * Route 53's checkers around the world, so it sees what a visitor sees: DNS, the firewall,
 * Caddy, TLS, the backend, the database and Redis), a CloudWatch alarm on its status, and an
 * SNS topic with an e-mail subscription that gets the alarm and the all-clear. The alarm and
 * the topic are in us-east-1, where Route 53's metrics are, whatever region the host is in.
 * A check and an alarm per condition of the host's own report (infra/render/host-status.ts),
 * each on its secret path, e-mail the same topic when a disk fills up, the bucket copies stop
 * or a nightly dump fails, with the condition in the subject.
 */
export class SiteAlerts extends pulumi.ComponentResource {
  /** The Route 53 health check's id (the alarm's HealthCheckId dimension). */
  public readonly healthCheckId: pulumi.Output<string>;
  /** The host status checks' ids, one per condition, in the order of `alerts.hostStatus`. */
  public readonly hostStatusCheckIds: pulumi.Output<string>[];
  /** The SNS topic's ARN (a topic's id is its ARN). */
  public readonly topicArn: pulumi.Output<string>;

  constructor(name: string, args: SiteAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("timetracker:index:SiteAlerts", name, {}, opts);
    const { alerts } = args;
    const { check } = alerts;
    const tags = { project: "timetracker", stack: args.stack };
    const url = `${check.type.toLowerCase()}://${check.fqdn}${check.path}`;

    // Route 53 is global: the check needs no region, so it goes through the stack's provider.
    const healthCheck = new aws.route53.HealthCheck(
      `${name}-check`,
      {
        type: check.type,
        fqdn: check.fqdn,
        port: check.port,
        resourcePath: check.path,
        failureThreshold: check.failureThreshold,
        requestInterval: check.requestIntervalSeconds,
        // Caddy picks the certificate by SNI: a TLS hello without it fails the handshake.
        ...(check.type === "HTTPS" ? { enableSni: true } : {}),
        tags: { ...tags, Name: check.name },
      },
      { parent: this },
    );
    // The host's report, one check per condition: healthy only with a 2xx or 3xx answer whose
    // start says the condition is fine (the writer answers 503 otherwise, and an unknown path
    // gets the app's page, without that line).
    const statusChecks = alerts.hostStatus.map(
      ({ condition, check: status }) =>
        new aws.route53.HealthCheck(
          `${name}-host-${condition}-check`,
          {
            type: status.type,
            fqdn: status.fqdn,
            port: status.port,
            resourcePath: pulumi.secret(pulumi.interpolate`${status.pathPrefix}${args.hostStatusToken}${status.pathSuffix}`),
            searchString: status.searchString,
            failureThreshold: status.failureThreshold,
            requestInterval: status.requestIntervalSeconds,
            ...(status.type === "HTTPS_STR_MATCH" ? { enableSni: true } : {}),
            tags: { ...tags, Name: status.name },
          },
          { parent: this },
        ),
    );

    const provider = new aws.Provider(
      `${name}-${alerts.region}`,
      { region: alerts.region, ...(args.awsProfile ? { profile: args.awsProfile } : {}) },
      { parent: this },
    );
    const inRegion = { parent: this, provider };

    const topic = new aws.sns.Topic(
      `${name}-topic`,
      // The display name is the sender's name on the e-mails.
      { name: alerts.topicName, displayName: `TimeTracker ${args.stack}`, tags },
      inRegion,
    );
    // An e-mail subscription stays "pending confirmation" until the address clicks the link in
    // AWS's confirmation e-mail; until then nothing is delivered to it. The provider does not wait.
    new aws.sns.TopicSubscription(`${name}-email`, { topic: topic.id, protocol: "email", endpoint: alerts.email }, inRegion);

    // The alarm's name is the e-mail's subject (ALARM: "<name>" in US East (N. Virginia)), and the all-clear's.
    const alarm = (resource: string, plan: AlertsPlan["alarm"], checkId: pulumi.Output<string>, description: string) =>
      new aws.cloudwatch.MetricAlarm(
        resource,
        {
          name: plan.name,
          // Kept short: the e-mail quotes it, and resources/<stack>.md shows it in full under 120 characters.
          alarmDescription: description,
          ...HEALTH_METRIC,
          dimensions: { HealthCheckId: checkId },
          statistic: "Minimum",
          period: plan.periodSeconds,
          evaluationPeriods: plan.evaluationPeriods,
          threshold: 1,
          comparisonOperator: "LessThanThreshold",
          // No data at all (the check deleted or disabled, Route 53 not reporting) is no proof all is well.
          treatMissingData: "breaching",
          alarmActions: [topic.id],
          okActions: [topic.id],
          tags,
        },
        inRegion,
      );
    alarm(`${name}-alarm`, alerts.alarm, healthCheck.id, `${url} fails Route 53's health checks`);
    alerts.hostStatus.forEach(({ condition, alarm: plan }, at) => alarm(`${name}-host-${condition}-alarm`, plan, statusChecks[at]!.id, plan.description));

    this.healthCheckId = healthCheck.id;
    this.hostStatusCheckIds = statusChecks.map((check) => check.id);
    this.topicArn = topic.id;
    this.registerOutputs({ healthCheckId: this.healthCheckId, hostStatusCheckIds: this.hostStatusCheckIds, topicArn: this.topicArn });
  }
}
