import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { RehearsalEngine } from "./engine.js";

/**
 * `pulumi destroy` of a stack, in its own process as the CLI would be: every delete in
 * Pulumi's order, through the settings the state recorded, with this process's own
 * environment (a fresh operator's HOME and ssh-agent). `--unprotect` first, as an
 * operator must for the protected disk, static IP and bucket. Writes what it removed and
 * kept to --result.
 */
const { values } = parseArgs({
  options: {
    state: { type: "string" },
    world: { type: "string" },
    progress: { type: "string" },
    result: { type: "string" },
    unprotect: { type: "boolean", default: false },
  },
});
const engine = new RehearsalEngine(String(values.state), JSON.parse(readFileSync(String(values.world), "utf8")), String(values.progress));
try {
  const result = await engine.destroy({ unprotect: values.unprotect === true });
  writeFileSync(String(values.result), JSON.stringify(result));
} catch (error) {
  engine.progress.errors.push((error as Error).message);
  engine.report();
  process.exitCode = 1;
} finally {
  engine.close();
}
