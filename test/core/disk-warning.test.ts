import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import type { Plan } from "../../infra/model/plan.js";
import { EnvironmentSchema, type EnvironmentDefinition } from "../../infra/model/schema.js";
import {
  DISK_CHECK,
  DISK_WARNING_CRON,
  DISK_WARNING_FILE,
  renderDiskCheck,
  renderDiskWarningCron,
  renderHostSetup,
} from "../../infra/render/host-setup.js";
import { staging as stagingDefinition } from "../../stacks/staging.js";
import { planFromDefinition, plansOf, REPO_ROOT, run, tempDir } from "./helpers.js";
import { removeTree } from "../scratch.js";

/**
 * The host's disk check (`timetracker-disk-check`), run for real by /bin/sh with a stand-in
 * `df` and `logger` first on PATH: its daily warning mode (`--warn <percent>`, which writes
 * the file `npm run ops -- health` shows) and the deploy's guard (`<gb>`), which must answer
 * exactly as before the warning mode existed.
 */

const GB = 1024 * 1024; // df -k counts KiB

const { dir, cleanup } = tempDir("disk-warning");
afterAll(cleanup);

const bin = join(dir, "bin");
mkdirSync(bin);
const install = (path: string, text: string) => {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
};

/**
 * Stand-in df: answers `df --output=<fields> -k <path>` the way GNU df does (a header, then one
 * row), from FAKE_DF_ROOT for / and FAKE_DF_DATA for any other path ("<target> <use%> <avail KiB>");
 * an empty one is a path df cannot read. Every call is appended to FAKE_DF_CALLS.
 */
install(
  join(bin, "df"),
  `#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_DF_CALLS"
fields=\${1#--output=}
[ "$2" = -k ] && [ "$#" -eq 3 ] || { echo "stand-in df: unexpected arguments: $*" >&2; exit 64; }
case $3 in
  /) row=$FAKE_DF_ROOT ;;
  *) row=$FAKE_DF_DATA ;;
esac
if [ -z "$row" ]; then
  echo "df: $3: No such file or directory" >&2
  exit 1
fi
read -r target pcent avail <<EOF
$row
EOF
case $fields in
  avail) printf '    Avail\\n%9s\\n' "$avail" ;;
  target,pcent,avail) printf 'Mounted on Use%%     Avail\\n%-10s %4s %9s\\n' "$target" "$pcent" "$avail" ;;
  *) echo "stand-in df: unexpected --output=$fields" >&2; exit 64 ;;
esac
`,
);

/** Stand-in logger: appends "<tag>.<priority>: <message>" to FAKE_LOG, one per message (stdin's lines when none is given). */
install(
  join(bin, "logger"),
  `#!/bin/sh
tag=- priority=user.notice
while getopts t:p: option; do
  case $option in
    t) tag=$OPTARG ;;
    p) priority=$OPTARG ;;
    *) exit 64 ;;
  esac
done
shift $((OPTIND - 1))
if [ "$#" -gt 0 ]; then
  printf '%s.%s: %s\\n' "$tag" "$priority" "$*" >> "$FAKE_LOG"
else
  while IFS= read -r line; do printf '%s.%s: %s\\n' "$tag" "$priority" "$line" >> "$FAKE_LOG"; done
fi
[ -z "\${FAKE_LOGGER_FAILS:-}" ]
`,
);

const definition = (host: Partial<NonNullable<EnvironmentDefinition["host"]>> = {}): EnvironmentDefinition => ({
  ...stagingDefinition,
  host: { ...stagingDefinition.host, minFreeDiskGb: 5, diskWarningPercent: 80, ...host },
});
const plan = planFromDefinition(definition());
const data = plan.host.dataDisk.mount;

const checkPath = install(join(dir, "timetracker-disk-check"), renderDiskCheck(plan));
const warningDir = join(dir, "var");
const warningFile = join(warningDir, "disk-warning");
const dfCalls = join(dir, "df-calls");
const syslog = join(dir, "syslog");

