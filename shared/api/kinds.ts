/**
 * The Kubernetes kinds Edgeplane serves: their groups, names, scope, schemas and printer columns.
 * This is the one list from which the CRDs (deploy/crds/) and the API reference (docs/api.md) are generated,
 * and which the coordinator uses to address the API.
 */
import type { z } from 'zod';
import { WorkloadDeploymentSpec, WorkloadDeploymentStatus } from './deployment.js';
import { HostSpec, HostStatus, LocationSpec, LocationStatus } from './host.js';
import { InstanceSpec, InstanceStatus } from './instance.js';
import { NetworkSpec, NetworkStatus } from './network.js';
import * as v1alphaDeployment from './v1alpha/deployment.js';
import * as v1alpha from './v1alpha/workload.js';
import { WorkloadSpec, WorkloadStatus } from './workload.js';

/** The API group everything but the Workload aliases lives in. */
export const GROUP = 'compute.datumapis.com';
/** The version every kind is served and stored at. */
export const VERSION = 'v1alpha1';
/** Datum's released compute API version, served beside VERSION in GROUP for Workload and WorkloadDeployment. */
export const DATUM_VERSION = 'v1alpha';
/**
 * Where kube-apiserver sends ConversionReviews between VERSION and DATUM_VERSION: the coordinator's webhook
 * (coordinator/conversion/). The generated CRDs name this Service (deploy/kubernetes); a coordinator started with
 * `--webhook-address` writes its own URL or this Service and its CA into the CRDs at start.
 */
export const CONVERSION_SERVICE = {
  namespace: 'edgeplane-system',
  name: 'edge-coordinator-webhook',
  path: '/convert',
  port: 443,
} as const;
/** The groups a Workload is served in; the docs use all three. The first is where kubectl looks by default. */
export const WORKLOAD_GROUPS = [GROUP, 'compute.miloapis.com', 'workload.datum.net'] as const;
/** The finalizer the coordinator puts on Workloads so deletion waits for every instance to be removed. */
export const WORKLOAD_FINALIZER = 'compute.datumapis.com/instances';

/** A printer column of `kubectl get`. */
export interface PrinterColumn {
  /** Column header. */
  name: string;
  /** OpenAPI type: string, integer, date, boolean. */
  type: 'string' | 'integer' | 'date' | 'boolean';
  /** JSONPath into the object. */
  jsonPath: string;
  /** 0 shows by default; 1 only with -o wide. */
  priority?: number;
  /** Column description. */
  description?: string;
}

/** A version served beside VERSION, in GROUP only, converted by the coordinator's webhook. */
export interface ExtraVersion {
  /** The version name, e.g. v1alpha. */
  name: string;
  /** Schema of .spec. */
  spec: z.ZodType;
  /** Schema of .status. */
  status: z.ZodType;
  /** Columns of `kubectl get` at this version. */
  printerColumns: PrinterColumn[];
}

/** One kind served by Edgeplane. */
export interface KindDefinition {
  /** The kind, e.g. Workload. */
  kind: string;
  /** Lower-case plural used in URLs, e.g. workloads. */
  plural: string;
  /** Lower-case singular. */
  singular: string;
  /** kubectl short names. */
  shortNames: string[];
  /** Namespaced or Cluster. */
  scope: 'Namespaced' | 'Cluster';
  /** Groups it is served in (the same schema in each). */
  groups: readonly string[];
  /** What the kind is, for `kubectl explain`. */
  description: string;
  /** Schema of .spec. */
  spec: z.ZodType;
  /** When true, objects may omit .spec (every field of it is optional). */
  specOptional?: boolean;
  /** Schema of .status. */
  status: z.ZodType;
  /** Columns of `kubectl get`. */
  printerColumns: PrinterColumn[];
  /** The scale subresource, when `kubectl scale` applies. */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  /** Versions served beside VERSION in GROUP (stored as VERSION; converted by the webhook). */
  extraVersions?: ExtraVersion[];
}

