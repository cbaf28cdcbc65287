/**
 * What the host's own status reports on (infra/render/host-status.ts), in the order of its
 * document's lines. Each condition has a path of its own, and a stack with `alerts` a Route 53
 * check and a CloudWatch alarm of its own on it: the alarm's name is the e-mail's subject
 * (`ALARM: "timetracker-<stack>-<alarm>" in US East (N. Virginia)`), so the subject says which
 * condition failed. `description` is the alarm's description, which the e-mail quotes.
 */
export const HOST_CONDITIONS = [
  { name: "disk", alarm: "disk-full", description: "A disk of the host is nearly full" },
  { name: "backup", alarm: "backup-stale", description: "No copy of the database reached the bucket for over a day" },
  { name: "nightly", alarm: "nightly-dump-failed", description: "The host's last nightly dump or its copy to the bucket failed" },
] as const;

export type HostCondition = (typeof HOST_CONDITIONS)[number]["name"];

/** The table's row of a condition. */
export function hostCondition(name: HostCondition): (typeof HOST_CONDITIONS)[number] {
  return HOST_CONDITIONS.find((row) => row.name === name)!;
}
