/**
 * Which instances one placement call reads. Topology spread without a label selector counts the Workload's own
 * instances only; instance (anti-)affinity terms and spread with a label selector count other Workloads'
 * instances too; every call also honours the required anti-affinity that existing instances carry. So a Workload
 * with no rule of the second kind is placed the same from its own instances plus those carrying anti-affinity as
 * from the whole fleet's — and its pass need not build 100,000 instances to place ten.
 *
 * Invariant (property-tested): `schedule(scopeInstances(input))` equals `schedule(input)`.
 */
import type { Placement } from '../../shared/api/placement.js';
import { workloadKey } from '../workloads/naming.js';
import type { InstanceInfo, ScheduleInput } from './types.js';

/** Whether the Workload's rules count instances of other Workloads. */
export function readsOtherInstances(placement: Placement | undefined): boolean {
  if (placement?.topologySpreadConstraints?.some((c) => c.labelSelector !== undefined)) return true;
  const a = placement?.affinity;
  for (const spec of [a?.podAffinity, a?.podAntiAffinity]) {
    if (spec?.requiredDuringSchedulingIgnoredDuringExecution?.length) return true;
    if (spec?.preferredDuringSchedulingIgnoredDuringExecution?.length) return true;
  }
  return false;
}

/** Whether placement of `key`'s Workload (reading no other Workload's instances) needs this instance. */
export function neededInstance(i: InstanceInfo, key: string): boolean {
  return i.workload === key || i.antiAffinity !== undefined;
}

/** The input with only the instances the call reads (all of them when its rules read other Workloads'). */
export function scopeInstances(input: ScheduleInput): ScheduleInput {
  if (readsOtherInstances(input.workload.placement)) return input;
  const key = workloadKey(input.workload);
  return { ...input, instances: input.instances.filter((i) => neededInstance(i, key)) };
}
