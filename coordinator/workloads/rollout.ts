/**
 * Rolling updates, pure: which locations get the new template now. An intent carries one template per
 * location and an agent replaces the outdated instances it runs, so a location (one host in most edge sites)
 * is the unit of a rollout step. Locations roll one after another, the next only once every instance is
 * ready again, and several at once only while the instances in flight stay within maxUnavailable.
 */

/** One location of a Workload as the rollout sees it. */
export interface RolloutLocation {
  /** Location name. */
  location: string;
  /** Template hash of the intent now published there; undefined for a location that has none yet. */
  publishedHash: string | undefined;
  /** Instances placed there. */
  instances: number;
  /** Of those, instances ready on the published template. */
  ready: number;
}

/** Input of {@link planRollout}. */
export interface RolloutInput {
  /** The hash of the Workload's current template. */
  hash: string;
  /** RollingUpdate (default) or Recreate. */
  strategy: 'RollingUpdate' | 'Recreate';
  /** Instances that may be unready during the update (resolved maxUnavailable). */
  maxUnavailable: number;
  /** The Workload's locations. */
  locations: RolloutLocation[];
}

/** The outcome: locations that get the new template now, and whether the rollout is still under way. */
export interface RolloutPlan {
  /** Locations whose intent carries the new template after this pass. */
  update: Set<string>;
  /** Locations still on an old template (they wait for their turn). */
  waiting: string[];
}

/** Decides which locations get the new template in this pass. */
export function planRollout(input: RolloutInput): RolloutPlan {
  const update = new Set<string>();
  const outdated: RolloutLocation[] = [];
  let unavailable = 0;
  for (const l of input.locations) {
    unavailable += Math.max(0, l.instances - l.ready);
    if (l.publishedHash === undefined || l.publishedHash === input.hash || input.strategy === 'Recreate')
      update.add(l.location);
    else outdated.push(l);
  }
  // A budget of at least one instance, so that maxUnavailable 0 (the default for few replicas) still progresses.
  const budget = Math.max(1, input.maxUnavailable);
  const waiting: string[] = [];
  for (const l of outdated.sort((a, b) => a.location.localeCompare(b.location))) {
    // A location larger than the budget still rolls, but only when everything else is ready.
    if (unavailable === 0 || unavailable + l.instances <= budget) {
      update.add(l.location);
      unavailable += l.instances;
    } else {
      waiting.push(l.location);
    }
  }
  return { update, waiting };
}

/** Resolves an int-or-percent against a replica count (percentages round down, as maxUnavailable does). */
export function resolveIntOrPercent(
  value: number | string | undefined,
  replicas: number,
  fallbackPercent = 25,
): number {
  if (value === undefined) return Math.floor((replicas * fallbackPercent) / 100);
  if (typeof value === 'number') return value;
  return Math.floor((replicas * Number.parseInt(value, 10)) / 100);
}
