import { describe, expect, it, vi } from "vitest";
import type { EnvironmentDefinition } from "../../infra/model/schema.js";

/**
 * The site-down alert (`alerts.email`): a Route 53 check of the public site, a CloudWatch alarm
 * on it in us-east-1, and an SNS e-mail subscription. Only a stack that asks for it gets any of it.
 */

// A client as `npm run new-client` starts one, with an alert address; and one that serves plain HTTP.
const alerted = {
  name: "zz-test-alerts",
  domain: "timetracker.zz-alerts.test.example",
  host: { region: "eu-west-2" },
  alerts: { email: "ops@zz-alerts.test.example" },
} satisfies EnvironmentDefinition;
const plainHttp = {
  name: "zz-test-alerts-http",
  domain: "timetracker.zz-alerts-http.test.example",
  tls: { mode: "off" },
  alerts: { email: "ops@zz-alerts-http.test.example" },
} satisfies EnvironmentDefinition;
// The same client without alerts.
const quiet = { name: "zz-test-quiet", domain: "timetracker.zz-quiet.test.example" } satisfies EnvironmentDefinition;

vi.mock("../../stacks/catalog.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../stacks/catalog.js")>();
  return { catalog: [...original.catalog, alerted, plainHttp, quiet] };
});

const { planFor, validateCatalog } = await import("../../infra/model/catalog.js");
const { formatProblem } = await import("../../infra/model/problems.js");
const { EnvironmentSchema } = await import("../../infra/model/schema.js");
const { catalog } = await import("../../stacks/catalog.js");
const { runProgram } = await import("../../tools/mock-engine.js");
const { mockConfig } = await import("../../tools/mock-config.js");
const { localize } = await import("../../tools/rehearsal/localize.js");
const { expectWellFormedStack, secretValueOf } = await import("./expectations.js");

const CHECK = "aws:route53/healthCheck:HealthCheck";
const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";
const TOPIC = "aws:sns/topic:Topic";
const SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription";
const AWS_PROVIDER = "pulumi:providers:aws";
const COMPONENT = "timetracker:index:SiteAlerts";
const CONTAINER = "docker:index/container:Container";
const ALERT_TYPES = [CHECK, ALARM, TOPIC, SUBSCRIPTION, AWS_PROVIDER, COMPONENT];

const runs = new Map<string, ReturnType<typeof runProgram>>();
/** One run per stack under the mocks, shared by the tests that only read it. */
const run = (stack: string) => {
  if (!runs.has(stack)) {
    const { config, secretKeys } = mockConfig(planFor(catalog, stack));
    runs.set(stack, runProgram(stack, config, secretKeys));
  }
  return runs.get(stack)!;
};

