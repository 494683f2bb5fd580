/** ResourceQuota admission (pure) and what the planner does with it. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  add,
  admitReplicas,
  type QuotaAmounts,
  quotaMessage,
  ZERO,
} from '../../../coordinator/quota/admit.js';
import { planWorkload } from '../../../coordinator/workloads/planner.js';
import { workloadStatus } from '../../../coordinator/workloads/status.js';
import { snapshot, valid, world } from '../workloads/world.js';

const per: QuotaAmounts = {
  requestsCpuMillis: 500,
  requestsMemoryBytes: 64 * 2 ** 20,
  limitsCpuMillis: 1000,
  limitsMemoryBytes: 128 * 2 ** 20,
};

describe('admitReplicas', () => {
  it('admits what fits under requests.cpu and names the quota, used, asked and hard', () => {
    const a = admitReplicas({
      quotas: [{ name: 'compute', hard: { 'requests.cpu': '2', pods: '10' } }],
      usedByOthers: { ...ZERO, requestsCpuMillis: 500 },
      perInstance: per,
      wanted: 5,
      placed: 0,
    });
    expect(a).toEqual({
      allowed: 3,
      applies: true,
      blocked: { quota: 'compute', resource: 'requests.cpu', used: '2', asked: '500m', hard: '2' },
    });
    expect(quotaMessage(a, 5)).toBe(
      'ResourceQuota compute: requests.cpu used 2 of 2, each replica asks 500m: 3 of 5 replicas admitted',
    );
  });

  it('takes the tightest of every quota and resource: limits.memory, plain cpu', () => {
    const a = admitReplicas({
      quotas: [
        { name: 'a', hard: { cpu: '10' } },
        { name: 'b', hard: { 'limits.memory': '256Mi' } },
      ],
      usedByOthers: ZERO,
      perInstance: per,
      wanted: 4,
      placed: 0,
    });
    expect(a.allowed).toBe(2);
    expect(a.blocked).toMatchObject({ quota: 'b', resource: 'limits.memory', used: '256Mi', asked: '128Mi' });
  });

  it('ignores quotas on resources it does not track; keeps what is placed when a quota shrinks', () => {
    expect(
      admitReplicas({
        quotas: [{ name: 'c', hard: { 'count/workloads.compute.datumapis.com': '1' } }],
        usedByOthers: ZERO,
        perInstance: per,
        wanted: 9,
        placed: 0,
      }),
    ).toEqual({ allowed: 9, applies: false });
    const shrunk = admitReplicas({
      quotas: [{ name: 'q', hard: { 'requests.cpu': '1' } }],
      usedByOthers: ZERO,
      perInstance: per,
      wanted: 4,
      placed: 3,
    });
    expect(shrunk.allowed).toBe(3);
    expect(shrunk.blocked?.used).toBe('1500m');
  });

  it('properties: never above wanted, never below min(wanted, placed), within hard when growing', () => {
    const amounts = fc.record({
      requestsCpuMillis: fc.integer({ min: 0, max: 4000 }),
      requestsMemoryBytes: fc.integer({ min: 0, max: 2 ** 32 }),
      limitsCpuMillis: fc.integer({ min: 0, max: 8000 }),
      limitsMemoryBytes: fc.integer({ min: 0, max: 2 ** 33 }),
    });
    const key = fc.constantFrom(
      'requests.cpu',
      'cpu',
      'requests.memory',
      'memory',
      'limits.cpu',
      'limits.memory',
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ name: fc.string(), hard: fc.dictionary(key, fc.integer({ min: 0, max: 2 ** 34 })) }),
          { maxLength: 3 },
        ),
        amounts,
        amounts,
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 50 }),
        (quotas, usedByOthers, perInstance, wanted, placed) => {
          const a = admitReplicas({ quotas, usedByOthers, perInstance, wanted, placed });
          expect(a.allowed).toBeLessThanOrEqual(wanted);
          expect(a.allowed).toBeGreaterThanOrEqual(Math.min(wanted, placed));
          if (a.allowed > placed) {
            const total = add(usedByOthers, perInstance, a.allowed);
            for (const q of quotas)
              for (const [r, hard] of Object.entries(q.hard)) {
                const k = {
                  'requests.cpu': 'requestsCpuMillis',
                  cpu: 'requestsCpuMillis',
                  'requests.memory': 'requestsMemoryBytes',
                  memory: 'requestsMemoryBytes',
                  'limits.cpu': 'limitsCpuMillis',
                  'limits.memory': 'limitsMemoryBytes',
                }[r] as keyof QuotaAmounts;
                // Integers are cores (cpu) or bytes (memory). A resource a replica asks none of is not held
                // to the quota (others may already exceed it; as in Kubernetes, zero amounts are not checked).
                const h = k.endsWith('CpuMillis') ? hard * 1000 : hard;
                if (perInstance[k] > 0) expect(total[k]).toBeLessThanOrEqual(h);
              }
          }
          if (a.allowed < wanted) expect(a.blocked).toBeDefined();
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('the planner under a quota', () => {
  it('places only the admitted replicas, with QuotaGranted False, Progressing QuotaExceeded and one warning', () => {
    const w = world(
      {
        replicas: 4,
        template: { spec: { image: 'nginx:1', resources: { requests: { cpu: '500m', memory: '64Mi' } } } },
      },
      { h1: 'a' },
    );
    const admission = admitReplicas({
      quotas: [{ name: 'compute', hard: { 'requests.cpu': '1' } }],
      usedByOthers: ZERO,
      perInstance: per,
      wanted: 4,
      placed: 0,
    });
    const plan = planWorkload({ ...snapshot(w), quota: admission }, valid(w));
    expect(plan.create).toHaveLength(2);
    expect(plan.events.filter((e) => e.reason === 'QuotaExceeded')).toEqual([
      {
        type: 'Warning',
        reason: 'QuotaExceeded',
        message:
          'ResourceQuota compute: requests.cpu used 1 of 1, each replica asks 500m: 2 of 4 replicas admitted',
      },
    ]);
    const status = workloadStatus(plan.status);
    expect(status.conditions?.find((c) => c.type === 'QuotaGranted')).toMatchObject({
      status: 'False',
      reason: 'QuotaExceeded',
    });
    expect(status.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'QuotaExceeded',
    });
    // The same verdict again: no second warning.
    w.workload.status = status;
    const again = planWorkload({ ...snapshot(w), quota: admission }, valid(w));
    expect(again.events.filter((e) => e.reason === 'QuotaExceeded')).toEqual([]);
    // No quota any more: the condition goes.
    const free = workloadStatus(planWorkload(snapshot(w), valid(w)).status);
    expect(free.conditions?.some((c) => c.type === 'QuotaGranted')).toBe(false);
  });
});
