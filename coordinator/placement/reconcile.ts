/**
 * Reconcile: what must change. Instances whose host is gone are removed (HostGone) and replaced; instances whose
 * host is still listed stay, even if the host is not ready or no longer matches the rules
 * (IgnoredDuringExecution). When there are more instances than replicas, the surplus is removed where the spread
 * is most skewed.
 */
import { ordinalOf } from '../workloads/naming.js';
import type { PlacementState } from './state.js';
import { excessAfterRemoval, removeFromSpread, spreadExtremes } from './topology.js';
import type { InstanceInfo } from './types.js';

/** Splits the Workload's instances into those on listed hosts and those whose host is gone. */
export function partitionByHost(
  own: readonly InstanceInfo[],
  hostIndex: () => ReadonlyMap<string, number>,
): { alive: InstanceInfo[]; gone: InstanceInfo[] } {
  const alive: InstanceInfo[] = [];
  const gone: InstanceInfo[] = [];
  if (own.length === 0) return { alive, gone };
  const index = hostIndex();
  for (const i of own) (index.has(i.host) ? alive : gone).push(i);
  return { alive, gone };
}

/**
 * Chooses `count` instances to remove on scale-down, one at a time, each time the first by:
 * 1. on a host that is not ready or is cordoned;
 * 2. leaving the topology spread constraints satisfied: the least excess of skew over maxSkew after removal
 *    (so that a skewed spread is evened out first);
 * 3. Spread scoring: in the most crowded domain (the sum, over spread constraints that count it, of the
 *    instances in its domain; without constraints, the Workload's instances in its location), on the host with
 *    most instances of the Workload, on the most allocated host;
 *    BinPack scoring: on the least allocated host (hosts empty out, the rest stay packed);
 * 4. on the host with the greatest name, then the highest ordinal, then the greatest name
 *    (placement fills hosts in ascending name order, so this undoes the latest placements first).
 * On uniform hosts this undoes a scale-up exactly: scaling up then down returns the same instances.
 * Updates `state`'s counts and allocations as it removes.
 */
export function chooseScaleDown(
  state: PlacementState,
  alive: readonly InstanceInfo[],
  count: number,
): InstanceInfo[] {
  if (count <= 0) return [];
  if (count >= alive.length) return [...alive];
  const n = alive.length;
  const host = alive.map((i) => state.hostIndex.get(i.host)!);
  const ordinal = alive.map((i) => ordinalOf(i.name));
  const hostName = host.map((h) => state.hosts[h]!.name);
  const bad = host.map((h) => {
    const info = state.hosts[h]!;
    return !info.ready || info.cordoned === true ? 1 : 0;
  });
  const spreads = state.spreads.map((r) => ({
    r,
    counts: alive.map((inst, k) => {
      const h = host[k]!;
      return r.matches(inst) && r.eligibleHost[h] && r.dim.domainOf[h]! >= 0 ? 1 : 0;
    }),
  }));
  const perLocation = new Map<string, number>();
  const perHost = new Map<number, number>();
  for (let k = 0; k < n; k++) {
    const loc = alive[k]!.location;
    perLocation.set(loc, (perLocation.get(loc) ?? 0) + 1);
    perHost.set(host[k]!, (perHost.get(host[k]!) ?? 0) + 1);
  }
  const binPack = state.scoring === 'BinPack';
  const usedFraction = (h: number) => {
    const c = state.capCpu[h]! > 0 ? state.usedCpu[h]! / state.capCpu[h]! : 1;
    const m = state.capMem[h]! > 0 ? state.usedMem[h]! / state.capMem[h]! : 1;
    return (c + m) / 2;
  };
  const crowd = (k: number) => {
    if (spreads.length === 0) return perLocation.get(alive[k]!.location) ?? 0;
    let sum = 0;
    const h = host[k]!;
    for (const s of spreads) if (s.counts[k]) sum += s.r.counts[s.r.dim.domainOf[h]!]!;
    return sum;
  };
  const removed = new Uint8Array(n);
  const out: InstanceInfo[] = [];
  for (let step = 0; step < count; step++) {
    let best = -1;
    let key: number[] = [];
    const extremes = spreads.map((s) => spreadExtremes(s.r));
    const excess = (k: number) => {
      let sum = 0;
      const h = host[k]!;
      for (let j = 0; j < spreads.length; j++) {
        const s = spreads[j]!;
        const d = s.counts[k] ? s.r.dim.domainOf[h]! : -1;
        sum += excessAfterRemoval(s.r, extremes[j]!, d);
      }
      return sum;
    };
    for (let k = 0; k < n; k++) {
      if (removed[k]) continue;
      const h = host[k]!;
      const cand = binPack
        ? [bad[k]!, -excess(k), -usedFraction(h)]
        : [bad[k]!, -excess(k), crowd(k), perHost.get(h) ?? 0, usedFraction(h)];
      if (
        best < 0 ||
        firstRemoved(
          cand,
          key,
          hostName[k]!,
          hostName[best]!,
          ordinal[k]!,
          ordinal[best]!,
          alive[k]!.name,
          alive[best]!.name,
        )
      ) {
        best = k;
        key = cand;
      }
    }
    removed[best] = 1;
    const inst = alive[best]!;
    out.push(inst);
    const h = host[best]!;
    for (const s of spreads) if (s.counts[best]) removeFromSpread(s.r, s.r.dim.domainOf[h]!);
    perLocation.set(inst.location, (perLocation.get(inst.location) ?? 1) - 1);
    perHost.set(h, (perHost.get(h) ?? 1) - 1);
    state.usedCpu[h] = state.usedCpu[h]! - inst.resources.cpuMillis;
    state.usedMem[h] = state.usedMem[h]! - inst.resources.memoryBytes;
  }
  return out;
}

function firstRemoved(
  a: number[],
  b: number[],
  hostA: string,
  hostB: string,
  ordA: number,
  ordB: number,
  nameA: string,
  nameB: string,
): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  if (hostA !== hostB) return hostA > hostB;
  if (ordA !== ordB) return ordA > ordB;
  return nameA > nameB;
}
