import { request } from "node:http";
import WebSocket from "ws";

export interface HttpResult {
  status: number;
  body: string;
}

/** An address and port the rehearsal reaches, such as the stack's static IP and port 80. */
export interface Endpoint {
  address: string;
  port: number;
  /** Source address to connect from (to stand outside the admin CIDRs). */
  from?: string;
}

/** One HTTP request with a chosen Host header. */
export function httpRequest(at: Endpoint, path: string, host: string, options: { method?: string; body?: unknown; timeoutMs?: number } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      {
        host: at.address,
        port: at.port,
        ...(at.from ? { localAddress: at.from } : {}),
        path,
        method: options.method ?? "GET",
        headers: { Host: host, ...(payload ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {}) },
        timeout: options.timeoutMs ?? 40_000,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** Opens a websocket through Caddy, sends one message and returns the first reply. */
export function websocketEcho(at: Endpoint, path: string, host: string, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${at.address}:${at.port}${path}`, { headers: { Host: host }, handshakeTimeout: 10_000 });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error("no echo within 10 s"));
    }, 10_000);
    socket.on("open", () => socket.send(message));
    socket.on("message", (data) => {
      clearTimeout(timer);
      socket.close();
      resolve(data.toString());
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** What a loop of requests saw: users' view of a deploy. */
export interface Traffic {
  sent: number;
  failed: number;
  failures: string[];
  /** Slowest answer, in seconds. */
  worst: number;
  /** 99th percentile of answer times, in seconds. */
  p99: number;
  /** When the slowest request started, in seconds after the loop did. */
  worstAt: number;
}

/**
 * `clients` concurrent loops of requests until stopped, each pausing `intervalMs` between
 * its requests; counts the answers other than 200 and times every request.
 */
export function requestLoop(at: Endpoint, path: string, host: string, options: { clients?: number; intervalMs?: number } = {}) {
  const { clients = 1, intervalMs = 100 } = options;
  const failures: string[] = [];
  const times: number[] = [];
  let worst = 0;
  let worstAt = 0;
  const loopStart = process.hrtime.bigint();
  let running = true;
  const client = async () => {
    while (running) {
      const start = process.hrtime.bigint();
      try {
        const res = await httpRequest(at, path, host, { timeoutMs: 40_000 });
        if (res.status !== 200) failures.push(`${res.status} ${res.body.slice(0, 80)}`);
      } catch (error) {
        failures.push((error as Error).message);
      }
      const took = Number(process.hrtime.bigint() - start) / 1e9;
      if (took > worst) [worst, worstAt] = [took, Number(start - loopStart) / 1e9];
      times.push(took);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  const loops = Array.from({ length: clients }, client);
  return {
    async stop(): Promise<Traffic> {
      running = false;
      await Promise.all(loops);
      const sorted = [...times].sort((a, b) => a - b);
      const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? 0;
      return { sent: times.length, failed: failures.length, failures, worst, p99, worstAt };
    },
  };
}
