/** A named check, printed PASS or FAIL; the run fails on any FAIL. */
export interface ProbeResult {
  name: string;
  ok: boolean;
  detail: string;
}

export class ProbeLog {
  readonly results: ProbeResult[] = [];

  async run(name: string, check: () => Promise<string>): Promise<boolean> {
    try {
      const detail = await check();
      this.results.push({ name, ok: true, detail });
      console.log(`PASS  ${name}${detail ? ` (${detail})` : ""}`);
      return true;
    } catch (error) {
      const detail = (error as Error).message;
      this.results.push({ name, ok: false, detail });
      console.log(`FAIL  ${name}: ${detail}`);
      return false;
    }
  }

  get failed(): number {
    return this.results.filter((r) => !r.ok).length;
  }
}

/** Throws with `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
