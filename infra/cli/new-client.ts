import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { allocatePorts, validateCatalog } from "../model/catalog.js";
import { deployProblems, reservedName } from "../model/deployable.js";
import { formatProblem, type Problem } from "../model/problems.js";
import { EnvironmentSchema, type EnvironmentDefinition } from "../model/schema.js";
import { defaultAvailabilityZone, defaultContainerPrefix } from "../model/derive.js";
import { loadCatalog } from "./load-catalog.js";
import { npmRun } from "./npm-run.js";
import { runCli, UsageError } from "./run.js";

const USAGE = `usage: npm run new-client -- <name> --domain <fqdn> [options]

  <name>                  the client's stack name: a-z, 0-9 and '-' (e.g. acme); names
                          starting fixture- are the tests' own
  --domain <fqdn>         the client's domain, e.g. timetracker.acme.example (required)
  --region <region>       AWS region of the host (default us-east-1)
  --bundle <id>           Lightsail bundle (default small_3_0)
  --admin-cidr <cidr>     who may reach SSH on the host, e.g. 203.0.113.7/32 (repeatable;
                          at least one: pulumi reaches Docker on the host over SSH)
  --email <address>       ACME account e-mail for the certificates
  --root <dir>            the repository to change (default: the current directory)`;

/** Directories whose files the regenerate step may rewrite; snapshotted for rollback. */
const GENERATED_DIRS = ["rendered", "resources", "iam"];

/** Words that cannot name the exported const. */
const RESERVED = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends false finally for function " +
    "if import in instanceof new null return super switch this throw true try typeof var void while with yield let static " +
    "implements interface package private protected public await catalog EnvironmentDefinition"
  ).split(" "),
);

interface Options {
  name: string;
  domain: string;
  region: string;
  bundle: string;
  adminCidrs: string[];
  email: string | undefined;
}

/** The flag (and the value given) behind a problem path of the new stack, for messages. */
function flagFor(path: string, label: string, options: Options): string {
  const rest = path.startsWith(`${label}.`) ? path.slice(label.length + 1) : path;
  const cidrIndex = rest.match(/^host\.adminCidrs\.(\d+)/)?.[1];
  if (cidrIndex !== undefined) return `--admin-cidr ${options.adminCidrs[Number(cidrIndex)] ?? ""}`.trim();
  if (rest === "host.adminCidrs") return options.adminCidrs.length === 0 ? "--admin-cidr (none given)" : `--admin-cidr ${options.adminCidrs.join(" --admin-cidr ")}`;
  if (rest === "domain") return `--domain ${options.domain}`;
  if (rest.startsWith("host.region") || rest.startsWith("host.availabilityZone")) return `--region ${options.region}`;
  if (rest.startsWith("host.bundle")) return `--bundle ${options.bundle}`;
  if (rest.startsWith("tls.email")) return `--email ${options.email ?? ""}`.trim();
  if (rest.startsWith("ports")) return `${path} (allocated by new-client)`;
  if (rest === "name" || rest.startsWith("containerPrefix") || rest.startsWith("volumes")) return `name "${options.name}" (${path})`;
  return path;
}

/** `acme-corp` -> `acmeCorp`, kept clear of reserved words and the catalog's own names. */
function identifierFor(name: string, catalogSource: string): string {
  const camel = name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const clashes = (id: string) => RESERVED.has(id) || new RegExp(`\\b${id}\\b`).test(catalogSource);
  return clashes(camel) ? `${camel}Client` : camel;
}

/** The client's definition; without `ports`, a draft whose ports the catalog allocates. */
function buildDefinition(options: Options, ports?: { frontend: number; backend: number }): EnvironmentDefinition {
  return {
    name: options.name,
    domain: options.domain,
    containerPrefix: defaultContainerPrefix(options.name),
    ...(ports ? { ports } : {}),
    app: { environment: "production", debug: false },
    database: { name: "time_tracker", user: "timetracker" },
    host: {
      region: options.region,
      availabilityZone: defaultAvailabilityZone(options.region),
      bundle: options.bundle,
      blueprint: "ubuntu_22_04",
      adminCidrs: options.adminCidrs,
    },
    tls: options.email === undefined ? { mode: "acme" } : { mode: "acme", email: options.email },
  };
}

