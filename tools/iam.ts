import { loadCatalog } from "../infra/cli/load-catalog.js";
import { runCli, UsageError } from "../infra/cli/run.js";
import { generateIam } from "./iam/generate.js";
import { IamError } from "./iam/policies.js";
import { writeIamFolder } from "./iam/write.js";

const USAGE = `usage: npm run iam
Writes iam/: for each GitHub environment the workflows use (preview, staging, production,
client-<name>), the IAM role's trust policy (exactly that environment of this repository,
package.json "repository") and its permission policy (the preview role reads; a stack's deploy
role writes that stack's resources), from the catalog and the resources the program declares
under Pulumi mocks. npm run generate runs it (and npm run new-client, npm run remove-client);
commit the result; iam/README.md says how to create the roles.
options:
  -h, --help   print this and exit`;

await runCli(
  USAGE,
  {},
  async () => {
    let files: Map<string, string>;
    try {
      files = await generateIam(await loadCatalog());
    } catch (error) {
      if (error instanceof IamError) throw new UsageError(error.message);
      throw error;
    }
    writeIamFolder(files);
    return 0;
  },
  { positionals: false },
);
