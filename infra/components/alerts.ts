import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AlertsPlan } from "../model/plan.js";

export interface SiteAlertsArgs {
  /** The stack's name, for the tags. */
  stack: string;
  /** `plan.alerts`: the check, the alarm, the topic and the address, every name and value resolved. */
  alerts: AlertsPlan;
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
 */
export class SiteAlerts extends pulumi.ComponentResource {
  /** The Route 53 health check's id (the alarm's HealthCheckId dimension). */
  public readonly healthCheckId: pulumi.Output<string>;
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

    new aws.cloudwatch.MetricAlarm(
      `${name}-alarm`,
      {
        name: alerts.alarm.name,
        // Kept short: the e-mail quotes it, and resources/<stack>.md shows it in full under 120 characters.
        alarmDescription: `${url} fails Route 53's health checks`,
        ...HEALTH_METRIC,
        dimensions: { HealthCheckId: healthCheck.id },
        statistic: "Minimum",
        period: alerts.alarm.periodSeconds,
        evaluationPeriods: alerts.alarm.evaluationPeriods,
        threshold: 1,
        comparisonOperator: "LessThanThreshold",
        // No data at all (the check deleted or disabled, Route 53 not reporting) is no proof the site is up.
        treatMissingData: "breaching",
        alarmActions: [topic.id],
        okActions: [topic.id],
        tags,
      },
      inRegion,
    );

    this.healthCheckId = healthCheck.id;
    this.topicArn = topic.id;
    this.registerOutputs({ healthCheckId: this.healthCheckId, topicArn: this.topicArn });
  }
}
