/**
 * A simulated world for the Workload planner: the API objects, the hosts and their reports. `applyPlan`
 * does what writes.ts does against the API server; `hostsConverge` makes every host run what its intents say,
 * as agents do. Plain data, no I/O.
 */

import { AllocationIndex } from '../../../coordinator/hosts/allocation.js';
import type { HostEntry } from '../../../coordinator/hosts/registry.js';
import { SURGE_LABEL, WORKLOAD_LABEL, WORKLOAD_UID_LABEL } from '../../../coordinator/workloads/objects.js';
import { placementHosts, placementInstances } from '../../../coordinator/workloads/placement-input.js';
import { NO_LOOKUP } from '../../../coordinator/workloads/references.js';
import type {
  DeploymentObject,
  HostView,
  InstanceObject,
  PlannedIntent,
  ValidWorkload,
  WorkloadObject,
  WorkloadPlan,
  WorkloadSnapshot,
} from '../../../coordinator/workloads/types.js';
import { validateWorkload } from '../../../coordinator/workloads/validate.js';
import type { ReportedInstance } from '../../../shared/nats/messages.js';

export const NOW = '2026-12-01T12:00:00.000Z';
const GiB = 1024 ** 3;

export interface World {
  workload: WorkloadObject;
  instances: InstanceObject[];
  deployments: DeploymentObject[];
  intents: PlannedIntent[];
  /** Host name → location, every host Ready with 16 CPUs and 64 GiB. */
  hosts: Record<string, string>;
  /** What each host runs: instance name → template hash (ready). */
  running: Map<string, Map<string, string>>;
}

export function workloadObject(spec: Record<string, unknown>, name = 'web'): WorkloadObject {
  return {
    apiVersion: 'compute.datumapis.com/v1alpha',
    kind: 'Workload',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, generation: 1 },
    spec,
  } as WorkloadObject;
}

export function world(spec: Record<string, unknown>, hosts: Record<string, string>): World {
  return {
    workload: workloadObject(spec),
    instances: [],
    deployments: [],
    intents: [],
    hosts,
    running: new Map(Object.keys(hosts).map((h) => [h, new Map()])),
  };
}

/** The host reports of the world. */
export function hostViews(w: World): Map<string, HostView> {
  const out = new Map<string, HostView>();
  for (const [host, running] of w.running) {
    const instances = new Map<string, ReportedInstance>();
    for (const [name, hash] of running) {
      instances.set(`default/${name}`, {
        namespace: 'default',
        name,
        workload: w.workload.metadata.name,
        templateHash: hash,
        phase: 'Running',
        ready: true,
      } as ReportedInstance);
    }
    out.set(host, { state: 'Ready', instances });
  }
  return out;
}

export function snapshot(w: World): WorkloadSnapshot {
  const entries = Object.entries(w.hosts).map(
    ([host, location]) =>
      ({
        report: {
          host,
          location,
          labels: { 'kubernetes.io/hostname': host },
          allocatable: { cpuMillis: 16_000, memoryBytes: 64 * GiB },
          runtimes: ['gvisor', 'vm'],
        },
        state: 'Ready',
        instances: new Map(),
      }) as unknown as HostEntry,
  );
  const allocation = new AllocationIndex({ list: () => w.instances, onChange: () => undefined });
  return {
    group: 'compute.datumapis.com',
    workload: w.workload,
    instances: w.instances,
    deployments: w.deployments,
    placement: {
      hosts: placementHosts(entries, allocation.all(), false),
      instances: placementInstances(w.instances, [w.workload]),
    },
    hosts: hostViews(w),
    lookup: NO_LOOKUP,
    now: NOW,
  };
}

export function valid(w: World): ValidWorkload {
  const checked = validateWorkload({ workload: w.workload, conflict: undefined, lookup: NO_LOOKUP });
  if (!('valid' in checked)) throw new Error(checked.blocked.message);
  return checked.valid;
}

/** Applies a plan as writes.ts does. */
export function applyPlan(w: World, plan: WorkloadPlan): void {
  const uid = w.workload.metadata.uid!;
  if (plan.deployments) {
    w.deployments = [...plan.deployments].map(
      ([location, spec]) =>
        ({
          metadata: { name: `web-${location}`, namespace: 'default', labels: { [WORKLOAD_UID_LABEL]: uid } },
          spec,
        }) as unknown as DeploymentObject,
    );
  }
  for (const c of plan.create) {
    w.instances.push({
      metadata: {
        name: c.name,
        namespace: 'default',
        labels: {
          ...plan.instanceMetadata.labels,
          [WORKLOAD_LABEL]: w.workload.metadata.name,
          [WORKLOAD_UID_LABEL]: uid,
          ...(c.surge ? { [SURGE_LABEL]: 'true' } : {}),
        },
      },
      spec: {
        workloadRef: { name: w.workload.metadata.name },
        location: c.location,
        host: c.host,
        ordinal: c.ordinal,
        runtime: plan.template.runtime,
        templateHash: plan.template.hash,
        resources: plan.template.requests,
      },
    } as unknown as InstanceObject);
  }
  const gone = new Set([...plan.remove, ...plan.removeAfterIntents]);
  w.instances = w.instances.filter((i) => !gone.has(i.metadata.name));
  for (const s of plan.switchTemplate) {
    const i = w.instances.find((x) => x.metadata.name === s.name)!;
    i.spec = { ...i.spec, templateHash: s.templateHash };
  }
  if (plan.intents) w.intents = plan.intents;
}

/** Every host runs what the intents place on it, ready (the agents have converged). */
export function hostsConverge(w: World): void {
  for (const running of w.running.values()) running.clear();
  for (const { intent } of w.intents) {
    for (const i of intent.instances)
      w.running.get(i.host)?.set(i.name, i.templateHash ?? intent.templateHash);
  }
}
