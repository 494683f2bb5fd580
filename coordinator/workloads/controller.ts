/**
 * The Workload controller: a level-triggered reconcile per Workload. Each pass reads the Workload, its
 * Instances and the hosts' reports, asks the placement engine what must change, makes Instances and
 * WorkloadDeployments match, publishes one intent per location, and writes status. Passes are idempotent:
 * a coordinator restart changes nothing that is right.
 */
import { createHash } from 'node:crypto';
import {
  GROUP,
  type InstanceSpec,
  type InstanceStatus,
  InstanceKind,
  type ResourceAmounts,
  type Runtime,
  WORKLOAD_FINALIZER,
  WorkloadDeploymentKind,
  type WorkloadDeploymentSpec,
  WorkloadKind,
  WorkloadSpec,
  type WorkloadStatus,
  VERSION,
  isVmImage,
} from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { type DeploymentIntent, formatIssues, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { instanceLimits, instanceRequests } from '../../shared/resources.js';
import type { HostRegistry } from '../hosts/registry.js';
import type { IntentStore } from '../intents/store.js';
import { apiErrorMessage, isConflict, type KubeClient, type KubeObject } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceCache } from '../kube/informer.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import { type HostInfo, type InstanceInfo, type SchedulePlan, schedule } from '../placement/index.js';
import { instanceStatus, isReady, type ObservedInstance, workloadStatus } from './status.js';

/** Label every Instance carries with its Workload's name (the docs filter on it). */
export const WORKLOAD_LABEL = 'workload';
/** Label with the owning Workload's UID, so a re-created Workload of the same name is told apart. */
export const WORKLOAD_UID_LABEL = 'edgeplane.dev/workload-uid';
/** Label with the instance's location. */
export const LOCATION_LABEL = 'edgeplane.dev/location';

export type WorkloadObject = KubeObject<unknown, WorkloadStatus>;
export type InstanceObject = KubeObject<InstanceSpec & { resources?: ResourceAmounts }, InstanceStatus>;
export type DeploymentObject = KubeObject<WorkloadDeploymentSpec, unknown>;

/** What the controller needs. */
export interface WorkloadControllerDeps {
  client: KubeClient;
  log: Logger;
  events: EventRecorder;
  subjects: Subjects;
  /** Workload caches by API group. */
  workloads: Map<string, ResourceCache<WorkloadObject>>;
  instances: ResourceCache<InstanceObject>;
  deployments: ResourceCache<DeploymentObject>;
  registry: HostRegistry;
  intents: IntentStore;
  /** How long after start hosts that have not reported yet still count as present (default 30 s). */
  warmupMs?: number;
}

const ZERO: ResourceAmounts = { cpuMillis: 0, memoryBytes: 0 };

/** A hash of what the instances run; a change rolls them. */
export function templateHash(template: unknown, limits: ResourceAmounts): string {
  return createHash('sha256').update(JSON.stringify({ template, limits })).digest('hex').slice(0, 10);
}

function resolveMaxUnavailable(value: number | string | undefined, replicas: number): number {
  if (value === undefined) return Math.floor(replicas * 0.25);
  if (typeof value === 'number') return value;
  return Math.floor((replicas * Number.parseInt(value, 10)) / 100);
}

export class WorkloadController {
  readonly queue: WorkQueue;
  private readonly startedAt = Date.now();

  constructor(private readonly d: WorkloadControllerDeps) {
    this.queue = new WorkQueue((key) => this.reconcile(key), { log: d.log, name: 'workloads', workers: 4 });
  }

  static key(group: string, namespace: string, name: string): string {
    return `${group}|${namespace}|${name}`;
  }

  /** Queues every Workload (after a host came, went or changed). */
  enqueueAll(): void {
    for (const [group, cache] of this.d.workloads) {
      for (const w of cache.list()) this.queue.add(WorkloadController.key(group, w.metadata.namespace!, w.metadata.name));
    }
  }

