import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runProgram } from "../mock-engine.js";
import { RehearsalEngine } from "./engine.js";
import { startLightsailApi } from "./lightsail-api.js";

/**
 * One deploy of a stack, in its own process as `pulumi up` would be: the program under
 * mocks whose provider stand-in creates everything for real on the rehearsal's machine.
 * Writes its changes and errors to --progress as it goes.
 */
const { values } = parseArgs({
  options: {
    stack: { type: "string" },
    definitions: { type: "string" },
    config: { type: "string" },
    state: { type: "string" },
    world: { type: "string" },
    progress: { type: "string" },
  },
});
const read = (path: string | undefined) => JSON.parse(readFileSync(String(path), "utf8"));
const { config, secretKeys } = read(values.config);
const engine = new RehearsalEngine(String(values.state), read(values.world), String(values.progress));
engine.report();
// The program asks Lightsail for a new instance's host keys with the AWS SDK: the stand-in answers.
const lightsail = await startLightsailApi((instanceName) => engine.reportedHostKeys(instanceName));
Object.assign(process.env, {
  AWS_ENDPOINT_URL_LIGHTSAIL: lightsail.url,
  AWS_ACCESS_KEY_ID: "rehearsal",
  AWS_SECRET_ACCESS_KEY: "rehearsal",
  AWS_EC2_METADATA_DISABLED: "true",
});
try {
  // Not a preview: the program does what only an `up` does (it checks a new host key with Lightsail).
  await runProgram(String(values.stack), config, secretKeys, { definitions: read(values.definitions), respond: engine.respond, preview: false });
  // Only a successful update reaches its end, where Pulumi deletes old halves and what is no longer declared.
  await engine.finish();
} catch (error) {
  if (engine.progress.errors.length === 0) engine.progress.errors.push((error as Error).message);
  engine.report();
  process.exitCode = 1;
} finally {
  engine.close();
  await lightsail.close();
}
// A refused deploy leaves the SDK's promises for the resources after it pending forever.
process.exit();
