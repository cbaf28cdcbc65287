import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { Plan } from "../model/plan.js";
import { renderReadyCheck } from "../render/ready-check.js";
import { dockerSshOptions, hostKeyIn, verifiedHostKey, type ReportedHostKey } from "./known-hosts.js";

export interface LightsailHostArgs {
  /** The stack's resolved plan; the host reads `plan.host`, `plan.domains` and `plan.stack`. */
  plan: Plan;
  /** The rendered launch script (user data): fixed, so no edit replaces the instance. */
  launchScript: string;
  /** The rendered host setup, run as root on every new instance and whenever it changes. */
  hostSetup: string;
  /**
   * OpenSSH public key installed for `plan.host.sshUser`. The private key never reaches the
   * program or its state: every SSH connection takes it from the operator's ssh-agent
   * (`SSH_AUTH_SOCK`).
   */
  sshPublicKey: string;
  /**
   * The host keys Lightsail reports for an instance, out of band (GetInstanceAccessDetails):
   * the key the first contact sees is pinned only if it is one of them.
   */
  reportedHostKeys: (instanceName: string) => Promise<ReportedHostKey[]>;
}

const ANYWHERE = { cidrs: ["0.0.0.0/0"], ipv6Cidrs: ["::/0"] };

/**
 * One Lightsail instance per stack and what outlives it: key pair, a disposable instance
 * with daily snapshots, a protected static IP and data disk, the firewall (80/443 from
 * anywhere, 22 from admin CIDRs only), optional DNS, the host setup over SSH, and a Docker
 * provider that reaches the host's daemon once all of that is done.
 */
export class LightsailHost extends pulumi.ComponentResource {
  public readonly instanceName: pulumi.Output<string>;
  public readonly staticIp: pulumi.Output<string>;
  /** SSH connection for remote commands, checking the instance's pinned host key. */
  public readonly connection: command.types.input.remote.ConnectionArgs;
  /** The instance's SSH host key, pinned at the first contact (`host-ready`). */
  public readonly hostKey: pulumi.Output<string>;
  /** Docker provider on the host's daemon, usable once the host is ready. */
  public readonly docker: docker.Provider;
  /** Completes when the host is set up: launch script done, data disk mounted, Docker configured. */
  public readonly setup: command.remote.Command;
  /**
   * Changes whenever the instance is replaced. Everything on the host carries it in an input
   * the provider replaces on, so a new instance gets new containers, not "unchanged" state.
   */
  public readonly generation: pulumi.Output<string>;

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
      // Disposable: a new bundle, key or blueprint replaces it; the data is on the disk.
      { parent: this },
    );

    // What must outlive the instance is protected and kept even if the stack is destroyed.
    const kept = { parent: this, protect: true, retainOnDelete: true };
    // The default public IP changes on stop/start; DNS points at this one.
    const staticIp = new aws.lightsail.StaticIp(`${name}-ip`, { name: host.staticIpName }, kept);
    const attachment = new aws.lightsail.StaticIpAttachment(
      `${name}-ip-attachment`,
      { staticIpName: staticIp.name, instanceName: instance.name },
      { parent: this },
    );

    const disk = new aws.lightsail.Disk(
      `${name}-disk`,
      { name: host.dataDisk.name, availabilityZone: host.availabilityZone, sizeInGb: host.dataDisk.sizeGb, tags },
      kept,
    );
    const diskAttachment = new aws.lightsail.Disk_attachment(
      `${name}-disk-attachment`,
      { diskName: disk.name, instanceName: instance.name, diskPath: host.dataDisk.devicePath },
      { parent: this },
    );

    // Lightsail closes every port this list omits, 22 included. Any edit of the list
    // replaces this resource create-then-delete, and the old one's delete would close every
    // port it listed, 80 and 443 included (pulumi/pulumi-aws#1511). The create already
    // puts the whole new set (PutInstancePublicPorts closes what it omits), so the old
    // one's delete is skipped: nothing is left to undo.
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
      { parent: this, dependsOn: [attachment], retainOnDelete: true },
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
    this.generation = instance.arn;
    this.staticIp = staticIp.ipAddress;
    // No private key: pulumi-command takes it from SSH_AUTH_SOCK when the connection names
    // none (@pulumi/command types: agentSocketPath "Default to environment variable
    // SSH_AUTH_SOCK if present"). Nothing in the state is a secret key or a local path.
    const firstContact = {
      host: staticIp.ipAddress,
      user: host.sshUser,
      // A new instance takes a minute or two to accept SSH.
      dialErrorLimit: 60,
      perDialTimeout: 10,
    };

    // cloud-init exits 2 for "done, with recoverable errors"; the marker says the script
    // finished. This session opened before the host setup added the user to the docker
    // group, so it asks Docker through sudo. It is the first contact with a new instance:
    // the host key it sees, once Lightsail reports the same, is pinned for every later connection.
    const ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: firstContact,
        // Re-runs the launch script when its marker is missing: a failed first boot is recovered by the next `up`.
        create: renderReadyCheck(),
        triggers: [instance.arn],
      },
      { parent: this, dependsOn: [attachment] },
    );
    // Pinned only once Lightsail vouches for it; before that, only the ready check (no
    // secret) has crossed the connection. A preview sends nothing and does not ask: the call
    // also hands out a temporary login key, which a preview's read-only role must not get.
    this.hostKey = pulumi.all([ready.stdout, instance.name]).apply(async ([stdout, instanceName]) => {
      const seen = hostKeyIn(stdout);
      if (pulumi.runtime.isDryRun()) return seen;
      try {
        return verifiedHostKey(seen, await args.reportedHostKeys(instanceName), instanceName);
      } catch (error) {
        throw new pulumi.RunError((error as Error).message);
      }
    });
    this.connection = { ...firstContact, hostKey: this.hostKey };

    // Runs again on a new instance (trigger) and whenever the script changes (an update
    // of `stdin` runs `create` again).
    this.setup = new command.remote.Command(
      `${name}-setup`,
      { connection: this.connection, create: "sudo -n bash -s", stdin: args.hostSetup, triggers: [instance.arn, diskAttachment.id] },
      { parent: this, dependsOn: [ready, diskAttachment] },
    );

    this.docker = new docker.Provider(
      `${name}-docker`,
      {
        host: pulumi.interpolate`ssh://${host.sshUser}@${staticIp.ipAddress}`,
        // The Docker provider runs the local ssh: it checks the same pinned key, carried in
        // the options themselves, and authenticates through the operator's ssh-agent.
        // No ping of the daemon when the provider is configured: `pulumi preview` on a pull
        // request then needs no SSH to the host (kreuzwerker/terraform-provider-docker#703).
        // A provider setting that is not ForcesProviderReplace updates in place
        // (pulumi/pulumi-terraform-bridge#1683): turning it on replaces nothing.
        disableDockerDaemonCheck: true,
        sshOpts: this.hostKey.apply(dockerSshOptions),
      },
      { parent: this, dependsOn: [this.setup] },
    );

    this.registerOutputs({ instanceName: this.instanceName, staticIp: this.staticIp });
  }
}
