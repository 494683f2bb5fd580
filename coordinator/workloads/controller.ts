/**
 * The Workload controller: a level-triggered reconcile per Workload, after the Kubernetes deployment
 * controller. This file holds the work queue, the event handlers that decide which Workloads to queue, and a
 * pass that reads: validate → plan → apply → status. The steps live in their own modules (see
 * README.md). Passes are idempotent: a coordinator restart changes nothing that is right.
 */
import { WorkloadSpec } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { instanceLimits } from '../../shared/resources.js';
import type { AllocationIndex } from '../hosts/allocation.js';
import type { HostEntry, HostRegistry } from '../hosts/registry.js';
import type { IntentStore } from '../intents/store.js';
import type { KubeClient } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceCache } from '../kube/informer.js';
import { LabelIndex } from '../kube/label-index.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import { DEFAULT_UNDERLAY_MTU, type NetworkSettings } from '../networks/config.js';
import type { SegmentPublisher } from '../networks/segment-publisher.js';
import type { IpamStore } from '../networks/store.js';
import { readsOtherInstances } from '../placement/scope.js';
import {
  type Admission,
  add,
  admitReplicas,
  type QuotaAmounts,
  type QuotaView,
  ZERO,
} from '../quota/admit.js';
import { amountsOf, maxOf, usageByWorkload } from '../quota/usage.js';
import { claimAddresses } from './addresses.js';
import { WorkloadFinalizer } from './finalize.js';
import { InstanceIndex } from './instance-index.js';
import { addressPlan, segmentMembers, withInterfaces } from './interfaces.js';
import { parseQueueKey, queueKey } from './naming.js';
import { SURGE_LABEL, WORKLOAD_UID_LABEL } from './objects.js';
import type { OwnWrites } from './own-writes.js';
import { placementHosts, placementInstances } from './placement-input.js';
import { planBlocked, planWorkload } from './planner.js';
import { NO_LOOKUP, type ReferenceLookup, resolveReferences } from './references.js';
import type {
  CoreDataObject,
  DeploymentObject,
  InstanceCache,
  InstanceObject,
  InstanceWrites,
  NetworkObject,
  ValidWorkload,
  WorkloadObject,
  WorkloadSnapshot,
} from './types.js';
import { conflictingGroup, validateWorkload } from './validate.js';
import { WorkloadWriter } from './writes.js';

/** What the controller needs. */
export interface WorkloadControllerDeps {
  /** The API server. */
  client: KubeClient;
  /** Logger. */
  log: Logger;
  /** Events on Workloads and Instances. */
  events: EventRecorder;
  /** Intent keys. */
  subjects: Subjects;
  /** Workload caches by API group. */
  workloads: Map<string, ResourceCache<WorkloadObject>>;
  /** Instances of every Workload. */
  instances: InstanceCache;
  /** Where Instances are written: etcd (CRD) or the coordinator's aggregated API (coordinator/apiserver/). */
  instanceWrites: InstanceWrites;
  /** WorkloadDeployments of every Workload. */
  deployments: ResourceCache<DeploymentObject>;
  /** What hosts report. */
  registry: HostRegistry;
  /** What the Instances hold on each host (shared with the host sync). */
  allocation: AllocationIndex;
  /** The intents bucket. */
  intents: IntentStore;
  /** Secrets the templates reference. */
  secrets: ResourceCache<CoreDataObject>;
  /** ConfigMaps the templates reference. */
  configMaps: ResourceCache<CoreDataObject>;
  /** Networks the templates reference. */
  networks: ResourceCache<NetworkObject>;
  /** How long after start hosts that have not reported yet still count as present (default 30 s). */
  warmupMs?: number;
  /** Installation-wide network settings (the underlay MTU); default: an underlay MTU of 1500. */
  networkSettings?: NetworkSettings;
  /** The IPAM claims; absent: interfaces get no addresses (instances with attachments are not created). */
  ipam?: IpamStore;
  /** The segments bucket: which hosts each Network spans. */
  segments?: SegmentPublisher;
  /** Place attached instances only on hosts with an overlay address (default true). */
  requireOverlay?: boolean;
  /** The controller's own writes, whose informer echoes queue no pass (own-writes.ts). */
  ownWrites?: OwnWrites;
  /** ResourceQuotas of every namespace; absent: quotas are not enforced. */
  quotas?: ResourceCache<QuotaObject>;
}

