import { READY_MARKER, renderLaunchScript } from "./launch-script.js";

/** Where the ready check keeps the output of a launch script it ran again. */
export const LAUNCH_RERUN_LOG = "/var/log/timetracker-launch-rerun.log";

/**
 * The `host-ready` check, run as the SSH user on a new instance (and again by every `up` until
 * it once succeeds: a failed create records nothing). It waits for cloud-init. When the launch
 * script's marker is missing, the first boot failed (on Ubuntu, most often apt against
 * unattended-upgrades' dpkg lock or a mirror that was down), and cloud-init never runs user data
 * again: the check runs the same launch script itself, as root, and fails with the reason if it
 * fails again, so the next `up` tries once more without replacing the instance. The script
 * travels in the check rather than being read back from cloud-init's copy of the user data,
 * which may hold more than our script (a provider may wrap it).
 *
 * Its last line of output is the instance's ed25519 host key (pinned by the program); anything
 * else goes to stderr.
 */
export function renderReadyCheck(): string {
  return `#!/bin/bash
# host-ready: the launch script finished (or is run again here), Docker answers, then the host key.
set -uo pipefail
rc=0
cloud-init status --wait >/dev/null || rc=$?
if ! test -f ${READY_MARKER}; then
  echo "the launch script did not finish at first boot (cloud-init exit $rc, see /var/log/cloud-init-output.log): running it again" >&2
  # From a file, not stdin: a package's maintainer script reading stdin would eat the rest of it.
  script=$(mktemp)
  trap 'rm -f "$script"' EXIT
  cat >"$script" <<'LAUNCH'
${renderLaunchScript()}LAUNCH
  if ! sudo -n bash "$script" </dev/null 2>&1 | sudo -n tee -a ${LAUNCH_RERUN_LOG} >&2; then
    echo "the launch script failed again (its output above, and in ${LAUNCH_RERUN_LOG} on the host)" >&2
    exit 1
  fi
  test -f ${READY_MARKER} || { echo "the launch script ran again but left no ${READY_MARKER}" >&2; exit 1; }
elif [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
  # 2 is "done, with recoverable errors"; the marker says our script finished.
  echo "cloud-init failed ($rc) although the launch script finished: see /var/log/cloud-init-output.log" >&2
  exit 1
fi
sudo -n docker info >/dev/null || { echo "Docker does not answer on the host" >&2; exit 1; }
cat /etc/ssh/ssh_host_ed25519_key.pub
`;
}
