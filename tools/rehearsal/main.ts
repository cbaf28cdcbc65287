import { InputError } from "../../infra/cli/errors.js";
import { loadCatalog } from "../../infra/cli/load-catalog.js";

/**
 * `npm run rehearse`: the catalog first, through the commands' shared loader, then the
 * rehearsal. Its modules import the catalog as they load, so a broken stack file would stop
 * them with esbuild's stack trace; loaded here first, it is the one line every other command
 * prints.
 */
try {
  await loadCatalog();
} catch (error) {
  if (!(error instanceof InputError)) throw error;
  console.error(error.message);
  process.exit(1);
}
await import("./rehearse.js");
