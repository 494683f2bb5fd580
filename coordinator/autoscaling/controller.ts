/**
 * The autoscaler controller, after HPA's: every `syncMs` (and whenever a Workload changes) one pass per Workload
 * with `spec.autoscaling`. A pass reads the Workload, its Instances and what their hosts report (readiness, CPU
 * usage), plans with {@link planAutoscale} (pure: the samples, {@link decide}, the status and the events), and
 * applies: spec.replicas (a merge patch, as `kubectl scale` writes it), an Event with the figures when the count
 * changes (or when scaling stops working), and `status.autoscaling` when it changed.
 *
 * Ownership (as HPA): with `spec.autoscaling` the autoscaler owns spec.replicas. `kubectl scale` still sets it — it is
 * then the current count the next pass starts from, corrected to the bounds at once and to the metrics after the
 * windows; `kubectl scale --replicas=0` turns autoscaling off until the count is raised again. Without
 * `spec.autoscaling` this controller writes nothing.
 *
 * State: the recommendations and scale events of the windows, in memory per Workload (as HPA keeps them). A new
 * leader starts with empty windows: at worst it scales down one window later, never earlier than the data allows.
 */
import {
  type Condition,
  type WorkloadAutoscalingStatus,
  WorkloadKind,
  WorkloadSpec,
} from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import type { KubeClient } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceCache } from '../kube/informer.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import { instanceKey, parseQueueKey, queueKey } from '../workloads/naming.js';
import { SURGE_LABEL, WORKLOAD_UID_LABEL } from '../workloads/objects.js';
import { setCondition } from '../workloads/status.js';
import type { HostView, InstanceCache, InstanceObject, WorkloadObject } from '../workloads/types.js';
import { type AutoscalerMemory, type Decision, decide, type InstanceSample } from './decide.js';
import { type AutoscalerDefaults, DEFAULT_AUTOSCALER, resolveAutoscaling } from './spec.js';

/** Input of {@link planAutoscale}: one Workload and what is known of its instances. */
export interface AutoscaleInput {
  /** The Workload (spec unparsed, as the cache holds it). */
  workload: WorkloadObject;
  /** Its Instances (by Workload UID; surge instances are left out here). */
  instances: InstanceObject[];
  /** What each host reports. */
  hosts: { get(host: string): HostView | undefined };
  /** The windows kept from the previous passes. */
  memory: AutoscalerMemory | undefined;
  /** Now in ms (for the windows). */
  now: number;
  /** Now as RFC 3339 (for status times). */
  nowIso: string;
  /** Coordinator-wide defaults (the scale-down window when none is set, the tolerance). */
  defaults: AutoscalerDefaults;
}

/** What one pass writes. */
export interface AutoscalePlan {
  /** Not autoscaled (no or an invalid spec.autoscaling): forget the windows, clear status.autoscaling if set. */
  off?: boolean;
  /** The new spec.replicas, when it changes. */
  replicas?: number;
  /** status.autoscaling as it should be. */
  status?: WorkloadAutoscalingStatus;
  /** Events to record on the Workload. */
  events: Array<{ type: 'Normal' | 'Warning'; reason: string; message: string }>;
  /** The windows to keep. */
  memory?: AutoscalerMemory;
  /** The decision (for logs and tests). */
  decision?: Decision;
}

/** The samples of a Workload's instances: ready as the status rollup counts it, usage from the host's report. */
export function samplesOf(instances: InstanceObject[], hosts: AutoscaleInput['hosts']): InstanceSample[] {
  return instances
    .filter((i) => i.metadata.labels?.[SURGE_LABEL] !== 'true')
    .map((i) => {
      const entry = hosts.get(i.spec.host);
      const reported = entry?.instances.get(instanceKey(i.metadata.namespace!, i.metadata.name));
      const current = reported?.templateHash === i.spec.templateHash;
      const ready = entry?.state === 'Ready' && !!reported?.ready && current;
      const usage = entry?.state === 'Ready' && current ? reported?.cpu?.usageMillis : undefined;
      return {
        name: i.metadata.name,
        ready,
        requestMillis: i.spec.resources?.cpuMillis ?? 0,
        ...(usage !== undefined ? { usageMillis: usage } : {}),
      };
    });
}

