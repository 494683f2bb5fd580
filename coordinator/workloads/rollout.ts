/**
 * Rolling updates, pure, after the Deployment controller of Kubernetes but per instance: every instance carries
 * the template hash it runs, and an agent replaces an instance in place (same name, same host) when that hash
 * changes. Each pass decides which instances switch to the new template now, and which surge instances (extra
 * instances on the new template, `maxSurge` of them at most) run beside them, so that the ready count never
 * drops below `desired - maxUnavailable`. Old instances switch in the order of their location, host and name:
 * the update walks the hosts one after another. Being level-triggered, a pass needs no memory of the last one:
 * an instance that became ready frees budget for the next.
 */

/** One instance of a Workload as the rollout sees it. */
export interface RolloutInstance {
  /** Instance name. */
  name: string;
  /** Location it runs in. */
  location: string;
  /** Host it runs on. */
  host: string;
  /** Template hash it is meant to run now. */
  hash: string;
  /** Whether its host reports it ready on that hash. */
  ready: boolean;
  /** Whether it is a surge instance (not one of the desired replicas). */
  surge: boolean;
  /**
   * Whether its state is unknown: its host has not reported since this coordinator started, or is Disconnected.
   * Such an instance is never switched (it may well be serving: switching it would be blind) and does not count
   * as ready. Absent: known.
   */
  unknown?: boolean;
}

/** Input of {@link planRollout}. */
export interface RolloutInput {
  /** The hash of the Workload's current template. */
  hash: string;
  /** RollingUpdate (default) or Recreate. */
  strategy: 'RollingUpdate' | 'Recreate';
  /** Desired replicas. */
  desired: number;
  /** Instances that may be unready during the update (resolved maxUnavailable). */
  maxUnavailable: number;
  /** Instances that may run above the desired count during the update (resolved maxSurge; 0 disables surge). */
  maxSurge: number;
  /** The placed replicas (with the hash each runs; new placements on the new one) and existing surge instances. */
  instances: RolloutInstance[];
}

/** Where a new surge instance goes. */
export interface SurgeSlot {
  /** Location. */
  location: string;
  /** Host, the one of the first old instance it stands in for. */
  host: string;
}

/** The outcome of one pass. */
export interface RolloutPlan {
  /** Instances (replicas or surge) that switch to the new template in this pass. */
  switchNow: string[];
  /** Existing surge instances that stay. */
  keepSurge: Set<string>;
  /** Surge instances to add, on the new template. */
  addSurge: SurgeSlot[];
  /** Replicas still on an old template after this pass (they wait for budget). */
  waiting: number;
}

/** Decides which instances switch to the new template in this pass, and the surge instances beside them. */
export function planRollout(input: RolloutInput): RolloutPlan {
  const { hash } = input;
  const regular = input.instances.filter((i) => !i.surge);
  const surges = input.instances.filter((i) => i.surge);
  const stale = input.instances.filter((i) => i.hash !== hash);

  if (input.strategy === 'Recreate') {
    return { switchNow: stale.map((i) => i.name), keepSurge: new Set(), addSurge: [], waiting: 0 };
  }

  // Kubernetes refuses maxSurge and maxUnavailable both 0; here that means one at a time.
  const maxUnavailable = input.maxSurge <= 0 && input.maxUnavailable <= 0 ? 1 : input.maxUnavailable;
  const minAvailable = Math.max(0, input.desired - maxUnavailable);
  let available: number;

  // Unready instances switch first and for free: they serve nothing now. Then the hosts in order. An instance
  // of unknown state is neither: a coordinator just started (killed mid-rollout, say) had no report yet and
  // switched every instance "for free" at once, taking the ready count under the floor (issue 14).
  available = input.instances.filter((i) => i.ready && !i.unknown).length;
  const order = (a: RolloutInstance, b: RolloutInstance) =>
    Number(a.ready) - Number(b.ready) ||
    a.location.localeCompare(b.location) ||
    a.host.localeCompare(b.host) ||
    a.name.localeCompare(b.name);
  const switchNow: string[] = [];
  const switched = new Set<string>();
  for (const i of [...stale].sort(order)) {
    if (i.unknown) continue;
    if (i.ready) {
      if (available - 1 < minAvailable) continue;
      available--;
    }
    switchNow.push(i.name);
    switched.add(i.name);
  }

  // Surge covers replicas not yet ready on the new template, maxSurge at most, while an update runs: new
  // replicas of a scale-up or a first placement get none.
  const pending = regular.filter((i) => switched.has(i.name) || i.hash !== hash || !i.ready);
  const updating = regular.some((i) => i.hash !== hash) || surges.length > 0;
  const wantSurge = updating ? Math.min(Math.max(0, input.maxSurge), pending.length) : 0;
  const keepSurge = new Set<string>();
  // Ready surge instances are kept first; one goes only while the ready count stays above the floor.
  const bySurgeValue = [...surges].sort(
    (a, b) => Number(b.ready) - Number(a.ready) || a.name.localeCompare(b.name),
  );
  for (const s of bySurgeValue) {
    const readyAfter = s.ready && !switched.has(s.name);
    if (keepSurge.size < wantSurge || (readyAfter && available - 1 < minAvailable)) keepSurge.add(s.name);
    else if (readyAfter) available--;
  }

  // New surge instances stand in where the most replicas still wait, on the host of the first of them.
  const addSurge: SurgeSlot[] = [];
  const waitingOld = regular.filter((i) => i.hash !== hash && !switched.has(i.name)).sort(order);
  // Only while replicas still wait for their switch; the last switched ones keep the surge that runs.
  const slots = waitingOld.map((i) => ({ location: i.location, host: i.host }));
  for (let n = keepSurge.size, k = 0; n < wantSurge && slots.length; n++, k++) {
    addSurge.push(slots[k % slots.length]!);
  }
  return { switchNow, keepSurge, addSurge, waiting: waitingOld.length };
}

/**
 * Resolves an int-or-percent against a replica count, as Kubernetes resolves maxUnavailable (percentages round
 * down) and maxSurge (round up).
 */
export function resolveIntOrPercent(
  value: number | string | undefined,
  replicas: number,
  fallbackPercent = 25,
  roundUp = false,
): number {
  const round = roundUp ? Math.ceil : Math.floor;
  if (value === undefined) return round((replicas * fallbackPercent) / 100);
  if (typeof value === 'number') return value;
  return round((replicas * Number.parseInt(value, 10)) / 100);
}
