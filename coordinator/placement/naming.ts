/**
 * Instance names: `<workload>-<location>-<ordinal>`, with the lowest ordinal not taken in that location.
 */

/** The ordinal at the end of an instance name (`web-us-central1-a-3` → 3), or -1 when there is none. */
export function ordinalOf(name: string): number {
  const m = /-(\d+)$/.exec(name);
  return m ? Number(m[1]) : -1;
}

/** Hands out names `<workload>-<location>-<ordinal>`, the lowest ordinal not yet taken in each location. */
export class InstanceNamer {
  private readonly taken: Set<string>;
  private readonly next = new Map<string, number>();

  /** `taken`: names that must not be reused (every existing instance of the Workload, even those removed now). */
  constructor(
    private readonly workload: string,
    taken: Iterable<string>,
  ) {
    this.taken = new Set(taken);
  }

  name(location: string): string {
    let k = this.next.get(location) ?? 0;
    let name = `${this.workload}-${location}-${k}`;
    while (this.taken.has(name)) {
      k++;
      name = `${this.workload}-${location}-${k}`;
    }
    this.taken.add(name);
    this.next.set(location, k + 1);
    return name;
  }
}

/** Sorts instances by location, then ordinal, then name (ordinals parsed once). */
export function sortByLocationThenOrdinal<T extends { name: string; location: string }>(items: T[]): T[] {
  const ord = new Map<T, number>();
  for (const i of items) ord.set(i, ordinalOf(i.name));
  return items.sort((a, b) => {
    if (a.location !== b.location) return a.location < b.location ? -1 : 1;
    const d = ord.get(a)! - ord.get(b)!;
    if (d !== 0) return d;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/** Orders instances by location, then ordinal, then name. */
export function byLocationThenOrdinal(
  a: { name: string; location: string },
  b: { name: string; location: string },
): number {
  if (a.location !== b.location) return a.location < b.location ? -1 : 1;
  const d = ordinalOf(a.name) - ordinalOf(b.name);
  if (d !== 0) return d;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