interface Disk {
  used: number;
  freeKb: number;
  /** Where df says the path lives: the mount itself unless the data disk is not mounted. */
  target?: string;
}
const row = (mount: string, disk: Disk | undefined) => (disk ? `${disk.target ?? mount} ${disk.used}% ${disk.freeKb}` : "");
const roomy: Disk = { used: 40, freeKb: 30 * GB };

function check(args: string[], disks: { root?: Disk; data?: Disk } = {}, env: Record<string, string> = {}, script = checkPath) {
  const result = spawnSync(script, args, {
    encoding: "utf8",
    timeout: 10_000,
    env: {
      PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      TIMETRACKER_DISK_WARNING_FILE: warningFile,
      FAKE_DF_ROOT: row("/", "root" in disks ? disks.root : roomy),
      FAKE_DF_DATA: row(data, "data" in disks ? disks.data : roomy),
      FAKE_DF_CALLS: dfCalls,
      FAKE_LOG: syslog,
      ...env,
    },
  });
  if (result.error) throw result.error;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : undefined);
const warningLines = () => read(warningFile)?.split("\n").filter(Boolean);
const logged = () => read(syslog)?.split("\n").filter(Boolean) ?? [];

const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\dZ): /;
/** The lines without their timestamp, after checking it is now's (UTC, to the minute). */
function undated(lines: string[] | undefined): string[] | undefined {
  return lines?.map((line) => {
    const stamp = STAMP.exec(line)?.[1];
    expect(stamp, `a UTC timestamp at the start of: ${line}`).toBeDefined();
    expect(Math.abs(Date.parse(stamp!.replace("Z", ":00Z")) - Date.now())).toBeLessThan(3 * 60_000);
    return line.slice(stamp!.length + 2);
  });
}

const rootLine = (used: number, freeGb: number) => `/ is ${used}% full (${freeGb} GB free; the deploy needs 5 GB): run 'docker system df' and prune`;
const lowLine = (used: number, freeGb: number) =>
  `/ is ${used}% full (${freeGb} GB free, under the 5 GB a deploy needs: the next deploy will be refused): run 'docker system df' and prune`;
const dataLine = (used: number, freeGb: number) =>
  `${data} is ${used}% full (${freeGb} GB free): it holds the database, Redis, Caddy's certificates and the dumps (${plan.backup.dumpDir}); run 'sudo du -xsh ${data}/*'`;

beforeEach(() => {
  removeTree(warningDir);
  rmSync(dfCalls, { force: true });
  rmSync(syslog, { force: true });
});