describe("the site-down alert of a client-shaped stack under Pulumi mocks (no Pulumi CLI here)", () => {
  const plan = planFor(catalog, alerted.name);

  it("derives every name and value in the Plan", () => {
    expect(plan.alerts).toEqual({
      email: "ops@zz-alerts.test.example",
      region: "us-east-1",
      check: {
        name: "timetracker-zz-test-alerts-site",
        type: "HTTPS",
        fqdn: "timetracker.zz-alerts.test.example",
        port: 443,
        path: "/api/health",
        failureThreshold: 3,
        requestIntervalSeconds: 30,
      },
      alarm: { name: "timetracker-zz-test-alerts-site-down", periodSeconds: 60, evaluationPeriods: 2 },
      topicName: "timetracker-zz-test-alerts-alerts",
      hostStatus: [
        ["disk", "disk-full", "A disk of the host is nearly full"],
        ["backup", "backup-stale", "No copy of the database reached the bucket for over a day"],
        ["nightly", "nightly-dump-failed", "The host's last nightly dump or its copy to the bucket failed"],
      ].map(([condition, alarm, description]) => ({
        condition,
        check: {
          name: `timetracker-zz-test-alerts-host-${condition}`,
          type: "HTTPS_STR_MATCH",
          fqdn: "timetracker.zz-alerts.test.example",
          port: 443,
          pathPrefix: "/host-status/",
          pathSuffix: `/${condition}`,
          searchString: `${condition}: ok`,
          failureThreshold: 3,
          requestIntervalSeconds: 30,
        },
        alarm: {
          name: `timetracker-zz-test-alerts-${alarm}`,
          periodSeconds: 60,
          evaluationPeriods: 2,
          description: `${description}: npm run ops -- --stack zz-test-alerts health`,
        },
      })),
    });
    // Each condition's check reads its own document where Caddy serves it, and looks for the line it starts with while that condition is fine.
    expect(plan.alerts?.hostStatus.map((h) => [h.condition, h.check.pathPrefix, h.check.pathSuffix, h.check.searchString])).toEqual(
      plan.hostStatus.conditions.map((c) => [c.name, plan.hostStatus.pathPrefix, c.pathSuffix, c.okText]),
    );
    // The checked path is the backend's ready path (database and Redis answer), reached through Caddy's /api/* route,
    // and the checkers' Host header, the domain, is one the backend allows.
    expect(plan.alerts?.check.path).toBe(plan.containers.backend.release?.readyPath);
    expect(plan.caddy.routes.find((r) => r.path === "/api/*")?.service).toBe("backend");
    expect(plan.allowedHosts).toContain(plan.alerts?.check.fqdn);
  });

  it("checks https://<domain>/api/health from Route 53, with SNI, tagged with the stack", async () => {
    const result = await run(alerted.name);
    const check = result.one(CHECK, "alerts-check");
    expect(check.inputs).toEqual({
      type: "HTTPS",
      fqdn: "timetracker.zz-alerts.test.example",
      port: 443,
      resourcePath: "/api/health",
      failureThreshold: 3,
      requestInterval: 30,
      enableSni: true,
      tags: { project: "timetracker", stack: "zz-test-alerts", Name: "timetracker-zz-test-alerts-site" },
    });
    // Route 53 is global: the check goes through the stack's own provider.
    expect(check.options.provider).toBeUndefined();
    expect(check.options.parent).toBe("set");
  });

  it("alarms in us-east-1 when the check's HealthCheckStatus stays below 1, and tells the topic both ways", async () => {
    const result = await run(alerted.name);
    const alarm = result.one(ALARM, "alerts-alarm");
    expect(alarm.inputs).toMatchObject({
      name: "timetracker-zz-test-alerts-site-down",
      namespace: "AWS/Route53",
      metricName: "HealthCheckStatus",
      dimensions: { HealthCheckId: "alerts-check-id" },
      statistic: "Minimum",
      period: 60,
      evaluationPeriods: 2,
      threshold: 1,
      comparisonOperator: "LessThanThreshold",
      treatMissingData: "breaching",
      alarmActions: ["alerts-topic-id"],
      okActions: ["alerts-topic-id"],
      tags: { project: "timetracker", stack: "zz-test-alerts" },
    });
    expect(String(alarm.inputs.alarmDescription)).toContain("https://timetracker.zz-alerts.test.example/api/health");
    // The dimension is the check's id, the actions the topic (a topic's id is its ARN), as the engine's dependencies say.
    expect(alarm.inputDeps).toMatchObject({ dimensions: ["alerts-check"], alarmActions: ["alerts-topic"], okActions: ["alerts-topic"] });
    // Its region is its provider's, us-east-1, though the host is in eu-west-2.
    expect(plan.host.region).toBe("eu-west-2");
    expect(alarm.options.provider).toBe("alerts-us-east-1");
    expect(alarm.inputs.region).toBeUndefined();
    const providers = result.byType(AWS_PROVIDER);
    expect(providers.map((p) => [p.name, p.inputs.region])).toEqual([["alerts-us-east-1", "us-east-1"]]);
    expect(providers[0]?.options.parent).toBe("set");
  });

  it("checks each condition of the host's report at /host-status/<token>/<condition> for `<condition>: ok` (the token a secret, the one Caddy has), with SNI", async () => {
    const result = await run(alerted.name);
    const token = secretValueOf(plan, result, "hostStatusToken");
    // 32 letters and digits from a generator kept in the state: no one guesses the path.
    expect(result.one("random:index/randomPassword:RandomPassword", "secrets-hostStatusToken").inputs).toMatchObject({ length: 32, special: false });
    for (const condition of ["disk", "backup", "nightly"]) {
      const check = result.one(CHECK, `alerts-host-${condition}-check`);
      expect(check.inputs).toEqual({
        type: "HTTPS_STR_MATCH",
        fqdn: "timetracker.zz-alerts.test.example",
        port: 443,
        resourcePath: `/host-status/${token}/${condition}`,
        searchString: `${condition}: ok`,
        failureThreshold: 3,
        requestInterval: 30,
        enableSni: true,
        tags: { project: "timetracker", stack: "zz-test-alerts", Name: `timetracker-zz-test-alerts-host-${condition}` },
      });
      expect(check.secretPaths).toEqual(["resourcePath"]);
      expect(check.options.provider).toBeUndefined();
    }
    // Caddy answers those paths from the same value in its environment.
    expect(result.one(CONTAINER, "app-caddy").inputs.envs).toEqual([`TIMETRACKER_STATUS_TOKEN=${token}`]);
  });

  it("alarms on each condition's check as on the site's, to the same topic, named for the condition (the e-mail's subject)", async () => {
    const result = await run(alerted.name);
    const subjects: string[] = [];
    for (const [condition, name] of [["disk", "disk-full"], ["backup", "backup-stale"], ["nightly", "nightly-dump-failed"]] as const) {
      const alarm = result.one(ALARM, `alerts-host-${condition}-alarm`);
      expect(alarm.inputs).toMatchObject({
        name: `timetracker-zz-test-alerts-${name}`,
        namespace: "AWS/Route53",
        metricName: "HealthCheckStatus",
        dimensions: { HealthCheckId: `alerts-host-${condition}-check-id` },
        statistic: "Minimum",
        period: 60,
        evaluationPeriods: 2,
        threshold: 1,
        comparisonOperator: "LessThanThreshold",
        treatMissingData: "breaching",
        alarmActions: ["alerts-topic-id"],
        okActions: ["alerts-topic-id"],
        tags: { project: "timetracker", stack: "zz-test-alerts" },
      });
      expect(alarm.inputs.alarmDescription).toMatch(/: npm run ops -- --stack zz-test-alerts health$/);
      expect(String(alarm.inputs.alarmDescription).length).toBeLessThanOrEqual(120);
      expect(alarm.inputDeps).toMatchObject({ dimensions: [`alerts-host-${condition}-check`], alarmActions: ["alerts-topic"], okActions: ["alerts-topic"] });
      expect(alarm.options.provider).toBe("alerts-us-east-1");
      subjects.push(String(alarm.inputs.name));
    }
    // Every e-mail's subject differs, and none is the site's.
    expect(new Set([...subjects, result.one(ALARM, "alerts-alarm").inputs.name]).size).toBe(4);
  });

  it("subscribes the address by e-mail to the topic, in us-east-1", async () => {
    const result = await run(alerted.name);
    const topic = result.one(TOPIC, "alerts-topic");
    expect(topic.inputs).toMatchObject({ name: "timetracker-zz-test-alerts-alerts", displayName: "TimeTracker zz-test-alerts" });
    expect(topic.options.provider).toBe("alerts-us-east-1");
    const subscription = result.one(SUBSCRIPTION, "alerts-email");
    expect(subscription.inputs).toEqual({ topic: "alerts-topic-id", protocol: "email", endpoint: "ops@zz-alerts.test.example" });
    expect(subscription.inputDeps).toEqual({ topic: ["alerts-topic"] });
    expect(subscription.options.provider).toBe("alerts-us-east-1");
  });

  it("adds exactly the alert's resources to an otherwise well-formed stack", async () => {
    const result = await run(alerted.name);
    await expectWellFormedStack(plan, result);
    const added = result.resources.filter((r) => ALERT_TYPES.includes(r.type)).map((r) => `${r.type} ${r.name}`);
    expect(added.sort()).toEqual(
      [
        `${AWS_PROVIDER} alerts-us-east-1`,
        `${ALARM} alerts-alarm`,
        ...["disk", "backup", "nightly"].flatMap((c) => [`${ALARM} alerts-host-${c}-alarm`, `${CHECK} alerts-host-${c}-check`]),
        `${CHECK} alerts-check`,
        `${SUBSCRIPTION} alerts-email`,
        `${TOPIC} alerts-topic`,
        `${COMPONENT} alerts`,
      ].sort(),
    );
    // A client without alerts declares everything else (the stack itself is named after its stack).
    const without = await run(quiet.name);
    const rest = (r: Awaited<typeof without>) =>
      r.resources.filter((x) => !ALERT_TYPES.includes(x.type) && x.type !== "pulumi:pulumi:Stack").map((x) => `${x.type} ${x.name}`).sort();
    expect(rest(result)).toEqual(rest(without));
  });

  it("checks a stack that serves plain HTTP (tls.mode off) over HTTP on port 80, without SNI", async () => {
    const result = await run(plainHttp.name);
    expect(result.one(CHECK, "alerts-check").inputs).toMatchObject({ type: "HTTP", port: 80, fqdn: plainHttp.domain, resourcePath: "/api/health" });
    expect(result.one(CHECK, "alerts-check").inputs.enableSni).toBeUndefined();
    expect(result.one(CHECK, "alerts-host-disk-check").inputs).toMatchObject({ type: "HTTP_STR_MATCH", port: 80, fqdn: plainHttp.domain, searchString: "disk: ok" });
    expect(result.one(CHECK, "alerts-host-disk-check").inputs.enableSni).toBeUndefined();
    expect(result.one(SUBSCRIPTION, "alerts-email").inputs.endpoint).toBe("ops@zz-alerts-http.test.example");
  });
});

