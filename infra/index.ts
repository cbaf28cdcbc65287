import * as pulumi from "@pulumi/pulumi";
import { InputError } from "./cli/errors.js";
import { loadCatalog } from "./cli/load-catalog.js";
import { deployRefusal } from "./model/deployable.js";

// Pulumi entry point: the stack's name picks the environment from stacks/catalog.ts. Every
// output of the program is a stack output (test/program/entry-point.test.ts holds it to that).
//
// Only the Pulumi CLI runs this file: a real `pulumi preview` or `up` (the tests and the
// rehearsal run program.ts). So a stack that still holds a placeholder (a documentation
// address, an example domain, an unset host.adminCidrs) is refused here, before any
// resource, naming each field and what to put there.
//
// The catalog is read through the loader every command uses, not imported: a stack file that
// does not compile (or throws) is then one line naming the file, line and esbuild's message,
// which Pulumi prints as a RunError, without the loader's stack trace.
const catalog = await loadCatalog().catch((error: unknown) => {
  throw error instanceof InputError ? new pulumi.RunError(error.message) : error;
});
const refusal = deployRefusal(catalog, pulumi.getStack());
if (refusal) throw new pulumi.RunError(refusal);
// program.ts imports the catalog itself, so it is imported only once the catalog has loaded.
const { timetracker } = await import("./program.js");

export const {
  url,
  staticIp,
  sshUser,
  hostKey,
  sshCommand,
  containers,
  releasedImages,
  appCommit,
  databasePassword,
  backupBucket,
} = timetracker(catalog);
