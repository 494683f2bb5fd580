/**
 * The Workload controller: a level-triggered reconcile per Workload. Each pass reads the Workload, its
 * Instances and the hosts' reports, asks the placement engine what must change, makes Instances and
 * WorkloadDeployments match, publishes one intent per location, and writes status. Passes are idempotent:
 * a coordinator restart changes nothing that is right.
 */
import {
  GROUP,
  InstanceKind,
  type InstanceSpec,
  type InstanceStatus,
  type InstanceTemplate,
  type NetworkSpec,
  type ResourceAmounts,
  type Runtime,
  runtimeOf,
  UnknownImageError,
  VERSION,
  WORKLOAD_FINALIZER,
  WORKLOAD_GROUPS,
  WorkloadDeploymentKind,
  type WorkloadDeploymentSpec,
  WorkloadKind,
  WorkloadSpec,
  type WorkloadStatus,
} from '../../shared/api/index.js';
import type { PodAffinityTerm } from '../../shared/api/placement.js';
import type { Logger } from '../../shared/log.js';
import {
  type DeploymentIntent,
  formatIssues,
  MESSAGE_VERSION,
  type ResolvedValues,
} from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { instanceLimits, instanceRequests } from '../../shared/resources.js';
import { templateHash } from '../../shared/template-hash.js';
import type { HostRegistry } from '../hosts/registry.js';
import type { IntentStore } from '../intents/store.js';
import { apiErrorMessage, isConflict, type KubeClient, type KubeObject } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceCache } from '../kube/informer.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import { type HostInfo, type InstanceInfo, schedule } from '../placement/index.js';
import {
  instanceObject,
  LOCATION_LABEL,
  SURGE_LABEL,
  WORKLOAD_LABEL,
  WORKLOAD_UID_LABEL,
} from './objects.js';
import { NO_LOOKUP, type ReferenceLookup, resolveReferences } from './references.js';
import { planRollout, resolveIntOrPercent } from './rollout.js';
import { instanceStatus, isReady, type ObservedInstance, workloadStatus } from './status.js';

export { LOCATION_LABEL, SURGE_LABEL, WORKLOAD_LABEL, WORKLOAD_UID_LABEL } from './objects.js';

/** Surge instances count as a Workload of their own for the placement engine, which must not count or remove them. */
const SURGE_SUFFIX = '#surge';

/** The ordinal at the end of an instance name (`web-app-us-central1-a-2` → 2). */
function ordinalOf(instance: string): number {
  return Number(instance.slice(instance.lastIndexOf('-') + 1));
}

export type WorkloadObject = KubeObject<unknown, WorkloadStatus>;
export type InstanceObject = KubeObject<InstanceSpec & { resources?: ResourceAmounts }, InstanceStatus>;
export type DeploymentObject = KubeObject<WorkloadDeploymentSpec, unknown>;
/** A Secret or ConfigMap as the informer delivers it (data base64 for Secrets, text for ConfigMaps). */
export interface CoreDataObject {
  metadata: { name?: string; namespace?: string };
  type?: string;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}
export type NetworkObject = KubeObject<NetworkSpec | undefined, unknown>;

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
  /** Secrets, ConfigMaps and Networks the templates reference. */
  secrets: ResourceCache<CoreDataObject>;
  configMaps: ResourceCache<CoreDataObject>;
  networks: ResourceCache<NetworkObject>;
  /** How long after start hosts that have not reported yet still count as present (default 30 s). */
  warmupMs?: number;
}

const ZERO: ResourceAmounts = { cpuMillis: 0, memoryBytes: 0 };

/** Every port of a template, in either form. */
function allPorts(t: WorkloadSpec['template']['spec']): Array<{ hostPort?: number | undefined }> {
  return [...(t.ports ?? []), ...(t.containers ?? []).flatMap((c) => c.ports ?? [])];
}

export class WorkloadController {
  readonly queue: WorkQueue;
  private readonly startedAt = Date.now();

