import type { Rehearsal } from "../context.js";
import { execOk } from "../docker.js";
import { check } from "../probes.js";

/** The operator's commands (npm run ops) against the host: ps, logs, health, and a refusal
 *  when the host key is not the host's. */
export async function opsCommands(r: Rehearsal): Promise<void> {
  const { say, probes, plan, world, stackName, keyPath, machineHostKey, indented } = r;
  say("the operator's commands (npm run ops) against this host");
  const ops = async (...command: string[]) =>
    r.hostCommand("infra/cli/ops.ts", ["--stack", stackName, "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", await machineHostKey(), ...command]);
  await probes.run("npm run ops -- ps: every container of the Plan, and the previous versions a rollback brings back", async () => {
    const result = await ops("ps");
    check(result.code === 0, `exited ${result.code}: ${result.stderr.trim().slice(-300)}`);
    const lines = result.stdout.split("\n");
    for (const c of Object.values(plan.containers)) check(lines.some((l) => l.startsWith(`${c.name} `)), `no line for ${c.name}`);
    check(lines.some((l) => l.startsWith(`${plan.containers.backend.release?.previousName} `)), "no previous backend");
    console.log(indented(result.stdout));
    return `${Object.keys(plan.containers).length} containers and the previous versions listed`;
  });
  await probes.run("npm run ops -- logs backend --tail 20: the live backend's log", async () => {
    const result = await ops("logs", "backend", "--tail", "20");
    check(result.code === 0, `exited ${result.code}: ${result.stderr.trim().slice(-300)}`);
    check(/GET \/api\/health|Uvicorn running|Application startup complete/.test(`${result.stdout}${result.stderr}`), `unexpected log: ${result.stdout.slice(0, 200)}`);
    console.log(indented(`${result.stdout}${result.stderr}`));
    return `${`${result.stdout}${result.stderr}`.trim().split("\n").length} lines`;
  });
  await probes.run("npm run ops -- health: every container healthy, /api/health 200 through Caddy, disks and the newest dump", async () => {
    const result = await ops("health");
    check(result.code === 0, `exited ${result.code}: ${result.stdout.slice(-300)} ${result.stderr.slice(-200)}`);
    const lines = result.stdout.split("\n");
    for (const c of Object.values(plan.containers)) check(lines.includes(`${c.name}: healthy`), `no "${c.name}: healthy" line`);
    check(lines.includes("api: 200"), "no 'api: 200' line");
    check(lines.some((l) => l.startsWith("newest dump: ") && /-(predeploy|rollback)-\d{8}T\d{6}Z\.dump/.test(l)), `the newest dump is not shown: ${lines.find((l) => l.startsWith("newest dump"))}`);
    return lines.filter((l) => /^(api|disk|newest dump|health):/.test(l)).join("; ").slice(0, 300);
  });
  await probes.run("npm run ops with a host key that is not the host's: refused, nothing runs", async () => {
    const other = (await execOk("bash", ["-c", `k=$(mktemp -u); ssh-keygen -q -t ed25519 -N '' -f "$k" && cut -d' ' -f1,2 "$k.pub"; rm -f "$k" "$k.pub"`])).stdout.trim();
    const result = await r.hostCommand("infra/cli/ops.ts", ["--stack", stackName, "--host", world.staticIp, "--user", plan.host.sshUser, "--key", keyPath, "--host-key", other, "ps"]);
    check(result.code !== 0, "ps ran against a host whose key is not the pinned one");
    return `exit ${result.code}`;
  });
}
