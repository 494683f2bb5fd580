/**
 * Every name and key the Workload controller and the placement engine derive from a Workload, in one place:
 *
 * | what | form |
 * |---|---|
 * | replica Instance | `<workload>-<location>-<ordinal>`: the lowest ordinal free in that location |
 * | surge Instance | `<workload>-<location>-surge-<i>`: the lowest `i` free; its ordinal is `SURGE_ORDINAL_BASE + i` |
 * | WorkloadDeployment | `<workload>-<location>` |
 * | owner key | `<namespace>/<workload>`: which instances placement counts as the Workload's own |
 * | instance key | `<namespace>/<instance>`: how hosts report an instance |
 * | queue key | `<group>\|<namespace>\|<workload>`: one work-queue item per Workload |
 *
 * Pure and dependency-free, so that placement and the controller can both import it.
 */

/** Surge instances get ordinals from here up, so that one never carries a replica's ordinal. */
export const SURGE_ORDINAL_BASE = 1000;

/** The ordinal at the end of an instance name (`web-us-central1-a-3` → 3, `web-a-surge-1` → 1), or -1 when there is none. */
export function ordinalOf(name: string): number {
  const m = /-(\d+)$/.exec(name);
  return m ? Number(m[1]) : -1;
}

/** The name of a replica: `<workload>-<location>-<ordinal>`. */
export function replicaName(workload: string, location: string, ordinal: number): string {
  return `${workload}-${location}-${ordinal}`;
}

/** The name of a surge instance: `<workload>-<location>-surge-<index>`. */
export function surgeName(workload: string, location: string, index: number): string {
  return `${workload}-${location}-surge-${index}`;
}

/** The ordinal of a surge instance, from its name: SURGE_ORDINAL_BASE + its index. */
export function surgeOrdinal(name: string): number {
  return SURGE_ORDINAL_BASE + ordinalOf(name);
}

/** The first surge name of that location not in `taken`; adds it to `taken`. */
export function nextSurgeName(workload: string, location: string, taken: Set<string>): string {
  let i = 0;
  while (taken.has(surgeName(workload, location, i))) i++;
  const name = surgeName(workload, location, i);
  taken.add(name);
  return name;
}

/** The name of a Workload's WorkloadDeployment in a location. */
export function deploymentName(workload: string, location: string): string {
  return `${workload}-${location}`;
}

/** The owner key `<namespace>/<name>` of a Workload's instances. */
export function workloadKey(w: { namespace: string; name: string }): string {
  return `${w.namespace}/${w.name}`;
}

/** The key `<namespace>/<instance>` under which a host reports an instance. */
export function instanceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The work-queue key of a Workload: `<group>|<namespace>|<name>`. */
export function queueKey(group: string, namespace: string, name: string): string {
  return `${group}|${namespace}|${name}`;
}

/** The parts of a {@link queueKey}. */
export function parseQueueKey(key: string): { group: string; namespace: string; name: string } {
  const [group, namespace, name] = key.split('|') as [string, string, string];
  return { group, namespace, name };
}

/** Hands out replica names, the lowest ordinal not yet taken in each location. */
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
    let name = replicaName(this.workload, location, k);
    while (this.taken.has(name)) {
      k++;
      name = replicaName(this.workload, location, k);
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
