import * as pulumi from "@pulumi/pulumi";
import { catalog } from "../stacks/catalog.js";
import { deployRefusal } from "./model/deployable.js";
import { timetracker } from "./program.js";

// Pulumi entry point: the stack's name picks the environment from stacks/catalog.ts. Every
// output of the program is a stack output (test/program/entry-point.test.ts holds it to that).
//
// Only the Pulumi CLI runs this file: a real `pulumi preview` or `up` (the tests and the
// rehearsal run program.ts). So a stack that still holds a placeholder (a documentation
// address, an example domain, an unset host.adminCidrs) is refused here, before any
// resource, naming each field and what to put there.
const refusal = deployRefusal(catalog, pulumi.getStack());
if (refusal) throw new pulumi.RunError(refusal);

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
} = timetracker();
