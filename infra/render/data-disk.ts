import type { Plan } from "../model/plan.js";

/** How long host setup waits for Lightsail's attachment to show in the instance. */
export const DATA_DISK_WAIT = { attempts: 90, intervalSeconds: 2 } as const;

/**
 * Bash functions for host setup (infra/render/host-setup.ts): `data_disk` prints the data
 * disk's device once it is attached, formatting it first only when it is new.
 *
 * The kernel's name for the disk is not a fact to rely on: Lightsail attaches it as
 * `devicePath` on Xen instances, and Nitro instances show every disk as an NVMe namespace
 * numbered in discovery order, so /dev/nvme1n1 may be the root disk. The disk is found by its
 * filesystem label; a disk is formatted only when no disk carries the label and exactly one
 * is blank: a whole disk of the plan's size, not the root disk, with no partition, no
 * filesystem or other signature (blkid), and no mount. Anything else is refused, never
 * guessed: two labelled disks, two blank ones, or none after the wait.
 */
export function renderDataDiskFinder(plan: Plan): string {
  const disk = plan.host.dataDisk;
  const bytes = disk.sizeGb * 1024 ** 3;
  return `# Block devices that may be the data disk: Lightsail's attach path and every whole disk
# this instance has a device node for (lsblk lists a container's host disks too).
data_disk_candidates() {
  { echo ${disk.devicePath}; lsblk -dnpo NAME,TYPE | awk '$2 == "disk" { print $1 }'; } |
    while read -r dev; do
      if lsblk -dn "$dev" >/dev/null 2>&1; then readlink -f "$dev"; fi
    done | sort -u
}

# Prints the data disk ${disk.name} (label ${disk.label}), formatting it first when it is new.
data_disk() {
  local root dev probe label size parts mounts
  local -a labelled blank seen
  # The root filesystem's device number: the disk that holds it (or one of its partitions) is never used.
  root=$(findmnt -no MAJ:MIN / || true)
  for _ in $(seq 1 ${DATA_DISK_WAIT.attempts}); do
    labelled=() blank=() seen=()
    for dev in $(data_disk_candidates); do
      if [ -n "$root" ] && lsblk -nro MAJ:MIN "$dev" | grep -qxF "$root"; then
        continue
      fi
      # blkid exits 2 only when it finds no signature at all (no filesystem, no partition table).
      probe=0
      label=$(blkid -p -s LABEL -o value "$dev" 2>/dev/null) || probe=$?
      if [ "$probe" -eq 0 ] && [ "$label" = "${disk.label}" ]; then
        labelled+=("$dev")
        continue
      fi
      size=$(lsblk -bdno SIZE "$dev")
      parts=$(lsblk -nro TYPE "$dev" | grep -c part || true)
      mounts=$(lsblk -nro MOUNTPOINT "$dev" | tr -d '[:space:]')
      if [ "$probe" -eq 2 ] && [ "$size" = ${bytes} ] && [ "$parts" = 0 ] && [ -z "$mounts" ]; then
        blank+=("$dev")
      elif [ "$probe" -eq 0 ]; then
        seen+=("$dev (in use: $(blkid -p -o export "$dev" | grep -E '^(TYPE|PTTYPE|LABEL)=' | tr '\\n' ' '))")
      elif [ "$probe" -eq 2 ]; then
        seen+=("$dev (blank, but $size bytes, not ${disk.sizeGb} GB)")
      else
        seen+=("$dev (blkid could not read it: exit $probe)")
      fi
    done
    if [ "\${#labelled[@]}" -gt 1 ]; then
      echo "refusing to choose the data disk: \${labelled[*]} all carry the label ${disk.label}; detach the one that is not ${disk.name}" >&2
      return 1
    fi
    if [ "\${#labelled[@]}" -eq 1 ]; then
      echo "\${labelled[0]}"
      return 0
    fi
    if [ "\${#blank[@]}" -gt 1 ]; then
      echo "refusing to format a data disk: \${blank[*]} are all blank ${disk.sizeGb} GB disks and none is labelled ${disk.label}; detach all but ${disk.name}" >&2
      return 1
    fi
    if [ "\${#blank[@]}" -eq 1 ]; then
      mkfs.ext4 -q -L ${disk.label} "\${blank[0]}" >&2
      echo "\${blank[0]}"
      return 0
    fi
    sleep ${DATA_DISK_WAIT.intervalSeconds}
  done
  echo "the data disk ${disk.name} is not attached: after ${DATA_DISK_WAIT.attempts * DATA_DISK_WAIT.intervalSeconds} s no disk is labelled ${disk.label} and none is a blank ${disk.sizeGb} GB disk\${seen[0]:+; seen: \${seen[*]}}" >&2
  return 1
}
`;
}
