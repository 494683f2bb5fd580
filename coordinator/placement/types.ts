/**
 * The data the placement engine takes and returns. Plain data, no I/O: the coordinator builds a
 * {@link ScheduleInput} from its caches and applies the {@link SchedulePlan}.
 */
import type { Runtime } from '../../shared/api/instance.js';
import type { ResourceAmounts } from '../../shared/api/meta.js';
import type { Placement, PodAffinityTerm } from '../../shared/api/placement.js';

/** An edge host as placement sees it. */
export interface HostInfo {
  /** Unique; also the value of label `kubernetes.io/hostname` when that label is not set. */
  name: string;
  /** Where the host is, e.g. `us-central1-a`; instances are grouped per location. */
  location: string;
  /** `topology.kubernetes.io/region`, `topology.kubernetes.io/zone`, `provider`, `kubernetes.io/hostname`, ... */
  labels: Record<string, string>;
  /** Allocatable resources. */
  capacity: ResourceAmounts;
  /** Already allocated; includes every instance in {@link ScheduleInput.instances} that runs on this host. */
  allocated: ResourceAmounts;
  /** Runtimes that work on the host now; an instance goes only where its runtime is. */
  runtimes: Runtime[];
  /** false: disconnected. What runs there is kept; nothing new is placed there. */
  ready: boolean;
  /** true: nothing new is placed there. */
  cordoned?: boolean;
  /** true: it reports an overlay address, so it can carry Network attachments (VXLAN). */
  overlay?: boolean;
}

/** An instance that exists now (of any Workload). */
export interface InstanceInfo {
  /** Instance name. */
  name: string;
  /** Namespace of its Workload. */
  namespace: string;
  /** Owner key `${namespace}/${name}` of its Workload. */
  workload: string;
  /** Host it runs on. */
  host: string;
  /** Location of that host. */
  location: string;
  /** Its labels (template labels + `workload=<name>`), for label selectors. */
  labels: Record<string, string>;
  /** What it requests on its host. */
  resources: ResourceAmounts;
  /**
   * A surge instance of a rolling update: an extra instance the controller runs beside its Workload's replicas
   * while they switch templates. It takes capacity and label selectors see it, but it is no replica: placement
   * never counts it as its Workload's own, keeps it or removes it.
   */
  surge?: boolean;
  /**
   * The required anti-affinity terms of its Workload (`podAntiAffinity.requiredDuringScheduling…`). New instances
   * that a term selects are kept out of its topology domain, as kube-scheduler honours existing pods' rules.
   */
  antiAffinity?: PodAffinityTerm[];
}

/** The Workload being placed. */
export interface WorkloadInfo {
  /** Namespace. */
  namespace: string;
  /** Name; instance names start with it. */
  name: string;
  /** Desired replicas. */
  replicas: number;
  /** `spec.placement`: where instances may and should go. */
  placement?: Placement;
  /** Labels every instance of it carries (template labels + `workload=<name>`). */
  instanceLabels: Record<string, string>;
  /** Per-instance request. */
  resources: ResourceAmounts;
  /** The runtime its instances need. */
  runtime: Runtime;
  /** true: its instances attach to Networks, so they go only to hosts with an overlay address. */
  networks?: boolean;
}

/** What {@link schedule} takes. */
export interface ScheduleInput {
  /** The Workload to place. */
  workload: WorkloadInfo;
  /** Every host that is not lost. */
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
  /** Instance name. */
  name: string;
  /** Host. */
  host: string;
  /** Location of the host. */
  location: string;
}

/** What {@link schedule} decides for one Workload. */
export interface SchedulePlan {
  /** Existing instances of this Workload that stay. */
  keep: Placed[];
  /** New instances; named `<workload>-<location>-<ordinal>`, the lowest free ordinal in that location. */
  place: Placed[];
  /** Existing instances of this Workload to remove: surplus (`ScaleDown`) or on a host gone (`HostGone`). */
  remove: Array<{ name: string; reason: 'ScaleDown' | 'HostGone' }>;
  /** Replicas that could not be placed (0 when all fit). */
  unplaced: number;
  /** When unplaced > 0, why, in the manner of kube-scheduler: "0/12 hosts are available: 7 Insufficient memory, ...". */
  reason?: string;
  /** Every instance after the plan (keep + place), grouped by location: what a WorkloadDeployment is. */
  byLocation: Record<string, Placed[]>;
}
