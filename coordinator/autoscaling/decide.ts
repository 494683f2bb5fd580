/**
 * The autoscaler's decision, pure, after the HorizontalPodAutoscaler (kube-controller-manager's
 * `pkg/controller/podautoscaler`, autoscaling/v2 semantics). One call is one sync of one Workload:
 *
 *   1. Bounds first: a Workload scaled to 0 by hand is left alone (autoscaling off, as HPA); a count above
 *      maxReplicas or below minReplicas goes straight to the bound, whatever the metrics say.
 *   2. Utilisation: over the ready instances with a measurement, utilisation = Σ usage ÷ Σ request (percent);
 *      ratio = utilisation ÷ target; proposal = ceil(ratio × measured ready instances). Within the tolerance
 *      (|ratio − 1| ≤ 10 %) the proposal is the current count.
 *   3. Missing metrics as HPA handles them: if the proposal scales up, instances with no measurement and unready
 *      instances count as using 0 %; if it scales down, instances with no measurement count as using exactly the
 *      target (100 % of it) and unready ones are left out. The ratio is computed again over that set; if it now
 *      points the other way or falls within the tolerance, the count stays. No measurement at all: no decision
 *      (ScalingActive False), the count stays.
 *   4. Stabilisation: every proposal is remembered with its time; the recommendation is the current count raised
 *      to the minimum of the proposals within the scale-up window and lowered to the maximum of those within the
 *      scale-down window (default 300 s): a dip has to last the whole window before the count goes down.
 *   5. Rate limits: each policy allows, from the count at the start of its period (now − periodSeconds, from the
 *      scale events remembered), `+value` instances (Pods) or `×(1 + value %)` (Percent, rounded up); selectPolicy
 *      Max takes the most permissive, Min the least, Disabled forbids the direction. Down likewise. Then the
 *      bounds again.
 *
 * Invariants (test/unit/autoscaling/decide.test.ts, properties): the result is within [minReplicas, maxReplicas]
 * unless the Workload was scaled to 0 by hand; a ratio within the tolerance never changes an in-bounds count; a
 * decrease happens only when every proposal of the scale-down window is at most the result; the memory it returns
 * holds nothing older than the longest window or period. Level-triggered: the memory is the only state, and
 * losing it (a coordinator restart) only restarts the windows, as it does for HPA.
 */

/** One instance as the autoscaler sees it. */
export interface InstanceSample {
  /** Instance name (for the figures only). */
  name: string;
  /** Whether it is ready (its host says so); unready instances are set aside as HPA does. */
  ready: boolean;
  /** Its CPU usage in millicores, averaged over the agent's last window; absent: no measurement yet. */
  usageMillis?: number;
  /** Its CPU request in millicores (what utilisation is a percentage of). */
  requestMillis: number;
}

/** A rate-limit policy, resolved. */
export interface RatePolicy {
  /** Pods: a number of instances; Percent: of the count at the start of the period. */
  type: 'Pods' | 'Percent';
  /** The amount per period. */
  value: number;
  /** The period in seconds. */
  periodSeconds: number;
}

/** The rules of one direction, resolved (defaults applied). */
export interface DirectionRules {
  /** Stabilisation window in seconds. */
  windowSeconds: number;
  /** Which policy wins. */
  select: 'Max' | 'Min' | 'Disabled';
  /** The rate limits. */
  policies: RatePolicy[];
}

/** The autoscaling spec of a Workload, resolved. */
export interface AutoscalerSpec {
  /** Lower bound (≥ 1). */
  minReplicas: number;
  /** Upper bound (≥ minReplicas). */
  maxReplicas: number;
  /** Target average CPU utilisation, percent of the request. */
  targetUtilization: number;
  /** Tolerance around a ratio of 1 within which nothing changes (HPA: 0.1). */
  tolerance: number;
  /** Scaling up. */
  up: DirectionRules;
  /** Scaling down. */
  down: DirectionRules;
}

