/** Builders for placement tests. */

import {
  commitPlan,
  type HostInfo,
  type InstanceInfo,
  type ScheduleInput,
  type SchedulePlan,
  type WorkloadInfo,
} from '../../../coordinator/placement/index.js';
import type { Placement } from '../../../shared/api/placement.js';

export const ZONE = 'topology.kubernetes.io/zone';
export const REGION = 'topology.kubernetes.io/region';
export const HOSTNAME = 'kubernetes.io/hostname';
export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export function host(
  name: string,
  over: Partial<HostInfo> & { zone?: string; region?: string; provider?: string } = {},
): HostInfo {
  const { zone, region, provider, ...rest } = over;
  const z = zone ?? 'zone-a';
  return {
    name,
    location: rest.location ?? z,
    labels: {
      [ZONE]: z,
      [REGION]: region ?? 'region-1',
      provider: provider ?? 'gcp',
      [HOSTNAME]: name,
      ...(rest.labels ?? {}),
    },
    capacity: rest.capacity ?? { cpuMillis: 8000, memoryBytes: 32 * GiB },
    allocated: rest.allocated ?? { cpuMillis: 0, memoryBytes: 0 },
    runtimes: rest.runtimes ?? ['gvisor', 'vm'],
    ready: rest.ready ?? true,
    ...(rest.cordoned !== undefined ? { cordoned: rest.cordoned } : {}),
  };
}

export function workload(
  name: string,
  replicas: number,
  placement?: Placement,
  over: Partial<WorkloadInfo> = {},
): WorkloadInfo {
  return {
    namespace: 'default',
    name,
    replicas,
    ...(placement ? { placement } : {}),
    instanceLabels: { workload: name, app: name },
    resources: { cpuMillis: 100, memoryBytes: 128 * MiB },
    runtime: 'gvisor',
    ...over,
  };
}

export function instance(
  name: string,
  hostInfo: HostInfo,
  over: Partial<InstanceInfo> & { labels?: Record<string, string> } = {},
): InstanceInfo {
  return {
    name,
    namespace: 'default',
    workload: over.workload ?? 'default/other',
    host: hostInfo.name,
    location: hostInfo.location,
    labels: over.labels ?? {},
    resources: over.resources ?? { cpuMillis: 100, memoryBytes: 128 * MiB },
    ...over,
  };
}

/**
 * Applies a plan to the input, as the coordinator would: removes what the plan removes (and frees the host),
 * adds what it places (and charges the host). Returns a new input; the argument is not modified.
 */
export function apply(input: ScheduleInput, plan: SchedulePlan): ScheduleInput {
  const world = {
    hosts: input.hosts.map((h) => ({ ...h, allocated: { ...h.allocated } })),
    instances: [...input.instances],
  };
  commitPlan(world, input.workload, plan);
  return { ...input, ...world };
}

/** Host names of every instance of the workload after the plan. */
export function hostsOf(plan: SchedulePlan): string[] {
  return [...plan.keep, ...plan.place].map((p) => p.host).sort();
}

/** Count of the workload's instances per value of a host label after the plan. */
export function countBy(plan: SchedulePlan, hosts: HostInfo[], key: string): Record<string, number> {
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const out: Record<string, number> = {};
  for (const p of [...plan.keep, ...plan.place]) {
    const v = byName.get(p.host)!.labels[key] ?? '<none>';
    out[v] = (out[v] ?? 0) + 1;
  }
  return out;
}
