/**
 * Postgres majors. A data directory belongs to the major that wrote it: another major does
 * not start on it, so a stack's data reaches a newer major only by a dump of the old server
 * restored into a new directory (docs/postgres-upgrade.md). The rules are this table and the
 * volume name below; the schema, the Plan and the upgrade check read them here.
 */

/**
 * The majors a stack may run. Their official images keep PGDATA at /var/lib/postgresql/data,
 * where the Plan mounts the database volume; postgres 18's image moved it (to
 * /var/lib/postgresql/18/docker, with the volume one level up), so 18 needs its own mount first.
 */
export const POSTGRES_MAJORS = [15, 16, 17] as const;

/** The major every stack's database volume was first made for: its volume keeps the name it was deployed with. */
export const FIRST_POSTGRES_MAJOR = 15;

/** The major a postgres image's tag names (`17.2-bookworm` -> 17), or undefined when it names none. */
export function majorOfTag(tag: string | undefined): number | undefined {
  const match = /^(\d+)(?:[.-]|$)/.exec(tag ?? "");
  return match ? Number(match[1]) : undefined;
}

/**
 * The database volume of a major: the first major's is the name itself, every later one
 * carries its major (`<name>-pg17`), so an upgrade restores into a new, empty directory and
 * never writes where the old major's data is.
 */
export const databaseVolumeOf = (name: string, major: number): string => (major === FIRST_POSTGRES_MAJOR ? name : `${name}-pg${major}`);