/** What the autoscaler remembers of one Workload between syncs (in memory, like HPA). */
export interface AutoscalerMemory {
  /** Past proposals (before stabilisation), with when they were made (ms). */
  recommendations: Array<{ at: number; replicas: number }>;
  /** Past changes of the count made by the autoscaler: `change` > 0 up, < 0 down. */
  scaleEvents: Array<{ at: number; change: number }>;
}

/** Input of {@link decide}. */
export interface DecideInput {
  /** The resolved spec. */
  spec: AutoscalerSpec;
  /** spec.replicas now. */
  currentReplicas: number;
  /** The Workload's instances (replicas, not surge instances). */
  instances: InstanceSample[];
  /** What the previous syncs left. */
  memory: AutoscalerMemory;
  /** Now, in ms (any monotonic or wall clock, consistently). */
  now: number;
}

/** Why the count is what it is. */
export type DecisionReason =
  | 'ScalingDisabled'
  | 'AboveMax'
  | 'BelowMin'
  | 'NoMetrics'
  | 'MissingRequest'
  | 'WithinTolerance'
  | 'Recommended';

/** The outcome of one sync. */
export interface Decision {
  /** The count spec.replicas should have. */
  desiredReplicas: number;
  /** Whether it differs from the current count (a write is due). */
  rescale: boolean;
  /** Why. */
  reason: DecisionReason;
  /** Human-readable figures that drove it (for the Event and the log). */
  message: string;
  /** Average utilisation (percent) of the ready, measured instances; absent without measurements. */
  utilization?: number;
  /** Average usage (millicores) of the ready, measured instances. */
  averageMillis?: number;
  /** Ready instances with a measurement. */
  measured: number;
  /** The proposal before stabilisation and limits (absent when bounds or missing metrics decided). */
  proposal?: number;
  /** The bound or limit that held the count back, if one did (ScalingLimited). */
  limitedBy?: 'maxReplicas' | 'minReplicas' | 'scaleUpRate' | 'scaleDownRate' | 'stabilization';
  /** The memory to keep for the next sync. */
  memory: AutoscalerMemory;
}

/** HPA's defaults (autoscaling/v2 `HorizontalPodAutoscalerBehavior`). */
export const DEFAULT_TOLERANCE = 0.1;
export const DEFAULT_TARGET_UTILIZATION = 80;
export const DEFAULT_SCALE_UP: DirectionRules = {
  windowSeconds: 0,
  select: 'Max',
  policies: [
    { type: 'Pods', value: 4, periodSeconds: 15 },
    { type: 'Percent', value: 100, periodSeconds: 15 },
  ],
};
export const DEFAULT_SCALE_DOWN: DirectionRules = {
  windowSeconds: 300,
  select: 'Max',
  policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
};

