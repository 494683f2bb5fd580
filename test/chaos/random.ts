/**
 * A seeded pseudo-random generator (mulberry32) for the chaos suite and the soak: the same seed gives the same
 * churn and the same faults at the same points, so a failing run can be repeated with `--seed`.
 */

/** Draws in [0, 1), plus the helpers the scenarios need. */
export interface Rng {
  /** The seed it started from. */
  readonly seed: number;
  /** A draw in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T;
  /** `k` distinct elements (all of them when k ≥ length), in random order. */
  sample<T>(xs: readonly T[], k: number): T[];
}

/** A generator from `seed` (any integer; 32 bits are used). */
export function seededRandom(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    seed,
    next,
    int,
    pick: <T>(xs: readonly T[]) => {
      if (xs.length === 0) throw new Error('pick from an empty list');
      return xs[int(0, xs.length - 1)]!;
    },
    sample: <T>(xs: readonly T[], k: number) => {
      const copy = [...xs];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = int(0, i);
        [copy[i], copy[j]] = [copy[j]!, copy[i]!];
      }
      return copy.slice(0, Math.min(k, copy.length));
    },
  };
}
