/**
 * The data of the Workload controller: the API objects it reads and writes, the snapshot one reconcile pass
 * plans from, and the plan it applies. Plain data: the planner (planner.ts) is a pure function from a
 * {@link WorkloadSnapshot} to a {@link WorkloadPlan}, after Nomad's `ReconcileResults`.
 */
import type {
  InstanceSpec,
  InstanceStatus,
  NetworkSpec,
  ResourceAmounts,
  Runtime,
  WorkloadDeploymentSpec,
  WorkloadSpec,
  WorkloadStatus,
} from '../../shared/api/index.js';
import type { DeploymentIntent, ReportedInstance, ResolvedValues } from '../../shared/nats/messages.js';
import type { HostState } from '../hosts/registry.js';
import type { KubeObject } from '../kube/client.js';
import type { HostInfo, InstanceInfo } from '../placement/index.js';
import type { Admission } from '../quota/admit.js';
import type { ReferenceLookup } from './references.js';
import type { ObservedInstance, WorkloadStatusInput } from './status.js';

/** A Workload as the informer delivers it; its spec is checked by validate.ts before anything uses it. */
export type WorkloadObject = KubeObject<unknown, WorkloadStatus>;
/** An Instance; `spec.resources` is the request it holds on its host. */
export type InstanceObject = KubeObject<InstanceSpec & { resources?: ResourceAmounts }, InstanceStatus>;
/** A WorkloadDeployment: the Workload's instances of one location and the templates they run. */
export type DeploymentObject = KubeObject<WorkloadDeploymentSpec, unknown>;
/** A Secret or ConfigMap as the informer delivers it (data base64 for Secrets, text for ConfigMaps). */
export interface CoreDataObject {
  /** Name and namespace. */
  metadata: { name?: string; namespace?: string };
  /** Secret type (`kubernetes.io/dockerconfigjson`, ...); absent for ConfigMaps. */
  type?: string;
  /** Secret data (base64) or ConfigMap data (text). */
  data?: Record<string, string>;
  /** ConfigMap binary data (base64). */
  binaryData?: Record<string, string>;
}
/** A Network, as templates reference it. */
export type NetworkObject = KubeObject<NetworkSpec | undefined, unknown>;

/** What a host last said, as the planner reads it (the host registry's entries have this shape). */
export interface HostView {
  /** Ready, Disconnected or Lost. */
  state: HostState;
  /** The instances it reports, by instance key `<namespace>/<name>`. */
  instances: ReadonlyMap<string, ReportedInstance>;
}

/** A Workload whose spec is valid and whose references all exist: what validate.ts hands to the planner. */
export interface ValidWorkload {
  /** The parsed spec. */
  spec: WorkloadSpec;
  /** What each instance requests on its host. */
  requests: ResourceAmounts;
  /** What each instance may use at most. */
  limits: ResourceAmounts;
  /** The runtime every instance runs on. */
  runtime: Runtime;
  /** The Secret/ConfigMap values the template references, resolved. */
  values: ResolvedValues;
}

/** Everything one pass over one Workload reads. Built from the caches by the controller; never changed. */
export interface WorkloadSnapshot {
  /** API group of the Workload. */
  group: string;
  /** The Workload object (its metadata and current status). */
  workload: WorkloadObject;
  /** Its Instances (by Workload UID), replicas and surge instances. */
  instances: InstanceObject[];
  /** Its WorkloadDeployments (by Workload UID). */
  deployments: DeploymentObject[];
  /** Hosts and instances of every Workload, as the placement engine takes them (placement-input.ts). */
  placement: { hosts: HostInfo[]; instances: InstanceInfo[] };
  /** What each host reports, by host name. */
  hosts: { get(host: string): HostView | undefined };
  /** The namespace's Secrets, ConfigMaps and Networks, for the values of older templates still running. */
  lookup: ReferenceLookup;
  /** Now (RFC 3339), for status and intents. */
  now: string;
  /** The namespace's ResourceQuotas' verdict on spec.replicas (coordinator/quota/); absent: no quota read. */
  quota?: Admission;
}

/** An event to record once the writes of the pass are done. */
export interface PlannedEvent {
  /** The Instance it is about; absent: the Workload. */
  instance?: string;
  /** Normal or Warning. */
  type: 'Normal' | 'Warning';
  /** CamelCase reason (`Placed`, `RollingUpdate`, ...). */
  reason: string;
  /** What happened, for people. */
  message: string;
}

