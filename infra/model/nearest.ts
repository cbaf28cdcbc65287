/**
 * What a mistyped word most likely meant, for "did you mean" in messages: a flag, a stack,
 * a region. Pure; the CLI and the model share it so every suggestion follows one rule.
 */

/** Case, '-' and '_' do not tell words apart here: `--adminCidr` meant `--admin-cidr`. */
const normal = (word: string) => word.toLowerCase().replace(/[-_]/g, "");

/** Edits (insert, delete, replace, swap two neighbours) between two words: optimal string alignment. */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The candidate `word` most likely meant, or undefined when none is close: at most one edit
 * per three letters of the candidate (at least one), or the only candidate `word` begins
 * (three letters or more). Ties go to the earlier candidate.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const typed = normal(word);
  if (typed === "") return undefined;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(typed, normal(candidate));
    const allowed = Math.max(1, Math.floor(normal(candidate).length / 3));
    if (distance <= allowed && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  if (best) return best.candidate;
  const extended = typed.length >= 3 ? candidates.filter((c) => normal(c).startsWith(typed)) : [];
  return extended.length === 1 ? extended[0] : undefined;
}
