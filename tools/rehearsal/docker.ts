import { spawn } from "node:child_process";
import { request } from "node:http";

const SOCKET = process.env.DOCKER_SOCKET ?? "/var/run/docker.sock";

export interface ApiResponse {
  status: number;
  body: any;
}

/** One call to the Docker Engine API on the local socket (the API the docker provider uses). */
export function dockerApi(method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: SOCKET,
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

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, feeding `input` on stdin. Never throws for a non-zero exit. */
export function exec(file: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** Like exec, but a non-zero exit is an error carrying the output's last lines. */
export async function execOk(file: string, args: string[], options: Parameters<typeof exec>[2] = {}): Promise<CommandResult> {
  const result = await exec(file, args, options);
  if (result.code !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-15).join("\n");
    throw new Error(`${file} ${args.slice(0, 3).join(" ")} … exited ${result.code}:\n${tail}`);
  }
  return result;
}

/** Parses Docker duration strings ("10s", "1m30s") into nanoseconds. */
export function nanoseconds(duration: string): number {
  const match = duration.match(/^(?:(\d+)m)?(?:(\d+)s)?$/);
  if (!match || duration === "") throw new Error(`unsupported duration "${duration}"`);
  return ((Number(match[1] ?? 0) * 60) + Number(match[2] ?? 0)) * 1e9;
}