/** An Instance to create, on the Workload's current template. */
export interface NewInstance {
  /** Instance name (naming.ts). */
  name: string;
  /** Location; its WorkloadDeployment becomes the owner. */
  location: string;
  /** Host it is placed on. */
  host: string;
  /** Ordinal in its location (surge instances: SURGE_ORDINAL_BASE up). */
  ordinal: number;
  /** Whether it is a surge instance of a rolling update. */
  surge: boolean;
}

/** One location's intent with the values sealed into it for the hosts. */
export interface PlannedIntent {
  /** The intent as the agents read it. */
  intent: DeploymentIntent;
  /** The Secret/ConfigMap values of its templates (sealed per host by the intent store). */
  values: ResolvedValues;
}

/**
 * What one pass changes, in the order it is applied: deployments, then Instances (create, remove, switch
 * template), then intents, then the surge instances that left, then status. Fields that are absent leave
 * what exists as it is (a blocked Workload touches nothing but its status).
 */
export interface WorkloadPlan {
  /** WorkloadDeployment specs by location; those of other locations are deleted. */
  deployments?: Map<string, WorkloadDeploymentSpec>;
  /** Template metadata every new Instance carries: labels (with `workload=<name>`) and annotations. */
  instanceMetadata: { labels: Record<string, string>; annotations?: Record<string, string> | undefined };
  /** The current template's hash, runtime and request, for new Instances and template switches. */
  template: { hash: string; runtime: Runtime; requests: ResourceAmounts };
  /** Instances to create (placed replicas first, then surge instances). */
  create: NewInstance[];
  /** Instances to delete at once (placement removed them). */
  remove: string[];
  /** Instances whose spec switches to another template hash. */
  switchTemplate: Array<{ name: string; templateHash: string }>;
  /** One intent per location with instances; absent: leave the intents. Others of this Workload are withdrawn. */
  intents?: PlannedIntent[];
  /** Surge instances no longer wanted whose hosts no longer run them: deleted after the intents. */
  removeAfterIntents: string[];
  /**
   * Instances whose status is written, with what their hosts say, in write order: surge instances first, so that
   * a reader never sees the replaced ones not ready before their stand-ins are ready.
   */
  instanceStatus: ObservedInstance[];
  /** WorkloadDeployment status by location. */
  deploymentStatus: Map<string, { replicas: number; readyReplicas: number }>;
  /** Input of the Workload status (status.ts). */
  status: WorkloadStatusInput;
  /** Events, recorded after the writes. */
  events: PlannedEvent[];
  /** When to pass again without a change (unplaced replicas, a rollout under way). */
  requeueAfterMs?: number;
}

/**
 * Where Instances are kept: the same four writes whether they are custom objects in etcd (`--instances-api=crd`,
 * {@link crdInstanceWrites} in objects.ts) or the coordinator's own aggregated API over the JetStream KV
 * (`--instances-api=aggregated`, coordinator/apiserver/store.ts). A create of a name that exists throws a 409
 * (isConflict); deleting a missing one is not an error.
 */
export interface InstanceWrites {
  /** Creates an Instance; resolves to it as stored (uid, resourceVersion, creationTimestamp set). */
  create(obj: InstanceObject): Promise<InstanceObject>;
  /** Deletes an Instance; a missing one is not an error. */
  delete(namespace: string, name: string): Promise<void>;
  /** JSON merge patch of the Instance. */
  patch(namespace: string, name: string, body: object): Promise<InstanceObject>;
  /** Replaces .status by merge patch. */
  patchStatus(namespace: string, name: string, status: unknown): Promise<InstanceObject>;
}

/** The Instances as the controllers read them: a cache kept current (ResourceCache, or the KV-backed store). */
export interface InstanceCache {
  /** Every Instance, or those of one namespace. */
  list(namespace?: string): InstanceObject[];
  /** One Instance. */
  get(namespace: string | undefined, name: string): InstanceObject | undefined;
  /** Registers a change handler (deletes carry the last known state). */
  onChange(handler: (obj: InstanceObject, event: 'add' | 'update' | 'delete') => void): void;
  /** Lists and starts following; resolves once the first list is in. */
  start(): Promise<void>;
  /** Stops following. */
  stop(): Promise<void>;
  /** Whether the first list is in. */
  readonly isStarted: boolean;
}