  /** Queues the Workload(s) of that namespace and name, in whichever group they exist. */
  enqueueByName(namespace: string, name: string): void {
    for (const [group, cache] of this.d.workloads) {
      if (cache.get(namespace, name)) this.queue.add(WorkloadController.key(group, namespace, name));
    }
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const [group, namespace, name] = key.split('|') as [string, string, string];
    const wl = this.d.workloads.get(group)?.get(namespace, name);
    if (!wl) return this.cleanupOrphans(namespace, name);
    const uid = wl.metadata.uid!;
    const mine = this.d.instances.list(namespace).filter((i) => i.metadata.labels?.[WORKLOAD_UID_LABEL] === uid);
    if (wl.metadata.deletionTimestamp) return this.finalize(group, wl, mine);

    const ref = { kind: WorkloadKind, group };
    if (!wl.metadata.finalizers?.includes(WORKLOAD_FINALIZER)) {
      await this.d.client.patch(ref, namespace, name, {
        metadata: { finalizers: [...(wl.metadata.finalizers ?? []), WORKLOAD_FINALIZER] },
      });
    }

    const parsed = WorkloadSpec.safeParse(wl.spec);
    let spec: WorkloadSpec | undefined;
    let requests: ResourceAmounts = ZERO;
    let limits: ResourceAmounts = ZERO;
    let invalid: { reason: string; message: string } | undefined;
    if (!parsed.success) {
      invalid = { reason: 'InvalidSpec', message: formatIssues(parsed.error, 'spec') };
    } else {
      spec = parsed.data;
      try {
        requests = instanceRequests(spec.template.spec);
        limits = instanceLimits(spec.template.spec);
      } catch (err) {
        invalid = { reason: 'InvalidSpec', message: `spec.template.spec: ${(err as Error).message}` };
      }
    }
    const now = new Date().toISOString();
    const selector = `${WORKLOAD_LABEL}=${name}`;
    if (!spec || invalid) {
      this.d.events.record(wl, 'Warning', invalid!.reason, invalid!.message);
      await this.writeStatus(ref, wl, {
        desired: typeof (wl.spec as { replicas?: unknown })?.replicas === 'number' ? (wl.spec as { replicas: number }).replicas : 0,
        generation: wl.metadata.generation ?? 0,
        selector,
        instances: [],
        unplaced: 0,
        invalid,
        deleting: false,
        maxUnavailable: 0,
        previous: wl.status,
        now,
      });
      return undefined;
    }

    const tSpec = spec.template.spec;
    const runtime: Runtime = tSpec.image && isVmImage(tSpec.image) ? 'vm' : 'gvisor';
    const hash = templateHash(tSpec, limits);
    const instanceLabels = { ...(spec.template.metadata?.labels ?? {}), [WORKLOAD_LABEL]: name };

    const plan = schedule({
      workload: {
        namespace,
        name,
        replicas: spec.replicas,
        ...(spec.placement ? { placement: spec.placement } : {}),
        instanceLabels,
        resources: requests,
        runtime,
      },
      hosts: this.placementHosts(),
      instances: this.placementInstances(),
    });

    // Instances and WorkloadDeployments.
    const byName = new Map(mine.map((i) => [i.metadata.name, i]));
    const deployments = await this.syncDeployments(wl, group, spec, plan, hash);
    for (const p of plan.place) {
      if (byName.has(p.name)) continue;
      const owner = deployments.get(p.location);
      const obj: InstanceObject = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'Instance',
        metadata: {
          name: p.name,
          namespace,
          labels: { ...instanceLabels, [WORKLOAD_UID_LABEL]: uid, [LOCATION_LABEL]: p.location },
          ...(spec.template.metadata?.annotations ? { annotations: spec.template.metadata.annotations } : {}),
          ...(owner
            ? {
                ownerReferences: [
                  {
                    apiVersion: `${GROUP}/${VERSION}`,
                    kind: 'WorkloadDeployment',
                    name: owner.metadata.name,
                    uid: owner.metadata.uid!,
                    controller: true,
                    blockOwnerDeletion: true,
                  },
                ],
              }
            : {}),
        },
        spec: {
          workloadRef: { name },
          location: p.location,
          host: p.host,
          ordinal: Number(p.name.slice(p.name.lastIndexOf('-') + 1)),
          runtime,
          templateHash: hash,
          resources: requests,
        },
      };
      try {
        const created = await this.d.client.create({ kind: InstanceKind, group: GROUP }, obj);
        byName.set(p.name, created);
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    if (plan.place.length) {
      this.d.events.record(
        wl,
        'Normal',
        'Placed',
        `placed ${plan.place.length} instance(s): ${plan.place.map((p) => `${p.name} on ${p.host}`).join(', ')}`,
      );
    }
    for (const r of plan.remove) {
      await this.d.client.delete({ kind: InstanceKind, group: GROUP }, namespace, r.name);
      byName.delete(r.name);
      this.d.events.record(
        wl,
        'Normal',
        r.reason === 'HostGone' ? 'Rescheduled' : 'ScaledDown',
        r.reason === 'HostGone' ? `instance ${r.name} replaced: its host is lost` : `removed instance ${r.name}`,
      );
    }
    if (plan.unplaced > 0) {
      this.d.events.record(wl, 'Warning', 'Unschedulable', `${plan.unplaced} instance(s) cannot be placed: ${plan.reason ?? ''}`);
    }

    // Template changes reach instances through the intents; an Instance's spec follows them.
    const current = [...plan.keep, ...plan.place];
    for (const p of current) {
      const obj = byName.get(p.name);
      if (obj && obj.spec.templateHash !== hash) {
        await this.d.client.patch({ kind: InstanceKind, group: GROUP }, namespace, p.name, {
          spec: { templateHash: hash, resources: requests },
        });
        obj.spec.templateHash = hash;
      }
    }

    await this.publishIntents(wl, spec, plan, hash, limits, instanceLabels);

    // Status: Instances first, then the Workload.
    const observed: ObservedInstance[] = [];
    for (const p of current) {
      const entry = this.d.registry.get(p.host);
      const o: ObservedInstance = {
        name: p.name,
        location: p.location,
        host: p.host,
        templateHash: hash,
        ...(entry ? { hostState: entry.state, reported: entry.instances.get(`${namespace}/${p.name}`) } : {}),
      };
      if (o.reported === undefined) delete o.reported;
      observed.push(o);
      const obj = byName.get(p.name);
      if (obj) await this.writeInstanceStatus(obj, o, now);
    }
    for (const [location, dep] of deployments) {
      const here = observed.filter((o) => o.location === location);
      const status = { replicas: here.length, readyReplicas: here.filter(isReady).length };
      const cur = dep.status as { replicas?: number; readyReplicas?: number } | undefined;
      if (cur?.replicas !== status.replicas || cur?.readyReplicas !== status.readyReplicas) {
        await this.d.client
          .patchStatus({ kind: WorkloadDeploymentKind, group: GROUP }, namespace, dep.metadata.name, status)
          .catch((err) => this.d.log.warn({ deployment: dep.metadata.name, err: apiErrorMessage(err) }, 'status not written'));
      }
    }
    const strategy = spec.strategy?.rollingUpdate;
    await this.writeStatus(ref, wl, {
      desired: spec.replicas,
      generation: wl.metadata.generation ?? 0,
      selector,
      instances: observed,
      unplaced: plan.unplaced,
      ...(plan.reason ? { unschedulableReason: plan.reason } : {}),
      deleting: false,
      maxUnavailable: resolveMaxUnavailable(strategy?.maxUnavailable, spec.replicas),
      previous: wl.status,
      now,
    });
    // Unplaced replicas may fit later; hosts arriving also requeue everything.
    return plan.unplaced > 0 ? { requeueAfterMs: 10_000 } : undefined;
  }

  /** Hosts as the placement engine sees them, with allocation from every Instance object. */
  private placementHosts(): HostInfo[] {
    const allocated = new Map<string, ResourceAmounts>();
    const referenced = new Set<string>();
    for (const i of this.d.instances.list()) {
      const a = allocated.get(i.spec.host) ?? { cpuMillis: 0, memoryBytes: 0 };
      a.cpuMillis += i.spec.resources?.cpuMillis ?? 0;
      a.memoryBytes += i.spec.resources?.memoryBytes ?? 0;
      allocated.set(i.spec.host, a);
      referenced.add(i.spec.host);
    }
    const hosts: HostInfo[] = [];
    for (const e of this.d.registry.all()) {
      if (e.state === 'Lost') continue;
      referenced.delete(e.report.host);
      hosts.push({
        name: e.report.host,
        location: e.report.location,
        labels: e.report.labels,
        capacity: e.report.allocatable,
        allocated: allocated.get(e.report.host) ?? { ...ZERO },
        runtimes: e.report.runtimes,
        ready: e.state === 'Ready',
      });
    }
    // Right after a coordinator restart, hosts that have not reported yet are not lost: keep their instances.
    if (Date.now() - this.startedAt < (this.d.warmupMs ?? 30_000)) {
      for (const host of referenced) {
        const any = this.d.instances.list().find((i) => i.spec.host === host)!;
        hosts.push({
          name: host,
          location: any.spec.location,
          labels: {},
          capacity: { ...ZERO },
          allocated: allocated.get(host) ?? { ...ZERO },
          runtimes: [],
          ready: false,
        });
      }
    }
    return hosts;
  }

  private placementInstances(): InstanceInfo[] {
    return this.d.instances.list().map((i) => ({
      name: i.metadata.name,
      namespace: i.metadata.namespace!,
      workload: `${i.metadata.namespace}/${i.spec.workloadRef.name}`,
      host: i.spec.host,
      location: i.spec.location,
      labels: i.metadata.labels ?? {},
      resources: i.spec.resources ?? { ...ZERO },
    }));
  }

  private async syncDeployments(
    wl: WorkloadObject,
    group: string,
    spec: WorkloadSpec,
    plan: SchedulePlan,
    hash: string,
  ): Promise<Map<string, DeploymentObject>> {
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const ref = { kind: WorkloadDeploymentKind, group: GROUP };
    const existing = this.d.deployments
      .list(namespace)
      .filter((d) => d.metadata.labels?.[WORKLOAD_UID_LABEL] === wl.metadata.uid);
    const out = new Map<string, DeploymentObject>();
    for (const [location, placed] of Object.entries(plan.byLocation)) {
      if (!placed.length) continue;
      const want: WorkloadDeploymentSpec = {
        workloadRef: { name, uid: wl.metadata.uid! },
        location,
        replicas: placed.length,
        template: spec.template,
        templateHash: hash,
      };
      const have = existing.find((d) => d.spec.location === location);
      if (!have) {
        const obj: DeploymentObject = {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'WorkloadDeployment',
          metadata: {
            name: `${name}-${location}`,
            namespace,
            labels: { [WORKLOAD_LABEL]: name, [WORKLOAD_UID_LABEL]: wl.metadata.uid!, [LOCATION_LABEL]: location },
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
          spec: want,
        };
        try {
          out.set(location, await this.d.client.create(ref, obj));
        } catch (err) {
          if (!isConflict(err)) throw err;
          const again = this.d.deployments.get(namespace, `${name}-${location}`);
          if (again) out.set(location, again);
        }
      } else {
        if (have.spec.replicas !== want.replicas || have.spec.templateHash !== hash) {
          await this.d.client.patch(ref, namespace, have.metadata.name, { spec: want });
        }
        out.set(location, have);
      }
    }
    for (const d of existing) {
      if (!plan.byLocation[d.spec.location]?.length) await this.d.client.delete(ref, namespace, d.metadata.name);
    }
    return out;
  }

  private async publishIntents(
    wl: WorkloadObject,
    spec: WorkloadSpec,
    plan: SchedulePlan,
    hash: string,
    limits: ResourceAmounts,
    labels: Record<string, string>,
  ): Promise<void> {
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const wanted = new Set<string>();
    for (const [location, placed] of Object.entries(plan.byLocation)) {
      if (!placed.length) continue;
      wanted.add(this.d.subjects.intentKey(location, namespace, name));
      const intent: DeploymentIntent = {
        v: MESSAGE_VERSION,
        location,
        namespace,
        workload: name,
        workloadUid: wl.metadata.uid!,
        templateHash: hash,
        template: spec.template.spec,
        limits,
        instances: [...placed]
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((p) => ({ name: p.name, host: p.host, ordinal: Number(p.name.slice(p.name.lastIndexOf('-') + 1)), labels })),
        updatedAt: new Date().toISOString(),
      };
      await this.d.intents.put(intent);
    }
    for (const key of this.d.intents.keysOf(namespace, name)) if (!wanted.has(key)) await this.d.intents.delete(key);
  }

  private async writeInstanceStatus(obj: InstanceObject, o: ObservedInstance, now: string): Promise<void> {
    const next = instanceStatus(o, obj.status, now);
    if (JSON.stringify(next) === JSON.stringify(obj.status ?? {})) return;
    const prevPhase = obj.status?.phase;
    try {
      await this.d.client.patchStatus({ kind: InstanceKind, group: GROUP }, obj.metadata.namespace, obj.metadata.name, next);
    } catch (err) {
      this.d.log.warn({ instance: obj.metadata.name, err: apiErrorMessage(err) }, 'instance status not written');
      return;
    }
    if (next.phase !== prevPhase) {
      if (next.phase === 'Running') this.d.events.record(obj, 'Normal', 'Started', `running on host ${o.host} (${next.runtime ?? 'runtime'})`);
      if (next.phase === 'Failed') this.d.events.record(obj, 'Warning', 'Failed', next.message ?? 'instance failed');
    }
    obj.status = next;
  }

  private async writeStatus(
    ref: { kind: typeof WorkloadKind; group: string },
    wl: WorkloadObject,
    input: Parameters<typeof workloadStatus>[0],
  ): Promise<void> {
    const next = workloadStatus(input);
    if (JSON.stringify(next) === JSON.stringify(wl.status ?? {})) return;
    await this.d.client.patchStatus(ref, wl.metadata.namespace, wl.metadata.name, next);
  }

  /** Deletion: withdraw the intents, wait until the hosts no longer run the instances, then let go. */
  private async finalize(group: string, wl: WorkloadObject, mine: InstanceObject[]): Promise<ReconcileResult | undefined> {
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const ref = { kind: WorkloadKind, group };
    if (!wl.metadata.finalizers?.includes(WORKLOAD_FINALIZER)) return undefined;
    for (const key of this.d.intents.keysOf(namespace, name)) await this.d.intents.delete(key);
    const stillRunning = mine.filter((i) => {
      const entry = this.d.registry.get(i.spec.host);
      return entry && entry.state !== 'Lost' && entry.instances.has(`${namespace}/${i.metadata.name}`);
    });
    if (wl.status?.phase !== 'Deleting') {
      await this.d.client
        .patchStatus(ref, namespace, name, { phase: 'Deleting' })
        .catch((err) => this.d.log.debug({ err: apiErrorMessage(err) }, 'status not written during deletion'));
      this.d.events.record(wl, 'Normal', 'Deleting', `stopping ${mine.length} instance(s)`);
    }
    if (stillRunning.length) {
      this.d.log.info({ workload: `${namespace}/${name}`, waitingFor: stillRunning.length }, 'waiting for instances to stop');
      return { requeueAfterMs: 1000 };
    }
    for (const i of mine) await this.d.client.delete({ kind: InstanceKind, group: GROUP }, namespace, i.metadata.name);
    for (const dep of this.d.deployments.list(namespace)) {
      if (dep.metadata.labels?.[WORKLOAD_UID_LABEL] === wl.metadata.uid) {
        await this.d.client.delete({ kind: WorkloadDeploymentKind, group: GROUP }, namespace, dep.metadata.name);
      }
    }
    await this.d.client.patch(ref, namespace, name, {
      metadata: { finalizers: (wl.metadata.finalizers ?? []).filter((f) => f !== WORKLOAD_FINALIZER) },
    });
    this.d.log.info({ workload: `${namespace}/${name}` }, 'workload deleted; every instance stopped');
    return undefined;
  }

  /** A Workload that vanished without our finalizer running: remove whatever it left. */
  private async cleanupOrphans(namespace: string, name: string): Promise<undefined> {
    if (this.d.workloads.size && [...this.d.workloads.values()].some((c) => c.get(namespace, name))) return undefined;
    for (const key of this.d.intents.keysOf(namespace, name)) await this.d.intents.delete(key);
    for (const i of this.d.instances.list(namespace)) {
      if (i.spec.workloadRef.name === name) await this.d.client.delete({ kind: InstanceKind, group: GROUP }, namespace, i.metadata.name);
    }
    for (const dep of this.d.deployments.list(namespace)) {
      if (dep.spec.workloadRef.name === name) {
        await this.d.client.delete({ kind: WorkloadDeploymentKind, group: GROUP }, namespace, dep.metadata.name);
      }
    }
    return undefined;
  }
}