  constructor(private readonly d: WorkloadControllerDeps) {
    // At most two passes a second per Workload: a burst of instance reports becomes one status write.
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      log: d.log,
      name: 'workloads',
      workers: 4,
      minIntervalMs: 500,
    });
  }

  static key(group: string, namespace: string, name: string): string {
    return `${group}|${namespace}|${name}`;
  }

  /** Queues every Workload (after a host came, went or changed). */
  enqueueAll(): void {
    for (const [group, cache] of this.d.workloads) {
      for (const w of cache.list())
        this.queue.add(WorkloadController.key(group, w.metadata.namespace!, w.metadata.name));
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
    const mine = this.d.instances
      .list(namespace)
      .filter((i) => i.metadata.labels?.[WORKLOAD_UID_LABEL] === uid);
    if (wl.metadata.deletionTimestamp) return this.finalize(group, wl, mine);

    const ref = { kind: WorkloadKind, group };
    if (!wl.metadata.finalizers?.includes(WORKLOAD_FINALIZER)) {
      await this.d.client.patch(ref, namespace, name, {
        metadata: { finalizers: [...(wl.metadata.finalizers ?? []), WORKLOAD_FINALIZER] },
      });
    }

    const now = new Date().toISOString();
    const selector = `${WORKLOAD_LABEL}=${name}`;
    const blocked = (reason: string, message: string, warning: boolean) => {
      if (warning) this.d.events.record(wl, 'Warning', reason, message);
      const desired = (wl.spec as { replicas?: unknown })?.replicas;
      return this.writeStatus(ref, wl, {
        desired: typeof desired === 'number' ? desired : 0,
        generation: wl.metadata.generation ?? 0,
        selector,
        // What runs keeps running (as a kubelet keeps pods whose Secret vanished); it is only not changed.
        instances: mine.map((i) =>
          this.observe(namespace, i.metadata.name, i.spec.location, i.spec.host, i.spec.templateHash ?? ''),
        ),
        unplaced: 0,
        invalid: { reason, message },
        deleting: false,
        maxUnavailable: 0,
        previous: wl.status,
        now,
      });
    };

    const conflict = this.nameConflict(group, wl);
    if (conflict) {
      await blocked(
        'NameConflict',
        `a Workload ${name} in API group ${conflict} already owns the instance names ${name}-*; rename this one or delete that one`,
        true,
      );
      return undefined;
    }

    const parsed = WorkloadSpec.safeParse(wl.spec);
    let spec: WorkloadSpec | undefined;
    let requests: ResourceAmounts = ZERO;
    let limits: ResourceAmounts = ZERO;
    let runtime: Runtime = 'gvisor';
    let invalid: string | undefined;
    if (!parsed.success) {
      invalid = formatIssues(parsed.error, 'spec');
    } else {
      spec = parsed.data;
      try {
        requests = instanceRequests(spec.template.spec);
        limits = instanceLimits(spec.template.spec);
        runtime = runtimeOf(spec.template.spec);
      } catch (err) {
        invalid =
          err instanceof UnknownImageError
            ? `spec.${err.message}`
            : `spec.template.spec: ${(err as Error).message}`;
      }
    }
    if (!spec || invalid) {
      await blocked('InvalidSpec', invalid ?? 'invalid spec', true);
      return undefined;
    }

    const refs = resolveReferences(spec, this.lookup(namespace));
    if (refs.missing.length) {
      await blocked(
        'MissingReferences',
        `waiting for ${refs.missing.join(', ')} in namespace ${namespace}`,
        true,
      );
      return undefined;
    }

    const tSpec = spec.template.spec;
    const hash = templateHash(tSpec, limits, refs.values);
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

    // The rollout: which template each instance runs after this pass. Every template an instance may still
    // run is recorded on its location's WorkloadDeployment, so the rollout survives a coordinator restart.
    const existingDeployments = this.d.deployments
      .list(namespace)
      .filter((d) => d.metadata.labels?.[WORKLOAD_UID_LABEL] === uid);
    const templates = new Map<string, InstanceTemplate>();
    for (const d of existingDeployments) {
      if (d.spec.templateHash) templates.set(d.spec.templateHash, d.spec.template);
      for (const r of d.spec.revisions ?? []) templates.set(r.templateHash, r.template);
    }
    templates.set(hash, spec.template);
    const byName = new Map(mine.map((i) => [i.metadata.name, i]));
    const current = [...plan.keep, ...plan.place];
    const surgeObjs = mine.filter((i) => i.metadata.labels?.[SURGE_LABEL] === 'true');
    /** Instance name → the template hash it runs after this pass. New placements start on the new template. */
    const runs = new Map<string, string>();
    for (const i of [...current.map((p) => byName.get(p.name)), ...surgeObjs]) {
      const h = i?.spec.templateHash;
      // An instance on a template nobody recorded can only go to the new one.
      if (i && h && templates.has(h)) runs.set(i.metadata.name, h);
    }
    const runsOf = (instance: string) => runs.get(instance) ?? hash;
    const maxUnavailable = resolveIntOrPercent(spec.strategy?.rollingUpdate?.maxUnavailable, spec.replicas);
    // Surge instances run on the same host as the ones they stand in for, so fixed host ports rule them out.
    const canSurge = !allPorts(tSpec).some((p) => p.hostPort !== undefined);
    const maxSurge = canSurge
      ? resolveIntOrPercent(spec.strategy?.rollingUpdate?.maxSurge, spec.replicas, 25, true)
      : 0;
    const readyOn = (name: string, location: string, host: string) =>
      isReady(this.observe(namespace, name, location, host, runsOf(name)));
    const rollout = planRollout({
      hash,
      strategy: spec.strategy?.type ?? 'RollingUpdate',
      // The placed replicas: those that cannot be placed must not hold the update back.
      desired: current.length,
      maxUnavailable,
      maxSurge,
      instances: [
        ...current.map((p) => ({
          name: p.name,
          location: p.location,
          host: p.host,
          hash: runsOf(p.name),
          ready: readyOn(p.name, p.location, p.host),
          surge: false,
        })),
        ...surgeObjs.map((i) => ({
          name: i.metadata.name,
          location: i.spec.location,
          host: i.spec.host,
          hash: runsOf(i.metadata.name),
          ready: readyOn(i.metadata.name, i.spec.location, i.spec.host),
          surge: true,
        })),
      ],
    });
    for (const n of rollout.switchNow) runs.set(n, hash);
    if (rollout.switchNow.length) {
      this.d.events.record(
        wl,
        'Normal',
        'RollingUpdate',
        `replacing ${rollout.switchNow.length} instance(s) with template ${hash}: ${rollout.switchNow.join(', ')}` +
          (rollout.waiting ? `; ${rollout.waiting} wait for their turn` : ''),
      );
    }
    // Surge instances after this pass: the kept ones and the new ones, named `<workload>-<location>-surge-<i>`.
    const surge: Array<{ name: string; location: string; host: string; obj?: InstanceObject }> = [];
    for (const obj of surgeObjs) {
      if (rollout.keepSurge.has(obj.metadata.name))
        surge.push({ name: obj.metadata.name, location: obj.spec.location, host: obj.spec.host, obj });
    }
    const taken = new Set(surgeObjs.map((i) => i.metadata.name));
    for (const slot of rollout.addSurge) {
      let i = 0;
      while (taken.has(`${name}-${slot.location}-surge-${i}`)) i++;
      const instName = `${name}-${slot.location}-surge-${i}`;
      taken.add(instName);
      runs.set(instName, hash);
      surge.push({ name: instName, ...slot });
    }

    // WorkloadDeployments first (they own the Instances): the new template, and the older ones still run.
    const members = new Map<string, Array<{ name: string; host: string; ordinal: number }>>();
    for (const p of current) {
      const list = members.get(p.location) ?? [];
      list.push({ name: p.name, host: p.host, ordinal: ordinalOf(p.name) });
      members.set(p.location, list);
    }
    for (const s of surge) {
      const list = members.get(s.location) ?? [];
      list.push({ name: s.name, host: s.host, ordinal: s.obj?.spec.ordinal ?? 1000 + ordinalOf(s.name) });
      members.set(s.location, list);
    }
    const revisionsOf = (location: string) =>
      [...new Set((members.get(location) ?? []).map((m) => runsOf(m.name)))]
        .filter((h) => h !== hash)
        .sort()
        .map((h) => ({ templateHash: h, template: templates.get(h)! }));
    const deployments = await this.syncDeployments(
      wl,
      group,
      new Map(
        [...members.keys()].map((location) => [
          location,
          {
            replicas: plan.byLocation[location]?.length ?? 0,
            template: spec.template,
            templateHash: hash,
            revisions: revisionsOf(location),
          },
        ]),
      ),
    );

    // Instances: new placements, new surge instances, switched templates, removals.
    /** Creates an Instance on the new template; one that exists already (a conflict) is taken as it is sent. */
    const createInstance = async (
      i: { name: string; location: string; host: string },
      surgeOrdinal?: number,
    ) => {
      const body = instanceObject({
        name: i.name,
        namespace,
        workloadUid: uid,
        labels: instanceLabels,
        annotations: spec.template.metadata?.annotations,
        ...(surgeOrdinal !== undefined ? { surge: true } : {}),
        owner: deployments.get(i.location),
        spec: {
          workloadRef: { name },
          location: i.location,
          host: i.host,
          ordinal: surgeOrdinal ?? ordinalOf(i.name),
          runtime,
          templateHash: hash,
          resources: requests,
        },
      });
      try {
        return await this.d.client.create({ kind: InstanceKind, group: GROUP }, body);
      } catch (err) {
        if (!isConflict(err)) throw err;
        return body;
      }
    };
    for (const p of plan.place) {
      if (!byName.has(p.name)) byName.set(p.name, await createInstance(p));
    }
    if (plan.place.length) {
      this.d.events.record(
        wl,
        'Normal',
        'Placed',
        `placed ${plan.place.length} instance(s): ${plan.place.map((p) => `${p.name} on ${p.host}`).join(', ')}`,
      );
    }
    for (const s of surge) {
      if (s.obj) continue;
      s.obj = await createInstance(s, 1000 + ordinalOf(s.name));
      this.d.events.record(
        wl,
        'Normal',
        'SurgeStarted',
        `rolling update: ${s.name} on ${s.host} stands in while instances of ${s.location} are replaced`,
      );
    }
    for (const r of plan.remove) {
      await this.d.client.delete({ kind: InstanceKind, group: GROUP }, namespace, r.name);
      byName.delete(r.name);
      this.d.events.record(
        wl,
        'Normal',
        r.reason === 'HostGone' ? 'Rescheduled' : 'ScaledDown',
        r.reason === 'HostGone'
          ? `instance ${r.name} replaced: its host is lost`
          : `removed instance ${r.name}`,
      );
    }
    if (plan.unplaced > 0) {
      this.d.events.record(
        wl,
        'Warning',
        'Unschedulable',
        `${plan.unplaced} instance(s) cannot be placed: ${plan.reason ?? ''}`,
      );
    }
    // An Instance's spec says the template it runs.
    for (const obj of [...current.map((p) => byName.get(p.name)), ...surge.map((s) => s.obj)]) {
      if (!obj) continue;
      const want = runsOf(obj.metadata.name);
      if (obj.spec.templateHash !== want) {
        await this.d.client.patch({ kind: InstanceKind, group: GROUP }, namespace, obj.metadata.name, {
          spec: { templateHash: want, resources: requests },
        });
        obj.spec.templateHash = want;
        this.d.events.record(obj, 'Normal', 'Updating', `replacing with template ${want}`);
      }
    }

    await this.publishIntents(wl, members, {
      hash,
      template: spec.template,
      limits,
      values: refs.values,
      labels: instanceLabels,
      runsOf,
      revisionsOf,
    });
    // A surge instance no longer wanted goes from the API only once its host no longer runs it, so status never
    // loses sight of it early.
    const leaving: InstanceObject[] = [];
    for (const obj of surgeObjs) {
      if (rollout.keepSurge.has(obj.metadata.name)) continue;
      const running = this.d.registry.get(obj.spec.host)?.instances.has(`${namespace}/${obj.metadata.name}`);
      if (running) leaving.push(obj);
      else await this.d.client.delete({ kind: InstanceKind, group: GROUP }, namespace, obj.metadata.name);
    }

    // Status: Instances first (surge instances before the ones they stand in for, so that a reader never sees
    // the replaced ones not ready before their stand-ins ready), then the Workload.
    const observed: ObservedInstance[] = [];
    for (const obj of [...surge.map((s) => s.obj!), ...leaving]) {
      const o = this.observe(
        namespace,
        obj.metadata.name,
        obj.spec.location,
        obj.spec.host,
        runsOf(obj.metadata.name),
      );
      observed.push(o);
      await this.writeInstanceStatus(obj, o, now);
    }
    for (const p of current) {
      const o = this.observe(namespace, p.name, p.location, p.host, runsOf(p.name));
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
          .catch((err) =>
            this.d.log.warn(
              { deployment: dep.metadata.name, err: apiErrorMessage(err) },
              'status not written',
            ),
          );
      }
    }
    await this.writeStatus(ref, wl, {
      desired: spec.replicas,
      generation: wl.metadata.generation ?? 0,
      selector,
      instances: observed,
      currentHash: hash,
      unplaced: plan.unplaced,
      ...(plan.reason ? { unschedulableReason: plan.reason } : {}),
      deleting: false,
      maxUnavailable,
      previous: wl.status,
      now,
    });
    // Unplaced replicas may fit later; hosts arriving also requeue everything. A waiting rollout is driven
    // by host reports, with a timer as a safety net.
    if (plan.unplaced > 0) return { requeueAfterMs: 10_000 };
    const rolling = rollout.waiting > 0 || surge.length > 0 || leaving.length > 0;
    return rolling ? { requeueAfterMs: 5_000 } : undefined;
  }

  /** An instance as its host reports it, against the template hash it should run. */
  private observe(
    namespace: string,
    name: string,
    location: string,
    host: string,
    hash: string,
  ): ObservedInstance {
    const entry = this.d.registry.get(host);
    const o: ObservedInstance = { name, location, host, templateHash: hash };
    if (entry) {
      o.hostState = entry.state;
      const reported = entry.instances.get(`${namespace}/${name}`);
      if (reported) o.reported = reported;
    }
    return o;
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

  /**
   * Instances are named after the Workload, so one name may be used in one API group per namespace: the
   * oldest Workload of that name keeps it. Returns the group of the one that does, when it is not this one.
   */
  private nameConflict(group: string, wl: WorkloadObject): string | undefined {
    const rank = (g: string, w: WorkloadObject) =>
      [w.metadata.creationTimestamp ?? '', WORKLOAD_GROUPS.indexOf(g as never)] as const;
    const mine = rank(group, wl);
    for (const [g, cache] of this.d.workloads) {
      if (g === group) continue;
      const other = cache.get(wl.metadata.namespace, wl.metadata.name);
      if (!other || other.metadata.deletionTimestamp) continue;
      const theirs = rank(g, other);
      if (theirs[0] < mine[0] || (theirs[0] === mine[0] && theirs[1] < mine[1])) return g;
    }
    return undefined;
  }

  /** Queues the Workloads of a namespace that reference a Secret, ConfigMap or Network of that name. */
  enqueueReferencing(namespace: string, kind: 'secret' | 'configMap' | 'network', refName: string): void {
    for (const [group, cache] of this.d.workloads) {
      for (const w of cache.list(namespace)) {
        const parsed = WorkloadSpec.safeParse(w.spec);
        if (!parsed.success) continue;
        const refs = resolveReferences(parsed.data, NO_LOOKUP).referenced;
        const set = kind === 'secret' ? refs.secrets : kind === 'configMap' ? refs.configMaps : refs.networks;
        if (set.has(refName)) this.queue.add(WorkloadController.key(group, namespace, w.metadata.name));
      }
    }
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
    // Required anti-affinity of every Workload by UID: existing instances keep newcomers out of their domains.
    const antiAffinity = new Map<string, PodAffinityTerm[]>();
    for (const cache of this.d.workloads.values()) {
      for (const w of cache.list()) {
        const terms = (w.spec as Partial<WorkloadSpec> | undefined)?.placement?.affinity?.podAntiAffinity
          ?.requiredDuringSchedulingIgnoredDuringExecution;
        if (terms?.length && w.metadata.uid) antiAffinity.set(w.metadata.uid, terms);
      }
    }
    return this.d.instances.list().map((i) => ({
      antiAffinity: antiAffinity.get(i.metadata.labels?.[WORKLOAD_UID_LABEL] ?? ''),
      name: i.metadata.name,
      namespace: i.metadata.namespace!,
      // Surge instances take capacity but are not replicas: the engine must not count (or remove) them.
      workload: `${i.metadata.namespace}/${i.spec.workloadRef.name}${i.metadata.labels?.[SURGE_LABEL] === 'true' ? SURGE_SUFFIX : ''}`,
      host: i.spec.host,
      location: i.spec.location,
      labels: i.metadata.labels ?? {},
      resources: i.spec.resources ?? { ...ZERO },
    }));
  }

  /** Makes the Workload's WorkloadDeployments match `want` (location → spec); deletes those of other locations. */
  private async syncDeployments(
    wl: WorkloadObject,
    group: string,
    want: Map<string, Omit<WorkloadDeploymentSpec, 'workloadRef' | 'location'>>,
  ): Promise<Map<string, DeploymentObject>> {
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const ref = { kind: WorkloadDeploymentKind, group: GROUP };
    const existing = this.d.deployments
      .list(namespace)
      .filter((d) => d.metadata.labels?.[WORKLOAD_UID_LABEL] === wl.metadata.uid);
    const out = new Map<string, DeploymentObject>();
    for (const [location, w] of want) {
      const spec: WorkloadDeploymentSpec = {
        workloadRef: { name, uid: wl.metadata.uid! },
        location,
        replicas: w.replicas,
        template: w.template,
        templateHash: w.templateHash,
        // Always present, so that a merge patch also clears revisions that are done.
        revisions: w.revisions ?? [],
      };
      const have = existing.find((d) => d.spec.location === location);
      if (!have) {
        const obj: DeploymentObject = {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'WorkloadDeployment',
          metadata: {
            name: `${name}-${location}`,
            namespace,
            labels: {
              [WORKLOAD_LABEL]: name,
              [WORKLOAD_UID_LABEL]: wl.metadata.uid!,
              [LOCATION_LABEL]: location,
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
        try {
          out.set(location, await this.d.client.create(ref, obj));
        } catch (err) {
          if (!isConflict(err)) throw err;
          const again = this.d.deployments.get(namespace, `${name}-${location}`);
          if (again) out.set(location, again);
        }
      } else {
        const same =
          have.spec.replicas === spec.replicas &&
          have.spec.templateHash === spec.templateHash &&
          JSON.stringify((have.spec.revisions ?? []).map((r) => r.templateHash)) ===
            JSON.stringify(spec.revisions!.map((r) => r.templateHash));
        out.set(
          location,
          same ? have : await this.d.client.patch(ref, namespace, have.metadata.name, { spec }),
        );
      }
    }
    for (const d of existing) {
      if (!want.has(d.spec.location)) await this.d.client.delete(ref, namespace, d.metadata.name);
    }
    return out;
  }

  /**
   * One intent per location: the new template, the instances (each with the older template it still runs, if
   * any) and those older templates, with the Secret/ConfigMap values of each sealed to the hosts.
   */
  private async publishIntents(
    wl: WorkloadObject,
    members: Map<string, Array<{ name: string; host: string; ordinal: number }>>,
    t: {
      hash: string;
      template: InstanceTemplate;
      limits: ResourceAmounts;
      values: ResolvedValues;
      labels: Record<string, string>;
      runsOf: (instance: string) => string;
      /** The older templates the instances of a location still run. */
      revisionsOf: (location: string) => Array<{ templateHash: string; template: InstanceTemplate }>;
    },
  ): Promise<void> {
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const lookup = this.lookup(namespace);
    const wanted = new Set<string>();
    for (const [location, list] of members) {
      if (!list.length) continue;
      wanted.add(this.d.subjects.intentKey(location, namespace, name));
      const older = t.revisionsOf(location);
      const revisions: NonNullable<DeploymentIntent['revisions']> = [];
      const olderValues: Record<string, ResolvedValues> = {};
      for (const { templateHash: h, template } of older) {
        let limits = t.limits;
        try {
          limits = instanceLimits(template.spec);
        } catch {
          // it was valid when it was published
        }
        revisions.push({ templateHash: h, template: template.spec, limits });
        // Values of today's Secrets: an instance restarted on an older template gets what its references hold now.
        olderValues[h] = resolveReferences({ template }, lookup).values;
      }
      const values: ResolvedValues = older.length ? { ...t.values, revisions: olderValues } : t.values;
      const intent: DeploymentIntent = {
        v: MESSAGE_VERSION,
        location,
        namespace,
        workload: name,
        workloadUid: wl.metadata.uid!,
        templateHash: t.hash,
        template: t.template.spec,
        limits: t.limits,
        instances: [...list]
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((m) => {
            const runs = t.runsOf(m.name);
            return { ...m, labels: t.labels, ...(runs !== t.hash ? { templateHash: runs } : {}) };
          }),
        ...(revisions.length ? { revisions } : {}),
        updatedAt: new Date().toISOString(),
      };
      await this.d.intents.put(intent, values);
    }
    for (const key of this.d.intents.keysOf(namespace, name))
      if (!wanted.has(key)) await this.d.intents.delete(key);
  }

  private async writeInstanceStatus(obj: InstanceObject, o: ObservedInstance, now: string): Promise<void> {
    const next = instanceStatus(o, obj.status, now);
    if (JSON.stringify(next) === JSON.stringify(obj.status ?? {})) return;
    const prevPhase = obj.status?.phase;
    try {
      await this.d.client.patchStatus(
        { kind: InstanceKind, group: GROUP },
        obj.metadata.namespace,
        obj.metadata.name,
        next,
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
  private async finalize(
    group: string,
    wl: WorkloadObject,
    mine: InstanceObject[],
  ): Promise<ReconcileResult | undefined> {
    const namespace = wl.metadata.namespace!;
    const name = wl.metadata.name;
    const ref = { kind: WorkloadKind, group };
    if (!wl.metadata.finalizers?.includes(WORKLOAD_FINALIZER)) return undefined;
    // Intents are keyed by namespace and name: those of a same-named Workload in another group are not ours.
    if (!this.nameConflict(group, wl)) {
      for (const key of this.d.intents.keysOf(namespace, name)) await this.d.intents.delete(key);
    }
    const stillRunning = mine.filter((i) => {
      const entry = this.d.registry.get(i.spec.host);
      return entry && entry.state !== 'Lost' && entry.instances.has(`${namespace}/${i.metadata.name}`);
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
    for (const i of mine)
      await this.d.client.delete({ kind: InstanceKind, group: GROUP }, namespace, i.metadata.name);
    for (const dep of this.d.deployments.list(namespace)) {
      if (dep.metadata.labels?.[WORKLOAD_UID_LABEL] === wl.metadata.uid) {
        await this.d.client.delete(
          { kind: WorkloadDeploymentKind, group: GROUP },
          namespace,
          dep.metadata.name,
        );
      }
    }
    this.d.events.record(wl, 'Normal', 'Deleted', `${mine.length} instance(s) stopped and removed`);
    await this.d.client.patch(ref, namespace, name, {
      metadata: { finalizers: (wl.metadata.finalizers ?? []).filter((f) => f !== WORKLOAD_FINALIZER) },
    });
    this.d.log.info({ workload: `${namespace}/${name}` }, 'workload deleted; every instance stopped');
    return undefined;
  }

  /** A Workload that vanished without our finalizer running: remove whatever it left. */
  private async cleanupOrphans(namespace: string, name: string): Promise<undefined> {
    if (this.d.workloads.size && [...this.d.workloads.values()].some((c) => c.get(namespace, name)))
      return undefined;
    for (const key of this.d.intents.keysOf(namespace, name)) await this.d.intents.delete(key);
    for (const i of this.d.instances.list(namespace)) {
      if (i.spec.workloadRef.name === name)
        await this.d.client.delete({ kind: InstanceKind, group: GROUP }, namespace, i.metadata.name);
    }
    for (const dep of this.d.deployments.list(namespace)) {
      if (dep.spec.workloadRef.name === name) {
        await this.d.client.delete(
          { kind: WorkloadDeploymentKind, group: GROUP },
          namespace,
          dep.metadata.name,
        );
      }
    }
    return undefined;
  }
}
