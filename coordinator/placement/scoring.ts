/**
 * Scores for feasible hosts that depend on the host alone:
 * - resources: `Spread` (kube-scheduler LeastAllocated, Nomad spread) prefers the host with the most room left
 *   after placing; `BinPack` (MostAllocated, Nomad binpack) the fullest host that still fits.
 * - node affinity preferences: the sum of the weights of the preferred terms a host matches
 *   (kube-scheduler's NodeAffinity score before normalisation).
 */
import type { PlacementScoring, PreferredSchedulingTerm } from '../../shared/api/placement.js';
import { compileNodeSelectorTerm } from './labels.js';
import type { HostInfo } from './types.js';

function fraction(part: number, whole: number): number {
  return whole > 0 ? part / whole : 1;
}

/**
 * The resource score of a host after placing one more instance, in [0, 1], higher is better. Spread: the mean
 * free fraction of CPU and memory; BinPack: the mean used fraction.
 */
export function resourceScore(
  scoring: PlacementScoring,
  capCpu: number,
  capMem: number,
  usedCpuAfter: number,
  usedMemAfter: number,
): number {
  const used = (fraction(usedCpuAfter, capCpu) + fraction(usedMemAfter, capMem)) / 2;
  return scoring === 'BinPack' ? used : 1 - used;
}

/** Compiles preferred node affinity terms into the per-host sum of matched weights. */
export function compileNodePreferences(
  terms: readonly PreferredSchedulingTerm[] | undefined,
): ((host: HostInfo) => number) | undefined {
  if (!terms || terms.length === 0) return undefined;
  const compiled = terms.map((t) => ({ weight: t.weight, match: compileNodeSelectorTerm(t.preference) }));
  return (host) => {
    let sum = 0;
    for (const t of compiled) if (t.match(host)) sum += t.weight;
    return sum;
  };
}

/**
 * The ranking of two feasible hosts, in order: fewer soft-rule violations (penalty), then more affinity
 * preference, then the better resource score, then the smaller name (determinism). The indexed and the
 * exhaustive search both use it, so they cannot drift apart.
 */
function ranksAbove(
  penalty: number,
  preference: number,
  resource: number,
  name: string,
  bPenalty: number,
  bPreference: number,
  bResource: number,
  bName: string,
): boolean {
  if (penalty !== bPenalty) return penalty < bPenalty;
  if (preference !== bPreference) return preference > bPreference;
  if (resource !== bResource) return resource > bResource;
  return name < bName;
}

/** The best feasible host found so far, as {@link offerHost} keeps it. */
export interface BestHost {
  /** Index of the host; -1 while none. */
  host: number;
  /** Its soft-rule penalty. */
  penalty: number;
  /** Its preference score. */
  preference: number;
  /** Its resource score. */
  resource: number;
}

/** An empty {@link BestHost}. */
export function noHost(): BestHost {
  return { host: -1, penalty: 0, preference: 0, resource: 0 };
}

/** Offers host i with its scores: `best` takes it when empty or when i ranks above it ({@link ranksAbove}). */
export function offerHost(
  best: BestHost,
  hosts: readonly { name: string }[],
  i: number,
  penalty: number,
  preference: number,
  resource: number,
): void {
  if (
    best.host < 0 ||
    ranksAbove(
      penalty,
      preference,
      resource,
      hosts[i]!.name,
      best.penalty,
      best.preference,
      best.resource,
      hosts[best.host]!.name,
    )
  ) {
    best.host = i;
    best.penalty = penalty;
    best.preference = preference;
    best.resource = resource;
  }
}
