// The Lightsail block-storage disk: a sparse file on the outer host behind a loop device,
// shown inside a machine as a block device node. The file (and its loop device) outlive
// machines, so a replacement machine sees the same filesystem, as with a real disk.
import { existsSync } from "node:fs";
import { mkdir, open, readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Machine } from "./machine.js";
import { run, runOk } from "./run.js";

export interface AttachedDisk {
  imageFile: string;
  /** Loop device on the outer host, e.g. /dev/loop3. */
  loopDevice: string;
  devicePath: string;
}

/** Loop devices currently backed by imageFile. */
async function loopsOf(imageFile: string): Promise<string[]> {
  const out = (await runOk("losetup", ["--noheadings", "--output", "NAME", "--associated", imageFile])).stdout;
  return out.split("\n").map((s) => s.trim()).filter(Boolean);
}

/** Creates the sparse image (never formats it), backs it with a loop device (reused when
 *  one exists), and makes it appear in the machine at devicePath (e.g. /dev/xvdf). */
export async function attachDisk(machine: Pick<Machine, "container">, imageFile: string, devicePath: string, sizeGb: number): Promise<AttachedDisk> {
  if (!existsSync(imageFile)) {
    await mkdir(dirname(imageFile), { recursive: true });
    const fh = await open(imageFile, "w");
    try {
      await fh.truncate(sizeGb * 1024 ** 3); // sparse: uses no space until written
    } finally {
      await fh.close();
    }
  }
  const loopDevice = (await loopsOf(imageFile))[0] ?? (await runOk("losetup", ["--find", "--show", imageFile])).stdout.trim();
  // major:minor from sysfs, then a device node with the same numbers inside the machine
  // (privileged, so its device cgroup allows it)
  const majMin = (await readFile(`/sys/block/${basename(loopDevice)}/dev`, "utf8")).trim();
  const [major, minor] = majMin.split(":");
  if (!major || !minor) throw new Error(`attachDisk: cannot read major:minor of ${loopDevice} (${majMin})`);
  const script = `set -e; rm -f '${devicePath}'; mkdir -p "$(dirname '${devicePath}')"; mknod -m 660 '${devicePath}' b ${major} ${minor}; chgrp disk '${devicePath}' || true`;
  await runOk("docker", ["exec", machine.container, "sh", "-c", script]);
  return { imageFile, loopDevice, devicePath };
}

/** Removes the device from the machine; a filesystem mounted from it is unmounted first
 *  (lazily: a real detach of a mounted disk would fail the instance's I/O instead). */
export async function detachDisk(machine: Pick<Machine, "container">, devicePath: string): Promise<void> {
  const script = `for m in $(findmnt -rn -S '${devicePath}' -o TARGET | sort -r); do umount -l "$m"; done; rm -f '${devicePath}'`;
  await runOk("docker", ["exec", machine.container, "sh", "-c", script]);
}

/** Detaches every loop device backed by imageFile (the file itself is kept). */
export async function releaseDisk(imageFile: string): Promise<void> {
  if (!existsSync(imageFile)) return;
  for (const loop of await loopsOf(imageFile)) await run("losetup", ["--detach", loop]);
}
