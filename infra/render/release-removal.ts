import type { Plan } from "../model/plan.js";
import type { ReleasedService } from "./release.js";
import { shellWord } from "./shell.js";

/**
 * What deleting a release command does on its host: stop and remove every container the
 * release tool made for the service (live, previous, candidate). Pulumi runs it when the
 * command is deleted: on a host replacement before the old instance goes (the network the
 * containers sit on is deleted next, and Docker refuses while they are attached) and on
 * `pulumi destroy`. The tool is not called: a host whose setup never finished has none.
 */
export function releaseRemovalCommand(plan: Plan, service: ReleasedService): string {
  const c = plan.containers[service];
  if (!c.release) throw new Error(`${service} has no release plan`);
  const names = [c.name, c.release.previousName, c.release.candidateName].map(shellWord).join(" ");
  return [
    `for c in ${names}; do`,
    `  if sudo -n docker inspect "$c" >/dev/null 2>&1; then sudo -n docker stop -t ${c.stopGraceSeconds} "$c" >/dev/null && sudo -n docker rm "$c" >/dev/null; fi`,
    "done",
  ].join("\n");
}
