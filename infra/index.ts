import { timetracker } from "./program.js";

// Pulumi entry point: the stack's name picks the environment from stacks/catalog.ts.
const outputs = timetracker();

export const url = outputs.url;
export const staticIp = outputs.staticIp;
export const sshCommand = outputs.sshCommand;
export const containers = outputs.containers;
export const databasePassword = outputs.databasePassword;
