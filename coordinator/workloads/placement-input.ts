/**
 * The adapters that feed placement: hosts and instances as the placement engine takes them, from the host
 * registry, the per-host allocation index and the Instance and Workload caches. Pure over what they are given.
 */
import type { WorkloadSpec } from '../../shared/api/index.js';
import type { PodAffinityTerm } from '../../shared/api/placement.js';
import type { HostAllocation } from '../hosts/allocation.js';
import type { HostEntry } from '../hosts/registry.js';
import type { HostInfo, InstanceInfo } from '../placement/index.js';
import { workloadKey } from './naming.js';
import { SURGE_LABEL, WORKLOAD_UID_LABEL } from './objects.js';
import type { InstanceObject, WorkloadObject } from './types.js';

/**
 * Hosts as the placement engine sees them: every host not Lost, with what its Instances hold. During the
 * warm-up after a coordinator start, hosts that Instances reference but that have not reported yet count as
 * present but not ready, so that their instances are kept rather than replaced. A host can carry Network
 * attachments when it reports an overlay address (any host, unless `requireOverlay`).
 */
export function placementHosts(
  entries: Iterable<HostEntry>,
  allocation: ReadonlyMap<string, Readonly<HostAllocation>>,
  warmingUp: boolean,
  requireOverlay = true,
): HostInfo[] {
  const hosts: HostInfo[] = [];
  const reported = new Set<string>();
  for (const e of entries) {
    if (e.state === 'Lost') continue;
    reported.add(e.report.host);
    hosts.push({
      name: e.report.host,
      location: e.report.location,
      labels: e.report.labels,
      capacity: e.report.allocatable,
      allocated: { ...(allocation.get(e.report.host)?.allocated ?? { cpuMillis: 0, memoryBytes: 0 }) },
      runtimes: e.report.runtimes,
      ready: e.state === 'Ready',
      // Without requireOverlay (--no-require-overlay) every host takes attachments, as it did before Networks.
      ...(e.report.overlayAddress || !requireOverlay ? { overlay: true } : {}),
    });
  }
  if (warmingUp) {
    for (const [host, a] of allocation) {
      if (reported.has(host)) continue;
      hosts.push({
        name: host,
        location: a.location,
        labels: {},
        capacity: { cpuMillis: 0, memoryBytes: 0 },
        allocated: { ...a.allocated },
        runtimes: [],
        ready: false,
      });
    }
  }
  return hosts;
}

/**
 * Every Instance as the placement engine sees it, with the required anti-affinity of its Workload (by UID):
 * existing instances keep newcomers out of their domains. Surge instances take capacity but are no replicas.
 */
export function placementInstances(
  instances: readonly InstanceObject[],
  workloads: Iterable<WorkloadObject>,
): InstanceInfo[] {
  const antiAffinity = new Map<string, PodAffinityTerm[]>();
  for (const w of workloads) {
    const terms = (w.spec as Partial<WorkloadSpec> | undefined)?.placement?.affinity?.podAntiAffinity
      ?.requiredDuringSchedulingIgnoredDuringExecution;
    if (terms?.length && w.metadata.uid) antiAffinity.set(w.metadata.uid, terms);
  }
  return instances.map((i) => ({
    antiAffinity: antiAffinity.get(i.metadata.labels?.[WORKLOAD_UID_LABEL] ?? ''),
    name: i.metadata.name,
    namespace: i.metadata.namespace!,
    workload: workloadKey({ namespace: i.metadata.namespace!, name: i.spec.workloadRef.name }),
    ...(i.metadata.labels?.[SURGE_LABEL] === 'true' ? { surge: true } : {}),
    host: i.spec.host,
    location: i.spec.location,
    labels: i.metadata.labels ?? {},
    resources: i.spec.resources ?? { cpuMillis: 0, memoryBytes: 0 },
  }));
}
