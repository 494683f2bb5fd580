/**
 * The API writes of a pass: applies a {@link WorkloadPlan} in its order (WorkloadDeployments, which own the
 * Instances; Instances; intents; surge instances that left; events; status). Every write is idempotent: an
 * object created already (a conflict) is taken as sent, a status equal to the current one is not written.
 */
import { WORKLOAD_FINALIZER, type WorkloadDeploymentSpec, WorkloadKind } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { type IntentStore, IntentTooLargeError } from '../intents/store.js';
import { apiErrorMessage, isConflict, type KubeClient } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceCache } from '../kube/informer.js';
import { deploymentName, queueKey } from './naming.js';
import { DEPLOYMENTS, deploymentObject, instanceObject } from './objects.js';
import type { OwnWrites } from './own-writes.js';
import { instanceStatus, type ObservedInstance, workloadStatus } from './status.js';
import type {
  DeploymentObject,
  InstanceObject,
  InstanceWrites,
  WorkloadObject,
  WorkloadPlan,
  WorkloadSnapshot,
} from './types.js';

/** What the writes need. */
export interface WorkloadWriterDeps {
  /** The API server. */
  client: KubeClient;
  /** Where Instances are written (etcd, or the coordinator's own API). */
  instanceWrites: InstanceWrites;
  /** Events on Workloads and Instances. */
  events: EventRecorder;
  /** The intents bucket. */
  intents: IntentStore;
  /** Intent keys. */
  subjects: Subjects;
  /** WorkloadDeployments, to take one created concurrently. */
  deployments: ResourceCache<DeploymentObject>;
  /** Logger. */
  log: Logger;
  /** Where the writes are recorded, so that their informer echoes queue no pass (own-writes.ts). */
  ownWrites?: OwnWrites;
}

/**
 * API writes of one kind a pass makes at once (Instance creates, Instance status): a 100-replica apply wrote
 * its 100 Instances and then their 100 statuses one after the other, about 3 s and 11 s on a loaded 2-core machine.
 */
export const WRITE_CONCURRENCY = 8;

/**
 * Runs `fn` over `items`, at most `limit` at a time; the first failure stops further starts and is thrown once
 * those running have ended (as a loop would have stopped at it).
 */
export async function eachLimited<T>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const list = [...items];
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < list.length) {
      const item = list[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, worker));
  if (failure) throw failure.err;
}

/** Kinds as {@link OwnWrites} records them. */
export const OWN_INSTANCE = 'instance';
export const ownWorkloadKind = (group: string) => `workload.${group}`;

/** A Workload's objects after {@link WorkloadWriter.apply}. */
export interface Written {
  /** Its Instances by name (created ones as the API server returned them). */
  instances: Map<string, InstanceObject>;
  /** Its WorkloadDeployments by location. */
  deployments: Map<string, DeploymentObject>;
  /** Why an intent could not be published (it is then left as it was; the status says so). */
  publishError?: { reason: string; message: string };
}

export class WorkloadWriter {
  constructor(private readonly d: WorkloadWriterDeps) {}

  /** Adds the finalizer that lets the controller stop the instances before the Workload goes. */
  async ensureFinalizer(group: string, wl: WorkloadObject): Promise<void> {
    if (wl.metadata.finalizers?.includes(WORKLOAD_FINALIZER)) return;
    const written = await this.d.client.patch<WorkloadObject>(
      { kind: WorkloadKind, group },
      wl.metadata.namespace,
      wl.metadata.name,
      { metadata: { finalizers: [...(wl.metadata.finalizers ?? []), WORKLOAD_FINALIZER] } },
    );
    this.d.ownWrites?.record(
      ownWorkloadKind(group),
      written,
      queueKey(group, wl.metadata.namespace!, wl.metadata.name),
    );
  }

