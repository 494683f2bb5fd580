/**
 * Host filters that depend only on the host and the Workload (kube-scheduler's NodeUnschedulable,
 * TaintToleration for not-ready hosts, NodeAffinity with nodeSelector; plus the runtime and the
 * providers/regions shorthand), and the resource fit filter (NodeResourcesFit).
 *
 * Each filter is a predicate with the phrase used when it rejects a host: "5 didn't match node selector".
 */

import type { ResourceAmounts } from '../../shared/api/meta.js';
import { PROVIDER_LABEL, REGION_LABEL } from '../../shared/api/placement.js';
import {
  compileLabelSelector,
  compileNodeSelectorMap,
  compileNodeSelectorTerms,
  type HostPredicate,
  hostLabel,
} from './labels.js';
import type { HostInfo, InstanceInfo, ScheduleInput, WorkloadInfo } from './types.js';

/** Why a host was rejected, as printed in the reason: `${count} ${phrase}`. */
export const Reasons = {
  cordoned: 'were cordoned',
  notReady: 'were not ready',
  runtime: (runtime: string) => `didn't offer the ${runtime} runtime`,
  overlay: "didn't report an overlay address (agent --overlay-address) for Network attachments",
  providers: "didn't match providers",
  regions: "didn't match regions",
  nodeSelector: "didn't match node selector",
  nodeAffinity: "didn't match node affinity",
  insufficientCpu: 'Insufficient cpu',
  insufficientMemory: 'Insufficient memory',
  podAffinity: "didn't match instance affinity rules",
  podAntiAffinity: "didn't match instance anti-affinity rules",
  existingAntiAffinity: "didn't satisfy existing instances' anti-affinity rules",
  topologySpread: "didn't match topology spread constraints",
  missingTopologyLabel: (key: string) => `didn't have the topology label ${key}`,
} as const;

/** A filter on a host, and the phrase that explains a rejection. */
export interface HostFilter {
  /** Short name, as in kube-scheduler's plugin names. */
  name: string;
  reason: string;
  /** True when the host passes. */
  test: HostPredicate;
  /**
   * True for filters that select hosts by their labels (nodeSelector, nodeAffinity, providers, regions): the
   * hosts that topology spread counts with `nodeAffinityPolicy: Honor`.
   */
  selectsHosts: boolean;
}

/** Hosts that are cordoned get nothing new. */
export const unschedulableFilter: HostFilter = {
  name: 'NodeUnschedulable',
  reason: Reasons.cordoned,
  test: (h) => h.cordoned !== true,
  selectsHosts: false,
};

/** Hosts that are not ready (disconnected) get nothing new. */
export const readyFilter: HostFilter = {
  name: 'NodeReady',
  reason: Reasons.notReady,
  test: (h) => h.ready,
  selectsHosts: false,
};

/** The host offers the Workload's runtime (gVisor for containers, VMs for VM images). */
export function runtimeFilter(runtime: WorkloadInfo['runtime']): HostFilter {
  return {
    name: 'Runtime',
    reason: Reasons.runtime(runtime),
    test: (h) => h.runtimes.includes(runtime),
    selectsHosts: false,
  };
}

/** Instances attached to Networks go only to hosts that can carry them: those with an overlay address. */
export const overlayFilter: HostFilter = {
  name: 'NetworkOverlay',
  reason: Reasons.overlay,
  test: (h) => h.overlay === true,
  selectsHosts: false,
};

function labelIn(key: string, values: readonly string[]): HostPredicate {
  const set = new Set(values);
  return (h) => {
    const v = hostLabel(h, key);
    return v !== undefined && set.has(v);
  };
}

/**
 * The static filters for a Workload, in the order their reasons take precedence. Filters for absent rules are
 * left out. `placement.providers` / `placement.regions` are required selectors on labels `provider` and
 * `topology.kubernetes.io/region` (an empty list imposes nothing).
 */
