import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderDbCredentialsScript, rotationStateFile } from "../../infra/render/db-credentials.js";
import { copyOf, planOf, run, tempDir } from "./helpers.js";

/**
 * The database credentials check (infra/render/db-credentials.ts) run for real in bash, with a
 * stand-in `docker` first on PATH that plays the database: the role's password is a file, a
 * password on stdin opens the database only when it matches, the loopback psql answers only
 * while the role exists, and an `ALTER ROLE ... PASSWORD` piped to psql changes the file.
 */

const { dir, cleanup } = tempDir("db-credentials");
afterAll(cleanup);

// Bash's own braces are written %{ } here, so that the template leaves them alone.
const STUB_DOCKER = String.raw`#!/bin/bash
db=$FAKE_DB
[ "$1 $2 $3" = "exec -i $FAKE_CONTAINER" ] || [ "$1 $2" = "exec $FAKE_CONTAINER" ] || { echo "unexpected: docker $*" >&2; exit 97; }
case "$*" in
  *"sh -c "*)
    # The password check over the network address: the password comes on stdin.
    [ -f "$db/role" ] && [ "$(cat)" = "$(cat "$db/role")" ] ;;
  *"-tAc SELECT 1")
    # Loopback: trusted, answers while the role and its database exist.
    [ -f "$db/role" ] ;;
  *"ON_ERROR_STOP=1"*)
    sql=$(cat)
    printf '%s\n' "$sql" >> "$db/statements"
    [ -n "%{FAKE_ALTER_IGNORED:-}" ] && exit 0
    password=$(printf '%s' "$sql" | sed -nE "s/^ALTER ROLE \"[^\"]+\" PASSWORD '(.*)';$/\1/p")
    printf '%s' "%{password//\'\'/\'}" > "$db/role" ;;
  *) echo "unexpected: docker $*" >&2; exit 98 ;;
esac
`.replaceAll("%{", "${");
const bin = join(dir, "bin");
mkdirSync(bin);
writeFileSync(join(bin, "docker"), STUB_DOCKER);
chmodSync(join(bin, "docker"), 0o755);

interface Case {
  /** The password the database's role holds now (none: the volume has no such role). */
  rolePassword?: string;
  /** The rotation the host recorded last (none: never recorded). */
  applied?: number;
  rotation: number;
  /** The stack's password, sent on stdin. */
  password: string;
  alterIgnored?: boolean;
}

let cases = 0;
async function check(c: Case) {
  const root = join(dir, `case-${(cases += 1)}`);
  const db = join(root, "db");
  mkdirSync(db, { recursive: true });
  const plan = copyOf(planOf("staging"));
  plan.host.stateDir = join(root, "state");
  const stateFile = rotationStateFile(plan);
  if (c.applied !== undefined) {
    mkdirSync(join(stateFile, ".."), { recursive: true });
    writeFileSync(stateFile, `${c.applied}\n`);
  }
  if (c.rolePassword !== undefined) writeFileSync(join(db, "role"), c.rolePassword);
  writeFileSync(join(root, "check.sh"), renderDbCredentialsScript(plan, c.rotation));
  writeFileSync(join(root, "stdin"), `${c.password}\n`);
  const env = `PATH=${bin}:$PATH FAKE_DB=${db} FAKE_CONTAINER=${plan.containers.db.name} FAKE_ALTER_IGNORED=${c.alterIgnored ? "yes" : ""}`;
  const result = await run("bash", ["-c", `${env} bash ${join(root, "check.sh")} < ${join(root, "stdin")}`]);
  const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : undefined);
  return {
    code: result.code,
    stdout: result.stdout,
    stderr: result.stderr,
    recorded: read(stateFile)?.trim(),
    rolePassword: read(join(db, "role")),
    statements: read(join(db, "statements")),
    volume: plan.volumes.database,
  };
}

describe("the database credentials check on the host", () => {
  it("records the rotation and changes nothing when the stack's password opens the database (a first deploy included)", async () => {
    // Recorded at the first deploy: without it, a later rotation would be refused as a foreign volume.
    const r = await check({ rolePassword: "current", rotation: 0, password: "current" });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain("database password in place for");
    expect(r.recorded).toBe("0");
    expect(r.statements).toBeUndefined();
  });

  it("sets the new password with ALTER ROLE when the counter went up, quotes doubled, and records the rotation", async () => {
    const r = await check({ rolePassword: "old", applied: 0, rotation: 1, password: "n'ew" });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.statements).toMatch(/^ALTER ROLE "[^"]+" PASSWORD 'n''ew';\n$/);
    expect(r.rolePassword).toBe("n'ew");
    expect(r.recorded).toBe("1");
    expect(r.stdout).toContain("(rotation 0 -> 1)");
  });

  it.each<[string, Pick<Case, "applied" | "rotation">]>([
    ["the counter did not move", { applied: 1, rotation: 1 }],
    ["the counter went down", { applied: 2, rotation: 1 }],
    ["no rotation was ever recorded (a volume this stack did not initialise)", { rotation: 1 }],
  ])("refuses a password the database does not accept when %s, and changes nothing", async (_why, counters) => {
    const r = await check({ rolePassword: "theirs", password: "ours", ...counters });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refused: the database in volume");
    expect(r.stderr).toContain("bump database.password.rotation");
    expect(r.statements).toBeUndefined();
    expect(r.rolePassword).toBe("theirs");
    expect(r.recorded).toBe(counters.applied === undefined ? undefined : String(counters.applied));
  });

  it("refuses a volume with no such role, naming the volume, and changes nothing", async () => {
    const r = await check({ applied: 0, rotation: 1, password: "ours" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refused: volume ${r.volume} has no role`);
    expect(r.statements).toBeUndefined();
    expect(r.recorded).toBe("0");
  });

  it("refuses when the new password still does not open the database after ALTER ROLE, and records nothing", async () => {
    const r = await check({ rolePassword: "old", applied: 0, rotation: 1, password: "new", alterIgnored: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refused: the new password was set but does not open the database");
    expect(r.recorded).toBe("0");
  });
});
