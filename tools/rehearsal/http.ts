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

/**
 * Sends requests in a loop until stopped and counts the ones that did not answer 200:
 * what users would see during a redeploy.
 */
export function requestLoop(at: Endpoint, path: string, host: string, intervalMs = 100) {
  let sent = 0;
  let failed = 0;
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      sent += 1;
      try {
        const res = await httpRequest(at, path, host, { timeoutMs: 40_000 });
        if (res.status !== 200) {
          failed += 1;
          failures.push(`${res.status} ${res.body.slice(0, 80)}`);
        }
      } catch (error) {
        failed += 1;
        failures.push((error as Error).message);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { sent, failed, failures };
    },
  };
}