export function staticFilters(workload: WorkloadInfo): HostFilter[] {
  const p = workload.placement;
  const filters: HostFilter[] = [unschedulableFilter, readyFilter, runtimeFilter(workload.runtime)];
  if (workload.networks) filters.push(overlayFilter);
  if (p?.providers && p.providers.length > 0) {
    filters.push({
      name: 'Providers',
      reason: Reasons.providers,
      test: labelIn(PROVIDER_LABEL, p.providers),
      selectsHosts: true,
    });
  }
  if (p?.regions && p.regions.length > 0) {
    filters.push({
      name: 'Regions',
      reason: Reasons.regions,
      test: labelIn(REGION_LABEL, p.regions),
      selectsHosts: true,
    });
  }
  if (p?.nodeSelector && Object.keys(p.nodeSelector).length > 0) {
    filters.push({
      name: 'NodeSelector',
      reason: Reasons.nodeSelector,
      test: compileNodeSelectorMap(p.nodeSelector),
      selectsHosts: true,
    });
  }
  const required = p?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required) {
    filters.push({
      name: 'NodeAffinity',
      reason: Reasons.nodeAffinity,
      test: compileNodeSelectorTerms(required.nodeSelectorTerms),
      selectsHosts: true,
    });
  }
  return filters;
}

/** The first static filter that rejects a host, or undefined when it passes them all. */
export function firstFailing(filters: readonly HostFilter[], host: HostInfo): HostFilter | undefined {
  for (const f of filters) if (!f.test(host)) return f;
  return undefined;
}

/**
 * Resource fit: the phrases for what does not fit one more instance of `request` on a host with `capacity` of
 * which `used` is taken (both CPU and memory may be short). Empty when it fits.
 */
export function insufficient(
  capacity: ResourceAmounts,
  used: ResourceAmounts,
  request: ResourceAmounts,
): string[] {
  const out: string[] = [];
  if (used.cpuMillis + request.cpuMillis > capacity.cpuMillis) out.push(Reasons.insufficientCpu);
  if (used.memoryBytes + request.memoryBytes > capacity.memoryBytes) out.push(Reasons.insufficientMemory);
  return out;
}

/**
 * Existing instances' required anti-affinity (kube-scheduler's InterPodAffinity checks it both ways): a host is
 * out when an instance already in its topology domain has a required anti-affinity term that selects the new
 * instance. Terms name namespaces (default: the existing instance's own) or a namespaceSelector.
 */
export function existingAntiAffinityFilter(
  input: ScheduleInput,
  guarded: readonly InstanceInfo[],
): HostFilter | undefined {
  const { workload } = input;
  const hostsByName = new Map(input.hosts.map((h) => [h.name, h]));
  const blocked = new Map<string, Set<string>>(); // topologyKey → values
  for (const inst of guarded) {
    const host = hostsByName.get(inst.host);
    if (!host) continue;
    for (const term of inst.antiAffinity ?? []) {
      if (!compileLabelSelector(term.labelSelector)(workload.instanceLabels)) continue;
      const namespaces = term.namespaces ?? [];
      const nsMatch =
        namespaces.length > 0
          ? namespaces.includes(workload.namespace)
          : term.namespaceSelector
            ? compileLabelSelector(term.namespaceSelector)(input.namespaceLabels?.[workload.namespace] ?? {})
            : inst.namespace === workload.namespace;
      if (!nsMatch) continue;
      const value = hostLabel(host, term.topologyKey);
      if (value === undefined) continue;
      const values = blocked.get(term.topologyKey) ?? new Set<string>();
      values.add(value);
      blocked.set(term.topologyKey, values);
    }
  }
  if (blocked.size === 0) return undefined;
  return {
    name: 'InterPodAffinity(existing)',
    reason: Reasons.existingAntiAffinity,
    test: (h) => {
      for (const [key, values] of blocked) {
        const v = hostLabel(h, key);
        if (v !== undefined && values.has(v)) return false;
      }
      return true;
    },
    selectsHosts: false,
  };
}
