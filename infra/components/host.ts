import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { Plan } from "../model/plan.js";
import { READY_MARKER } from "../render/launch-script.js";

export interface LightsailHostArgs {
  /** The stack's resolved plan; the host reads `plan.host`, `plan.domains` and `plan.stack`. */
  plan: Plan;
  /** The rendered launch script (user data). */
  launchScript: string;
  /** OpenSSH public key installed for `plan.host.sshUser`. */
  sshPublicKey: string;
  /** The matching private key, for remote commands. Kept secret. */
  sshPrivateKey: pulumi.Input<string>;
  /** Path of the private key on the machine running Pulumi, for the Docker provider's `ssh`. */
  sshPrivateKeyPath: string;
}

const ANYWHERE = { cidrs: ["0.0.0.0/0"], ipv6Cidrs: ["::/0"] };

/**
 * One Lightsail instance per stack: key pair, instance with daily snapshots, static IP,
 * firewall (80/443 from anywhere, 22 from admin CIDRs only), optional DNS, and a Docker
 * provider that reaches the host's daemon over SSH once the launch script has finished.
 */
export class LightsailHost extends pulumi.ComponentResource {
  public readonly instanceName: pulumi.Output<string>;
  public readonly staticIp: pulumi.Output<string>;
  /** SSH connection for remote commands. */
  public readonly connection: command.types.input.remote.ConnectionArgs;
  /** Docker provider on the host's daemon, usable once the host is ready. */
  public readonly docker: docker.Provider;
  /** Completes when the launch script is done and Docker answers. */
  public readonly ready: command.remote.Command;

  constructor(name: string, args: LightsailHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("timetracker:index:LightsailHost", name, {}, opts);
    const { plan } = args;
    const host = plan.host;
    const tags = { project: "timetracker", stack: plan.stack };

    const keyPair = new aws.lightsail.KeyPair(
      `${name}-key`,
      { name: host.name, publicKey: args.sshPublicKey, tags },
      { parent: this },
    );

    const instance = new aws.lightsail.Instance(
      `${name}-instance`,
      {
        name: host.name,
        availabilityZone: host.availabilityZone,
        blueprintId: host.blueprint,
        bundleId: host.bundle,
        keyPairName: keyPair.name,
        userData: args.launchScript,
        addOn: { type: "AutoSnapshot", snapshotTime: host.snapshotTimeUtc, status: "Enabled" },
        tags,
      },
      { parent: this, protect: plan.protect },
    );

    // The default public IP changes on stop/start; DNS points at this one.
    const staticIp = new aws.lightsail.StaticIp(`${name}-ip`, { name: host.staticIpName }, { parent: this });
    const attachment = new aws.lightsail.StaticIpAttachment(
      `${name}-ip-attachment`,
      { staticIpName: staticIp.name, instanceName: instance.name },
      { parent: this },
    );

    // Lightsail closes every port this list omits, 22 included.
    new aws.lightsail.InstancePublicPorts(
      `${name}-firewall`,
      {
        instanceName: instance.name,
        portInfos: [
          { protocol: "tcp", fromPort: 80, toPort: 80, ...ANYWHERE },
          { protocol: "tcp", fromPort: 443, toPort: 443, ...ANYWHERE },
          ...(host.adminCidrs.length > 0 ? [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrs: host.adminCidrs }] : []),
        ],
      },
      { parent: this, dependsOn: [attachment] },
    );

    for (const record of plan.dns) {
      if (host.dns === "lightsail") {
        new aws.lightsail.DomainEntry(
          `${name}-dns-${record.fqdn}`,
          { domainName: record.zone, name: record.name, type: "A", target: staticIp.ipAddress },
          { parent: this },
        );
      } else if (host.dns === "route53") {
        const zone = aws.route53.getZoneOutput({ name: record.zone, privateZone: false }, { parent: this });
        new aws.route53.Record(
          `${name}-dns-${record.fqdn}`,
          { zoneId: zone.zoneId, name: record.fqdn, type: "A", ttl: 300, records: [staticIp.ipAddress] },
          { parent: this },
        );
      }
    }

    this.instanceName = instance.name;
    this.staticIp = staticIp.ipAddress;
    this.connection = {
      host: staticIp.ipAddress,
      user: host.sshUser,
      privateKey: pulumi.secret(args.sshPrivateKey),
      // A new instance takes a minute or two to accept SSH.
      dialErrorLimit: 60,
      perDialTimeout: 10,
    };

    // cloud-init exits 2 for "done, with recoverable errors"; the marker says the script finished.
    this.ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: this.connection,
        create: [
          "rc=0; cloud-init status --wait >/dev/null || rc=$?",
          '[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || { echo "cloud-init failed ($rc): see /var/log/cloud-init-output.log" >&2; exit 1; }',
          `test -f ${READY_MARKER} || { echo "launch script did not finish: see /var/log/cloud-init-output.log" >&2; exit 1; }`,
          "docker info >/dev/null",
        ].join("\n"),
        triggers: [instance.arn],
      },
      { parent: this, dependsOn: [attachment] },
    );

    this.docker = new docker.Provider(
      `${name}-docker`,
      {
        host: pulumi.interpolate`ssh://${host.sshUser}@${staticIp.ipAddress}`,
        sshOpts: ["-i", args.sshPrivateKeyPath, "-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=30"],
      },
      { parent: this, dependsOn: [this.ready] },
    );

    this.registerOutputs({ instanceName: this.instanceName, staticIp: this.staticIp });
  }
}
