// Stand-in for a Lightsail static IP and its instance firewall: listens on a loopback
// address (the "public IP") and forwards each allowed TCP connection to the same port of
// the machine the rules name. The rules file is read at every connection, so changing the
// firewall or moving the static IP to a replacement instance is just rewriting it.
//
//   npx tsx tools/machine/firewall-proxy.ts --address 127.0.1.5 --rules rules.json [--ports 22,80,443]
//
// Refused connections are reset at once (a real firewall drops them silently: a client
// sees "connection reset" here where it would time out there). Prints "listening ..." on
// stdout when every port is bound.
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import { readRules, refusal } from "./firewall-rules.js";

export const DEFAULT_PORTS = [22, 80, 443];

function refuse(client: Socket, reason: string, port: number): void {
  process.stderr.write(`firewall-proxy: refused ${client.remoteAddress}:${client.remotePort} -> :${port}: ${reason}\n`);
  client.resetAndDestroy();
}

function onConnection(client: Socket, port: number, rulesFile: string): void {
  let reason: string | undefined;
  let target = "";
  try {
    const rules = readRules(rulesFile);
    reason = refusal(rules, port, client.remoteAddress ?? "");
    target = rules.target ?? "";
  } catch (err) {
    reason = `cannot read ${rulesFile}: ${(err as Error).message}`;
  }
  if (reason !== undefined) return refuse(client, reason, port);
  const upstream = connect({ host: target, port });
  // either side failing ends both: the client sees a reset, as when the instance is down
  upstream.on("error", () => client.resetAndDestroy());
  client.on("error", () => upstream.destroy());
  client.pipe(upstream);
  upstream.pipe(client);
}

/** Binds every port on address; resolves once all listen. */
export async function listen(address: string, rulesFile: string, ports: number[] = DEFAULT_PORTS): Promise<Server[]> {
  return Promise.all(
    ports.map(
      (port) =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer((client) => onConnection(client, port, rulesFile));
          server.once("error", reject);
          server.listen(port, address, () => resolve(server));
        }),
    ),
  );
}

export interface FirewallProxy {
  pid: number;
  stop(): Promise<void>;
}

/** Starts the proxy as its own process (it outlives nothing: stop() kills it) and waits
 *  until it listens. Uses the current node's loader flags (tsx) to run the TypeScript. */
export function startFirewallProxy(options: { address: string; rulesFile: string; ports?: number[] }): Promise<FirewallProxy> {
  const self = fileURLToPath(import.meta.url);
  const args = ["--address", options.address, "--rules", options.rulesFile, "--ports", (options.ports ?? DEFAULT_PORTS).join(",")];
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, self, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const fail = (why: string) => {
      child.kill("SIGKILL");
      reject(new Error(`firewall-proxy on ${options.address}: ${why}`));
    };
    const timer = setTimeout(() => fail("not listening after 15 s"), 15_000);
    child.once("error", (err) => fail(err.message));
    child.once("exit", (code) => fail(`exited ${code} before listening`));
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      if (!out.includes("listening")) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({
        pid: child.pid ?? 0,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    });
  });
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const address = arg("address");
  const rulesFile = arg("rules");
  if (!address || !rulesFile) {
    process.stderr.write("usage: firewall-proxy.ts --address 127.0.1.N --rules rules.json [--ports 22,80,443]\n");
    process.exit(2);
  }
  const ports = (arg("ports") ?? DEFAULT_PORTS.join(",")).split(",").map(Number);
  const servers = await listen(address, rulesFile, ports);
  process.stdout.write(`listening ${address} ports ${ports.join(",")}\n`);
  const stop = () => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: Error) => {
    process.stderr.write(`firewall-proxy: ${err.message}\n`);
    process.exit(1);
  });
}