/** One pass over one Workload, pure. */
export function planAutoscale(input: AutoscaleInput): AutoscalePlan {
  const wl = input.workload;
  const parsed = WorkloadSpec.safeParse(wl.spec);
  if (!parsed.success || !parsed.data.autoscaling) return { off: true, events: [] };
  const spec = resolveAutoscaling(parsed.data.autoscaling, input.defaults);
  const current = parsed.data.replicas;
  const memory = input.memory ?? { recommendations: [], scaleEvents: [] };
  const d = decide({
    spec,
    currentReplicas: current,
    instances: samplesOf(input.instances, input.hosts),
    memory,
    now: input.now,
  });
  const previous = wl.status?.autoscaling;
  const events: AutoscalePlan['events'] = [];
  const utilization = d.utilization !== undefined ? Math.round(d.utilization) : undefined;
  if (d.rescale) {
    events.push({
      type: 'Normal',
      reason: 'SuccessfulRescale',
      message: `New size: ${d.desiredReplicas} (from ${current}); ${d.message}`,
    });
  }
  // Conditions as HPA's: AbleToScale, ScalingActive, ScalingLimited.
  const active = !['NoMetrics', 'MissingRequest', 'ScalingDisabled'].includes(d.reason);
  let conditions: Condition[] = setCondition(
    previous?.conditions,
    { type: 'AbleToScale', status: 'True', reason: d.rescale ? 'SucceededRescale' : 'ReadyForNewScale' },
    input.nowIso,
  );
  const activeCondition: Condition = active
    ? {
        type: 'ScalingActive',
        status: 'True',
        reason: 'ValidMetricFound',
        message: 'the CPU utilisation of the instances was measured',
      }
    : {
        type: 'ScalingActive',
        status: 'False',
        reason:
          d.reason === 'ScalingDisabled'
            ? 'ScalingDisabled'
            : d.reason === 'MissingRequest'
              ? 'FailedGetResourceMetric'
              : 'FailedGetResourceMetric',
        message: d.message,
      };
  conditions = setCondition(conditions, activeCondition, input.nowIso);
  const wasActive = previous?.conditions?.find((c) => c.type === 'ScalingActive')?.status;
  if (!active && wasActive !== 'False')
    events.push({
      type: d.reason === 'ScalingDisabled' ? 'Normal' : 'Warning',
      reason: activeCondition.reason!,
      message: d.message,
    });
  const limited = d.limitedBy === 'maxReplicas' || d.limitedBy === 'minReplicas';
  conditions = setCondition(
    conditions,
    limited
      ? {
          type: 'ScalingLimited',
          status: 'True',
          reason: d.limitedBy === 'maxReplicas' ? 'TooManyReplicas' : 'TooFewReplicas',
          message: `the desired count is ${d.limitedBy === 'maxReplicas' ? 'above maxReplicas' : 'below minReplicas'}`,
        }
      : d.limitedBy === 'scaleUpRate' || d.limitedBy === 'scaleDownRate'
        ? {
            type: 'ScalingLimited',
            status: 'True',
            reason: d.limitedBy === 'scaleUpRate' ? 'ScaleUpLimit' : 'ScaleDownLimit',
            message: 'the desired count is held back by a rate policy',
          }
        : {
            type: 'ScalingLimited',
            status: 'False',
            reason: 'DesiredWithinRange',
            message: 'the desired count is within the acceptable range',
          },
    input.nowIso,
  );
  const status: WorkloadAutoscalingStatus = {
    currentReplicas: current,
    desiredReplicas: d.desiredReplicas,
    ...(utilization !== undefined ? { currentCPUUtilizationPercentage: utilization } : {}),
    targetCPUUtilizationPercentage: spec.targetUtilization,
    ...(d.averageMillis !== undefined ? { currentAverageCPUMillis: Math.round(d.averageMillis) } : {}),
    measuredInstances: d.measured,
    ...(d.rescale
      ? { lastScaleTime: input.nowIso }
      : previous?.lastScaleTime
        ? { lastScaleTime: previous.lastScaleTime }
        : {}),
    conditions,
  };
  return {
    ...(d.rescale ? { replicas: d.desiredReplicas } : {}),
    status,
    events,
    memory: d.memory,
    decision: d,
  };
}

