import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "./run.js";

/** Why a folder cannot be written, as the user can act on it (the path is the user's; the errno says what is in the way). */
const WRITE_FAILURES: Record<string, string> = {
  EEXIST: "is a file, not a folder: name a folder (it is created if missing)",
  ENOTDIR: "runs through a file where a folder is needed: name a folder (it is created if missing)",
  EACCES: "is not writable by you",
  EPERM: "is not writable by you",
  EROFS: "is on a read-only file system",
  ENOSPC: "is on a full disk",
};

/** Writes `files` (name to content) into `dir`, created if missing; a folder that cannot be written is the user's mistake, said in one line. */
export function writeFolder(dir: string, files: Record<string, string>): void {
  try {
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    const why = WRITE_FAILURES[code];
    if (why === undefined) throw error;
    throw new InputError(`${dir}: ${why} (${code})`);
  }
  console.log(`wrote ${Object.keys(files).join(", ")} to ${dir}`);
}
