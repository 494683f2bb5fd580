/**
 * The placement pipeline for one Workload: reconcile (what must change) → feasibility filters → scoring → plan.
 * Pure: the same input always gives the same plan.
 */
import { InstanceNamer, sortByLocationThenOrdinal } from '../workloads/naming.js';
import { explain, selectExhaustive } from './exhaustive.js';
import { chooseScaleDown, partitionByHost } from './reconcile.js';
import { PlacementState } from './state.js';
import type { Placed, ScheduleInput, SchedulePlan } from './types.js';

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Options for tests. */
export interface ScheduleOptions {
  /** Choose each host by evaluating every host from scratch instead of the index (slow; the reference). */
  exhaustive?: boolean;
}

export function schedule(input: ScheduleInput, options: ScheduleOptions = {}): SchedulePlan {
  const { workload } = input;
  const replicas = Number.isFinite(workload.replicas) ? Math.max(0, Math.floor(workload.replicas)) : 0;
  const state = new PlacementState(input);

  // Reconcile.
  const { alive, gone } = partitionByHost(state.own, () => state.hostIndex);
  const remove: SchedulePlan['remove'] = gone
    .slice()
    .sort(byName)
    .map((i) => ({ name: i.name, reason: 'HostGone' as const }));
  let kept = alive;
  if (alive.length > replicas) {
    const surplus = chooseScaleDown(state, alive, alive.length - replicas);
    const out = new Set(surplus);
    kept = alive.filter((i) => !out.has(i));
    for (const i of surplus) remove.push({ name: i.name, reason: 'ScaleDown' });
  }

  // Filter, score, place one instance at a time.
  const need = replicas - kept.length;
  let chosen: number[] = [];
  let reason: string | undefined;
  for (let k = 0; k < need; k++) {
    const h = options.exhaustive ? selectExhaustive(state) : state.select();
    if (h < 0) {
      reason = explain(state);
      break;
    }
    state.commit(h);
    chosen.push(h);
  }

  // Gang: all or nothing for at least minCount running instances.
  const minCount = workload.placement?.gang?.minCount;
  if (minCount !== undefined && kept.length + chosen.length < minCount) {
    const running = kept.length + chosen.length;
    const why =
      replicas < minCount
        ? `replicas (${replicas}) is less than gang minCount ${minCount}`
        : `gang minCount ${minCount} not met: only ${running} of ${minCount} instances can run`;
    reason = reason ? `${why}; ${reason}` : why;
    chosen = [];
  }

  const namer = new InstanceNamer(
    workload.name,
    state.own.map((i) => i.name),
  );
  const place: Placed[] = chosen.map((h) => {
    const host = state.hosts[h]!;
    return { name: namer.name(host.location), host: host.name, location: host.location };
  });
  const keep: Placed[] = sortByLocationThenOrdinal(
    kept.map((i) => ({ name: i.name, host: i.host, location: i.location })),
  );

  const groups = new Map<string, Placed[]>();
  for (const p of [...keep, ...place]) {
    const g = groups.get(p.location);
    if (g) g.push(p);
    else groups.set(p.location, [p]);
  }
  const byLocation: Record<string, Placed[]> = {};
  for (const loc of [...groups.keys()].sort()) byLocation[loc] = sortByLocationThenOrdinal(groups.get(loc)!);

  const unplaced = need - place.length;
  const plan: SchedulePlan = { keep, place, remove, unplaced: Math.max(0, unplaced), byLocation };
  if (plan.unplaced > 0) plan.reason = reason ?? explain(state);
  return plan;
}