/** A value as a TypeScript literal: flat objects and arrays on one line, nested objects indented. */
function literal(value: unknown, indent = ""): string {
  if (Array.isArray(value)) return `[${value.map((v) => literal(v, indent)).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.every(([, v]) => v === null || typeof v !== "object")) {
      return `{ ${entries.map(([k, v]) => `${k}: ${literal(v)}`).join(", ")} }`;
    }
    const inner = `${indent}  `;
    return `{\n${entries.map(([k, v]) => `${inner}${k}: ${literal(v, inner)},`).join("\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** The client's definition file, written from the same object the catalog was validated with. */
function definitionSource(identifier: string, definition: EnvironmentDefinition): string {
  return `import type { EnvironmentDefinition } from "../../infra/model/schema.js";

/** Client ${definition.name}: ${definition.domain}, on its own Lightsail host. Created by \`npm run new-client\`. */
export const ${identifier} = ${literal(definition)} satisfies EnvironmentDefinition;
`;
}

function stackConfigSource(options: Options): string {
  return `# Stack "${options.name}": only the region and the SSH key pair live here; everything
# else is in stacks/clients/${options.name}.ts. Secrets are added with \`pulumi config set --secret\`.
config:
  aws:region: ${options.region}
  timetracker:sshPublicKeyPath: ~/.ssh/timetracker-${options.name}.pub
  timetracker:sshPrivateKeyPath: ~/.ssh/timetracker-${options.name}
`;
}

/** stacks/catalog.ts with the new stack imported and listed, or an error if its shape is unexpected. */
function registerInCatalog(source: string, identifier: string, name: string): string {
  const lines = source.split("\n");
  const lastImport = lines.reduce((last, line, i) => (/^import .* from "\.\/.+\.js";$/.test(line) ? i : last), -1);
  const arrayStart = lines.findIndex((line) => /^export const catalog\b.*=\s*\[\s*$/.test(line));
  const arrayEnd = arrayStart < 0 ? -1 : lines.findIndex((line, i) => i > arrayStart && /^\];?\s*$/.test(line));
  if (lastImport < 0 || arrayStart < 0 || arrayEnd < 0) {
    throw new UsageError(
      `stacks/catalog.ts: cannot find its stack imports and its "export const catalog ... = [" list; register ${identifier} by hand`,
    );
  }
  const withEntry = [...lines.slice(0, arrayEnd), `  ${identifier},`, ...lines.slice(arrayEnd)];
  return [
    ...withEntry.slice(0, lastImport + 1),
    `import { ${identifier} } from "./clients/${name}.js";`,
    ...withEntry.slice(lastImport + 1),
  ].join("\n");
}

/** Every file under `dir`, relative to `root`, with its content. */
function snapshotTree(root: string, dir: string): { files: Map<string, Buffer>; dirs: Set<string> } {
  const files = new Map<string, Buffer>();
  const dirs = new Set<string>();
  const walk = (relDir: string) => {
    const abs = join(root, relDir);
    if (!existsSync(abs)) return;
    dirs.add(relDir);
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const rel = join(relDir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else files.set(rel, readFileSync(join(root, rel)));
    }
  };
  walk(dir);
  return { files, dirs };
}

/** Records what each touched path held before, so that a failed run can put everything back. */
class Changes {
  private readonly files = new Map<string, Buffer | null>();
  private readonly trees: { dir: string; files: Map<string, Buffer>; dirs: Set<string> }[] = [];
  private readonly createdDirs: string[] = [];

  constructor(private readonly root: string) {}

  write(rel: string, content: string): void {
    const abs = join(this.root, rel);
    if (!this.files.has(rel)) this.files.set(rel, existsSync(abs) ? readFileSync(abs) : null);
    let dir = dirname(rel);
    const missing: string[] = [];
    while (dir !== "." && !existsSync(join(this.root, dir))) {
      missing.unshift(dir);
      dir = dirname(dir);
    }
    if (missing.length > 0) {
      mkdirSync(join(this.root, missing[0] as string), { recursive: true });
      this.createdDirs.push(...missing);
    }
    writeFileSync(abs, content);
  }

  /** Remembers a whole directory that a child process is about to rewrite. */
  watchTree(dir: string): void {
    this.trees.push({ dir, ...snapshotTree(this.root, dir) });
  }

  rollback(): string[] {
    const restored: string[] = [];
    for (const tree of this.trees) {
      const now = snapshotTree(this.root, tree.dir);
      for (const [rel, content] of now.files) {
        const before = tree.files.get(rel);
        if (before === undefined) {
          rmSync(join(this.root, rel), { force: true });
          restored.push(rel);
        } else if (!before.equals(content)) {
          writeFileSync(join(this.root, rel), before);
          restored.push(rel);
        }
      }
      for (const [rel, content] of tree.files) {
        if (!now.files.has(rel)) {
          mkdirSync(dirname(join(this.root, rel)), { recursive: true });
          writeFileSync(join(this.root, rel), content);
          restored.push(rel);
        }
      }
      const newDirs = [...now.dirs].filter((d) => !tree.dirs.has(d)).sort((a, b) => b.length - a.length);
      for (const d of newDirs) rmSync(join(this.root, d), { recursive: true, force: true });
    }
    for (const [rel, before] of this.files) {
      const abs = join(this.root, rel);
      if (before === null) rmSync(abs, { force: true });
      else writeFileSync(abs, before);
      restored.push(rel);
    }
    for (const dir of [...this.createdDirs].reverse()) {
      const abs = join(this.root, dir);
      if (existsSync(abs) && readdirSync(abs).length === 0) rmdirSync(abs);
    }
    return [...new Set(restored)].sort();
  }
}

/** Runs an npm script in the repository; returns its combined output when it fails. */
async function catalogOf(root: string): Promise<{ definitions: unknown[]; source: string }> {
  const path = join(root, "stacks", "catalog.ts");
  if (!existsSync(path) || !existsSync(join(root, "package.json"))) {
    throw new UsageError(`${root} is not this repository: it has no stacks/catalog.ts or package.json (see --root)`);
  }
  return { definitions: await loadCatalog(root), source: readFileSync(path, "utf8") };
}

function readOptions(values: Record<string, unknown>, positionals: string[]): Options {
  if (positionals.length === 0) throw new UsageError("the client's name is required, e.g. npm run new-client -- acme --domain timetracker.acme.example");
  if (positionals.length > 1) throw new UsageError(`expected one name, got ${positionals.length}: ${positionals.join(" ")}`);
  const domain = values.domain as string | undefined;
  if (!domain) throw new UsageError("--domain is required: the client's domain, e.g. --domain timetracker.acme.example");
  return {
    name: positionals[0] as string,
    domain,
    region: (values.region as string | undefined) ?? "us-east-1",
    bundle: (values.bundle as string | undefined) ?? "small_3_0",
    adminCidrs: (values["admin-cidr"] as string[] | undefined) ?? [],
    email: values.email as string | undefined,
  };
}

/** The GitHub secrets' suffix for a stack, as .github/workflows/pull-request.yml derives it: upper case, '-' as '_'. */
const secretKey = (name: string) => name.toUpperCase().replace(/-/g, "_");

/**
 * What to run after scaffolding, in groups: steps 2 to 4 of docs/add-a-client.md, which
 * shows them for acme line for line (test/delivery/new-client.test.ts compares the two).
 */
function nextSteps(name: string, domain: string, files: string[]): string[][] {
  const key = `~/.ssh/timetracker-${name}`;
  const environment = `client-${name}`;
  return [
    [
      `ssh-keygen -t ed25519 -N "" -C timetracker-${name} -f ${key}   # skip if the key pair exists`,
      `pulumi stack init ${name}`,
      `pulumi preview --stack ${name} --diff          # everything is a create`,
    ],
    [
      "# previews on pull requests (the reviewer-gated preview environment: the public key only)",
      `gh secret set SSH_PUBLIC_KEY_${secretKey(name)} --env preview < ${key}.pub`,
      "# deploys (the client's environment)",
      `gh api -X PUT "repos/{owner}/{repo}/environments/${environment}"`,
      `gh secret set SSH_PRIVATE_KEY --env ${environment} < ${key}`,
      `gh secret set SSH_PUBLIC_KEY --env ${environment} < ${key}.pub`,
    ],
    [
      `git switch -c add-client-${name}`,
      `git add ${files.join(" ")}`,
      `git commit -m "Add client ${name}"`,
      `git push -u origin add-client-${name} && gh pr create --fill`,
    ],
    [
      "# after the pull request is merged",
      `gh workflow run deploy-client.yml -f stack=${name}    # a production reviewer approves it`,
      "gh run watch",
      `# or, from a laptop: pulumi up --stack ${name}`,
    ],
    [
      `pulumi stack output --stack ${name} staticIp         # create the A record ${domain} -> this IP`,
      `curl -fsS https://${domain}/api/health`,
      `pulumi stack output --stack ${name} containers`,
    ],
  ];
}

function refuse(lines: string[]): number {
  for (const line of lines) console.error(line);
  console.error("\nNothing was written.");
  return 1;
}

await runCli(
  USAGE,
  {
    domain: { type: "string" },
    region: { type: "string" },
    bundle: { type: "string" },
    "admin-cidr": { type: "string", multiple: true },
    email: { type: "string" },
    root: { type: "string" },
  },
  async (values, positionals) => {
    const options = readOptions(values, positionals);
    const root = resolve((values.root as string | undefined) ?? process.cwd());
    const { name } = options;

    const nameCheck = EnvironmentSchema.shape.name.safeParse(name);
    if (!nameCheck.success) {
      return refuse([`name "${name}": ${nameCheck.error.issues.map((i) => i.message).join("; ")}`]);
    }
    const reserved = reservedName(name);
    if (reserved) return refuse([`name "${name}": ${reserved}`]);

    const { definitions, source: catalogSource } = await catalogOf(root);
    const existing = validateCatalog(definitions);
    if (!existing.ok) {
      return refuse([
        "stacks/catalog.ts is invalid before adding anything; fix these first (npm run validate):",
        ...existing.problems.map((p) => `  ${formatProblem(p)}`),
      ]);
    }
    if (existing.plans.some((plan) => plan.stack === name)) {
      return refuse([`name "${name}": a stack named "${name}" already exists in stacks/catalog.ts; pick another name`]);
    }
    const definitionPath = join("stacks", "clients", `${name}.ts`);
    const configPath = `Pulumi.${name}.yaml`;
    for (const path of [definitionPath, configPath]) {
      if (existsSync(join(root, path))) {
        return refuse([`name "${name}": ${path} already exists; remove it or pick another name`]);
      }
    }

    // The draft (no ports yet) is checked with the catalog first: a bad flag is refused here,
    // named by the flag. Ports: what the model's own rule gives a stack appended without ports
    // (the lowest free pair across the whole catalog, standby slots included), written down
    // so they never move.
    const draft = buildDefinition(options);
    let result = validateCatalog([...definitions, draft]);
    let ports = { frontend: 0, backend: 0 };
    if (result.ok) {
      const appended = allocatePorts([...definitions, draft].map((definition) => EnvironmentSchema.parse(definition)));
      ports = { ...(appended.at(-1) as (typeof appended)[number]).ports };
      result = validateCatalog([...definitions, buildDefinition(options, ports)]);
    }
    if (!result.ok) {
      const regionWrong = result.problems.some((p) => p.path === `${name}.host.region`);
      const problems: Problem[] = result.problems
        // A wrong region also makes its derived zone wrong: say it once.
        .filter((p) => !(regionWrong && p.path === `${name}.host.availabilityZone`))
        .map((p) => ({
          path: p.path === name || p.path.startsWith(`${name}.`) ? flagFor(p.path, name, options) : p.path,
          message: p.message,
        }));
      return refuse(problems.map(formatProblem));
    }

    const definition = buildDefinition(options, ports);
    // Valid, but a deploy refuses it until a placeholder is replaced: said now, written anyway.
    const placeholders = deployProblems(EnvironmentSchema.parse(definition)).map((p) => ({ ...p, path: flagFor(p.path, name, options).split(" ")[0] as string }));

    // Everything is known and valid: compute every new content before writing any of it.
    const identifier = identifierFor(name, catalogSource);
    const newCatalog = registerInCatalog(catalogSource, identifier, name);
    const packageScripts =
      (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts?: Record<string, string> }).scripts ?? {};
    const generate: string[][] = packageScripts.generate
      ? [["generate"]]
      : [["render", "--", "--all"], ...(packageScripts.resources ? [["resources"]] : [])];

    const changes = new Changes(root);
    const fail = (step: string, output: string): number => {
      const restored = changes.rollback();
      console.error(`${step} failed:\n${output.replace(/^/gm, "  ")}\n`);
      console.error(`Rolled back every change (${restored.length} file${restored.length === 1 ? "" : "s"}): the repository is as it was.`);
      return 1;
    };

    try {
      changes.write(definitionPath, definitionSource(identifier, definition));
      changes.write(join("stacks", "catalog.ts"), newCatalog);
      changes.write(configPath, stackConfigSource(options));
      for (const dir of GENERATED_DIRS) changes.watchTree(dir);
      // Each step loads the new catalog in a process of its own and validates it before writing.
      for (const args of generate) {
        const run = npmRun(root, args);
        if (!run.ok) return fail(run.command, run.output);
      }
      if (!existsSync(join(root, "rendered", name)) || !statSync(join(root, "rendered", name)).isDirectory()) {
        return fail("regenerating", `rendered/${name}/ was not written`);
      }
    } catch (error) {
      return fail("writing the new stack", (error as Error).message);
    }

    const rel = (path: string) => relative(process.cwd(), join(root, path)) || ".";
    const generated = [
      `rendered/${name}/`,
      ...(packageScripts.resources || packageScripts.generate ? [`resources/${name}.md`] : []),
      // npm run iam also lists the new role in iam/README.md.
      ...(existsSync(join(root, "iam", `deploy-${name}`)) ? [`iam/deploy-${name}/`, "iam/README.md"] : []),
    ];
    const rows: [string, string][] = [
      [rel(definitionPath), "the definition"],
      [rel("stacks/catalog.ts"), `registers ${identifier}`],
      [rel(configPath), "aws:region and the SSH key paths"],
      [generated.map((g) => `${rel(g)}${g.endsWith("/") ? "/" : ""}`).join(", "), `generated by ${generate.map((a) => `npm run ${a.join(" ")}`).join(", ")}`],
    ];
    const width = Math.max(...rows.map(([path]) => path.length));
    console.log(`Added client stack "${name}" (${options.domain}): ports ${ports.frontend}/${ports.backend}, ${options.region}, ${options.bundle}
${rows.map(([path, what]) => `  ${path.padEnd(width)}  ${what}`).join("\n")}
The catalog validates with it.`);
    for (const problem of placeholders) {
      console.log(`\nwarning: ${formatProblem(problem)}.\n         Set it in ${definitionPath} before a deploy: npm run validate -- --stack ${name} checks it.`);
    }
    if (options.adminCidrs.length === 0) {
      console.log(`\nwarning: no --admin-cidr: port 22 stays closed to everyone, and pulumi reaches Docker on the host over SSH.
         Add the deploying machine's address to host.adminCidrs in ${definitionPath} before \`pulumi up\`.`);
    }
    console.log(`\nNext (docs/add-a-client.md, steps 2 to 4):`);
    console.log(nextSteps(name, options.domain, [definitionPath, "stacks/catalog.ts", configPath, ...generated.map((path) => path.replace(/\/$/, ""))])
      .map((group) => group.map((line) => `  ${line}`).join("\n"))
      .join("\n\n"));
    return 0;
  },
);
