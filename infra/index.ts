import { timetracker } from "./program.js";

// Pulumi entry point: the stack's name picks the environment from stacks/catalog.ts. Every
// output of the program is a stack output (test/program/entry-point.test.ts holds it to that).
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