/** One sync's decision for one Workload. */
export function decide(input: DecideInput): Decision {
  const { spec, currentReplicas: current, now } = input;
  const measuredReady = input.instances.filter((i) => i.ready && i.usageMillis !== undefined);
  const figures = averages(measuredReady);
  const base = { measured: measuredReady.length, ...figures };
  const memory = prune(input.memory, spec, now);

  // 1. Bounds first, as HPA: they hold whatever the metrics say.
  if (current === 0) {
    return {
      ...base,
      desiredReplicas: 0,
      rescale: false,
      reason: 'ScalingDisabled',
      message: 'scaled to 0 by hand: autoscaling is off until spec.replicas is above 0',
      memory,
    };
  }
  if (current > spec.maxReplicas || current < spec.minReplicas) {
    const above = current > spec.maxReplicas;
    const to = above ? spec.maxReplicas : spec.minReplicas;
    return {
      ...base,
      desiredReplicas: to,
      rescale: true,
      reason: above ? 'AboveMax' : 'BelowMin',
      message: `${current} replicas is ${above ? 'above maxReplicas' : 'below minReplicas'}: scaling to ${to}`,
      limitedBy: above ? 'maxReplicas' : 'minReplicas',
      memory: record(memory, now, to - current),
    };
  }

  // 2-3. The proposal from the metrics.
  const proposed = propose(input.instances, spec, current);
  if (proposed.reason !== 'Recommended' && proposed.reason !== 'WithinTolerance') {
    return { ...base, desiredReplicas: current, rescale: false, ...proposed, memory };
  }
  const proposal = proposed.replicas;

  // 4. Stabilisation over the remembered proposals (the current one included).
  const recommendations = [...memory.recommendations, { at: now, replicas: proposal }];
  let upFloor = proposal;
  let downCeiling = proposal;
  for (const r of recommendations) {
    if (r.at > now - spec.up.windowSeconds * 1000) upFloor = Math.min(upFloor, r.replicas);
    if (r.at > now - spec.down.windowSeconds * 1000) downCeiling = Math.max(downCeiling, r.replicas);
  }
  let stabilized = current;
  if (stabilized < upFloor) stabilized = upFloor;
  if (stabilized > downCeiling) stabilized = downCeiling;

  // 5. Rate limits, then the bounds.
  let desired = stabilized;
  let limitedBy: Decision['limitedBy'] = stabilized !== proposal ? 'stabilization' : undefined;
  if (desired > current) {
    const limit = Math.max(current, scaleUpLimit(current, memory.scaleEvents, spec.up, now));
    const ceiling = Math.min(spec.maxReplicas, limit);
    if (desired > ceiling) {
      limitedBy = limit < spec.maxReplicas ? 'scaleUpRate' : 'maxReplicas';
      desired = ceiling;
    }
  } else if (desired < current) {
    const limit = Math.min(current, scaleDownLimit(current, memory.scaleEvents, spec.down, now));
    const floor = Math.max(spec.minReplicas, limit);
    if (desired < floor) {
      limitedBy = limit > spec.minReplicas ? 'scaleDownRate' : 'minReplicas';
      desired = floor;
    }
  }
  const next: AutoscalerMemory = { ...memory, recommendations };
  const why =
    proposed.reason === 'WithinTolerance'
      ? `${proposed.message}: within the tolerance of ${Math.round(spec.tolerance * 100)} %`
      : proposed.message;
  const held = limitedBy && desired !== proposal ? `; held at ${desired} by ${limitedBy}` : '';
  return {
    ...base,
    desiredReplicas: desired,
    rescale: desired !== current,
    reason: desired !== current ? 'Recommended' : proposed.reason,
    message: `${why}; proposal ${proposal}${held}`,
    proposal,
    ...(limitedBy ? { limitedBy } : {}),
    memory: desired !== current ? record(next, now, desired - current) : next,
  };
}

/** Σ usage ÷ Σ request of measured instances, and their average usage. */
function averages(list: InstanceSample[]): { utilization?: number; averageMillis?: number } {
  const usage = list.reduce((a, i) => a + (i.usageMillis ?? 0), 0);
  const request = list.reduce((a, i) => a + i.requestMillis, 0);
  if (!list.length || request <= 0) return {};
  return { utilization: (usage / request) * 100, averageMillis: usage / list.length };
}

