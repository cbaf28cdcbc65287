import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RELEASE_TOOL, RELEASED_SERVICES, type ReleasedService } from "../render/release.js";
import { LOCK_REFUSED_EXIT } from "../render/deploy-lock.js";
import { shellWord } from "../render/shell.js";
import { sentBy } from "./deploy-lock.js";
import { exec } from "../../tools/process.js";
import { connectionProblems, expandHome, runOnHost, SSH_CONNECTION_FAILED, type HostConnection } from "./host-ssh.js";
import { loadCatalog } from "./load-catalog.js";
import { InputError, knownStack, runCli, UsageError } from "./run.js";

const USAGE = `usage: npm run rollback -- --stack <name> [--service backend|frontend]
           put the service's previous version back live on the stack's host (default: backend)
       npm run rollback -- --stack <name> --status
           print what is live and what a rollback would bring back, per service
options:
  --host <ip> --user <name> --key <path> --host-key '<ssh-ed25519 AAAA…>'
           how to reach the host; each one left out is read from the stack with the Pulumi CLI
           (outputs staticIp, sshUser, hostKey; config timetracker:sshPrivateKeyPath)
  --help   print this and exit
Runs \`sudo -n ${RELEASE_TOOL} rollback|status\` on the host over SSH,
accepting only the stack's pinned host key. Port 22 is open only to host.adminCidrs.`;

/** Pulumi.yaml lives at the repository root, whatever the caller's folder. */
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

type Overrides = Partial<HostConnection>;

/** The flags that stand in for what the stack would give, with where the stack keeps each. */
const FROM_STACK = {
  host: "--host <ip> (output staticIp)",
  user: "--user <name> (output sshUser)",
  hostKey: "--host-key '<ssh-ed25519 AAAA…>' (output hostKey)",
  key: "--key <path> (config timetracker:sshPrivateKeyPath)",
} as const;

/** Runs the Pulumi CLI; a missing CLI or a failure is the user's to fix, with what to pass instead. */
async function pulumi(args: string[], instead: string): Promise<string> {
  let result;
  try {
    result = await exec("pulumi", args, { cwd: REPO_ROOT });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError(`the Pulumi CLI is not installed (or not on PATH), so the stack cannot be read: pass ${instead}`);
    }
    throw error;
  }
  if (result.code !== 0) {
    const reason = result.stderr.trim().split("\n").filter(Boolean).at(-1) ?? `exit ${result.code}`;
    throw new InputError(`\`pulumi ${args.join(" ")}\` failed: ${reason}\nLog in to the stack's state backend (pulumi login), or pass ${instead}`);
  }
  return result.stdout.trim();
}

/** The connection: each value given on the command line, the rest from the stack's outputs and config. */
async function connectionFor(stack: string, given: Overrides): Promise<HostConnection> {
  const c = { ...given };
  const fields = Object.keys(FROM_STACK) as (keyof HostConnection)[];
  const missing = () => fields.filter((f) => c[f] === undefined);
  const instead = () => missing().map((f) => FROM_STACK[f]).join(", ");
  if (c.host === undefined || c.user === undefined || c.hostKey === undefined) {
    const text = await pulumi(["stack", "output", "--json", "--show-secrets=false", "--stack", stack], instead());
    let outputs: Record<string, unknown>;
    try {
      outputs = JSON.parse(text || "{}") as Record<string, unknown>;
    } catch {
      throw new InputError(`\`pulumi stack output --json\` did not print JSON: pass ${instead()}`);
    }
    const read = (name: string) => (typeof outputs[name] === "string" && outputs[name] !== "" ? (outputs[name] as string) : undefined);
    c.host ??= read("staticIp");
    c.user ??= read("sshUser");
    c.hostKey ??= read("hostKey");
    const lacking = missing().filter((f) => f !== "key");
    if (lacking.length > 0) {
      throw new InputError(
        `stack ${stack} has no outputs to reach its host (not deployed yet, or deployed before this version): run pulumi up, or pass ${lacking.map((f) => FROM_STACK[f]).join(", ")}`,
      );
    }
  }
  if (c.key === undefined) {
    c.key = await pulumi(["config", "get", "--stack", stack, "timetracker:sshPrivateKeyPath"], FROM_STACK.key);
    if (c.key === "") throw new InputError(`stack ${stack} has no timetracker:sshPrivateKeyPath: pass ${FROM_STACK.key}`);
  }
  return c as HostConnection;
}

const option = (values: Record<string, unknown>, name: string) => values[name] as string | undefined;

await runCli(
  USAGE,
  {
    stack: { type: "string" },
    service: { type: "string", default: "backend" },
    status: { type: "boolean", default: false },
    host: { type: "string" },
    user: { type: "string" },
    key: { type: "string" },
    "host-key": { type: "string" },
  },
  async (values) => {
    const started = Date.now();
    const catalog = await loadCatalog();
    const stacks = catalog.map((env) => env.name);
    if (values.stack === undefined) throw new UsageError(`--stack is required: one of ${stacks.join(", ")}`);
    const stack = knownStack(values.stack, stacks);
    const definition = catalog.find((env) => env.name === stack)!;

    const service = option(values, "service") as ReleasedService;
    if (!RELEASED_SERVICES.includes(service)) throw new UsageError(`--service: "${service}" is not one of ${RELEASED_SERVICES.join(", ")}`);
    const status = values.status === true;

    const connection = await connectionFor(stack, {
      host: option(values, "host"),
      user: option(values, "user"),
      key: option(values, "key"),
      hostKey: option(values, "host-key")?.trim(),
    });
    const problems = connectionProblems(connection);
    if (problems.length > 0) throw new InputError(problems.join("\n"));
    if (!existsSync(expandHome(connection.key))) throw new InputError(`--key: ${connection.key} does not exist (the stack's SSH private key)`);

    // A rollback is sent as its sender's: under the sender's own hold on the deploy lock, it runs.
    const remote = ["sudo", "-n", ...(status ? [] : sentBy()), RELEASE_TOOL, ...(status ? ["status"] : ["rollback", service])].map(shellWord);
    const what = status ? `status of ${stack}` : `rollback of ${service} on ${stack}`;
    console.log(`${what}: ${connection.user}@${connection.host}: ${remote.join(" ")}`);
    let code: number;
    try {
      code = await runOnHost(connection, remote);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new InputError("ssh is not installed (or not on PATH): install the OpenSSH client");
      throw error;
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (code === SSH_CONNECTION_FAILED) {
      const cidrs = definition.host?.adminCidrs ?? [];
      console.error(
        `could not reach ${connection.user}@${connection.host} on port 22 (ssh exited 255, see its message above).\n` +
          `Port 22 of stack ${stack} is open only to host.adminCidrs (${cidrs.length > 0 ? cidrs.join(", ") : "none: add one in stacks/"}): ` +
          `run this from an address listed there. If ssh refused the host key or the SSH key, check --host-key and --key.`,
      );
    }
    const held = code === LOCK_REFUSED_EXIT ? " (the deploy lock is held: the tool says by whom, above; nothing was changed)" : "";
    const line = `${what}: exit ${code} after ${seconds} s${held}`;
    if (code === 0) console.log(line);
    else console.error(line);
    return code;
  },
  { positionals: false, stacks: async () => (await loadCatalog()).map((env) => env.name) },
);
