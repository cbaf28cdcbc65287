import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { DATA_DISK_WAIT, renderDataDiskFinder } from "../../infra/render/data-disk.js";
import { renderHostSetup } from "../../infra/render/host-setup.js";
import { planOf, tempDir } from "./helpers.js";

/**
 * How host setup finds the data disk (`data_disk`), run for real by bash with stand-in
 * `lsblk`, `blkid`, `findmnt`, `mkfs.ext4` and `sleep` first on PATH. Each stand-in answers
 * from one file per device in $FAKE/dev (shell assignments: type, majmin, size, parts, mount,
 * fs, label, pttype, unreadable, appears), the way util-linux's tools answer on a real
 * instance; mkfs.ext4 records its call and writes the filesystem into the device's file.
 */

const plan = planOf("staging");
const disk = plan.host.dataDisk;
const SIZE = disk.sizeGb * 1024 ** 3;

const { dir, cleanup } = tempDir("data-disk");
afterAll(cleanup);
const bin = join(dir, "bin");
mkdirSync(bin);
const install = (name: string, text: string) => {
  writeFileSync(join(bin, name), text);
  chmodSync(join(bin, name), 0o755);
};

// Loads $FAKE/dev/<name>.env when the device exists yet (`appears`: the number of disk
// listings before it shows, as a disk that Lightsail attaches while host setup waits).
const LOAD = `load() {
  local f="$FAKE/dev/\${1##*/}.env" listings
  [ -f "$f" ] || return 1
  type=disk majmin= size=0 parts= mount= fs= label= pttype= unreadable= appears=0
  . "$f"
  read -r listings < "$FAKE/listings"
  [ "$listings" -ge "$appears" ]
}`;

install(
  "lsblk",
  `#!/bin/bash
${LOAD}
dev=\${!#}
case "$*" in
  "-dnpo NAME,TYPE")
    read -r listings < "$FAKE/listings"
    echo $((listings + 1)) > "$FAKE/listings"
    for f in "$FAKE"/dev/*.env; do
      name=\${f##*/}
      name=/dev/\${name%.env}
      if load "$name"; then echo "$name $type"; fi
    done ;;
  "-dn "*) load "$dev" || { echo "lsblk: $dev: not a block device" >&2; exit 32; } ;;
  "-nro MAJ:MIN "*) load "$dev"; echo "$majmin"; for p in $parts; do echo "$p"; done ;;
  "-bdno SIZE "*) load "$dev"; echo "$size" ;;
  "-nro TYPE "*) load "$dev"; echo "$type"; for _ in $parts; do echo part; done ;;
  "-nro MOUNTPOINT "*) load "$dev"; echo "$mount"; for _ in $parts; do echo; done ;;
  *) echo "stand-in lsblk: unexpected arguments: $*" >&2; exit 64 ;;
esac
`,
);

install(
  "blkid",
  `#!/bin/bash
${LOAD}
dev=\${!#}
load "$dev" || { echo "stand-in blkid: no device $dev" >&2; exit 64; }
[ -z "$unreadable" ] || exit "$unreadable"
[ -n "$fs$pttype" ] || exit 2
case "$*" in
  "-p -s LABEL -o value $dev") if [ -n "$label" ]; then echo "$label"; fi ;;
  "-p -o export $dev")
    echo "DEVNAME=$dev"
    if [ -n "$label" ]; then echo "LABEL=$label"; fi
    if [ -n "$fs" ]; then echo "TYPE=$fs"; fi
    if [ -n "$pttype" ]; then echo "PTTYPE=$pttype"; fi ;;
  *) echo "stand-in blkid: unexpected arguments: $*" >&2; exit 64 ;;
esac
`,
);

install(
  "mkfs.ext4",
  `#!/bin/bash
echo "$*" >> "$FAKE/mkfs.log"
[ "$1 $2" = "-q -L" ] || { echo "stand-in mkfs.ext4: unexpected arguments: $*" >&2; exit 64; }
printf 'fs=ext4\\nlabel=%s\\n' "$3" >> "$FAKE/dev/$(basename "$4").env"
`,
);

install("findmnt", `#!/bin/bash\n[ "$*" = "-no MAJ:MIN /" ] || exit 64\necho "$FAKE_ROOT"\n`);
install("sleep", `#!/bin/bash\necho "$1" >> "$FAKE/sleeps"\n`);

