/**
 * Placement engine: decides which host runs each replica of a Workload. Pure (no I/O), deterministic.
 *
 * Pipeline, after Nomad's scheduler and kube-scheduler's framework:
 *   reconcile (reconcile.ts) → feasibility filters (filters.ts, topology.ts) → scoring (scoring.ts, topology.ts)
 *   → plan (schedule.ts), with the incremental index in state.ts (and its from-scratch reference in exhaustive.ts).
 */

export { commitPlan } from './commit.js';
export { schedule } from './schedule.js';
export { neededInstance, readsOtherInstances, scopeInstances } from './scope.js';
export type {
  HostInfo,
  InstanceInfo,
  Placed,
  ScheduleInput,
  SchedulePlan,
  WorkloadInfo,
} from './types.js';
