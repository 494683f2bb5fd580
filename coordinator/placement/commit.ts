/**
 * Applies a plan to a world of hosts and instances, in place, as the coordinator does through Instance objects:
 * what the plan removes leaves (and frees its host), what it places arrives (and is charged to its host).
 * For simulations: tests that re-schedule after a plan, and benchmarks that place many Workloads in a row.
 */
import { workloadKey } from '../workloads/naming.js';
import { isOwnReplica } from './topology.js';
import type { HostInfo, InstanceInfo, SchedulePlan, WorkloadInfo } from './types.js';

export function commitPlan(
  world: {
    hosts: HostInfo[];
    instances: InstanceInfo[];
    /** Hosts by name, when the caller keeps one across many commits (benchmarks); built otherwise. */
    hostsByName?: ReadonlyMap<string, HostInfo>;
  },
  workload: WorkloadInfo,
  plan: SchedulePlan,
): void {
  const key = workloadKey(workload);
  if (plan.remove.length === 0 && plan.place.length === 0) return;
  const byName = world.hostsByName ?? new Map(world.hosts.map((h) => [h.name, h]));
  if (plan.remove.length > 0) {
    const removed = new Set(plan.remove.map((r) => r.name));
    const kept: InstanceInfo[] = [];
    for (const i of world.instances) {
      if (!isOwnReplica(i, key) || !removed.has(i.name)) {
        kept.push(i);
        continue;
      }
      const h = byName.get(i.host);
      if (h) {
        h.allocated.cpuMillis -= i.resources.cpuMillis;
        h.allocated.memoryBytes -= i.resources.memoryBytes;
      }
    }
    world.instances.splice(0, world.instances.length, ...kept);
  }
  for (const p of plan.place) {
    world.instances.push({
      name: p.name,
      namespace: workload.namespace,
      workload: key,
      host: p.host,
      location: p.location,
      labels: workload.instanceLabels,
      resources: workload.resources,
    });
    const h = byName.get(p.host)!;
    h.allocated.cpuMillis += workload.resources.cpuMillis;
    h.allocated.memoryBytes += workload.resources.memoryBytes;
  }
}
