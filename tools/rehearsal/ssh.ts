import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerApi, exec, useDaemon, type CommandResult } from "./docker.js";

/** A `command:remote:Command` connection, as the program declares it. */
export interface Connection {
  host: string;
  port?: number;
  user: string;
  /** Without one, the key comes from the ssh-agent at SSH_AUTH_SOCK, as pulumi-command does. */
  privateKey?: string;
  /** An authorized_keys-style host key: when given, the host must present exactly it. */
  hostKey?: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
}

/** ssh exits 255 when it could not connect or authenticate; anything else is the command's own. */
const SSH_FAILED = 255;

/**
 * Runs `command` on the host over real SSH, as pulumi-command does: the connection's key
 * (or the operator's ssh-agent when it names none), user and port, `stdin` fed to the command, up to `dialErrorLimit` dials of
 * `perDialTimeout` seconds each. As pulumi-command does, a `hostKey` is the only key
 * accepted (of its algorithm); without one, any host key is.
 */
export async function runRemote(connection: Connection, command: string, stdin = ""): Promise<CommandResult> {
  const dir = mkdtempSync(join(tmpdir(), "tt-ssh-"));
  try {
    const identity: string[] = [];
    if (connection.privateKey) {
      const key = join(dir, "key");
      writeFileSync(key, connection.privateKey.endsWith("\n") ? connection.privateKey : `${connection.privateKey}\n`, { mode: 0o600 });
      identity.push("-i", key, "-o", "IdentitiesOnly=yes");
    }
    const knownHosts = join(dir, "known_hosts");
    if (connection.hostKey) writeFileSync(knownHosts, `${connection.host} ${connection.hostKey}\n`);
    const hostKeyCheck = connection.hostKey
      ? ["-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", `HostKeyAlgorithms=${connection.hostKey.split(" ")[0]}`]
      : ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"];
    const args = [
      ...identity,
      "-p", String(connection.port ?? 22),
      "-o", "BatchMode=yes",
      ...hostKeyCheck,
      "-o", "LogLevel=ERROR",
      "-o", `ConnectTimeout=${connection.perDialTimeout ?? 15}`,
      `${connection.user}@${connection.host}`,
      "--",
      command,
    ];
    const dials = connection.dialErrorLimit ?? 10;
    let last: CommandResult = { code: SSH_FAILED, stdout: "", stderr: "never dialled" };
    for (let dial = 1; dial <= dials; dial += 1) {
      last = await exec("ssh", args, { input: stdin });
      if (last.code !== SSH_FAILED) return last;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { ...last, stderr: `ssh to ${connection.user}@${connection.host} failed ${dials} times: ${last.stderr.trim()}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Tunnel {
  socket: string;
  close(): void;
}

/**
 * The Docker provider's `ssh://` transport: the local `ssh` with the declared `sshOpts`,
 * forwarding the host daemon's socket to a local one; API calls and `daemonEnv` CLI calls
 * reach that daemon from then on.
 */
export async function openDockerTunnel(host: string, sshOpts: string[]): Promise<Tunnel> {
  const match = host.match(/^ssh:\/\/([^@]+)@([^:/]+)(?::(\d+))?$/);
  if (!match) throw new Error(`unexpected Docker host ${host}`);
  const [, user, address, port] = match;
  const dir = mkdtempSync(join(tmpdir(), "tt-docker-"));
  const socket = join(dir, "docker.sock");
  const child: ChildProcess = spawn(
    "ssh",
    [...sshOpts, "-p", port ?? "22", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-nNT", "-L", `${socket}:/var/run/docker.sock`, `${user}@${address}`],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const close = () => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      close();
      throw new Error(`ssh to ${user}@${address} for Docker exited ${child.exitCode}: ${stderr.trim()}`);
    }
    if (existsSync(socket)) {
      useDaemon(socket);
      if ((await dockerApi("GET", "/_ping").catch(() => undefined))?.status === 200) return { socket, close };
    }
    if (Date.now() > deadline) {
      close();
      throw new Error(`Docker over ssh://${user}@${address} did not answer within 60 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