const finder = (text: string) => `#!/bin/bash\nset -euo pipefail\n${text}\ndata_disk\n`;
const script = join(dir, "find-data-disk.sh");
writeFileSync(script, finder(renderDataDiskFinder(plan)));

/**
 * The wait as rendered, DATA_DISK_WAIT.attempts rounds, and the same script cut to a few rounds
 * for the case that waits to its end: each round runs the stand-ins some forty times, ninety
 * rounds took 20 s of a test run. Everything else is as rendered.
 */
const WAIT_ROUNDS = `for _ in $(seq 1 ${DATA_DISK_WAIT.attempts}); do`;
const SHORT_ROUNDS = 3;
const shortWait = join(dir, "find-data-disk-short-wait.sh");
writeFileSync(shortWait, finder(renderDataDiskFinder(plan).replace(WAIT_ROUNDS, `for _ in $(seq 1 ${SHORT_ROUNDS}); do`)));

type Device = { type?: string; majmin: string; size?: number; parts?: string[]; mount?: string; fs?: string; label?: string; pttype?: string; unreadable?: number; appears?: number };

let fake = "";
let run = 0;
beforeEach(() => {
  fake = join(dir, `case-${++run}`);
  mkdirSync(join(fake, "dev"), { recursive: true });
  writeFileSync(join(fake, "listings"), "0");
});

function devices(all: Record<string, Device>) {
  for (const [name, d] of Object.entries(all)) {
    const lines = [
      `type=${d.type ?? "disk"}`,
      `majmin=${d.majmin}`,
      `size=${d.size ?? SIZE}`,
      `parts="${(d.parts ?? []).join(" ")}"`,
      `mount=${d.mount ?? ""}`,
      `fs=${d.fs ?? ""}`,
      `label=${d.label ?? ""}`,
      `pttype=${d.pttype ?? ""}`,
      `unreadable=${d.unreadable ?? ""}`,
      `appears=${d.appears ?? 0}`,
    ];
    writeFileSync(join(fake, "dev", `${name}.env`), `${lines.join("\n")}\n`);
  }
}

function findDisk(root = "259:1", finderScript = script) {
  const r = spawnSync("bash", [finderScript], {
    encoding: "utf8",
    env: { PATH: `${bin}:/usr/bin:/bin`, FAKE: fake, FAKE_ROOT: root },
    timeout: 60_000,
  });
  const read = (name: string) => (existsSync(join(fake, name)) ? readFileSync(join(fake, name), "utf8").trim().split("\n") : []);
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim(), mkfs: read("mkfs.log"), sleeps: read("sleeps").length };
}

// Ubuntu's root disk on a Nitro instance: a GPT disk whose first partition holds /.
const nitroRoot = (name: string): Record<string, Device> => ({
  [name]: { majmin: "259:0", size: 40 * 1024 ** 3, parts: ["259:1", "259:2", "259:3"], pttype: "gpt" },
});

