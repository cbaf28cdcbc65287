/**
 * The `ssh` options the Docker provider runs its local `ssh` with. The pinned host key
 * travels inside them (OpenSSH's KnownHostsCommand, 8.5 or newer): nothing is read from or
 * written to the machine that runs `pulumi up`. A later `up` on another machine (a fresh
 * CI runner, a laptop) deletes an old host's objects with the options the state recorded,
 * so they must hold no file path; the key itself comes from the operator's ssh-agent
 * (SSH_AUTH_SOCK), as it does for the remote commands.
 */
export function dockerSshOptions(hostKey: string): string[] {
  return [
    "-o", "StrictHostKeyChecking=yes",
    // No known_hosts file is read or written: the only key accepted is the one printed here.
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", `KnownHostsCommand=/bin/echo %H ${hostKey}`,
    "-o", `HostKeyAlgorithms=${hostKey.split(" ")[0]}`,
    "-o", "ServerAliveInterval=30",
  ];
}

/** The host key line a `host-ready` run printed last (`ssh-ed25519 AAAA…`). */
export function hostKeyIn(stdout: string): string {
  const line = stdout
    .split("\n")
    .map((l) => l.trim())
    .reverse()
    .find((l) => l.startsWith("ssh-ed25519 "));
  if (!line) throw new Error("the ready check printed no ssh-ed25519 host key");
  return line.split(" ").slice(0, 2).join(" ");
}
