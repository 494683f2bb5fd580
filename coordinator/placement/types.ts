/**
 * The data the placement engine takes and returns. Plain data, no I/O: the coordinator builds a
 * {@link ScheduleInput} from its caches and applies the {@link SchedulePlan}.
 */
import type { Placement, PodAffinityTerm } from '../../shared/api/placement.js';

/** A runtime a host offers: gVisor-sandboxed containers or full virtual machines. */
export type Runtime = 'gvisor' | 'vm';

/** CPU and memory: what an instance requests, or what a host has. */
export interface Resources {
  cpuMillis: number;
  memoryBytes: number;
}

/** An edge host as placement sees it. */
export interface HostInfo {
  /** Unique; also the value of label `kubernetes.io/hostname` when that label is not set. */
  name: string;
  /** Where the host is, e.g. `us-central1-a`; instances are grouped per location. */
  location: string;
  /** `topology.kubernetes.io/region`, `topology.kubernetes.io/zone`, `provider`, `kubernetes.io/hostname`, ... */
  labels: Record<string, string>;
  /** Allocatable resources. */
  capacity: Resources;
  /** Already allocated; includes every instance in {@link ScheduleInput.instances} that runs on this host. */
  allocated: Resources;
  runtimes: Runtime[];
  /** false: disconnected. What runs there is kept; nothing new is placed there. */
  ready: boolean;
  /** true: nothing new is placed there. */
  cordoned?: boolean;
}

/** An instance that exists now (of any Workload). */
export interface InstanceInfo {
  name: string;
  namespace: string;
  /** Owner key `${namespace}/${name}` of its Workload. */
  workload: string;
  host: string;
  location: string;
  labels: Record<string, string>;
  resources: Resources;
  /**
   * The required anti-affinity terms of its Workload (`podAntiAffinity.requiredDuringScheduling…`). New instances
   * that a term selects are kept out of its topology domain, as kube-scheduler honours existing pods' rules.
   */
  antiAffinity?: PodAffinityTerm[];
}

/** The Workload being placed. */
export interface WorkloadInfo {
  namespace: string;
  name: string;
  replicas: number;
  placement?: Placement;
  /** Labels every instance of it carries (template labels + `workload=<name>`). */
  instanceLabels: Record<string, string>;
  /** Per-instance request. */
  resources: Resources;
  runtime: Runtime;
}

export interface ScheduleInput {
  workload: WorkloadInfo;
  hosts: HostInfo[];
  /** Instances of ALL Workloads. */
  instances: InstanceInfo[];
  /**
   * Labels of namespaces, for `namespaceSelector` in instance (anti-)affinity terms. Optional: a namespace not
   * listed has no labels.
   */
  namespaceLabels?: Record<string, Record<string, string>>;
}

/** An instance and where it runs. */
export interface Placed {
  name: string;
  host: string;
  location: string;
}

export interface SchedulePlan {
  /** Existing instances of this Workload that stay. */
  keep: Placed[];
  /** New instances; named `<workload>-<location>-<ordinal>`, the lowest free ordinal in that location. */
  place: Placed[];
  remove: Array<{ name: string; reason: 'ScaleDown' | 'HostGone' }>;
  /** Replicas that could not be placed (0 when all fit). */
  unplaced: number;
  /** When unplaced > 0, why, in the manner of kube-scheduler: "0/12 hosts are available: 7 Insufficient memory, ...". */
  reason?: string;
  /** Every instance after the plan (keep + place), grouped by location: what a WorkloadDeployment is. */
  byLocation: Record<string, Placed[]>;
}