describe("the daily warning (timetracker-disk-check --warn <percent>)", () => {
  it("asks df about / and the data mount, and writes no file while both are under the threshold", () => {
    const result = check(["--warn", "80"], { root: { used: 79, freeKb: 20 * GB }, data: { used: 79, freeKb: 4 * GB } });
    expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(existsSync(warningFile)).toBe(false);
    expect(read(dfCalls)).toBe(`--output=target,pcent,avail -k /\n--output=target,pcent,avail -k ${data}\n`);
    expect(logged()).toEqual([]);
  });

  it("removes the warning of an earlier day once all is well again, and says so in syslog", () => {
    mkdirSync(warningDir, { recursive: true });
    writeFileSync(warningFile, "2026-01-01T03:00Z: / is 91% full\n");
    expect(check(["--warn", "80"]).code).toBe(0);
    expect(existsSync(warningFile)).toBe(false);
    expect(logged()).toEqual([
      `timetracker-disk.user.notice: disk warning cleared: / and ${data} are under 80% full and / has 5 GB free or more; removed ${warningFile}`,
    ]);
  });

  it("/ at or above the threshold: one line for /, in the file, in syslog and on stdout; exit 1", () => {
    const result = check(["--warn", "80"], { root: { used: 87, freeKb: 6 * GB + 123 } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("");
    expect(undated(warningLines())).toEqual([rootLine(87, 6)]);
    expect(result.stdout).toBe(read(warningFile));
    expect(logged()).toEqual([`timetracker-disk.user.warning: ${warningLines()![0]}`]);

    expect(check(["--warn", "80"], { root: { used: 80, freeKb: 9 * GB } }).code).toBe(1);
    expect(undated(warningLines())).toEqual([rootLine(80, 9)]);
  });

  it("the data mount at or above the threshold: its line only", () => {
    expect(check(["--warn", "80"], { data: { used: 91, freeKb: 1.5 * GB } }).code).toBe(1);
    expect(undated(warningLines())).toEqual([dataLine(91, 1)]);
    // The threshold itself warns, as for /.
    expect(check(["--warn", "80"], { data: { used: 80, freeKb: 3 * GB } }).code).toBe(1);
    expect(undated(warningLines())).toEqual([dataLine(80, 3)]);
  });

  it("less free on / than the deploy needs, under the threshold: the line says the next deploy will be refused", () => {
    // A big disk: 4 GB is only 62% of it.
    expect(check(["--warn", "80"], { root: { used: 62, freeKb: 4 * GB } }).code).toBe(1);
    expect(undated(warningLines())).toEqual([lowLine(62, 4)]);
    // Exactly what the deploy needs is enough, as for the deploy's guard.
    expect(check(["--warn", "80"], { root: { used: 62, freeKb: 5 * GB } }).code).toBe(0);
    expect(existsSync(warningFile)).toBe(false);
  });

  it("both disks at once: one line each, / first; a new check replaces the file whole", () => {
    expect(check(["--warn", "80"], { root: { used: 97, freeKb: 1 * GB }, data: { used: 85, freeKb: 3 * GB } }).code).toBe(1);
    expect(undated(warningLines())).toEqual([lowLine(97, 1), dataLine(85, 3)]);
    expect(check(["--warn", "80"], { data: { used: 85, freeKb: 3 * GB } }).code).toBe(1);
    expect(undated(warningLines())).toEqual([dataLine(85, 3)]);
  });

  it("writes through a temporary file beside the warning and mv: nothing else is left, readable by the SSH user (0644)", () => {
    expect(check(["--warn", "80"], { root: { used: 90, freeKb: 8 * GB } }).code).toBe(1);
    expect(readdirSync(warningDir)).toEqual(["disk-warning"]);
    expect(statSync(warningFile).mode & 0o777).toBe(0o644);
    const script = renderDiskCheck(plan);
    expect(script).toContain(`tmp=$(mktemp "$warning_file.XXXXXX")`);
    expect(script).toContain(`mv -f "$tmp" "$warning_file"`);
  });

  it("takes the threshold from its argument, the plan's host.diskWarningPercent without one", () => {
    expect(check(["--warn", "95"], { root: { used: 90, freeKb: 8 * GB } }).code).toBe(0);
    const sixty = planFromDefinition(definition({ diskWarningPercent: 60 }));
    const script = install(join(dir, "disk-check-60"), renderDiskCheck(sixty));
    expect(check(["--warn"], { root: { used: 65, freeKb: 8 * GB } }, {}, script).code).toBe(1);
    expect(check(["--warn"], { root: { used: 59, freeKb: 8 * GB } }, {}, script).code).toBe(0);
    expect(check(["--warn", "6O"]).code).toBe(2);
  });

  it("an unmounted data disk and a path df cannot read are warnings too", () => {
    expect(check(["--warn", "80"], { data: { used: 40, freeKb: 30 * GB, target: "/" } }).code).toBe(1);
    expect(undated(warningLines())).toEqual([`${data} is not mounted (df finds it on /): Docker does not start without it; see 'findmnt ${data}' and /etc/fstab`]);
    expect(check(["--warn", "80"], { data: undefined }).code).toBe(1);
    expect(undated(warningLines())).toEqual([`could not read the usage of ${data}: df: ${data}: No such file or directory`]);
  });

  it("a failing logger (no syslog) does not stop the warning", () => {
    expect(check(["--warn", "80"], { root: { used: 88, freeKb: 8 * GB } }, { FAKE_LOGGER_FAILS: "1" }).code).toBe(1);
    expect(undated(warningLines())).toEqual([rootLine(88, 8)]);
  });

  it("the daily job runs it with the plan's threshold", () => {
    const seventy = planFromDefinition(definition({ diskWarningPercent: 70 }));
    const cron = renderDiskWarningCron(seventy);
    expect(cron).toContain(`exec ${DISK_CHECK} --warn 70\n`);
    const script = install(join(dir, "disk-check-70"), renderDiskCheck(seventy));
    const job = install(join(dir, "cron-70"), cron.replace(DISK_CHECK, script));
    expect(check([], { data: { used: 72, freeKb: 5 * GB } }, {}, job).code).toBe(1);
    expect(undated(warningLines())).toEqual([dataLine(72, 5)]);
  });
});

describe("the deploy's guard (timetracker-disk-check <gb>) answers as before", () => {
  const refusal = (freeGb: number, needGb: number) => `only ${freeGb} GB free on /, the deploy needs ${needGb} GB: run 'docker system df' and prune\n`;

  it("exits 1 with the old message when / has less free than asked, 0 otherwise, touching no warning", () => {
    mkdirSync(warningDir, { recursive: true });
    writeFileSync(warningFile, "left alone\n");
    expect(check(["5"], { root: { used: 96, freeKb: 4 * GB + 1 } })).toEqual({ code: 1, stdout: "", stderr: refusal(4, 5) });
    expect(check(["5"], { root: { used: 95, freeKb: 5 * GB } })).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(check(["100000"], { root: { used: 20, freeKb: 80 * GB } })).toEqual({ code: 1, stdout: "", stderr: refusal(80, 100000) });
    expect(read(dfCalls)).toBe("--output=avail -k /\n".repeat(3));
    expect(read(warningFile)).toBe("left alone\n");
    expect(logged()).toEqual([]);
  });

  it("without an argument it needs the plan's host.minFreeDiskGb", () => {
    const nine = planFromDefinition(definition({ minFreeDiskGb: 9 }));
    const script = install(join(dir, "disk-check-9"), renderDiskCheck(nine));
    expect(check([], { root: { used: 90, freeKb: 8 * GB } }, {}, script)).toEqual({ code: 1, stdout: "", stderr: refusal(8, 9) });
    expect(check([], { root: { used: 90, freeKb: 9 * GB } }, {}, script).code).toBe(0);
  });

  it("the program still calls it as `<DISK_CHECK> <host.minFreeDiskGb>`", () => {
    const app = readFileSync(join(REPO_ROOT, "infra/components/app.ts"), "utf8");
    expect(app).toContain("create: `${DISK_CHECK} ${plan.host.minFreeDiskGb}`");
  });
});

describe("host setup", () => {
  const setup = renderHostSetup(planFromDefinition(definition({ diskWarningPercent: 85 })));

  it("installs the check, then the daily job (0755) that runs it with the plan's threshold", () => {
    const installs = [...setup.matchAll(/^put (\S+) 0755 <<'SH' \|\| true\n([\s\S]*?)^SH$/gm)].map((m) => [m[1], m[2]]);
    const job = installs.find(([path]) => path === DISK_WARNING_CRON);
    expect(job?.[1]).toBe(`#!/bin/sh\n# Warns (${DISK_WARNING_FILE}, syslog) before a deploy is refused for a full disk.\nexec ${DISK_CHECK} --warn 85\n`);
    expect(installs.findIndex(([path]) => path === DISK_CHECK)).toBeLessThan(installs.findIndex(([path]) => path === DISK_WARNING_CRON));
  });

  it("runs the job once at its end, and a warning never fails the setup", () => {
    const lines = setup.trimEnd().split("\n");
    expect(lines.at(-1)).toMatch(/^echo "host set up: /);
    expect(lines.filter((line) => line.includes(DISK_WARNING_CRON) && !line.startsWith("put ") && !line.startsWith("#"))).toEqual([`${DISK_WARNING_CRON} || true`]);
    expect(setup.indexOf(`${DISK_WARNING_CRON} || true`)).toBeGreaterThan(setup.indexOf(`put ${DISK_WARNING_CRON} 0755`));
    expect(setup).toContain("set -euo pipefail");
  });
});

describe("the warning file is the one `npm run ops -- health` reads", () => {
  it("the script's default path is DISK_WARNING_FILE, and ops.ts reads the same path", () => {
    // Where the README and the operations guide tell the user to look.
    for (const doc of ["README.md", "docs/operations.md"]) expect(readFileSync(join(REPO_ROOT, doc), "utf8"), doc).toContain(`\`${DISK_WARNING_FILE}\``);
    expect(renderDiskCheck(plan)).toContain(`warning_file="\${TIMETRACKER_DISK_WARNING_FILE:-${DISK_WARNING_FILE}}"`);
    const ops = readFileSync(join(REPO_ROOT, "infra/cli/ops.ts"), "utf8");
    // ops.ts either imports the constant from host-setup, or still spells the same path.
    const imported = /import \{[^}]*\bDISK_WARNING_FILE\b[^}]*\} from "\.\.\/render\/host-setup\.js"/.test(ops);
    const spelt = /const DISK_WARNING_FILE = "([^"]+)"/.exec(ops)?.[1];
    expect(imported || spelt === DISK_WARNING_FILE, `ops.ts's DISK_WARNING_FILE: ${spelt ?? "neither imported nor defined"}`).toBe(true);
    expect(ops).toMatch(/if \[ -e \$\{DISK_WARNING_FILE\} \]; then/);
  });
});

