import { writeFileSync } from "node:fs";
import { runCli } from "../infra/cli/run.js";
import { definitionDoc } from "./definition-doc.js";

const USAGE = `usage: npm run definition
Writes docs/definition.md, the reference of every field of a stack's definition, from the
descriptions, types and defaults in infra/model/schema.ts. Part of \`npm run generate\`;
commit the result (a test fails when it is stale).
options:
  -h, --help   print this and exit`;

await runCli(
  USAGE,
  {},
  () => {
    writeFileSync("docs/definition.md", definitionDoc());
    console.log("wrote docs/definition.md");
    return 0;
  },
  { positionals: false },
);
