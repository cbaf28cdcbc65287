import { readFileSync } from "node:fs";
import { READY_MARKER } from "../../../infra/render/launch-script.js";
import type { Rehearsal } from "../context.js";
import { dockerOk, execOk, useDaemon } from "../docker.js";
import { tcpOpen } from "../host-access.js";
import { httpRequest } from "../http.js";
import { REHEARSAL_ADMIN_CIDR } from "../localize.js";
import { check } from "../probes.js";
import { runRemote } from "../ssh.js";
import { keyFingerprint, sessionsOf } from "../ssh-sessions.js";

/**
 * The first `up`: a new machine boots from the user data, then everything else goes over
 * SSH. Proves the boot finished, no Docker call reached the rehearsal's own engine, the
 * host key is pinned, and the firewall opens 22 only to the admin CIDRs. Records the
 * first deploy's figures.
 */
export async function firstBoot(r: Rehearsal): Promise<void> {
  const { say, probes, deploy, local, admin, plan, stackName, localEngine, engineState, world, keyPath, web, host, machineHostKey, pinnedHostKey } = r;
  say("first deploy: a new machine boots from the user data, then everything over SSH");
  const firstStart = Date.now();
  const first = await deploy(local);
  const secondsToHealthy = (Date.now() - firstStart) / 1000;
  const bootToReady = ((first.progress.timings.hostReady ?? 0) - (first.progress.timings.instanceCreated ?? 0)) / 1000;
  r.measurements.secondsToHealthy = secondsToHealthy;
  r.measurements.bootToReady = bootToReady;
  await probes.run("deploy: every resource created and every container healthy", async () => {
    check(first.ok, first.error);
    return `${first.changed.length} resources in ${secondsToHealthy.toFixed(1)} s`;
  });
  await probes.run("first boot: cloud-init done, the launch script's marker exists, the ready check passed", async () => {
    const status = await admin.ssh(`cloud-init status; test -f ${READY_MARKER} && echo marker`);
    check(/status: done/.test(status.stdout), `cloud-init: ${status.stdout} ${status.stderr}`);
    check(/marker/.test(status.stdout), "no launch marker");
    check(first.action("host-ready")?.action === "create", "the ready check did not run");
    return `Instance created -> ready check passed: ${bootToReady.toFixed(1)} s`;
  });
  await probes.run("every remote command ran over SSH; no Docker call reached the rehearsal's own engine", async () => {
    // The rehearsal itself connects as the same user with the same key, but only once the deploy
    // has ended (this very read included): the deploy's window sets its own sessions apart.
    const auth = await admin.ssh("sudo -n journalctl -u ssh --no-pager -o short-unix 2>/dev/null | grep 'Accepted publickey' || true");
    const fingerprint = await keyFingerprint(`${keyPath}.pub`);
    const sessions = sessionsOf(auth.stdout, { user: plan.host.sshUser, fingerprint, from: firstStart, until: first.finishedAt });
    const commands = Object.keys(first.progress.changes).filter((k) => k.startsWith("command:remote:Command::")).length;
    check(sessions >= commands + 1, `the deploy opened ${sessions} SSH sessions (${plan.host.sshUser}, ${fingerprint}) for ${commands} commands and the Docker provider`);
    useDaemon(localEngine);
    const strays = await dockerOk("GET", `/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify({ label: [`timetracker.stack=${stackName}`] }))}`);
    const volumes = await dockerOk("GET", "/volumes");
    const strayVolumes = (volumes.Volumes ?? []).filter((v: { Name: string }) => Object.values(plan.volumes).includes(v.Name));
    await admin.docker();
    check(strays.length === 0 && strayVolumes.length === 0, `the local engine has ${strays.length} containers and ${strayVolumes.length} volumes of the stack`);
    const onHost = await dockerOk("GET", `/containers/json?filters=${encodeURIComponent(JSON.stringify({ label: [`timetracker.stack=${stackName}`] }))}`);
    check(onHost.length === Object.keys(plan.containers).length, `the host runs ${onHost.length} containers`);
    return `the deploy's own ${sessions} SSH sessions for ${commands} commands + Docker; ${onHost.length} containers on the host's daemon, none on the local engine`;
  });
  await probes.run("the instance's host key is pinned: remote commands and the Docker provider's ssh accept only it", async () => {
    const key = await machineHostKey();
    check(key.startsWith("ssh-ed25519 "), `the host shows ${key}`);
    check(pinnedHostKey() === key, `the Docker provider's known_hosts pins ${pinnedHostKey()}`);
    const connection = engineState().entry("command:remote:Command", "host-setup")?.inputs.connection as { hostKey?: string } | undefined;
    check(connection?.hostKey === key, `host-setup connects with host key ${connection?.hostKey}`);
    const other = (await execOk("bash", ["-c", `k=$(mktemp -u); ssh-keygen -q -t ed25519 -N '' -f "$k" && cut -d' ' -f1,2 "$k.pub"; rm -f "$k" "$k.pub"`])).stdout.trim();
    const refused = await runRemote({ host: world.staticIp, user: plan.host.sshUser, privateKey: readFileSync(keyPath, "utf8"), hostKey: other, dialErrorLimit: 1 }, "true");
    check(refused.code !== 0, "a connection pinned to another host key was accepted");
    return `${key.slice(0, 40)}…; another key refused`;
  });
  await probes.run(`firewall: 22 closed to an address outside adminCidrs, open inside; 80 open to anyone`, async () => {
    check(!(await tcpOpen(world.staticIp, 22, "127.0.0.2")), "22 answered 127.0.0.2");
    check(await tcpOpen(world.staticIp, 22, "127.0.0.1"), `22 refused ${REHEARSAL_ADMIN_CIDR}`);
    const outside = await httpRequest({ ...web, from: "127.0.0.2" }, "/api/health", host);
    check(outside.status === 200, `80 from outside answered ${outside.status}`);
    return `adminCidrs ${plan.host.adminCidrs.join(", ")}`;
  });
}
