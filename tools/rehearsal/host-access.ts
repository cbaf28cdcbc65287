import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { dockerApi, useDaemon } from "./docker.js";
import { openDockerTunnel, runRemote, type Tunnel } from "./ssh.js";
import type { CommandResult } from "./docker.js";

/**
 * How the rehearsal itself reaches the stack's host, as an administrator inside the admin
 * CIDRs would: SSH to the static IP with the stack's key, and the host's Docker daemon
 * through an SSH tunnel (re-opened after the instance is replaced). The key file is read at
 * each connection: after a key change the administrator holds the new key there.
 */
export class HostAccess {
  private tunnel?: Tunnel;

  constructor(
    private readonly address: string,
    private readonly user: string,
    private readonly privateKeyPath: string,
  ) {}

  ssh(command: string, stdin = ""): Promise<CommandResult> {
    const privateKey = readFileSync(this.privateKeyPath, "utf8");
    return runRemote({ host: this.address, user: this.user, privateKey, dialErrorLimit: 3, perDialTimeout: 10 }, command, stdin);
  }

  /** Points the API and `daemonEnv` CLI calls at the host's daemon. */
  async docker(): Promise<void> {
    if (this.tunnel) {
      useDaemon(this.tunnel.socket);
      if ((await dockerApi("GET", "/_ping").catch(() => undefined))?.status === 200) return;
    }
    this.tunnel?.close();
    this.tunnel = await openDockerTunnel(`ssh://${this.user}@${this.address}`, [
      "-i", this.privateKeyPath, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    ]);
  }

  close(): void {
    this.tunnel?.close();
    this.tunnel = undefined;
  }
}

/** Whether a TCP connection from `from` to address:port is accepted and stays open long enough to talk. */
export function tcpOpen(address: string, port: number, from: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: address, port, localAddress: from });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    // sshd greets first: a banner means the connection reached it.
    socket.once("data", () => done(true));
    socket.once("error", () => done(false));
    socket.once("close", () => done(false));
    socket.setTimeout(5000, () => done(false));
  });
}