/** Steps 2-3: the proposal from the metrics, HPA's `calcPlainMetricReplicas`. */
function propose(
  instances: InstanceSample[],
  spec: AutoscalerSpec,
  current: number,
): { replicas: number; reason: DecisionReason; message: string } {
  const target = spec.targetUtilization;
  if (instances.some((i) => !(i.requestMillis > 0)))
    return {
      replicas: current,
      reason: 'MissingRequest',
      message: 'an instance has no CPU request: utilisation cannot be computed',
    };
  const measured = instances.filter((i) => i.ready && i.usageMillis !== undefined);
  const missing = instances.filter((i) => i.usageMillis === undefined);
  const unready = instances.filter((i) => !i.ready && i.usageMillis !== undefined);
  if (!measured.length)
    return {
      replicas: current,
      reason: 'NoMetrics',
      message: `no CPU measurement from any ready instance (${instances.length} instances, ${missing.length} without a measurement)`,
    };
  const { utilization = 0 } = averages(measured);
  const ratio = utilization / target;
  const head = `CPU utilisation ${fmt(utilization)} % of request (target ${target} %, ${measured.length} measured)`;
  const scaleUp = ratio > 1;
  if (!missing.length && !unready.length) {
    if (Math.abs(ratio - 1) <= spec.tolerance)
      return { replicas: current, reason: 'WithinTolerance', message: head };
    return { replicas: Math.ceil(ratio * measured.length), reason: 'Recommended', message: head };
  }
  // Fill in what is missing the way that dampens the change: 0 % when scaling up, the target when scaling down.
  const filled: InstanceSample[] = [...measured];
  if (scaleUp) {
    for (const i of [...missing, ...unready]) filled.push({ ...i, usageMillis: 0 });
  } else {
    for (const i of missing) filled.push({ ...i, usageMillis: (i.requestMillis * target) / 100 });
  }
  const newRatio = (averages(filled).utilization ?? 0) / target;
  const note = `${head}; ${missing.length} without a measurement, ${unready.length} unready, counted as ${scaleUp ? '0 %' : 'the target'}: ${fmt(newRatio * target)} %`;
  if (Math.abs(newRatio - 1) <= spec.tolerance || (scaleUp && newRatio < 1) || (!scaleUp && newRatio > 1))
    return { replicas: current, reason: 'WithinTolerance', message: note };
  const replicas = Math.ceil(newRatio * filled.length);
  // HPA: a change that would go against the raw direction is no change.
  if ((scaleUp && replicas < current) || (!scaleUp && replicas > current))
    return { replicas: current, reason: 'WithinTolerance', message: note };
  return { replicas, reason: 'Recommended', message: note };
}

/** HPA's `calculateScaleUpLimitWithScalingRules`. */
export function scaleUpLimit(
  current: number,
  events: AutoscalerMemory['scaleEvents'],
  rules: DirectionRules,
  now: number,
): number {
  if (rules.select === 'Disabled') return current;
  const pick = rules.select === 'Min' ? Math.min : Math.max;
  let result = rules.select === 'Min' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  for (const p of rules.policies) {
    const { added, removed } = changesWithin(events, p.periodSeconds, now);
    const start = current - added + removed;
    const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    result = pick(result, proposed);
  }
  return Number.isFinite(result) ? result : current;
}

/** HPA's `calculateScaleDownLimitWithBehaviors`. */
export function scaleDownLimit(
  current: number,
  events: AutoscalerMemory['scaleEvents'],
  rules: DirectionRules,
  now: number,
): number {
  if (rules.select === 'Disabled') return current;
  // Max (the largest change) means the lowest count; Min the highest.
  const pick = rules.select === 'Min' ? Math.max : Math.min;
  let result = rules.select === 'Min' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (const p of rules.policies) {
    const { added, removed } = changesWithin(events, p.periodSeconds, now);
    const start = current - added + removed;
    const proposed = p.type === 'Pods' ? start - p.value : Math.ceil(start * (1 - p.value / 100));
    result = pick(result, proposed);
  }
  return Number.isFinite(result) ? result : current;
}

/** Instances the autoscaler added and removed within the last `periodSeconds`. */
function changesWithin(
  events: AutoscalerMemory['scaleEvents'],
  periodSeconds: number,
  now: number,
): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const e of events) {
    if (e.at <= now - periodSeconds * 1000) continue;
    if (e.change > 0) added += e.change;
    else removed -= e.change;
  }
  return { added, removed };
}

/** Drops what no window or period can see any more. */
function prune(m: AutoscalerMemory, spec: AutoscalerSpec, now: number): AutoscalerMemory {
  const windowMs = Math.max(spec.up.windowSeconds, spec.down.windowSeconds) * 1000;
  const periodMs =
    Math.max(0, ...[...spec.up.policies, ...spec.down.policies].map((p) => p.periodSeconds)) * 1000;
  return {
    recommendations: m.recommendations.filter((r) => r.at > now - windowMs),
    scaleEvents: m.scaleEvents.filter((e) => e.at > now - periodMs),
  };
}

function record(m: AutoscalerMemory, at: number, change: number): AutoscalerMemory {
  return change ? { ...m, scaleEvents: [...m.scaleEvents, { at, change }] } : m;
}

function fmt(n: number): string {
  return n >= 10 ? String(Math.round(n)) : n.toFixed(1);
}
