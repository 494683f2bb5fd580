/**
 * The planner, pure: from a {@link WorkloadSnapshot} of one valid Workload, the {@link WorkloadPlan} of one
 * pass, after Nomad's `ReconcileResults`. Steps:
 *   1. place: the placement engine keeps, places and removes replicas (`schedule`);
 *   2. roll: which template each instance runs after this pass, and the surge instances beside them
 *      (`planRollout`); every template an instance may still run is recorded on its location's
 *      WorkloadDeployment, so a rollout survives a coordinator restart;
 *   3. write down: WorkloadDeployments, Instances to create, remove and switch, intents, status, events.
 * Invariants: the same snapshot gives the same plan; a snapshot that already matches plans no write (no
 * create, remove or switch, the same deployments and intents); a new Instance always runs the current template.
 */
import type { InstanceTemplate, WorkloadDeploymentSpec } from '../../shared/api/index.js';
import { templateHash } from '../../shared/template-hash.js';
import { schedule } from '../placement/index.js';
import { quotaMessage } from '../quota/admit.js';
import { attachmentsOf, hasStaticAddress } from './attachments.js';
import { buildIntents, type IntentMember } from './intents.js';
import { instanceKey, nextSurgeName, ordinalOf, surgeOrdinal } from './naming.js';
import { SURGE_LABEL, WORKLOAD_LABEL } from './objects.js';
import { planRollout, resolveIntOrPercent } from './rollout.js';
import { isReady, type ObservedInstance } from './status.js';
import type {
  InstanceObject,
  NewInstance,
  PlannedEvent,
  ValidWorkload,
  WorkloadPlan,
  WorkloadSnapshot,
} from './types.js';
import type { Blocked } from './validate.js';

/** An instance as its host reports it, against the template hash it should run. */
export function observe(
  hosts: WorkloadSnapshot['hosts'],
  namespace: string,
  i: { name: string; location: string; host: string },
  hash: string,
): ObservedInstance {
  const entry = hosts.get(i.host);
  const o: ObservedInstance = { name: i.name, location: i.location, host: i.host, templateHash: hash };
  if (entry) {
    o.hostState = entry.state;
    const reported = entry.instances.get(instanceKey(namespace, i.name));
    if (reported) o.reported = reported;
  }
  return o;
}

/** The label selector of a Workload's instances. */
function selectorOf(name: string): string {
  return `${WORKLOAD_LABEL}=${name}`;
}

/**
 * The plan of a Workload that cannot be acted on: a warning and its status. What runs keeps running (as a
 * kubelet keeps pods whose Secret vanished); nothing is changed.
 */
export function planBlocked(s: WorkloadSnapshot, blocked: Blocked): WorkloadPlan {
  const wl = s.workload;
  const namespace = wl.metadata.namespace!;
  const desired = (wl.spec as { replicas?: unknown })?.replicas;
  return {
    instanceMetadata: { labels: {} },
    template: { hash: '', runtime: 'gvisor', requests: { cpuMillis: 0, memoryBytes: 0 } },
    create: [],
    remove: [],
    switchTemplate: [],
    removeAfterIntents: [],
    instanceStatus: [],
    deploymentStatus: new Map(),
    status: {
      desired: typeof desired === 'number' ? desired : 0,
      generation: wl.metadata.generation ?? 0,
      selector: selectorOf(wl.metadata.name),
      instances: s.instances.map((i) =>
        observe(s.hosts, namespace, { name: i.metadata.name, ...i.spec }, i.spec.templateHash ?? ''),
      ),
      unplaced: 0,
      invalid: blocked,
      deleting: false,
      maxUnavailable: 0,
      ...(wl.status ? { previous: wl.status } : {}),
      now: s.now,
    },
    events: [{ type: 'Warning', reason: blocked.reason, message: blocked.message }],
  };
}