describe("a stack with alerts under Pulumi mocks: prod, and every stack of the catalog that has them", () => {
  const stacks = catalog.filter((d) => d.alerts && d.name !== alerted.name && d.name !== plainHttp.name).map((d) => d.name);

  it("prod e-mails its operators", () => {
    expect(stacks).toContain("prod");
    expect(planFor(catalog, "prod").alerts?.email).toBe("ops@shaemarcus.com");
  });

  it.each(stacks)("%s declares the site check and alarm, and a check and alarm per host condition, all to its address", async (stack) => {
    const plan = planFor(catalog, stack);
    const result = await run(stack);
    const names = (type: string) => result.byType(type).map((r) => String(r.inputs.name ?? (r.inputs.tags as Record<string, string>).Name)).sort();
    expect(names(ALARM)).toEqual(["site-down", "disk-full", "backup-stale", "nightly-dump-failed"].map((a) => `timetracker-${stack}-${a}`).sort());
    expect(names(CHECK)).toEqual(["site", "host-disk", "host-backup", "host-nightly"].map((c) => `timetracker-${stack}-${c}`).sort());
    expect(result.one(SUBSCRIPTION, "alerts-email").inputs.endpoint).toBe(plan.alerts?.email);
  });
});

describe("a stack without alerts under Pulumi mocks", () => {
  // Every stack of the committed catalog without alerts, and a client without them.
  const stacks = catalog.filter((d) => !d.alerts).map((d) => d.name);

  it("covers the committed catalog's stacks without alerts and the quiet client", () => {
    expect(stacks).toContain("staging");
    expect(stacks).not.toContain("prod");
    expect(stacks).toContain(quiet.name);
    expect(stacks).not.toContain(alerted.name);
  });

  it.each(stacks)("%s has no alerts in its Plan and declares none of the alert's types", async (stack) => {
    expect(planFor(catalog, stack).alerts).toBeUndefined();
    const declared = (await run(stack)).resources.filter((r) => ALERT_TYPES.includes(r.type)).map((r) => `${r.type} ${r.name}`);
    expect(declared).toEqual([]);
  });
});