/** A ResourceQuota as the informer delivers it. */
export interface QuotaObject {
  /** Name and namespace. */
  metadata: { name?: string; namespace?: string };
  /** Its hard limits. */
  spec?: { hard?: Record<string, string | number> };
}

export class WorkloadController {
  readonly queue: WorkQueue;
  /** Start on the monotonic clock: a wall-clock step must not shorten (or stretch) the warm-up. */
  private readonly startedAt = performance.now();
  private readonly writer: WorkloadWriter;
  private readonly finalizer: WorkloadFinalizer;
  /**
   * What each Workload (by UID) was last admitted under quota: counted for it until its Instances show it, so
   * that two Workloads of a namespace planned at once cannot both take the same room.
   */
  private readonly admitted = new Map<string, Map<string, QuotaAmounts>>();
  /** The Instances of each Workload and the Workloads on each host, kept in step with the Instance cache. */
  private readonly index: InstanceIndex;
  /** The WorkloadDeployments of each Workload (by its UID label). */
  private readonly deploymentsByUid: LabelIndex<DeploymentObject>;
  /** Workloads (by UID) whose instances carry required anti-affinity: every placement must see those. */
  private readonly guarding = new Map<string, WorkloadObject>();
  /** Keys whose last pass left replicas unplaced: a host that becomes Ready may take them. */
  private readonly unplaced = new Set<string>();