/** A column showing a condition's status or reason, as Datum's printer columns do. */
function conditionColumn(
  name: string,
  type: string,
  field: 'status' | 'reason',
  priority?: number,
): PrinterColumn {
  return {
    name,
    type: 'string',
    jsonPath: `.status.conditions[?(@.type=="${type}")].${field}`,
    ...(priority ? { priority } : {}),
  };
}

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const WorkloadKind: KindDefinition = {
  kind: 'Workload',
  plural: 'workloads',
  singular: 'workload',
  shortNames: ['wl'],
  scope: 'Namespaced',
  groups: WORKLOAD_GROUPS,
  description:
    'A group of instances (gVisor-sandboxed containers or virtual machines) that Edgeplane places across locations and hosts and keeps running.',
  spec: WorkloadSpec,
  status: WorkloadStatus,
  printerColumns: [
    { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', description: 'Desired instances.' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas', description: 'Ready instances.' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Phase of the Workload.' },
    age,
  ],
  scale: {
    specReplicasPath: '.spec.replicas',
    statusReplicasPath: '.status.replicas',
    labelSelectorPath: '.status.selector',
  },
  extraVersions: [
    {
      name: DATUM_VERSION,
      spec: v1alpha.WorkloadSpec,
      status: v1alpha.WorkloadStatus,
      // Datum's columns, in Datum's order.
      printerColumns: [
        age,
        conditionColumn('Available', 'Available', 'status'),
        conditionColumn('Reason', 'Available', 'reason'),
        { name: 'Deployments', type: 'string', jsonPath: '.status.deployments' },
        { name: 'Replicas', type: 'string', jsonPath: '.status.replicas' },
        { name: 'Ready', type: 'string', jsonPath: '.status.readyReplicas' },
        { name: 'Desired', type: 'string', jsonPath: '.status.desiredReplicas' },
        { name: 'Up-to-date', type: 'string', jsonPath: '.status.currentReplicas' },
      ],
    },
  ],
};

export const WorkloadDeploymentKind: KindDefinition = {
  kind: 'WorkloadDeployment',
  plural: 'workloaddeployments',
  singular: 'workloaddeployment',
  shortNames: ['wld'],
  scope: 'Namespaced',
  groups: [GROUP],
  description: 'The part of a Workload that runs in one location; owned by the Workload.',
  spec: WorkloadDeploymentSpec,
  status: WorkloadDeploymentStatus,
  printerColumns: [
    { name: 'Workload', type: 'string', jsonPath: '.spec.workloadRef.name' },
    { name: 'Location', type: 'string', jsonPath: '.spec.location' },
    { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
    age,
  ],
  extraVersions: [
    {
      name: DATUM_VERSION,
      spec: v1alphaDeployment.WorkloadDeploymentSpec,
      status: v1alphaDeployment.WorkloadDeploymentStatus,
      printerColumns: [
        age,
        conditionColumn('Available', 'Available', 'status'),
        conditionColumn('Reason', 'Available', 'reason'),
        { name: 'Replicas', type: 'string', jsonPath: '.status.replicas' },
        { name: 'Ready', type: 'string', jsonPath: '.status.readyReplicas' },
        { name: 'Desired', type: 'string', jsonPath: '.status.desiredReplicas' },
        { name: 'Up-to-date', type: 'string', jsonPath: '.status.currentReplicas' },
        { name: 'Location Namespace', type: 'string', jsonPath: '.status.location.namespace', priority: 1 },
        { name: 'Location Name', type: 'string', jsonPath: '.status.location.name', priority: 1 },
      ],
    },
  ],
};

export const InstanceKind: KindDefinition = {
  kind: 'Instance',
  plural: 'instances',
  singular: 'instance',
  shortNames: ['inst'],
  scope: 'Namespaced',
  groups: [GROUP],
  description: 'One replica of a Workload on one host; owned by its WorkloadDeployment.',
  spec: InstanceSpec,
  status: InstanceStatus,
  printerColumns: [
    { name: 'Workload', type: 'string', jsonPath: '.spec.workloadRef.name' },
    { name: 'Location', type: 'string', jsonPath: '.spec.location' },
    { name: 'Host', type: 'string', jsonPath: '.spec.host' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    {
      name: 'Network IP',
      type: 'string',
      jsonPath: '.status.networkInterfaces[0].assignments.networkIP',
      description: 'Address of the primary network interface.',
    },
    { name: 'Ready', type: 'boolean', jsonPath: '.status.ready', priority: 1 },
    { name: 'Runtime', type: 'string', jsonPath: '.status.runtime', priority: 1 },
    age,
  ],
};

export const HostKind: KindDefinition = {
  kind: 'Host',
  plural: 'hosts',
  singular: 'host',
  shortNames: [],
  scope: 'Cluster',
  groups: [GROUP],
  description:
    'An edge host running edge-agent, as it registered: labels, capacity, allocation and readiness.',
  spec: HostSpec,
  status: HostStatus,
  printerColumns: [
    { name: 'Location', type: 'string', jsonPath: '.spec.location' },
    { name: 'State', type: 'string', jsonPath: '.status.state' },
    { name: 'Instances', type: 'integer', jsonPath: '.status.instances' },
    // Quantities as `kubectl get nodes` shows them (64, 256Gi), not millicores and bytes.
    { name: 'CPU', type: 'string', jsonPath: '.status.allocatable.cpu', description: 'Allocatable CPU.' },
    { name: 'Memory', type: 'string', jsonPath: '.status.allocatable.memory', priority: 1 },
    { name: 'Disk', type: 'string', jsonPath: '.status.allocatable.ephemeral-storage', priority: 1 },
    { name: 'Heartbeat', type: 'date', jsonPath: '.status.lastHeartbeatTime', priority: 1 },
    age,
  ],
};

export const LocationKind: KindDefinition = {
  kind: 'Location',
  plural: 'locations',
  singular: 'location',
  shortNames: ['loc'],
  scope: 'Cluster',
  groups: [GROUP],
  description: 'A place where hosts run, such as a cloud zone or a point of presence.',
  spec: LocationSpec,
  status: LocationStatus,
  printerColumns: [
    { name: 'Provider', type: 'string', jsonPath: '.spec.provider' },
    { name: 'Region', type: 'string', jsonPath: '.spec.region' },
    { name: 'Zone', type: 'string', jsonPath: '.spec.zone' },
    { name: 'City', type: 'string', jsonPath: '.status.cityCode' },
    { name: 'Hosts', type: 'integer', jsonPath: '.status.hosts' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.readyHosts' },
    age,
  ],
};

export const NetworkKind: KindDefinition = {
  kind: 'Network',
  plural: 'networks',
  singular: 'network',
  shortNames: ['net'],
  scope: 'Namespaced',
  groups: [GROUP],
  specOptional: true,
  description:
    'A private network that instances attach to (networkInterfaces[].networkRef), across hosts and locations, with its subnets and IPAM. Workloads that name a missing Network are not placed.',
  spec: NetworkSpec,
  status: NetworkStatus,
  printerColumns: [
    { name: 'CIDR', type: 'string', jsonPath: '.status.ipv4Range' },
    { name: 'Segment', type: 'integer', jsonPath: '.status.segment' },
    { name: 'MTU', type: 'integer', jsonPath: '.status.mtu', priority: 1 },
    { name: 'Workloads', type: 'integer', jsonPath: '.status.workloads' },
    age,
  ],
};

/** Every kind, in the order they are documented. */
export const KINDS: readonly KindDefinition[] = [
  WorkloadKind,
  WorkloadDeploymentKind,
  InstanceKind,
  NetworkKind,
  HostKind,
  LocationKind,
];
