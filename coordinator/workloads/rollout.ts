/**
 * Rolling updates, pure: which locations get the new template now, and how many surge instances run beside
 * them. An intent carries one template per location and an agent replaces the outdated instances it runs, so a
 * location (one host in most edge sites) is the unit of a rollout step. With maxSurge (default 25%, rounded
 * up), a location first gets surge instances on the new template; only once they are ready does its own
 * instances' template change, and the surge instances go when those are ready again, so the ready count never
 * drops below the desired count. Without surge, locations roll one after another within maxUnavailable.
 */

/** One location of a Workload as the rollout sees it. */
export interface RolloutLocation {
  /** Location name. */
  location: string;
  /** Template hash of the intent now published there; undefined for a location that has none yet. */
  publishedHash: string | undefined;
  /** Instances placed there (surge instances not counted). */
  instances: number;
  /** Of those, instances ready on the published template. */
  ready: number;
  /** Surge instances running there now (on the new template). */
  surge: number;
  /** Of those, the ready ones. */
  surgeReady: number;
}

/** Input of {@link planRollout}. */
export interface RolloutInput {
  /** The hash of the Workload's current template. */
  hash: string;
  /** RollingUpdate (default) or Recreate. */
  strategy: 'RollingUpdate' | 'Recreate';
  /** Instances that may be unready during the update (resolved maxUnavailable). */
  maxUnavailable: number;
  /** Instances that may run above the desired count during the update (resolved maxSurge; 0 disables surge). */
  maxSurge: number;
  /** The Workload's locations. */
  locations: RolloutLocation[];
}

/** The outcome of one pass. */
export interface RolloutPlan {
  /** Locations whose intent carries the new template after this pass. */
  update: Set<string>;
  /** Surge instances each location runs after this pass (absent: none). */
  surge: Map<string, number>;
  /** Locations still on an old template (they wait for their turn). */
  waiting: string[];
}

/** Decides which locations get the new template in this pass, and the surge instances beside them. */
export function planRollout(input: RolloutInput): RolloutPlan {
  const update = new Set<string>();
  const surge = new Map<string, number>();
  const outdated: RolloutLocation[] = [];
  // Unready instances on the new template: while there are any, the new template is not proven, so no further
  // location starts. Unready instances on an old template do not block (rolling them out may be the fix).
  let inFlight = 0;
  // Surge instances still running after their location switched (being stopped): they count against maxSurge.
  let surgeLeft = 0;
  for (const l of input.locations) {
    if (l.publishedHash === undefined || l.publishedHash === input.hash || input.strategy === 'Recreate') {
      update.add(l.location);
      inFlight += Math.max(0, l.instances - l.ready);
      surgeLeft += l.surge;
      // A location that switched keeps its surge instances until its own instances are ready again.
      if (l.surge > 0 && l.ready < l.instances) surge.set(l.location, l.surge);
    } else {
      outdated.push(l);
    }
  }
  // Broken locations first, then by name.
  outdated.sort(
    (a, b) =>
      Number(a.ready >= a.instances) - Number(b.ready >= b.instances) || a.location.localeCompare(b.location),
  );
  const waiting: string[] = [];

  if (input.maxSurge > 0) {
    // One location at a time: the one whose surge already runs, else the first once nothing else is in flight.
    const idle = surgeLeft === 0 && inFlight === 0;
    const current = outdated.find((l) => l.surge > 0) ?? (idle ? outdated[0] : undefined);
    for (const l of outdated) {
      if (l !== current) {
        waiting.push(l.location);
        continue;
      }
      const want = Math.min(l.instances, input.maxSurge);
      surge.set(l.location, want);
      // Switch once the surge is ready, or covers what the switch takes down beyond maxUnavailable.
      const cover = Math.min(l.surgeReady, want);
      if (inFlight === 0 && (cover >= want || l.instances - cover <= input.maxUnavailable))
        update.add(l.location);
    }
    return { update, surge, waiting };
  }

  // A budget of at least one instance, so that maxUnavailable 0 without surge still progresses.
  const budget = Math.max(1, input.maxUnavailable);
  for (const l of outdated) {
    // A location larger than the budget still rolls, but only when nothing else is in flight.
    if (inFlight === 0 || inFlight + l.instances <= budget) {
      update.add(l.location);
      inFlight += l.instances;
    } else {
      waiting.push(l.location);
    }
  }
  return { update, surge, waiting };
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
