/**
 * The end of a Workload. Deletion (our finalizer): withdraw the intents, wait until the hosts no longer run
 * the instances, delete the Instances and WorkloadDeployments, then let the Workload go. Orphans (a Workload
 * that vanished without our finalizer running): remove whatever it left.
 */
import { WORKLOAD_FINALIZER, WorkloadKind } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import type { IntentStore } from '../intents/store.js';
import { apiErrorMessage, type KubeClient } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceCache } from '../kube/informer.js';
import type { ReconcileResult } from '../kube/workqueue.js';
import { instanceKey } from './naming.js';
import { DEPLOYMENTS, WORKLOAD_UID_LABEL } from './objects.js';
import type {
  DeploymentObject,
  HostView,
  InstanceCache,
  InstanceObject,
  InstanceWrites,
  WorkloadObject,
} from './types.js';

/** What finalization needs. */
export interface FinalizerDeps {
  /** The API server. */
  client: KubeClient;
  /** The intents bucket. */
  intents: IntentStore;
  /** What each host reports (whether it still runs an instance). */
  hosts: { get(host: string): HostView | undefined };
  /** Instances of every Workload. */
  instances: InstanceCache;
  /** Where Instances are deleted. */
  instanceWrites: InstanceWrites;
  /** WorkloadDeployments of every Workload. */
  deployments: ResourceCache<DeploymentObject>;
  /** Events. */
  events: EventRecorder;
  /** Logger. */
  log: Logger;
  /** Releases every network address of a Workload (`<namespace>/<name>`), once its instances are gone. */
  releaseAddresses?: (workload: string) => Promise<unknown>;
}

export class WorkloadFinalizer {
  constructor(private readonly d: FinalizerDeps) {}

  /**
   * One pass of a Workload being deleted. `mine`: its Instances. `ownsIntents`: whether the intents under its
   * namespace and name are its own (not those of a same-named Workload of another API group).
   */
  async finalize(
    group: string,
    wl: WorkloadObject,
    mine: InstanceObject[],
    ownsIntents: boolean,
  ): Promise<ReconcileResult | undefined> {
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const ref = { kind: WorkloadKind, group };
    if (!wl.metadata.finalizers?.includes(WORKLOAD_FINALIZER)) return undefined;
    if (ownsIntents) {
      for (const key of this.d.intents.keysOf(namespace, name)) await this.d.intents.delete(key);
    }
    const stillRunning = mine.filter((i) => {
      const entry = this.d.hosts.get(i.spec.host);
      return entry && entry.state !== 'Lost' && entry.instances.has(instanceKey(namespace, i.metadata.name));
    });
    if (wl.status?.phase !== 'Deleting') {
      await this.d.client
        .patchStatus(ref, namespace, name, { phase: 'Deleting' })
        .catch((err) =>
          this.d.log.debug({ err: apiErrorMessage(err) }, 'status not written during deletion'),
        );
      this.d.events.record(wl, 'Normal', 'Deleting', `stopping ${mine.length} instance(s)`);
    }
    if (stillRunning.length) {
      this.d.log.info(
        { workload: `${namespace}/${name}`, waitingFor: stillRunning.length },
        'waiting for instances to stop',
      );
      return { requeueAfterMs: 1000 };
    }
    for (const i of mine) await this.d.instanceWrites.delete(namespace, i.metadata.name);
    if (ownsIntents) await this.d.releaseAddresses?.(`${namespace}/${name}`);
    for (const dep of this.d.deployments.list(namespace)) {
      if (dep.metadata.labels?.[WORKLOAD_UID_LABEL] === wl.metadata.uid)
        await this.d.client.delete(DEPLOYMENTS, namespace, dep.metadata.name);
    }
    this.d.events.record(wl, 'Normal', 'Deleted', `${mine.length} instance(s) stopped and removed`);
    await this.d.client.patch(ref, namespace, name, {
      metadata: { finalizers: (wl.metadata.finalizers ?? []).filter((f) => f !== WORKLOAD_FINALIZER) },
    });
    this.d.log.info({ workload: `${namespace}/${name}` }, 'workload deleted; every instance stopped');
    return undefined;
  }

  /** A Workload of that namespace and name vanished from every API group: remove whatever it left. */
  async cleanupOrphans(namespace: string, name: string): Promise<undefined> {
    for (const key of this.d.intents.keysOf(namespace, name)) await this.d.intents.delete(key);
    for (const i of this.d.instances.list(namespace)) {
      if (i.spec.workloadRef.name === name) await this.d.instanceWrites.delete(namespace, i.metadata.name);
    }
    for (const dep of this.d.deployments.list(namespace)) {
      if (dep.spec.workloadRef.name === name)
        await this.d.client.delete(DEPLOYMENTS, namespace, dep.metadata.name);
    }
    return undefined;
  }
}
