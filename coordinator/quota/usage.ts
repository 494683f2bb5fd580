/**
 * What a namespace's Instances use, as quotas count it, pure: per Workload (by UID), requests from each Instance
 * (`spec.resources`, what it holds on its host) and limits from its Workload's template (`limitsOf`; the request
 * when the Workload is unknown). Surge instances count like any other: they run.
 */
import type { ResourceAmounts } from '../../shared/resources.js';
import { SURGE_LABEL, WORKLOAD_UID_LABEL } from '../workloads/objects.js';
import type { InstanceObject } from '../workloads/types.js';
import { add, type QuotaAmounts, ZERO } from './admit.js';

/** One instance's amounts. */
export function amountsOf(requests: ResourceAmounts, limits: ResourceAmounts | undefined): QuotaAmounts {
  return {
    requestsCpuMillis: requests.cpuMillis,
    requestsMemoryBytes: requests.memoryBytes,
    limitsCpuMillis: (limits ?? requests).cpuMillis,
    limitsMemoryBytes: (limits ?? requests).memoryBytes,
  };
}

/** Usage per Workload UID, replicas and surge instances apart. */
export function usageByWorkload(
  instances: InstanceObject[],
  limitsOf: (workloadUid: string) => ResourceAmounts | undefined,
): Map<string, { replicas: QuotaAmounts; surge: QuotaAmounts }> {
  const out = new Map<string, { replicas: QuotaAmounts; surge: QuotaAmounts }>();
  for (const i of instances) {
    const uid = i.metadata.labels?.[WORKLOAD_UID_LABEL] ?? '';
    const req = i.spec.resources ?? { cpuMillis: 0, memoryBytes: 0 };
    const a = amountsOf(req, limitsOf(uid));
    const u = out.get(uid) ?? { replicas: ZERO, surge: ZERO };
    if (i.metadata.labels?.[SURGE_LABEL] === 'true') u.surge = add(u.surge, a);
    else u.replicas = add(u.replicas, a);
    out.set(uid, u);
  }
  return out;
}

/** The larger of each amount. */
export function maxOf(a: QuotaAmounts, b: QuotaAmounts): QuotaAmounts {
  return {
    requestsCpuMillis: Math.max(a.requestsCpuMillis, b.requestsCpuMillis),
    requestsMemoryBytes: Math.max(a.requestsMemoryBytes, b.requestsMemoryBytes),
    limitsCpuMillis: Math.max(a.limitsCpuMillis, b.limitsCpuMillis),
    limitsMemoryBytes: Math.max(a.limitsMemoryBytes, b.limitsMemoryBytes),
  };
}