  /**
   * Applies a plan (all but status) to the Workload of the snapshot it was made from; returns its Instances
   * and WorkloadDeployments as they are now.
   */
  async apply(s: WorkloadSnapshot, plan: WorkloadPlan): Promise<Written> {
    const wl = s.workload;
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const owner = queueKey(s.group, namespace, name);
    const objects = new Map(s.instances.map((i) => [i.metadata.name, i]));
    const deployments = plan.deployments
      ? await this.syncDeployments(s, plan.deployments)
      : new Map<string, DeploymentObject>();

    await eachLimited(plan.create, WRITE_CONCURRENCY, async (i) => {
      const body = instanceObject({
        name: i.name,
        namespace,
        workloadUid: wl.metadata.uid!,
        labels: plan.instanceMetadata.labels,
        annotations: plan.instanceMetadata.annotations,
        ...(i.surge ? { surge: true } : {}),
        owner: deployments.get(i.location),
        spec: {
          workloadRef: { name },
          location: i.location,
          host: i.host,
          ordinal: i.ordinal,
          runtime: plan.template.runtime,
          templateHash: plan.template.hash,
          resources: plan.template.requests,
        },
      });
      try {
        const created = await this.d.instanceWrites.create(body);
        this.d.ownWrites?.record(OWN_INSTANCE, created, owner);
        objects.set(i.name, created);
        this.d.log.debug({ instance: `${namespace}/${i.name}`, host: i.host }, 'instance created');
      } catch (err) {
        if (!isConflict(err)) throw err;
        objects.set(i.name, body);
      }
    });
    for (const n of plan.remove) {
      await this.d.instanceWrites.delete(namespace, n);
      objects.delete(n);
    }
    for (const { name: n, templateHash } of plan.switchTemplate) {
      const obj = objects.get(n)!;
      const patched = await this.d.instanceWrites.patch(namespace, n, {
        spec: { templateHash, resources: plan.template.requests },
      });
      this.d.ownWrites?.record(OWN_INSTANCE, patched, owner);
      obj.spec.templateHash = templateHash;
    }
    let publishError: Written['publishError'];
    if (plan.intents) {
      const wanted = new Set<string>();
      for (const { intent, values } of plan.intents) {
        wanted.add(this.d.subjects.intentKey(intent.location, namespace, name));
        try {
          await this.d.intents.put(intent, values);
        } catch (err) {
          // Retrying cannot help: say so on the Workload (once as an event) instead of failing every pass.
          if (!(err instanceof IntentTooLargeError)) throw err;
          publishError = { reason: 'IntentTooLarge', message: err.message };
        }
      }
      for (const key of this.d.intents.keysOf(namespace, name))
        if (!wanted.has(key)) await this.d.intents.delete(key);
    }
    if (publishError) {
      const had = (wl.status as { conditions?: Array<{ reason?: string }> } | undefined)?.conditions?.some(
        (c) => c.reason === publishError.reason,
      );
      if (!had) this.d.events.record(wl, 'Warning', publishError.reason, publishError.message);
    } else for (const n of plan.removeAfterIntents) await this.d.instanceWrites.delete(namespace, n);

    for (const e of plan.events) {
      const subject = e.instance ? objects.get(e.instance) : wl;
      if (subject) this.d.events.record(subject, e.type, e.reason, e.message);
    }

    return { instances: objects, deployments, ...(publishError ? { publishError } : {}) };
  }

