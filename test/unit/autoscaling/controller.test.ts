/** The autoscaler controller's pass (pure part): samples from host reports, the write, status and events. */
import { describe, expect, it } from 'vitest';
import {
  type AutoscaleInput,
  planAutoscale,
  samplesOf,
} from '../../../coordinator/autoscaling/controller.js';
import { SURGE_LABEL, WORKLOAD_UID_LABEL } from '../../../coordinator/workloads/objects.js';
import type { HostView, InstanceObject, WorkloadObject } from '../../../coordinator/workloads/types.js';
import type { ReportedInstance } from '../../../shared/nats/messages.js';

const template = {
  spec: { image: 'nginx:latest', resources: { requests: { cpu: '200m', memory: '64Mi' } } },
};
const workload = (replicas: number, autoscaling?: Record<string, unknown>, status?: object): WorkloadObject =>
  ({
    apiVersion: 'compute.datumapis.com/v1alpha1',
    kind: 'Workload',
    metadata: { name: 'web', namespace: 'default', uid: 'u1', generation: 1 },
    spec: { replicas, template, ...(autoscaling ? { autoscaling } : {}) },
    ...(status ? { status } : {}),
  }) as WorkloadObject;
const instance = (n: number, surge = false): InstanceObject =>
  ({
    metadata: {
      name: `web-a-${n}`,
      namespace: 'default',
      labels: { [WORKLOAD_UID_LABEL]: 'u1', ...(surge ? { [SURGE_LABEL]: 'true' } : {}) },
    },
    spec: {
      workloadRef: { name: 'web' },
      location: 'a',
      host: 'h',
      templateHash: 't',
      resources: { cpuMillis: 200, memoryBytes: 1 },
    },
  }) as unknown as InstanceObject;
/** Host h reporting each instance ready on template t with this usage (undefined: no figure). */
const hosts = (usage: Array<number | undefined>, state: HostView['state'] = 'Ready') => {
  const instances = new Map<string, ReportedInstance>();
  for (const [n, u] of usage.entries())
    instances.set(`default/web-a-${n}`, {
      namespace: 'default',
      name: `web-a-${n}`,
      workload: 'web',
      templateHash: 't',
      phase: 'Running',
      ready: true,
      ...(u === undefined ? {} : { cpu: { usageMillis: u, windowMs: 5000 } }),
    });
  return new Map<string, HostView>([['h', { state, instances }]]);
};
const input = (o: Partial<AutoscaleInput>): AutoscaleInput => ({
  workload: workload(1),
  instances: [],
  hosts: new Map(),
  memory: undefined,
  now: 1_000_000,
  nowIso: '2026-12-02T12:00:00.000Z',
  defaults: { downWindowSeconds: 300, tolerance: 0.1 },
  ...o,
});
const auto = {
  minReplicas: 1,
  maxReplicas: 5,
  metrics: [
    { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } },
  ],
};

describe('samplesOf', () => {
  it('takes usage and readiness from the host report, the request from the Instance, and leaves surge out', () => {
    const s = samplesOf([instance(0), instance(1), instance(2, true)], hosts([150, undefined]));
    expect(s).toEqual([
      { name: 'web-a-0', ready: true, requestMillis: 200, usageMillis: 150 },
      { name: 'web-a-1', ready: true, requestMillis: 200 },
    ]);
    // A Disconnected host's figures are not trusted.
    expect(samplesOf([instance(0)], hosts([150], 'Disconnected'))[0]).toEqual({
      name: 'web-a-0',
      ready: false,
      requestMillis: 200,
    });
  });
});

