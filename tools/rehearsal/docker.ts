import { request } from "node:http";

/** The daemon the API calls reach: the local engine until `useDaemon` points them at a machine's. */
let socket = "/var/run/docker.sock";

/** Points every later API call, and `daemonEnv`'s CLI calls, at the daemon behind `path`. */
export function useDaemon(path: string): void {
  socket = path;
}

/** Environment for a `docker` CLI call that must reach the same daemon as the API calls. */
export const daemonEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DOCKER_HOST: `unix://${socket}` });

export interface ApiResponse {
  status: number;
  body: any;
}

/** One call to the Docker Engine API (the API the docker provider uses). */
export function dockerApi(method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: payload ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // Plain-text answers (logs) stay text.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** Like dockerApi, but a status outside 2xx (and not in `allowed`) is an error. */
export async function dockerOk(method: string, path: string, body?: unknown, allowed: number[] = []): Promise<any> {
  const res = await dockerApi(method, path, body);
  if ((res.status < 200 || res.status >= 300) && !allowed.includes(res.status)) {
    throw new Error(`Docker API ${method} ${path}: ${res.status} ${typeof res.body === "object" ? res.body?.message : res.body}`);
  }
  return res.body;
}

export { exec, execOk, type CommandResult } from "../process.js";

/** Parses Docker duration strings ("10s", "1m30s") into nanoseconds. */
export function nanoseconds(duration: string): number {
  const match = duration.match(/^(?:(\d+)m)?(?:(\d+)s)?$/);
  if (!match || duration === "") throw new Error(`unsupported duration "${duration}"`);
  return ((Number(match[1] ?? 0) * 60) + Number(match[2] ?? 0)) * 1e9;
}