  /** Writes the status the plan computed: Instances, WorkloadDeployments, then the Workload. */
  async writeStatus(s: WorkloadSnapshot, plan: WorkloadPlan, written: Written): Promise<void> {
    const { group, workload: wl } = s;
    const namespace = wl.metadata.namespace!;
    const owner = queueKey(group, namespace, wl.metadata.name);
    await eachLimited(plan.instanceStatus, WRITE_CONCURRENCY, async (o) => {
      const obj = written.instances.get(o.name);
      if (obj) await this.writeInstanceStatus(obj, o, plan.status.now, owner);
    });
    for (const [location, dep] of written.deployments) {
      const status = plan.deploymentStatus.get(location);
      const cur = dep.status as { replicas?: number; readyReplicas?: number } | undefined;
      if (!status || (cur?.replicas === status.replicas && cur?.readyReplicas === status.readyReplicas))
        continue;
      await this.d.client
        .patchStatus(DEPLOYMENTS, namespace, dep.metadata.name, status)
        .catch((err) =>
          this.d.log.warn({ deployment: dep.metadata.name, err: apiErrorMessage(err) }, 'status not written'),
        );
    }
    const next = workloadStatus({
      ...plan.status,
      ...(written.publishError ? { publishError: written.publishError } : {}),
    });
    // status.autoscaling is the autoscaler's (coordinator/autoscaling/): a merge patch without it keeps it.
    const { autoscaling: _theAutoscalers, ...current } = wl.status ?? {};
    if (JSON.stringify(next) !== JSON.stringify(current)) {
      const written = await this.d.client.patchStatus<WorkloadObject>(
        { kind: WorkloadKind, group },
        namespace,
        wl.metadata.name,
        next,
      );
      this.d.ownWrites?.record(ownWorkloadKind(group), written, owner);
      this.d.log.debug(
        {
          workload: `${namespace}/${wl.metadata.name}`,
          replicas: next.replicas,
          readyReplicas: next.readyReplicas,
        },
        'workload status written',
      );
    }
  }

  /** Makes the Workload's WorkloadDeployments match `want` (by location); deletes those of other locations. */
  private async syncDeployments(
    { group, workload: wl, deployments: existing }: WorkloadSnapshot,
    want: Map<string, WorkloadDeploymentSpec>,
  ): Promise<Map<string, DeploymentObject>> {
    const namespace = wl.metadata.namespace!;
    const out = new Map<string, DeploymentObject>();
    for (const [location, spec] of want) {
      const have = existing.find((d) => d.spec.location === location);
      if (!have) {
        try {
          out.set(location, await this.d.client.create(DEPLOYMENTS, deploymentObject(wl, group, spec)));
        } catch (err) {
          if (!isConflict(err)) throw err;
          const again = this.d.deployments.get(namespace, deploymentName(wl.metadata.name, location));
          if (again) out.set(location, again);
        }
        continue;
      }
      const same =
        have.spec.replicas === spec.replicas &&
        have.spec.templateHash === spec.templateHash &&
        JSON.stringify((have.spec.revisions ?? []).map((r) => r.templateHash)) ===
          JSON.stringify((spec.revisions ?? []).map((r) => r.templateHash));
      out.set(
        location,
        same ? have : await this.d.client.patch(DEPLOYMENTS, namespace, have.metadata.name, { spec }),
      );
    }
    for (const d of existing) {
      if (!want.has(d.spec.location)) await this.d.client.delete(DEPLOYMENTS, namespace, d.metadata.name);
    }
    return out;
  }

  private async writeInstanceStatus(
    obj: InstanceObject,
    o: ObservedInstance,
    now: string,
    owner: string,
  ): Promise<void> {
    const next = instanceStatus(o, obj.status, now);
    if (JSON.stringify(next) === JSON.stringify(obj.status ?? {})) return;
    const prevPhase = obj.status?.phase;
    try {
      const written = await this.d.instanceWrites.patchStatus(
        obj.metadata.namespace!,
        obj.metadata.name,
        next,
      );
      this.d.ownWrites?.record(OWN_INSTANCE, written, owner);
      this.d.log.debug(
        { instance: `${obj.metadata.namespace}/${obj.metadata.name}`, phase: next.phase, ready: next.ready },
        'instance status written',
      );
    } catch (err) {
      this.d.log.warn(
        { instance: obj.metadata.name, err: apiErrorMessage(err) },
        'instance status not written',
      );
      return;
    }
    if (next.phase !== prevPhase) {
      if (next.phase === 'Running')
        this.d.events.record(
          obj,
          'Normal',
          'Started',
          `running on host ${o.host} (${next.runtime ?? 'runtime'})`,
        );
      if (next.phase === 'Failed')
        this.d.events.record(obj, 'Warning', 'Failed', next.message ?? 'instance failed');
    }
    obj.status = next;
  }
}
