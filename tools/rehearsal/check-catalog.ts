import { InputError } from "../../infra/cli/errors.js";
import { loadCatalog } from "../../infra/cli/load-catalog.js";

/**
 * Run by `npm run rehearse` before the rehearsal: the rehearsal's modules import the catalog
 * as they load, so a broken stack file would stop them with esbuild's stack trace. Loaded here
 * through the commands' shared loader, it is the one line every other command prints.
 */
try {
  await loadCatalog();
} catch (error) {
  if (!(error instanceof InputError)) throw error;
  console.error(error.message);
  process.exit(1);
}