/** What the controller needs. */
export interface AutoscalerControllerDeps {
  /** The API server. */
  client: KubeClient;
  /** Logger. */
  log: Logger;
  /** Events on Workloads. */
  events: EventRecorder;
  /** Workload caches by API group. */
  workloads: Map<string, ResourceCache<WorkloadObject>>;
  /** Instances of every Workload. */
  instances: InstanceCache;
  /** What hosts report. */
  hosts: { get(host: string): HostView | undefined };
  /** Time between two passes of one Workload (HPA's sync period; default 15 s). */
  syncMs?: number;
  /** Coordinator-wide defaults. */
  defaults?: AutoscalerDefaults;
}

export class AutoscalerController {
  readonly queue: WorkQueue;
  private readonly memory = new Map<string, AutoscalerMemory>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly d: AutoscalerControllerDeps) {
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      log: d.log,
      name: 'autoscaler',
      workers: 2,
      minIntervalMs: 1000,
    });
  }

  /** Queues a Workload (it changed). */
  enqueue(group: string, namespace: string, name: string): void {
    this.queue.add(queueKey(group, namespace, name));
  }

  /** Starts the periodic passes. */
  start(): void {
    this.timer = setInterval(() => this.enqueueAll(), this.d.syncMs ?? 15_000);
    this.timer.unref?.();
    this.enqueueAll();
  }

  stop(): void {
    clearInterval(this.timer);
    this.queue.stop();
  }

  /** Queues every autoscaled Workload. */
  enqueueAll(): void {
    for (const [group, cache] of this.d.workloads)
      for (const w of cache.list()) {
        const a = (w.spec as { autoscaling?: unknown } | undefined)?.autoscaling;
        if (a || w.status?.autoscaling) this.enqueue(group, w.metadata.namespace!, w.metadata.name);
      }
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const { group, namespace, name } = parseQueueKey(key);
    const wl = this.d.workloads.get(group)?.get(namespace, name);
    if (!wl || wl.metadata.deletionTimestamp) {
      this.memory.delete(key);
      return undefined;
    }
    const now = Date.now();
    const plan = planAutoscale({
      workload: wl,
      instances: this.d.instances
        .list(namespace)
        .filter((i) => i.metadata.labels?.[WORKLOAD_UID_LABEL] === wl.metadata.uid),
      hosts: this.d.hosts,
      memory: this.memory.get(key),
      now: performance.now(),
      nowIso: new Date(now).toISOString(),
      defaults: this.d.defaults ?? DEFAULT_AUTOSCALER,
    });
    const ref = { kind: WorkloadKind, group };
    if (plan.off) {
      this.memory.delete(key);
      if (wl.status?.autoscaling)
        await this.d.client.patchStatus(ref, namespace, name, { autoscaling: null });
      return undefined;
    }
    if (plan.replicas !== undefined) {
      // The windows are kept only once the count is written: a failed write is decided again.
      await this.d.client.patch(ref, namespace, name, { spec: { replicas: plan.replicas } });
      this.d.log.info(
        { workload: `${namespace}/${name}`, replicas: plan.replicas, why: plan.decision?.message },
        'autoscaled',
      );
    }
    if (plan.memory) this.memory.set(key, plan.memory);
    for (const e of plan.events) this.d.events.record(wl, e.type, e.reason, e.message);
    const before = wl.status?.autoscaling;
    if (plan.status && !sameStatus(before, plan.status)) {
      // A merge patch keeps keys it does not name: those no longer known (no measurement now) are nulled.
      const gone = Object.keys(before ?? {}).filter((k) => !(k in plan.status!));
      const body = { ...plan.status, ...Object.fromEntries(gone.map((k) => [k, null])) };
      await this.d.client.patchStatus(ref, namespace, name, { autoscaling: body });
    }
    return undefined;
  }
}

/** Equal but for the order of keys (what the API server returns may order them differently). */
function sameStatus(a: WorkloadAutoscalingStatus | undefined, b: WorkloadAutoscalingStatus): boolean {
  if (!a) return false;
  const norm = (s: WorkloadAutoscalingStatus) =>
    JSON.stringify(
      Object.fromEntries(
        Object.entries({
          ...s,
          conditions: (s.conditions ?? []).map((c) =>
            Object.fromEntries(Object.entries(c).sort(([x], [y]) => x.localeCompare(y))),
          ),
        }).sort(([x], [y]) => x.localeCompare(y)),
      ),
    );
  return norm(a) === norm(b);
}
