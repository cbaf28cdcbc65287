import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planFor, validateCatalog } from "../../infra/model/catalog.js";
import type { ContainerPlan, Plan } from "../../infra/model/plan.js";
import { STANDBY_PORT_OFFSET } from "../../infra/model/schema.js";
import { BACKUP_TOOL, renderBackupTool } from "../../infra/render/backup.js";
import { renderCaddyfile } from "../../infra/render/caddyfile.js";
import { renderHostSetup } from "../../infra/render/host-setup.js";
import { renderAll } from "../../infra/render/index.js";
import { DAEMON_JSON } from "../../infra/render/launch-script.js";
import { renderNginxConf } from "../../infra/render/nginx-conf.js";
import { RELEASE_TOOL, RELEASED_SERVICES, releaseSpec, renderReleaseTool, type ReleasedService } from "../../infra/render/release.js";
import { catalog } from "../../stacks/catalog.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { block, copyOf, planFromDefinition, problemAt, run, tempDir } from "./helpers.js";

/**
 * The host's release tool (infra/render/release.ts), rendered per stack: what the backend
 * and frontend Docker containers were given by the program before, the tool now gives the
 * candidate it starts. Its variables are read by bash itself, not by a regex.
 */

const { dir, cleanup } = tempDir("release");
afterAll(cleanup);

const stacks = catalog.map((d) => d.name);
const eachStack = stacks.map((stack) => [stack, planFor(catalog, stack)] as const);
const eachRelease = eachStack.flatMap(([stack, plan]) => RELEASED_SERVICES.map((service) => [stack, service, plan] as const));

/** Where the tool stops defining and starts acting: everything above it only sets variables and functions. */
const MAIN = '\ninstall -d -m 0700 "$state_dir"\n';

/** The tool's definitions (variables, functions), safe to run on this machine. */
function definitions(tool: string): string {
  const at = tool.indexOf(MAIN);
  expect(at, "the tool's main section").toBeGreaterThan(0);
  return tool.slice(0, at + 1);
}

let scripts = 0;
/** Runs bash on the tool's definitions followed by `code`; fails the test on a non-zero exit. */
async function bash(tool: string, code: string): Promise<string> {
  const file = join(dir, `script-${(scripts += 1)}.sh`);
  writeFileSync(file, `${definitions(tool)}\n${code}\n`);
  const result = await run("bash", [file]);
  expect(result.spawnError).toBeUndefined();
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  return result.stdout;
}

const ARRAYS = ["slots", "secret_keys", "plain_env", "create_options"] as const;
const SCALARS = ["network", "name", "candidate", "previous", "internal", "ready_path", "release_command", "spec", "wait_seconds"] as const;
type Vars = Record<(typeof SCALARS)[number], string> & Record<(typeof ARRAYS)[number], string[]>;

/** The variables `service_spec <service>` sets, as bash sees them (unit/record separators between values). */
async function varsOf(tool: string, service: string): Promise<Vars> {
  const out = await bash(
    tool,
    [
      `service_spec ${service}`,
      ...SCALARS.map((v) => `printf '%s\\x1f%s\\x1e' ${v} "$${v}"`),
      ...ARRAYS.map((v) => `for value in "\${${v}[@]}"; do printf '%s\\x1f%s\\x1e' ${v} "$value"; done`),
    ].join("\n"),
  );
  const vars = Object.fromEntries(ARRAYS.map((a) => [a, [] as string[]])) as unknown as Vars;
  for (const record of out.split("\x1e").filter((r) => r !== "")) {
    const [key, value] = record.split("\x1f") as [string, string];
    if ((ARRAYS as readonly string[]).includes(key)) (vars[key as (typeof ARRAYS)[number]] as string[]).push(value);
    else vars[key as (typeof SCALARS)[number]] = value;
  }
  return vars;
}

/** `--flag value` pairs of the tool's create options (a value may hold spaces: bash already split them). */
const option = (vars: Vars, flag: string) => vars.create_options.flatMap((o, i) => (o === flag ? [vars.create_options[i + 1]] : []));