describe('planAutoscale', () => {
  it('does nothing for a Workload without spec.autoscaling', () => {
    expect(planAutoscale(input({ workload: workload(3) }))).toEqual({ off: true, events: [] });
  });

  it('scales up with an Event naming the figures, and shows current and target utilisation', () => {
    const p = planAutoscale(
      input({ workload: workload(2, auto), instances: [instance(0), instance(1)], hosts: hosts([190, 170]) }),
    );
    // (190 + 170) / 400 = 90 % against 50 %: ceil(2 × 1.8) = 4.
    expect(p.replicas).toBe(4);
    expect(p.events).toEqual([
      {
        type: 'Normal',
        reason: 'SuccessfulRescale',
        message:
          'New size: 4 (from 2); CPU utilisation 90 % of request (target 50 %, 2 measured); proposal 4',
      },
    ]);
    expect(p.status).toMatchObject({
      currentReplicas: 2,
      desiredReplicas: 4,
      currentCPUUtilizationPercentage: 90,
      targetCPUUtilizationPercentage: 50,
      currentAverageCPUMillis: 180,
      measuredInstances: 2,
      lastScaleTime: '2026-12-02T12:00:00.000Z',
    });
    const cond = Object.fromEntries(p.status!.conditions!.map((c) => [c.type, c.status]));
    expect(cond).toEqual({ AbleToScale: 'True', ScalingActive: 'True', ScalingLimited: 'False' });
  });

  it('kubectl scale above maxReplicas: back to the bound at once (the autoscaler owns the count)', () => {
    const p = planAutoscale(
      input({ workload: workload(9, auto), instances: [instance(0)], hosts: hosts([100]) }),
    );
    expect(p.replicas).toBe(5);
    expect(p.status!.conditions!.find((c) => c.type === 'ScalingLimited')).toMatchObject({
      status: 'True',
      reason: 'TooManyReplicas',
    });
  });

  it('kubectl scale to 0: autoscaling off, said once', () => {
    const p = planAutoscale(input({ workload: workload(0, auto) }));
    expect(p.replicas).toBeUndefined();
    expect(p.events.map((e) => e.reason)).toEqual(['ScalingDisabled']);
    const again = planAutoscale(input({ workload: workload(0, auto, { autoscaling: p.status }) }));
    expect(again.events).toEqual([]);
  });

  it('without measurements keeps the count: ScalingActive False and one Warning', () => {
    const p = planAutoscale(
      input({
        workload: workload(2, auto),
        instances: [instance(0), instance(1)],
        hosts: hosts([undefined, undefined]),
      }),
    );
    expect(p.replicas).toBeUndefined();
    expect(p.events).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'FailedGetResourceMetric' }),
    ]);
    expect(p.status!.conditions!.find((c) => c.type === 'ScalingActive')!.status).toBe('False');
  });

  it('scales down only after the window: a pass keeps its memory for the next', () => {
    const base = {
      workload: workload(4, { ...auto, behavior: { scaleDown: { stabilizationWindowSeconds: 30 } } }),
      instances: [0, 1, 2, 3].map((n) => instance(n)),
    };
    const busy = planAutoscale(input({ ...base, hosts: hosts([100, 100, 100, 100]) }));
    expect(busy.replicas).toBeUndefined();
    const idle = planAutoscale(
      input({ ...base, hosts: hosts([0, 0, 0, 0]), memory: busy.memory, now: 1_010_000 }),
    );
    expect(idle.replicas).toBeUndefined();
    const later = planAutoscale(
      input({ ...base, hosts: hosts([0, 0, 0, 0]), memory: idle.memory, now: 1_031_000 }),
    );
    expect(later.replicas).toBe(1);
    expect(later.events[0]!.message).toMatch(/^New size: 1 \(from 4\); CPU utilisation 0.0 % of request/);
  });
});

describe('spec.autoscaling validation', () => {
  it('refuses minReplicas above maxReplicas and unknown metrics, naming the field', async () => {
    const { WorkloadSpec } = await import('../../../shared/api/index.js');
    const { formatIssues } = await import('../../../shared/nats/messages.js');
    const bad = WorkloadSpec.safeParse({
      replicas: 1,
      template,
      autoscaling: { minReplicas: 4, maxReplicas: 2 },
    });
    expect(bad.success).toBe(false);
    expect(formatIssues(bad.error!, 'spec')).toContain(
      'spec.autoscaling.minReplicas: minReplicas must not exceed maxReplicas',
    );
    const memory = WorkloadSpec.safeParse({
      replicas: 1,
      template,
      autoscaling: {
        maxReplicas: 2,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 50 } },
          },
        ],
      },
    });
    expect(formatIssues(memory.error!, 'spec')).toContain('spec.autoscaling.metrics.0.resource.name');
    const ok = WorkloadSpec.parse({ replicas: 1, template, autoscaling: { maxReplicas: 2 } });
    expect(ok.autoscaling).toEqual({ minReplicas: 1, maxReplicas: 2 });
  });
});
