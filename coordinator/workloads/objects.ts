/**
 * The objects the Workload controller writes, built in one place: WorkloadDeployments (owned by their
 * Workload) and Instances (placed replicas and surge instances) with their labels and owner reference to the
 * location's WorkloadDeployment.
 */
import {
  GROUP,
  InstanceKind,
  VERSION,
  WorkloadDeploymentKind,
  type WorkloadDeploymentSpec,
} from '../../shared/api/index.js';
import type { KubeClient } from '../kube/client.js';
import { deploymentName } from './naming.js';
import type { DeploymentObject, InstanceObject, InstanceWrites, WorkloadObject } from './types.js';

/** The Instance resource, for API calls. */
export const INSTANCES = { kind: InstanceKind, group: GROUP } as const;
/** The WorkloadDeployment resource, for API calls. */
export const DEPLOYMENTS = { kind: WorkloadDeploymentKind, group: GROUP } as const;

/** Instances as custom objects in etcd (`--instances-api=crd`). */
export function crdInstanceWrites(client: KubeClient): InstanceWrites {
  return {
    create: (obj) => client.create(INSTANCES, obj),
    delete: (namespace, name) => client.delete(INSTANCES, namespace, name),
    patch: (namespace, name, body) => client.patch(INSTANCES, namespace, name, body),
    patchStatus: (namespace, name, status) => client.patchStatus(INSTANCES, namespace, name, status),
  };
}

/** Label every Instance carries with its Workload's name (the docs filter on it). */
export const WORKLOAD_LABEL = 'workload';
/** Label with the owning Workload's UID, so a re-created Workload of the same name is told apart. */
export const WORKLOAD_UID_LABEL = 'edgeplane.dev/workload-uid';
/** Label with the instance's location. */
export const LOCATION_LABEL = 'edgeplane.dev/location';
/** Label of the extra instances a rolling update runs beside a location while it switches templates. */
export const SURGE_LABEL = 'edgeplane.dev/surge';

/** What {@link instanceObject} needs. */
export interface InstanceObjectInput {
  /** Instance name. */
  name: string;
  /** Namespace of the Workload. */
  namespace: string;
  /** UID of the Workload. */
  workloadUid: string;
  /** Template labels plus workload=<name>. */
  labels: Record<string, string>;
  /** Template annotations. */
  annotations?: Record<string, string> | undefined;
  /** Whether it is a surge instance of a rolling update. */
  surge?: boolean;
  /** The WorkloadDeployment of its location, its owner (garbage collection follows it). */
  owner: DeploymentObject | undefined;
  /** The spec. */
  spec: InstanceObject['spec'];
}

/** A new Instance object. */
export function instanceObject(i: InstanceObjectInput): InstanceObject {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Instance',
    metadata: {
      name: i.name,
      namespace: i.namespace,
      labels: {
        ...i.labels,
        [WORKLOAD_UID_LABEL]: i.workloadUid,
        [LOCATION_LABEL]: i.spec.location,
        ...(i.surge ? { [SURGE_LABEL]: 'true' } : {}),
      },
      ...(i.annotations ? { annotations: i.annotations } : {}),
      ...(i.owner
        ? {
            ownerReferences: [
              {
                apiVersion: `${GROUP}/${VERSION}`,
                kind: 'WorkloadDeployment',
                name: i.owner.metadata.name,
                uid: i.owner.metadata.uid!,
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }
        : {}),
    },
    spec: i.spec,
  };
}

/** A new WorkloadDeployment of a Workload in one location, owned by the Workload (of API group `group`). */
export function deploymentObject(
  wl: WorkloadObject,
  group: string,
  spec: WorkloadDeploymentSpec,
): DeploymentObject {
  const name = wl.metadata.name;
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'WorkloadDeployment',
    metadata: {
      name: deploymentName(name, spec.location),
      namespace: wl.metadata.namespace!,
      labels: {
        [WORKLOAD_LABEL]: name,
        [WORKLOAD_UID_LABEL]: wl.metadata.uid!,
        [LOCATION_LABEL]: spec.location,
      },
      ownerReferences: [
        {
          apiVersion: `${group}/${VERSION}`,
          kind: 'Workload',
          name,
          uid: wl.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec,
  };
}
