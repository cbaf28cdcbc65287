/**
 * The user's mistakes, as every command prints them: one plain message, never a stack trace
 * (runCli in run.ts prints them; anything else that is thrown is the package's own bug).
 */

/** A mistake in the user's input or setup: a file, a tool, a stack's state. Printed as it is. */
export class InputError extends Error {}

/** A mistake in how the command was called: printed with the pointer to the command's --help. */
export class UsageError extends InputError {}