describe("host setup finds the data disk by its label, and formats only one blank disk of the plan's size", () => {
  it("the plan's label fits ext4's 16 characters, and host setup uses the finder", () => {
    expect(disk.label.length).toBeLessThanOrEqual(16);
    expect(renderHostSetup(plan)).toContain(renderDataDiskFinder(plan));
    expect(renderHostSetup(plan)).toContain("device=$(data_disk)");
  });

  it("a new disk at Lightsail's attach path (Xen) is formatted with the label", () => {
    devices({ xvda: { majmin: "202:0", parts: ["202:1"], pttype: "dos" }, xvdf: { majmin: "202:80" } });
    const r = findDisk("202:1");
    expect(r).toMatchObject({ code: 0, stdout: disk.devicePath, mkfs: [`-q -L ${disk.label} /dev/xvdf`] });
  });

  it("on Nitro the new disk may be nvme0n1 and the root nvme1n1: the blank one is formatted, never the root", () => {
    devices({ ...nitroRoot("nvme1n1"), nvme0n1: { majmin: "259:4" } });
    const r = findDisk("259:1");
    expect(r).toMatchObject({ code: 0, stdout: "/dev/nvme0n1", mkfs: [`-q -L ${disk.label} /dev/nvme0n1`] });
  });

  it("a replacement instance finds the kept disk by its label under any name, and formats nothing", () => {
    devices({ ...nitroRoot("nvme0n1"), nvme1n1: { majmin: "259:4", fs: "ext4", label: disk.label } });
    expect(findDisk()).toMatchObject({ code: 0, stdout: "/dev/nvme1n1", mkfs: [] });
  });

  it("a disk that shows only after a while is waited for", () => {
    devices({ ...nitroRoot("nvme0n1"), nvme1n1: { majmin: "259:4", fs: "ext4", label: disk.label, appears: 4 } });
    expect(findDisk()).toMatchObject({ code: 0, stdout: "/dev/nvme1n1", mkfs: [], sleeps: 3 });
  });

  // One wait for all of them (each rule dropped makes its disk the one blank disk, formatted).
  it("never formatted, and the wait ends naming why: the root disk, another size, another filesystem, partitions, a mount, unreadable, a loop device", () => {
    devices({
      nvme0n1: { majmin: "259:0" }, // holds / as a whole-disk filesystem blkid cannot identify
      nvme1n1: { majmin: "259:4", size: 8 * 1024 ** 3 },
      nvme2n1: { majmin: "259:6", fs: "ext4", label: "old-data" },
      nvme3n1: { majmin: "259:8", parts: ["259:9"] },
      nvme4n1: { majmin: "259:10", mount: "/srv" },
      nvme5n1: { majmin: "259:12", unreadable: 8 },
      loop0: { type: "loop", majmin: "7:0" },
    });
    expect(renderDataDiskFinder(plan).split(WAIT_ROUNDS), "the rendered wait's rounds").toHaveLength(2);
    const r = findDisk("259:0", shortWait);
    expect(r).toMatchObject({ code: 1, stdout: "", mkfs: [], sleeps: SHORT_ROUNDS });
    expect(r.stderr).toContain(
      `the data disk ${disk.name} is not attached: after ${DATA_DISK_WAIT.attempts * DATA_DISK_WAIT.intervalSeconds} s no disk is labelled ${disk.label} and none is a blank ${disk.sizeGb} GB disk; seen:`,
    );
    expect(r.stderr).toContain(`/dev/nvme1n1 (blank, but ${8 * 1024 ** 3} bytes, not ${disk.sizeGb} GB)`);
    expect(r.stderr).toContain("/dev/nvme2n1 (in use: LABEL=old-data TYPE=ext4 )");
    expect(r.stderr).toContain("/dev/nvme5n1 (blkid could not read it: exit 8)");
    expect(r.stderr).not.toContain("nvme0n1");
  });

  it("two blank disks of the plan's size: refused at once, nothing formatted", () => {
    devices({ ...nitroRoot("nvme0n1"), nvme1n1: { majmin: "259:4" }, nvme2n1: { majmin: "259:6" } });
    const r = findDisk();
    expect(r).toMatchObject({ code: 1, mkfs: [], sleeps: 0 });
    expect(r.stderr).toBe(
      `refusing to format a data disk: /dev/nvme1n1 /dev/nvme2n1 are all blank ${disk.sizeGb} GB disks and none is labelled ${disk.label}; detach all but ${disk.name}`,
    );
  });

  it("two labelled disks: refused, nothing formatted", () => {
    devices({ ...nitroRoot("nvme0n1"), nvme1n1: { majmin: "259:4", fs: "ext4", label: disk.label }, nvme2n1: { majmin: "259:6", fs: "ext4", label: disk.label } });
    const r = findDisk();
    expect(r).toMatchObject({ code: 1, mkfs: [] });
    expect(r.stderr).toContain(`/dev/nvme1n1 /dev/nvme2n1 all carry the label ${disk.label}`);
  });

  it("the labelled disk wins over a blank one: a spare blank disk is left alone", () => {
    devices({ ...nitroRoot("nvme0n1"), nvme1n1: { majmin: "259:4" }, nvme2n1: { majmin: "259:6", fs: "ext4", label: disk.label } });
    expect(findDisk()).toMatchObject({ code: 0, stdout: "/dev/nvme2n1", mkfs: [] });
  });

  it("passes shellcheck", () => {
    const r = spawnSync("shellcheck", ["-s", "bash", script], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
