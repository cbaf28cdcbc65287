import type { Rehearsal } from "../context.js";
import { dockerApi } from "../docker.js";
import { check } from "../probes.js";

/**
 * `destroy` keeps the data disk; a new stack on it is refused (its new password is not the
 * data's) until it adopts the kept password, and then the rows are back.
 */
export async function teardown(r: Rehearsal): Promise<void> {
  const { probes, deploy, destroy, plan, admin, backendName, items, current, engineState, machineNow, readItems } = r;
  await probes.run("tearing the stack down keeps the data disk and its rows", async () => {
    // What an operator keeps before a teardown: `pulumi stack output --show-secrets databasePassword`.
    const kept = String(engineState().entry("random:index/randomPassword:RandomPassword", "secrets-dbPassword")?.state.result ?? "");
    check(kept !== "", "no database password in the stack's state");
    admin.close();
    // As a fresh operator: every delete through the SSH settings the state recorded, nothing from the last `up`'s machine.
    const { removed, kept: retained } = await destroy({ unprotect: true });
    check(retained.some((r) => r.includes(plan.host.dataDisk.name)), `the disk was not kept: ${retained.join(", ")}`);
    check((await machineNow()).length === 0, "the machine survived the teardown");
    // A new stack generates a new password, which the kept data does not have: refused.
    const fresh = await deploy(current);
    check(!fresh.ok && /does not accept the stack's password/.test(fresh.error), `a new password on the kept data was not refused: ${fresh.error}`);
    check((await dockerApi("GET", `/containers/${backendName}/json`)).status === 404, "a backend started with credentials the database refuses");
    // As the refusal says: adopt the data's password from an encrypted stack secret.
    const adopted = { ...current, database: { ...current.database, password: { adoptFrom: "adoptedDbPassword", rotation: 0 } } };
    const again = await deploy(adopted, { "timetracker:adoptedDbPassword": kept });
    check(again.ok, again.error);
    const names = await readItems();
    check(items.every((i) => names.includes(i)), `read ${names.join(", ")}`);
    return `removed ${removed.length} resources, kept ${retained.length}; a new password was refused; adopted, rows back: ${names.join(", ")}`;
  });
}