/** Every port of a template, in either form. */
function allPorts(t: ValidWorkload['spec']['template']['spec']): Array<{ hostPort?: number | undefined }> {
  return [...(t.ports ?? []), ...(t.containers ?? []).flatMap((c) => c.ports ?? [])];
}

/** The plan of one pass over a valid Workload. */
export function planWorkload(s: WorkloadSnapshot, v: ValidWorkload): WorkloadPlan {
  const wl = s.workload;
  const namespace = wl.metadata.namespace!;
  const name = wl.metadata.name;
  const { spec } = v;
  const tSpec = spec.template.spec;
  const hash = templateHash(tSpec, v.limits, v.values);
  const labels = { ...(spec.template.metadata?.labels ?? {}), [WORKLOAD_LABEL]: name };
  const events: PlannedEvent[] = [];

  // 1. Placement.
  const placed = schedule({
    workload: {
      namespace,
      name,
      // Replicas beyond a ResourceQuota are not placed (coordinator/quota/admit.ts).
      replicas: s.quota ? s.quota.allowed : spec.replicas,
      ...(spec.placement ? { placement: spec.placement } : {}),
      instanceLabels: labels,
      resources: v.requests,
      runtime: v.runtime,
      ...(attachmentsOf(tSpec, spec.networkRef).length ? { networks: true } : {}),
    },
    hosts: s.placement.hosts,
    instances: s.placement.instances,
  });

  // 2. The rollout: which template each instance runs after this pass.
  const templates = new Map<string, InstanceTemplate>();
  for (const d of s.deployments) {
    if (d.spec.templateHash) templates.set(d.spec.templateHash, d.spec.template);
    for (const r of d.spec.revisions ?? []) templates.set(r.templateHash, r.template);
  }
  templates.set(hash, spec.template);
  const byName = new Map(s.instances.map((i) => [i.metadata.name, i]));
  const current = [...placed.keep, ...placed.place];
  const surgeObjs = s.instances.filter((i) => i.metadata.labels?.[SURGE_LABEL] === 'true');
  /** Instance name → the template hash it runs after this pass. New placements start on the new template. */
  const runs = new Map<string, string>();
  for (const i of [...current.map((p) => byName.get(p.name)), ...surgeObjs]) {
    const h = i?.spec.templateHash;
    // An instance on a template nobody recorded can only go to the new one.
    if (i && h && templates.has(h)) runs.set(i.metadata.name, h);
  }
  const runsOf = (instance: string) => runs.get(instance) ?? hash;
  const maxUnavailable = resolveIntOrPercent(spec.strategy?.rollingUpdate?.maxUnavailable, spec.replicas);
  // Surge instances run on the same host as the ones they stand in for, so fixed host ports rule them out; a
  // static address belongs to one instance, so it rules them out too.
  const canSurge = !allPorts(tSpec).some((p) => p.hostPort !== undefined) && !hasStaticAddress(tSpec);
  const maxSurge = canSurge
    ? resolveIntOrPercent(spec.strategy?.rollingUpdate?.maxSurge, spec.replicas, 25, true)
    : 0;
  const observeNow = (i: { name: string; location: string; host: string }) =>
    observe(s.hosts, namespace, i, runsOf(i.name));
  const asRollout = (i: { name: string; location: string; host: string }, surge: boolean) => {
    const o = observeNow(i);
    // Unknown: its host has not reported since we started (or is Disconnected): not to be switched blind.
    const unknown = o.hostState === undefined || o.hostState === 'Disconnected';
    return { ...i, hash: runsOf(i.name), ready: isReady(o), surge, ...(unknown ? { unknown } : {}) };
  };
  const surgeNow = surgeObjs.map((i) => ({ name: i.metadata.name, ...i.spec, obj: i }));
  const rollout = planRollout({
    hash,
    strategy: spec.strategy?.type ?? 'RollingUpdate',
    // The placed replicas: those that cannot be placed must not hold the update back.
    desired: current.length,
    maxUnavailable,
    maxSurge,
    instances: [
      ...current.map((p) => asRollout(p, false)),
      ...surgeNow.map(({ name, location, host }) => asRollout({ name, location, host }, true)),
    ],
  });
  for (const n of rollout.switchNow) runs.set(n, hash);
  if (rollout.switchNow.length) {
    events.push({
      type: 'Normal',
      reason: 'RollingUpdate',
      message:
        `replacing ${rollout.switchNow.length} instance(s) with template ${hash}: ${rollout.switchNow.join(', ')}` +
        (rollout.waiting ? `; ${rollout.waiting} wait for their turn` : ''),
    });
  }
  // Surge instances after this pass: the kept ones and the new ones.
  const surge: Array<{ name: string; location: string; host: string; obj?: InstanceObject }> = surgeNow
    .filter((i) => rollout.keepSurge.has(i.name))
    .map(({ name, location, host, obj }) => ({ name, location, host, obj }));
  const taken = new Set(surgeObjs.map((i) => i.metadata.name));
  const newSurge: NewInstance[] = [];
  for (const slot of rollout.addSurge) {
    const instName = nextSurgeName(name, slot.location, taken);
    runs.set(instName, hash);
    surge.push({ name: instName, ...slot });
    newSurge.push({ name: instName, ...slot, ordinal: surgeOrdinal(instName), surge: true });
  }

  // 3. WorkloadDeployments: the new template, and the older ones still run.
  const members = new Map<string, IntentMember[]>();
  const addMember = (location: string, m: IntentMember) => {
    const list = members.get(location) ?? [];
    list.push(m);
    members.set(location, list);
  };
  for (const p of current) addMember(p.location, { name: p.name, host: p.host, ordinal: ordinalOf(p.name) });
  for (const x of surge)
    addMember(x.location, {
      name: x.name,
      host: x.host,
      ordinal: x.obj?.spec.ordinal ?? surgeOrdinal(x.name),
    });
  const revisionsOf = (location: string) =>
    [...new Set((members.get(location) ?? []).map((m) => runsOf(m.name)))]
      .filter((h) => h !== hash)
      .sort()
      .map((h) => ({ templateHash: h, template: templates.get(h)! }));
  const deployments = new Map<string, WorkloadDeploymentSpec>();
  for (const location of members.keys()) {
    deployments.set(location, {
      workloadRef: { name, uid: wl.metadata.uid! },
      location,
      replicas: placed.byLocation[location]?.length ?? 0,
      template: spec.template,
      templateHash: hash,
      // Always present, so that a merge patch also clears revisions that are done.
      revisions: revisionsOf(location),
    });
  }

  // Instances: new placements, new surge instances, removals, switched templates.
  const create: NewInstance[] = placed.place
    .filter((p) => !byName.has(p.name))
    .map((p) => ({ ...p, ordinal: ordinalOf(p.name), surge: false }));
  create.push(...newSurge);
  if (placed.place.length) {
    events.push({
      type: 'Normal',
      reason: 'Placed',
      message: `placed ${placed.place.length} instance(s): ${placed.place.map((p) => `${p.name} on ${p.host}`).join(', ')}`,
    });
  }
  for (const x of newSurge) {
    events.push({
      type: 'Normal',
      reason: 'SurgeStarted',
      message: `rolling update: ${x.name} on ${x.host} stands in while instances of ${x.location} are replaced`,
    });
  }
  for (const r of placed.remove) {
    events.push(
      r.reason === 'HostGone'
        ? { type: 'Normal', reason: 'Rescheduled', message: `instance ${r.name} replaced: its host is lost` }
        : { type: 'Normal', reason: 'ScaledDown', message: `removed instance ${r.name}` },
    );
  }
  if (placed.unplaced > 0) {
    events.push({
      type: 'Warning',
      reason: 'Unschedulable',
      message: `${placed.unplaced} instance(s) cannot be placed: ${placed.reason ?? ''}`,
    });
  }
  const quota = s.quota?.applies
    ? { granted: !s.quota.blocked, message: quotaMessage(s.quota, spec.replicas) }
    : undefined;
  const before = wl.status?.conditions?.find((c) => c.type === 'QuotaGranted');
  if (quota && !quota.granted && before?.message !== quota.message)
    events.push({ type: 'Warning', reason: 'QuotaExceeded', message: quota.message });
  if (quota?.granted && before?.status === 'False')
    events.push({ type: 'Normal', reason: 'QuotaGranted', message: quota.message });
  const removed = new Set(placed.remove.map((r) => r.name));
  // An Instance's spec says the template it runs (new ones are created on the current one).
  const switchTemplate: WorkloadPlan['switchTemplate'] = [];
  for (const n of [...current.map((p) => p.name), ...surge.map((x) => x.name)]) {
    const obj = removed.has(n) ? undefined : byName.get(n);
    if (!obj || obj.spec.templateHash === runsOf(n)) continue;
    switchTemplate.push({ name: n, templateHash: runsOf(n) });
    events.push({
      instance: n,
      type: 'Normal',
      reason: 'Updating',
      message: `replacing with template ${runsOf(n)}`,
    });
  }

  const intents = buildIntents({
    namespace,
    workload: name,
    workloadUid: wl.metadata.uid!,
    hash,
    template: spec.template,
    limits: v.limits,
    values: v.values,
    labels,
    members,
    runsOf,
    revisionsOf,
    lookup: s.lookup,
    now: s.now,
  });
  // A surge instance no longer wanted goes from the API only once its host no longer runs it, so status never
  // loses sight of it early.
  const leaving: typeof surgeNow = [];
  const removeAfterIntents: string[] = [];
  for (const x of surgeNow) {
    if (rollout.keepSurge.has(x.name)) continue;
    if (s.hosts.get(x.host)?.instances.has(instanceKey(namespace, x.name))) leaving.push(x);
    else removeAfterIntents.push(x.name);
  }

  // Status: Instances (surge instances first), WorkloadDeployments, the Workload.
  const instanceStatus = [...surge, ...leaving, ...current].map(observeNow);
  const deploymentStatus = new Map<string, { replicas: number; readyReplicas: number }>();
  for (const location of members.keys()) {
    const here = instanceStatus.filter((o) => o.location === location);
    deploymentStatus.set(location, { replicas: here.length, readyReplicas: here.filter(isReady).length });
  }
  const rolling = rollout.waiting > 0 || surge.length > 0 || leaving.length > 0;
  return {
    deployments,
    instanceMetadata: { labels, annotations: spec.template.metadata?.annotations },
    template: { hash, runtime: v.runtime, requests: v.requests },
    create,
    remove: placed.remove.map((r) => r.name),
    switchTemplate,
    intents,
    removeAfterIntents,
    instanceStatus,
    deploymentStatus,
    status: {
      desired: spec.replicas,
      generation: wl.metadata.generation ?? 0,
      selector: selectorOf(name),
      instances: instanceStatus,
      currentHash: hash,
      unplaced: placed.unplaced,
      ...(placed.reason ? { unschedulableReason: placed.reason } : {}),
      ...(quota ? { quota } : {}),
      deleting: false,
      maxUnavailable,
      ...(wl.status ? { previous: wl.status } : {}),
      now: s.now,
    },
    events,
    // Unplaced replicas may fit later; hosts arriving also requeue everything. A waiting rollout is driven by
    // host reports, with a timer as a safety net. Room under a quota may come from another Workload shrinking.
    ...(placed.unplaced > 0 || (quota && !quota.granted)
      ? { requeueAfterMs: 10_000 }
      : rolling
        ? { requeueAfterMs: 5_000 }
        : {}),
  };
}