  constructor(private readonly d: WorkloadControllerDeps) {
    this.index = new InstanceIndex(d.instances);
    this.deploymentsByUid = new LabelIndex(WORKLOAD_UID_LABEL, d.deployments);
    for (const cache of d.workloads.values())
      cache.onChange((w, event) => {
        const uid = w.metadata.uid;
        if (!uid) return;
        const terms = (w.spec as Partial<WorkloadSpec> | undefined)?.placement?.affinity?.podAntiAffinity
          ?.requiredDuringSchedulingIgnoredDuringExecution;
        if (event !== 'delete' && terms?.length) this.guarding.set(uid, w);
        else this.guarding.delete(uid);
      });
    // A deleted Instance frees capacity that Workloads waiting for room may take.
    d.instances.onChange((_i, event) => {
      if (event === 'delete') this.enqueueUnplaced();
    });
    // Two passes a second per Workload when events keep coming (a burst of instance reports becomes one status
    // write), but the first three run at once: an apply's pass and its host's first reports (Starting, then
    // Running) are not each held back for an interval.
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      log: d.log,
      name: 'workloads',
      workers: 4,
      minIntervalMs: 500,
      burst: 3,
    });
    this.writer = new WorkloadWriter(d);
    const ipam = d.ipam;
    this.finalizer = new WorkloadFinalizer({
      ...d,
      hosts: d.registry,
      ...(ipam ? { releaseAddresses: (w: string) => ipam.releaseUnwanted(w, new Set()) } : {}),
    });
  }

  /** Queues a Workload that changed. */
  enqueue(group: string, namespace: string, name: string): void {
    this.queue.add(queueKey(group, namespace, name));
  }

  /** Queues every Workload (after a host came, went or changed state). */
  enqueueAll(): void {
    for (const [group, cache] of this.d.workloads) {
      for (const w of cache.list()) this.enqueue(group, w.metadata.namespace!, w.metadata.name);
    }
  }

  /** Queues the Workload(s) of that namespace and name, in whichever group they exist. */
  enqueueByName(namespace: string, name: string): void {
    for (const [group, cache] of this.d.workloads) {
      if (cache.get(namespace, name)) this.enqueue(group, namespace, name);
    }
  }

  /** Queues the Workloads of a namespace that reference a Secret, ConfigMap or Network of that name. */
  enqueueReferencing(namespace: string, kind: 'secret' | 'configMap' | 'network', refName: string): void {
    for (const [group, cache] of this.d.workloads) {
      for (const w of cache.list(namespace)) {
        const parsed = WorkloadSpec.safeParse(w.spec);
        if (!parsed.success) continue;
        const refs = resolveReferences(parsed.data, NO_LOOKUP).referenced;
        const set = kind === 'secret' ? refs.secrets : kind === 'configMap' ? refs.configMaps : refs.networks;
        if (set.has(refName)) this.enqueue(group, namespace, w.metadata.name);
      }
    }
  }

  /**
   * A host reported a change of its instances: queues the Workloads it reports instances of, and those with
   * Instances placed on it (an instance it no longer reports changes their status too).
   */
  enqueueForHostReport(entry: HostEntry): void {
    const names = new Set<string>();
    for (const r of entry.report.instances) names.add(`${r.namespace}|${r.workload}`);
    for (const [namespace, name] of this.index.workloadsOn(entry.report.host))
      names.add(`${namespace}|${name}`);
    for (const n of names) {
      const [namespace, name] = n.split('|') as [string, string];
      this.enqueueByName(namespace, name);
    }
  }

  /**
   * A host changed state: the Workloads with instances on it (replaced when it is Lost, Unknown while it is
   * Disconnected, reported again when it is back) and, when it is Ready (new or back), those waiting for room.
   * No other Workload's plan depends on one host's state (placement never moves a kept instance), so a lost host
   * at 10,000 Workloads costs the passes of its own few, not a pass of every Workload.
   */
  enqueueForHostState(entry: HostEntry): void {
    this.enqueueForHostReport(entry);
    if (entry.state === 'Ready') this.enqueueUnplaced();
  }

  /** Queues the Workloads whose last pass left replicas unplaced. */
  enqueueUnplaced(): void {
    for (const key of this.unplaced) this.queue.add(key);
  }

  /** One pass over one Workload: validate → plan → apply → status. */
  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const { group, namespace, name } = parseQueueKey(key);
    const wl = this.d.workloads.get(group)?.get(namespace, name);
    if (!wl || wl.metadata.deletionTimestamp) {
      this.d.segments?.setMembers(key, []);
    }
    if (!wl || wl.metadata.deletionTimestamp) this.unplaced.delete(key);
    if (!wl) {
      if ([...this.d.workloads.values()].some((c) => c.get(namespace, name))) return undefined;
      return this.finalizer.cleanupOrphans(namespace, name);
    }
    const mine = wl.metadata.uid
      ? this.index.ofWorkload(wl.metadata.uid).filter((i) => i.metadata.namespace === namespace)
      : [];
    const conflict = this.conflictOf(group, wl);
    if (wl.metadata.deletionTimestamp) return this.finalizer.finalize(group, wl, mine, !conflict);
    // The previous pass's writes not back in the caches yet (normally a matter of milliseconds): planning now
    // would create its Instances again or write the same status twice (own-writes.ts, at most PENDING_MS).
    if (this.d.ownWrites?.pending(key)) {
      this.d.log.debug({ key }, 'pass waits for its own writes to reach the caches');
      return { requeueAfterMs: 20, skipped: true };
    }
    await this.writer.ensureFinalizer(group, wl);

    const lookup = this.lookup(namespace);
    const checked = validateWorkload({
      workload: wl,
      conflict,
      lookup,
      ...(this.d.networkSettings ? { networkSettings: this.d.networkSettings } : {}),
    });
    const quota = 'valid' in checked ? this.admitUnderQuota(wl, mine, checked.valid) : undefined;
    const valid = 'valid' in checked ? checked.valid : undefined;
    const snapshot = this.snapshot(group, wl, mine, lookup, valid, quota !== undefined);
    if (quota) snapshot.quota = quota;
    let plan =
      'valid' in checked ? planWorkload(snapshot, checked.valid) : planBlocked(snapshot, checked.blocked);
    if ('valid' in checked) {
      const ap = addressPlan(
        plan,
        namespace,
        name,
        lookup.network,
        this.d.networkSettings ?? { underlayMtu: DEFAULT_UNDERLAY_MTU },
        checked.valid.spec.networkRef,
      );
      const answers = this.d.ipam ? await claimAddresses(this.d.ipam, namespace, name, ap) : new Map();
      plan = withInterfaces(plan, ap, answers, namespace);
      this.d.segments?.setMembers(key, segmentMembers(plan, namespace));
    }
    if (plan.status.unplaced > 0) this.unplaced.add(key);
    else this.unplaced.delete(key);
    const written = await this.writer.apply(snapshot, plan);
    await this.writer.writeStatus(snapshot, plan, written);
    return plan.requeueAfterMs ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
  }

  /** What a pass reads, from the caches. Placement input only when there is something to place. */
  private snapshot(
    group: string,
    wl: WorkloadObject,
    mine: InstanceObject[],
    lookup: ReferenceLookup,
    valid: ValidWorkload | undefined,
    quotaLimited = false,
  ): WorkloadSnapshot {
    return {
      group,
      workload: wl,
      instances: mine,
      deployments: wl.metadata.uid
        ? this.deploymentsByUid
            .get(wl.metadata.uid)
            .filter((d) => d.metadata.namespace === wl.metadata.namespace)
        : [],
      placement: valid ? this.placementInput(wl, valid, quotaLimited) : { hosts: [], instances: [] },
      hosts: this.d.registry,
      lookup,
      now: new Date().toISOString(),
    };
  }

  /** Queues every Workload of a namespace (a ResourceQuota there changed). */
  enqueueNamespace(namespace: string): void {
    for (const [group, cache] of this.d.workloads)
      for (const w of cache.list(namespace)) this.enqueue(group, namespace, w.metadata.name);
  }

  /**
   * The namespace's ResourceQuotas' verdict on this Workload's replicas (coordinator/quota/admit.ts). Usage of the
   * other Workloads: their Instances, or what they were last admitted if more (not yet created). Recorded at once,
   * before any await, for the next Workload's pass.
   */
  private admitUnderQuota(
    wl: WorkloadObject,
    mine: InstanceObject[],
    valid: ValidWorkload,
  ): Admission | undefined {
    const namespace = wl.metadata.namespace!;
    const uid = wl.metadata.uid!;
    const quotas: QuotaView[] = (this.d.quotas?.list(namespace) ?? []).map((q) => ({
      name: q.metadata.name ?? '',
      hard: q.spec?.hard ?? {},
    }));
    const admitted = this.admitted.get(namespace) ?? new Map<string, QuotaAmounts>();
    this.admitted.set(namespace, admitted);
    if (!quotas.length) {
      admitted.delete(uid);
      return undefined;
    }
    const workloads = [...this.d.workloads.values()].flatMap((c) => c.list(namespace));
    const limits = new Map<string, ReturnType<typeof instanceLimits> | undefined>();
    for (const w of workloads) {
      const parsed = WorkloadSpec.safeParse(w.spec);
      let l: ReturnType<typeof instanceLimits> | undefined;
      try {
        l = parsed.success ? instanceLimits(parsed.data.template.spec) : undefined;
      } catch {
        l = undefined;
      }
      limits.set(w.metadata.uid!, l);
    }
    const usage = usageByWorkload(this.d.instances.list(namespace), (u) => limits.get(u));
    let usedByOthers: QuotaAmounts = ZERO;
    // A Workload gone from the caches counts only by what its Instances still hold.
    for (const u of admitted.keys()) if (!limits.has(u)) admitted.delete(u);
    for (const u of new Set([...usage.keys(), ...admitted.keys()])) {
      if (u === uid) continue;
      const seen = usage.get(u) ?? { replicas: ZERO, surge: ZERO };
      usedByOthers = add(usedByOthers, add(maxOf(seen.replicas, admitted.get(u) ?? ZERO), seen.surge));
    }
    const perInstance = amountsOf(valid.requests, valid.limits);
    const admission = admitReplicas({
      quotas,
      usedByOthers,
      usedBySurge: usage.get(uid)?.surge ?? ZERO,
      perInstance,
      wanted: valid.spec.replicas,
      placed: mine.filter((i) => i.metadata.labels?.[SURGE_LABEL] !== 'true').length,
    });
    admitted.set(uid, add(ZERO, perInstance, admission.allowed));
    return admission;
  }

  /**
   * The hosts and instances placement reads for one Workload, without building the whole fleet when the plan
   * cannot depend on it (placement/scope.ts): a Workload whose rules read no other Workload's instances gets its
   * own and those carrying anti-affinity; one whose replicas are exactly its instances, all on listed hosts, gets
   * only those hosts (placement keeps them all and places nothing, whatever else is listed). At 10,000 hosts and
   * 100,000 instances, building both for every pass made the passes of 10,000 Workloads quadratic.
   */
  private placementInput(
    wl: WorkloadObject,
    valid: ValidWorkload,
    quotaLimited: boolean,
  ): WorkloadSnapshot['placement'] {
    const namespace = wl.metadata.namespace!;
    const warmingUp = performance.now() - this.startedAt < (this.d.warmupMs ?? 30_000);
    const requireOverlay = this.d.requireOverlay !== false;
    const allWorkloads = () => [...this.d.workloads.values()].flatMap((c) => c.list());
    if (readsOtherInstances(valid.spec.placement))
      return {
        hosts: placementHosts(this.d.registry.all(), this.d.allocation.all(), warmingUp, requireOverlay),
        instances: placementInstances(this.d.instances.list(), allWorkloads()),
      };
    const named = this.index.ofWorkloadNamed(namespace, wl.metadata.name);
    const objs = new Map(named.map((i) => [`${i.metadata.namespace}/${i.metadata.name}`, i]));
    for (const g of this.guarding.values())
      for (const i of this.index.ofWorkload(g.metadata.uid!))
        objs.set(`${i.metadata.namespace}/${i.metadata.name}`, i);
    const instances = placementInstances([...objs.values()], [...this.guarding.values(), wl]);
    const replicas = named.filter((i) => i.metadata.labels?.[SURGE_LABEL] !== 'true');
    const entries = replicas.map((i) => this.d.registry.get(i.spec.host));
    // Under a ResourceQuota the plan may keep fewer than are placed: every host then, as before.
    const allKept =
      !warmingUp &&
      !quotaLimited &&
      replicas.length === valid.spec.replicas &&
      entries.every((e) => e !== undefined && e.state !== 'Lost');
    const hosts = allKept
      ? placementHosts(new Set(entries as HostEntry[]), this.d.allocation.all(), false, requireOverlay)
      : placementHosts(this.d.registry.all(), this.d.allocation.all(), warmingUp, requireOverlay);
    return { hosts, instances };
  }

  /** The API group whose same-named Workload owns this one's instance names, when another one does. */
  private conflictOf(group: string, wl: WorkloadObject): string | undefined {
    const sameNamed: Array<{ group: string; workload: WorkloadObject }> = [];
    for (const [g, cache] of this.d.workloads) {
      const other = g === group ? undefined : cache.get(wl.metadata.namespace, wl.metadata.name);
      if (other) sameNamed.push({ group: g, workload: other });
    }
    return conflictingGroup(group, wl, sameNamed);
  }

  /** Lookups of the namespace's Secrets, ConfigMaps and Networks, from the informer caches. */
  private lookup(namespace: string): ReferenceLookup {
    return {
      secret: (n) => {
        const s = this.d.secrets.get(namespace, n);
        return s ? { data: s.data ?? {}, ...(s.type ? { type: s.type } : {}) } : undefined;
      },
      configMap: (n) => {
        const c = this.d.configMaps.get(namespace, n);
        if (!c) return undefined;
        const out: Record<string, string> = { ...(c.binaryData ?? {}) };
        for (const [k, v] of Object.entries(c.data ?? {})) out[k] = Buffer.from(v, 'utf8').toString('base64');
        return out;
      },
      network: (n) => {
        const net = this.d.networks.get(namespace, n);
        return net ? (net.spec ?? {}) : undefined;
      },
    };
  }
}
