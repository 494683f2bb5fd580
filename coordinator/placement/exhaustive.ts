/**
 * Placement from scratch, over every host: the choice the indexed search in state.ts must equal (the reference
 * the tests compare it with, O(hosts × rules)), and the kube-scheduler style explanation of why no host can take
 * one more instance. Both read the state without changing it.
 */
import { insufficient, Reasons } from './filters.js';
import { noHost, offerHost, resourceScore } from './scoring.js';
import type { PlacementState } from './state.js';

/** The same choice as `PlacementState.select()`, by evaluating every host from scratch; -1 when none fits. */
export function selectExhaustive(s: PlacementState): number {
  const best = noHost();
  for (let i = 0; i < s.hosts.length; i++) {
    if (s.staticFail[i] !== 0 || !s.fits(i)) continue;
    const { ok, verdict: v } = s.checkAll(i);
    if (!ok) continue;
    const resource = resourceScore(
      s.scoring,
      s.capCpu[i]!,
      s.capMem[i]!,
      s.usedCpu[i]! + s.reqCpu,
      s.usedMem[i]! + s.reqMem,
    );
    offerHost(best, s.hosts, i, v.penalty, v.preference + s.nodePreference[i]!, resource);
  }
  return best.host;
}

/**
 * Why no host can take one more instance, kube-scheduler style:
 * "0/12 hosts are available: 7 Insufficient memory, 5 didn't match node selector."
 */
export function explain(s: PlacementState): string {
  const counts = new Map<string, number>();
  const add = (phrase: string) => counts.set(phrase, (counts.get(phrase) ?? 0) + 1);
  let available = 0;
  const n = s.hosts.length;
  for (let i = 0; i < n; i++) {
    const h = s.hosts[i]!;
    const f = s.staticFail[i]!;
    if (f > 0) {
      add(s.filters[f - 1]!.reason);
      continue;
    }
    const short = insufficient(
      h.capacity,
      { cpuMillis: s.usedCpu[i]!, memoryBytes: s.usedMem[i]! },
      s.workload.resources,
    );
    if (short.length > 0) {
      for (const x of short) add(x);
      continue;
    }
    const { ok, verdict } = s.checkAll(i);
    if (!ok) {
      add(verdict.fail ?? Reasons.topologySpread);
      continue;
    }
    available++;
  }
  const parts = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([phrase, count]) => `${count} ${phrase}`);
  return `${available}/${n} hosts are available${parts.length > 0 ? `: ${parts.join(', ')}` : ''}.`;
}
