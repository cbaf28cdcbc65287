import type { Plan } from "../model/plan.js";

/** Where the host records the password rotation the database last accepted. */
export const rotationStateFile = (plan: Plan) => `${plan.host.stateDir}/${plan.stack}/db-password-rotation`;

/**
 * A host script that reconciles the database role's password with the stack's secret,
 * read from stdin. POSTGRES_PASSWORD applies only to an empty data directory, so a
 * rotation (the counter went up) changes the role inside the running database before the
 * backend starts with the new password; any other mismatch is refused and changes nothing.
 */
export function renderDbCredentialsScript(plan: Plan, rotation: number): string {
  const db = plan.containers.db.name;
  const { user, name } = plan.database;
  // Inside the double-quoted refusals below: inner double quotes would end the string
  // (SC2140) and print nothing, so the stack name, always [a-z0-9-], goes in bare.
  const stackFile = `the definition of stack ${plan.stack} in stacks/`;
  return `#!/bin/bash
set -euo pipefail
db=${db}; user=${user}; name=${name}; rotation=${rotation}
state=${rotationStateFile(plan)}
IFS= read -r password || true

refuse() {
  printf '%s\\n' "refused: $1" "Nothing was changed; the running backend keeps its current credentials." >&2
  exit 1
}
# Over the container's network address: the official image trusts loopback TCP, so only
# this path proves the password.
opens() {
  printf '%s' "$password" | docker exec -i "$db" sh -c 'PGPASSWORD="$(cat)" psql -h "$(hostname -i | cut -d" " -f1)" -U "$1" -d "$2" -tAc "SELECT 1"' sh "$user" "$name" >/dev/null 2>&1
}
record() {
  mkdir -p "$(dirname "$state")"
  echo "$rotation" > "$state"
}

if opens; then
  record
  echo "database password in place for $user (rotation $rotation)"
  exit 0
fi
if ! docker exec "$db" psql -U "$user" -d "$name" -tAc "SELECT 1" >/dev/null 2>&1; then
  refuse "volume ${plan.volumes.database} has no role '$user' with database '$name'. It was initialised with other credentials, and POSTGRES_* apply only to an empty data directory. Put back the original database.user and database.name in ${stackFile}."
fi
applied=$(cat "$state" 2>/dev/null || true)
if [ -n "$applied" ] && [ "$rotation" -gt "$applied" ]; then
  printf "ALTER ROLE \\"%s\\" PASSWORD '%s';\\n" "$user" "\${password//\\'/\\'\\'}" | docker exec -i "$db" psql -v ON_ERROR_STOP=1 -q -U "$user" -d "$name" >/dev/null
  opens || refuse "the new password was set but does not open the database"
  record
  echo "database password rotated for $user (rotation $applied -> $rotation)"
  exit 0
fi
refuse "the database in volume ${plan.volumes.database} does not accept the stack's password for '$user'. POSTGRES_PASSWORD applies only to an empty data directory, so a deploy cannot change it. If the volume predates this stack, store its current password with 'pulumi config set --secret timetracker:adoptedDbPassword' and set database.password.adoptFrom in ${stackFile}; to change the password, bump database.password.rotation there."
`;
}