describe("alerts.email in the definition", () => {
  const problems = (definition: unknown) => {
    const result = validateCatalog([...catalog.filter((d) => d.name !== alerted.name), definition]);
    return result.ok ? [] : result.problems.map(formatProblem);
  };

  it.each(["not-an-email", "ops@", "ops@example", " ops@example.com", ""])("refuses %j at alerts.email", (email) => {
    expect(problems({ ...alerted, alerts: { email } })).toEqual([`${alerted.name}.alerts.email: must be an e-mail address such as ops@example.com`]);
  });

  it("refuses an alerts block without an address, or with a field it does not know", () => {
    expect(problems({ ...alerted, alerts: {} }).join("\n")).toContain(`${alerted.name}.alerts.email:`);
    expect(problems({ ...alerted, alerts: { email: "ops@example.com", sms: "+15550100" } }).join("\n")).toContain("unknown field 'sms'");
  });

  it("is optional: a definition without it parses with no alerts", () => {
    expect(EnvironmentSchema.parse(quiet).alerts).toBeUndefined();
    expect(EnvironmentSchema.parse(alerted).alerts).toEqual({ email: "ops@zz-alerts.test.example" });
  });

  it("is left out of the rehearsal's definition: the rehearsal has no AWS", () => {
    const local = localize(alerted);
    expect("alerts" in local).toBe(false);
    expect(local.name).toBe(alerted.name);
  });
});