describe("host.diskWarningPercent", () => {
  const host = (diskWarningPercent: unknown) => EnvironmentSchema.safeParse({ name: "x1", domain: "x.example.com", host: { diskWarningPercent } });

  it("defaults to 80 and reaches the plan", () => {
    const parsed = EnvironmentSchema.parse({ name: "x1", domain: "x.example.com" });
    expect(parsed.host.diskWarningPercent).toBe(80);
    expect(plansOf().every((p) => p.host.diskWarningPercent === 80)).toBe(true);
    expect(planFromDefinition(definition({ diskWarningPercent: 90 })).host.diskWarningPercent).toBe(90);
  });

  it("is a whole percentage from 50 to 99", () => {
    for (const ok of [50, 80, 99]) expect(host(ok).success, String(ok)).toBe(true);
    for (const bad of [49, 100, 80.5, "80"]) expect(host(bad).success, String(bad)).toBe(false);
  });
});

describe("shellcheck passes the disk check and the daily job", () => {
  const plans: Plan[] = [plan, ...plansOf(), planFromDefinition(definition({ diskWarningPercent: 50, minFreeDiskGb: 100 }))];

  it.each(plans.map((p, i) => [`${p.stack} #${i}`, p] as const))("%s", async (name, p) => {
    for (const [what, text] of [["check", renderDiskCheck(p)], ["cron", renderDiskWarningCron(p)]] as const) {
      const file = join(dir, `${name.replace(/\W+/g, "-")}-${what}.sh`);
      writeFileSync(file, text);
      const result = await run("shellcheck", ["--norc", "--format=gcc", file]);
      if (result.spawnError) throw new Error(`shellcheck could not run (${result.spawnError.message}): apt-get install shellcheck`);
      expect({ what, code: result.code, findings: result.stdout + result.stderr }).toEqual({ what, code: 0, findings: "" });
    }
  });
});