const plainEnvOf = (c: ContainerPlan) => Object.entries(c.env).flatMap(([k, v]) => (typeof v === "string" ? [`${k}=${v}`] : []));
const secretKeysOf = (c: ContainerPlan) => Object.entries(c.env).flatMap(([k, v]) => (typeof v === "string" ? [] : [k]));

describe("the release tool names everything of each released service", () => {
  it("covers every stack of the catalog and both released services", () => {
    expect(stacks).toEqual(expect.arrayContaining(["prod", "staging"]));
    expect([...RELEASED_SERVICES]).toEqual(["backend", "frontend"]);
    for (const [, plan] of eachStack) {
      const released = Object.values(plan.containers).filter((c) => c.release).map((c) => c.service);
      expect(released).toEqual(["backend", "frontend"]);
    }
  });

  it.each(eachRelease)("%s %s: container, candidate, previous, both slots, ready path, release command, network", async (_stack, service, plan) => {
    const c = plan.containers[service];
    const vars = await varsOf(renderReleaseTool(plan), service);
    expect(vars.name).toBe(c.name);
    expect(vars.candidate).toBe(c.release!.candidateName);
    expect(vars.candidate).toBe(`${c.name}-candidate`);
    expect(vars.previous).toBe(c.release!.previousName);
    expect(vars.previous).toBe(`${c.name}-previous`);
    // Both slots are the ports the plan publishes on loopback: the definition's port and its standby twin.
    expect(vars.slots).toEqual(c.ports.map((p) => String(p.external)));
    expect(c.ports).toEqual([
      { internal: c.listenPort, external: c.ports[0]!.external, ip: "127.0.0.1", origin: `ports.${service}` },
      { internal: c.listenPort, external: c.ports[0]!.external + STANDBY_PORT_OFFSET, ip: "127.0.0.1", origin: `ports.${service}` },
    ]);
    expect(vars.internal).toBe(String(c.listenPort));
    expect(vars.ready_path).toBe(c.release!.readyPath);
    expect(vars.ready_path).toBe(service === "backend" ? "/api/health" : "/healthz");
    expect(vars.release_command).toBe(c.release!.command);
    expect(vars.release_command).toBe(service === "backend" ? "alembic upgrade head" : "");
    expect(vars.network).toBe(plan.network);
    expect(option(vars, "--network")).toEqual([plan.network]);
    expect(vars.spec).toBe(releaseSpec(plan, service));
  });

  it.each(eachStack)("%s: Caddy's health checks ask each slot the tool's ready path", async (_stack, plan) => {
    const routes = block(renderCaddyfile(plan), "(timetracker_routes) {");
    for (const route of plan.caddy.routes) {
      const proxy = block(routes, route.path === "/*" ? "handle {" : `handle ${route.path} {`);
      const vars = await varsOf(renderReleaseTool(plan), route.service);
      expect(proxy).toContain(`reverse_proxy ${vars.slots.map((s) => `127.0.0.1:${s}`).join(" ")} {`);
      expect(proxy).toContain(`health_uri ${vars.ready_path}\n`);
    }
  });

  it.each(eachRelease)("%s %s: the secret variables by name only, the plain ones exactly as the plan has them", async (_stack, service, plan) => {
    const c = plan.containers[service];
    const vars = await varsOf(renderReleaseTool(plan), service);
    expect(vars.secret_keys).toEqual(secretKeysOf(c));
    expect(vars.secret_keys).toEqual(service === "backend" ? ["DB_PASSWORD", "REDIS_PASSWORD", "SECRET_KEY"] : []);
    expect(vars.plain_env).toEqual(plainEnvOf(c));
    // Nothing is dropped: every variable of the plan is either plain or read from stdin.
    const keys = [...vars.plain_env.map((line) => line.slice(0, line.indexOf("="))), ...vars.secret_keys];
    expect(keys.sort()).toEqual(Object.keys(c.env).sort());
    for (const line of vars.plain_env) expect(vars.secret_keys).not.toContain(line.slice(0, line.indexOf("=")));
  });

  it.each(eachRelease)("%s %s: Docker's health check, restart policy, logs, labels and wait as the container had them", async (stack, service, plan) => {
    const c = plan.containers[service];
    const check = c.healthCheck;
    const vars = await varsOf(renderReleaseTool(plan), service);
    const [kind, ...rest] = check.test;
    const [healthCmd, ...others] = option(vars, "--health-cmd");
    expect(others).toEqual([]);
    if (kind === "CMD-SHELL") {
      expect(healthCmd).toBe(rest.join(" "));
    } else {
      // Docker runs --health-cmd through a shell: the words it splits into are the plan's exec form.
      expect(kind).toBe("CMD");
      const words = await run("bash", ["-c", `eval "words=($1)"; printf '%s\\0' "\${words[@]}"`, "bash", healthCmd!]);
      expect(words.stdout.split("\0").slice(0, -1)).toEqual(rest);
    }
    expect(option(vars, "--health-interval")).toEqual([`${check.intervalSeconds}s`]);
    expect(option(vars, "--health-timeout")).toEqual([`${check.timeoutSeconds}s`]);
    expect(option(vars, "--health-retries")).toEqual([String(check.retries)]);
    expect(option(vars, "--health-start-period")).toEqual([`${check.startPeriodSeconds}s`]);
    expect(option(vars, "--restart")).toEqual(["unless-stopped"]);
    expect(option(vars, "--log-driver")).toEqual([DAEMON_JSON["log-driver"]]);
    expect(option(vars, "--log-opt")).toEqual(Object.entries(DAEMON_JSON["log-opts"]).map(([k, v]) => `${k}=${v}`));
    expect(option(vars, "--label")).toEqual([`timetracker.stack=${stack}`, `timetracker.service=${service}`]);
    expect(option(vars, "--volume")).toEqual(c.volumes.map((v) => `${v.volume}:${v.path}${v.readOnly ? ":ro" : ""}`));
    // The frontend reads the kept assets of earlier releases, and never writes them.
    expect(option(vars, "--volume")).toEqual(
      service === "frontend" ? [`${plan.frontendAssets.filesDir}:${plan.frontendAssets.keptDir}:ro`] : [],
    );
    // The deploy waits as long as Docker needs to call the container unhealthy, plus a margin.
    expect(Number(vars.wait_seconds)).toBe(check.startPeriodSeconds + check.retries * (check.intervalSeconds + check.timeoutSeconds) + 30);
    // The tool starts the image's own command: a command in the plan would be lost.
    expect(c.command).toBeUndefined();
  });

  it.each(eachRelease)("%s %s: joins the stack's network under the plan's aliases", (_stack, service, plan) => {
    // The Docker container had them (networksAdvanced); the plan, topology.md and the README still
    // promise them, and ALLOWED_HOSTS admits "backend" because of it. Whatever the plan lists must reach the container.
    const c = plan.containers[service];
    const tool = renderReleaseTool(plan);
    const serviceBlock = tool.slice(tool.indexOf(`  ${service})\n    name=`), tool.indexOf("    ;;", tool.indexOf(`  ${service})\n    name=`)));
    for (const alias of c.aliases) expect(serviceBlock).toMatch(new RegExp(`--(?:network-)?alias[ =]'?${alias}'?(\\s|$)`));
  });

  it.each(eachStack)("%s: the frontend's container gets exactly the rendered nginx.conf; the backend no file", async (_stack, plan) => {
    for (const service of RELEASED_SERVICES) {
      const out = join(dir, `files-${plan.stack}-${service}`);
      // A stand-in docker that keeps what `docker cp` would place into the container, by path.
      await bash(
        renderReleaseTool(plan),
        `mkdir -p '${out}'
docker() { [ "$1" = cp ] || return 9; cp "$2" "${out}/$(printf '%s' "\${3#*:}" | tr / _)"; }
put_files ${service} ${plan.containers[service].release!.candidateName}`,
      );
      const placed = Object.fromEntries(readdirSync(out).map((f) => [f, readFileSync(join(out, f), "utf8")]));
      const expected = Object.fromEntries(
        plan.containers[service].files.map((f) => [f.path.replace(/\//g, "_"), f.file === "nginx.conf" ? renderNginxConf(plan) : "(not expected)"]),
      );
      expect(placed, service).toEqual(expected);
      expect(Object.keys(placed).length).toBe(service === "frontend" ? 1 : 0);
    }
    expect(plan.containers.frontend.files).toEqual([{ path: "/etc/nginx/nginx.conf", file: "nginx.conf" }]);
  });

  it.each(eachStack)("%s: host setup installs the tool byte for byte, and renderAll ships it as release.sh", (_stack, plan) => {
    const tool = renderReleaseTool(plan);
    expect(renderAll(plan)["release.sh"]).toBe(tool);
    const setup = renderHostSetup(plan);
    const header = `put ${RELEASE_TOOL} 0755 <<'SH' || true\n`;
    const start = setup.indexOf(header);
    expect(start).toBeGreaterThan(0);
    // The heredoc ends at the first line "SH": the whole tool must come before it.
    const body = setup.slice(start + header.length, setup.indexOf("\nSH\n", start) + 1);
    expect(body).toBe(tool);
    expect(tool.startsWith("#!/bin/bash\n")).toBe(true);
    expect(tool).toContain(`Release tool for stack "${plan.stack}"`);
  });

  it.each(eachStack)("%s: the tool names secrets only as variable names, never a value", (_stack, plan) => {
    const tool = renderReleaseTool(plan);
    const naming = tool.split("\n").filter((line) => /PASSWORD|SECRET_KEY/.test(line));
    expect(naming.map((line) => line.trim())).toEqual(
      RELEASED_SERVICES.map((s) => `secret_keys=(${secretKeysOf(plan.containers[s]).join(" ")})`).filter((line) => /PASSWORD|SECRET_KEY/.test(line)),
    );
  });
});

describe("deploy: what the tool takes as already live", () => {
  const plan = planFor(catalog, "staging");
  const tool = renderReleaseTool(plan);
  const IMAGE = "timetracker-staging-backend:0123456789ab";
  const secrets = (redis: string) => `DB_PASSWORD=db-one\nREDIS_PASSWORD=${redis}\nSECRET_KEY=key-one\n`;

  /**
   * A stand-in Docker that remembers the one container `docker create` was asked for (its
   * labels, env file and --env values) as the live backend, answers `docker inspect` from it,
   * and fails the create itself, so a run stops once it has started a candidate.
   */
  const fakeDocker = (state: string) => `state='${state}'\n${FAKE_DOCKER}`;
  // Bash's own braces are written %{ } here, so that the template leaves them alone.
  const FAKE_DOCKER = String.raw`
label_re='\{\{index \.Config\.Labels "([^"]+)"\}\}'
docker() {
  printf '%s\n' "$*" >> "$state/calls"
  case "$1" in
    inspect)
      [ -f "$state/labels" ] || return 1
      [ "$2" = -f ] || return 0
      local template=$3 out key value
      case "$template" in
        '{{.State.Running}}') echo true ;;
        '{{.State.Health.Status}}') echo healthy ;;
        '{{.Config.Image}}') cat "$state/image" ;;
        *'.Config.Env'*) cat "$state/env" ;;
        *'.Config.Labels'*)
          out=$template
          while [[ $out =~ $label_re ]]; do
            key=%{BASH_REMATCH[1]}
            value=$(grep -m1 "^$key=" "$state/labels" | cut -d= -f2- || true)
            out=%{out/"%{BASH_REMATCH[0]}"/$value}
          done
          printf '%s\n' "$out" ;;
        *) echo 8081 ;;
      esac ;;
    create)
      shift
      : > "$state/labels.new"; : > "$state/env.new"
      while [ "$#" -gt 1 ]; do
        case "$1" in
          --label) printf '%s\n' "$2" >> "$state/labels.new"; shift ;;
          --env-file) cat "$2" >> "$state/env.new"; shift ;;
          --env) printf '%s\n' "$2" >> "$state/env.new"; shift ;;
        esac
        shift
      done
      printf '%s' "$1" > "$state/image.new"
      return 1 ;;
    *) return 0 ;;
  esac
}
mktemp() { command mktemp "$state/tmp.XXXXXX"; }
sleep() { :; }
state_dir=$state/releases
mkdir -p "$state_dir"
service=backend
service_spec backend
`.replaceAll("%{", "${");

  /** One `deploy` of the backend with `stdin`; the candidate's create is where the fake stops it. */
  async function deploy(state: string, stdin: string) {
    const stdinFile = join(state, `stdin-${(scripts += 1)}`);
    writeFileSync(stdinFile, stdin);
    rmSync(join(state, "calls"), { force: true });
    const file = join(dir, `deploy-${scripts}.sh`);
    writeFileSync(file, `${definitions(tool)}\n${fakeDocker(state)}\ndeploy '${IMAGE}' '${releaseSpec(plan, "backend")}' < '${stdinFile}'\n`);
    const result = await run("bash", [file]);
    const calls = existsSync(join(state, "calls")) ? readFileSync(join(state, "calls"), "utf8").split("\n") : [];
    return { ...result, created: calls.some((c) => c.startsWith("create ")) };
  }

  /** What the fake's last create was asked for becomes the live container (as a swap would leave it). */
  function promote(state: string) {
    for (const f of ["labels", "env", "image"]) renameSync(join(state, `${f}.new`), join(state, f));
  }

  it("starts a candidate the first time, skips the same image and secrets again, and releases rotated secrets", async () => {
    const state = join(dir, "deploy-state");
    mkdirSync(state, { recursive: true });

    const first = await deploy(state, secrets("redis-one"));
    expect(first.created, first.stdout + first.stderr).toBe(true);
    promote(state);
    expect(readFileSync(join(state, "labels"), "utf8")).toContain(`timetracker.image=${IMAGE}\n`);
    // The candidate's environment: the plain variables, then the secrets from stdin.
    expect(readFileSync(join(state, "env"), "utf8")).toContain(secrets("redis-one"));

    const again = await deploy(state, secrets("redis-one"));
    expect({ code: again.code, created: again.created }).toEqual({ code: 0, created: false });
    expect(again.stdout).toContain(`backend: ${IMAGE} is already live as ${plan.containers.backend.name}`);

    // A rotated password (a new secret on stdin, same image, same spec) must reach a new container:
    // Redis and the database take the new one, the live backend still holds the old.
    const rotated = await deploy(state, secrets("redis-two"));
    expect(rotated.stdout).not.toContain("is already live");
    expect(rotated.created, rotated.stdout + rotated.stderr).toBe(true);
  });
});

describe("releaseSpec: a new release exactly when what the container runs with changes", () => {
  const plan = planFor(catalog, "staging");
  const specs = (p: Plan) => Object.fromEntries(RELEASED_SERVICES.map((s) => [s, releaseSpec(p, s)])) as Record<ReleasedService, string>;
  const before = specs(plan);
  const edited = (edit: (p: Plan) => void) => {
    const copy = copyOf(plan);
    edit(copy);
    return specs(copy);
  };

  it("is a short hex hash, different per service, the same for the same plan", () => {
    expect(before.backend).toMatch(/^[0-9a-f]{12}$/);
    expect(before.frontend).toMatch(/^[0-9a-f]{12}$/);
    expect(before.backend).not.toBe(before.frontend);
    expect(specs(planFor(catalog, "staging"))).toEqual(before);
  });

  it("changes with the backend's environment", () => {
    expect(edited((p) => (p.containers.backend.env.DEBUG = "true")).backend).not.toBe(before.backend);
    expect(edited((p) => (p.containers.backend.env.FEATURE_X = "on")).backend).not.toBe(before.backend);
    const viaDefinition = planFromDefinition({ ...stagingDefinition, app: { ...stagingDefinition.app, extraEnv: { FEATURE_X: "on" } } });
    expect(releaseSpec(viaDefinition, "backend")).not.toBe(before.backend);
  });

  it("changes with the health check", () => {
    expect(edited((p) => (p.containers.backend.healthCheck.intervalSeconds += 1)).backend).not.toBe(before.backend);
    expect(edited((p) => (p.containers.frontend.healthCheck.retries += 1)).frontend).not.toBe(before.frontend);
    const viaDefinition = planFromDefinition({ ...stagingDefinition, app: { ...stagingDefinition.app, healthCheckIntervalSeconds: 17 } });
    expect(releaseSpec(viaDefinition, "backend")).not.toBe(before.backend);
  });

  it("changes with a port", () => {
    expect(edited((p) => (p.containers.backend.ports[0]!.external += 1)).backend).not.toBe(before.backend);
    expect(edited((p) => (p.containers.frontend.ports[1]!.external += 1)).frontend).not.toBe(before.frontend);
    const viaDefinition = planFromDefinition({ ...stagingDefinition, ports: { frontend: 3101, backend: 8101 } });
    expect(specs(viaDefinition).backend).not.toBe(before.backend);
    expect(specs(viaDefinition).frontend).not.toBe(before.frontend);
  });

  it("changes with the release command and the frontend's nginx.conf", () => {
    expect(edited((p) => (p.containers.backend.release!.command = "true")).backend).not.toBe(before.backend);
    expect(edited((p) => (p.frontendUpstream.dnsCacheSeconds += 1)).frontend).not.toBe(before.frontend);
  });

  it("does not change when only the image changes", () => {
    const registry = { source: "registry" as const, ref: "ghcr.io/acme/backend:1.2.3" };
    expect(edited((p) => (p.containers.backend.image = registry))).toEqual(before);
    expect(edited((p) => (p.containers.frontend.image = { ...registry, ref: "ghcr.io/acme/frontend:1.2.3" }))).toEqual(before);
    const viaDefinition = planFromDefinition({ ...stagingDefinition, images: { backend: registry } });
    expect(releaseSpec(viaDefinition, "backend")).toBe(releaseSpec(planFromDefinition(stagingDefinition), "backend"));
  });
});

describe("the release command is quoted safely", () => {
  const awkward = [`echo 'it''s'`, `python -c "print('a  b')" "$HOME" \`id\` $(id) ; true # done`, `printf '%s\\n' \\' "\\"" '\\'`];

  it.each(awkward)("%s: bash reads it back exactly, and the whole tool still parses", async (command) => {
    const plan = planFromDefinition({ ...stagingDefinition, app: { ...stagingDefinition.app, releaseCommand: command } });
    expect(plan.containers.backend.release!.command).toBe(command);
    const tool = renderReleaseTool(plan);

    const file = join(dir, `quoted-${(scripts += 1)}.sh`);
    writeFileSync(file, tool);
    const parsed = await run("bash", ["-n", file]);
    expect({ code: parsed.code, stderr: parsed.stderr }).toEqual({ code: 0, stderr: "" });

    // The assignment line alone, executed: no expansion, no word splitting, nothing run.
    const assignments = tool.split("\n").filter((line) => line.trimStart().startsWith("release_command="));
    expect(assignments).toHaveLength(2);
    const backendLine = assignments[0]!.trim();
    const result = await run("bash", ["-c", `${backendLine}\nprintf '%s' "$release_command"`]);
    expect({ code: result.code, stderr: result.stderr, value: result.stdout }).toEqual({ code: 0, stderr: "", value: command });
    expect((await varsOf(tool, "backend")).release_command).toBe(command);
  });
});

describe("the definition fields behind the tool", () => {
  /** The env file the tool writes for a deploy, read as Docker reads --env-file: one variable per line. */
  async function envFileEntries(plan: Plan, service: ReleasedService): Promise<string[]> {
    const out = await bash(
      renderReleaseTool(plan),
      `mktemp() { command mktemp '${dir}/env.XXXXXX'; }
service_spec ${service}
new_env_file
cat "$env_file"`,
    );
    return out.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
  }

  it.each(eachRelease)("%s %s: the env file of a deploy holds the plan's plain variables, one entry each", async (_stack, service, plan) => {
    expect(await envFileEntries(plan, service)).toEqual(plainEnvOf(plan.containers[service]));
  });

  it("a plain variable with a newline is refused at its field, or else reaches the env file as one entry", async () => {
    const definition = { ...stagingDefinition, app: { ...stagingDefinition.app, extraEnv: { PEM: "line one\nline two" } } };
    const result = validateCatalog([definition]);
    if (!result.ok) {
      expect(result.problems).toContainEqual(problemAt("staging.app.extraEnv.PEM"));
      return;
    }
    const [plan] = result.plans;
    // Docker's --env-file knows no multi-line values: "line two" would become a variable of its own.
    expect(await envFileEntries(plan!, "backend")).toEqual(plainEnvOf(plan!.containers.backend));
  });

  it("keeps the newest pre-deploy dumps the definition asks for (the backup tool keeps them; the release tool delegates)", async () => {
    const plan = planFromDefinition({ ...stagingDefinition, backup: { preDeployDumpKeep: 3 } });
    expect(plan.backup.preDeployKeep).toBe(3);
    const backupTool = renderBackupTool(plan);
    const backupVariables = join(dir, "backup-variables.sh");
    writeFileSync(backupVariables, `${backupTool.slice(0, backupTool.indexOf("\nusage() {"))}\nprintf '%s|%s|%s|%s' "$dump_keep" "$dump_dir" "$db_container" "$db_name"\n`);
    expect((await run("bash", [backupVariables])).stdout).toBe(`3|${plan.backup.dumpDir}|${plan.containers.db.name}|${plan.database.name}`);
    expect(await bash(renderReleaseTool(plan), `printf '%s|%s|%s' "$backup_tool" "$db_container" "$db_name"`)).toBe(
      `${BACKUP_TOOL}|${plan.containers.db.name}|${plan.database.name}`,
    );
    // Unwritten, ten are kept.
    expect(planFromDefinition(stagingDefinition).backup.preDeployKeep).toBe(10);
  });

  it("dump <reason> runs `timetracker-backup dump <reason>` (which takes no lock: this tool holds it) and reports its last line", async () => {
    const plan = planFor(catalog, "staging");
    const file = join(dir, "delegated.dump");
    writeFileSync(file, "PGDMP");
    const stub = join(dir, "backup-stub.sh");
    writeFileSync(stub, `#!/bin/sh\necho "$*" > '${dir}/backup-stub.args'\necho 'copied to the bucket' >&2\necho '${file}'\n`);
    chmodSync(stub, 0o755);
    const out = await bash(renderReleaseTool(plan), `running() { true; }\nbackup_tool='${stub}'\ndump predeploy 2>/dev/null`);
    expect(out).toMatch(new RegExp(`^dumped ${plan.database.name} to ${file} \\(\\S+\\)\n$`));
    expect(readFileSync(join(dir, "backup-stub.args"), "utf8")).toBe("dump predeploy\n");
    const backupTool = renderBackupTool(plan);
    const dumpBranch = backupTool.slice(backupTool.indexOf("\n  dump)\n"), backupTool.indexOf("\n  ship)\n"));
    expect(dumpBranch).not.toMatch(/flock|lock_file/);
    expect(backupTool.slice(backupTool.indexOf("\ndump_db() {"), backupTool.indexOf("\nnightly() {"))).not.toMatch(/flock|lock_file/);
  });
});
