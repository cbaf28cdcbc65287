import { cpSync, rmSync } from "node:fs";

/** A private copy of the sample app, so a rehearsal can change it (new image, broken import). */
export function copySampleApp(to: string): void {
  rmSync(to, { recursive: true, force: true });
  cpSync("app-images/sample", to, { recursive: true });
}
