/** The Workload planner (pure): snapshot in, plain-data plan out; and what passes over a simulated world do. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SURGE_ORDINAL_BASE } from '../../../coordinator/workloads/naming.js';
import { planBlocked, planWorkload } from '../../../coordinator/workloads/planner.js';
import type { WorkloadPlan } from '../../../coordinator/workloads/types.js';
import { applyPlan, hostsConverge, NOW, snapshot, valid, type World, world } from './world.js';

const spec = (replicas: number, image = 'nginx:1', strategy?: Record<string, unknown>) => ({
  replicas,
  template: { spec: { image, resources: { requests: { cpu: '100m', memory: '64Mi' } } } },
  ...(strategy ? { strategy } : {}),
});

function pass(w: World): WorkloadPlan {
  const plan = planWorkload(snapshot(w), valid(w));
  applyPlan(w, plan);
  return plan;
}

/** Passes until a pass changes nothing, hosts converging in between; returns how many it took. */
function settle(w: World, max = 60): number {
  for (let n = 1; n <= max; n++) {
    const plan = pass(w);
    hostsConverge(w);
    if (done(plan)) return n;
  }
  throw new Error(`no fixed point after ${max} passes`);
}

/** Whether a pass wrote nothing and waits for nothing (no rollout under way). */
function done(plan: WorkloadPlan): boolean {
  const { create, remove, switchTemplate, removeAfterIntents } = plan;
  return [create, remove, switchTemplate, removeAfterIntents].every((l) => !l.length) && !plan.requeueAfterMs;
}

/** The parts of a plan that write (intents without their timestamps). */
function writes(plan: WorkloadPlan) {
  return {
    create: plan.create,
    remove: plan.remove,
    switchTemplate: plan.switchTemplate,
    removeAfterIntents: plan.removeAfterIntents,
    deployments: plan.deployments,
    intents: plan.intents?.map((i) => i.intent),
  };
}

describe('planWorkload', () => {
  it('places a new Workload: Instances named per location, one deployment and one intent per location', () => {
    const w = world(spec(3), { 'h-a': 'loc-a', 'h-b': 'loc-b' });
    const plan = planWorkload(snapshot(w), valid(w));
    expect(plan.create.map((c) => c.name).sort()).toEqual(
      expect.arrayContaining(plan.create.map((c) => `web-${c.location}-${c.ordinal}`)),
    );
    expect(plan.create).toHaveLength(3);
    expect(plan.create.every((c) => !c.surge && c.ordinal < SURGE_ORDINAL_BASE)).toBe(true);
    expect([...plan.deployments!.keys()].sort()).toEqual(['loc-a', 'loc-b']);
    const replicas = [...plan.deployments!.values()].reduce((n, d) => n + d.replicas, 0);
    expect(replicas).toBe(3);
    expect(plan.intents!.map((i) => i.intent.location).sort()).toEqual(['loc-a', 'loc-b']);
    expect(plan.intents!.every((i) => i.intent.templateHash === plan.template.hash)).toBe(true);
    expect(plan.intents!.every((i) => i.intent.updatedAt === NOW)).toBe(true);
    expect(plan.events.map((e) => e.reason)).toEqual(['Placed']);
    expect(plan.status.desired).toBe(3);
    expect(plan.instanceStatus).toHaveLength(3);
    expect(plan.requeueAfterMs).toBeUndefined();
  });

  it('plans no write for a Workload that is as it should be', () => {
    const w = world(spec(2), { 'h-a': 'loc-a' });
    settle(w);
    const plan = planWorkload(snapshot(w), valid(w));
    expect(plan.create).toEqual([]);
    expect(plan.remove).toEqual([]);
    expect(plan.switchTemplate).toEqual([]);
    expect(plan.events).toEqual([]);
    expect(plan.intents!.map((i) => i.intent)).toEqual(w.intents.map((i) => i.intent));
    expect(plan.deploymentStatus.get('loc-a')).toEqual({ replicas: 2, readyReplicas: 2 });
  });

  it('scales down with a ScaledDown event per removed Instance', () => {
    const w = world(spec(3), { 'h-a': 'loc-a' });
    settle(w);
    w.workload.spec = spec(1);
    const plan = pass(w);
    expect(plan.remove).toHaveLength(2);
    expect(plan.events.filter((e) => e.reason === 'ScaledDown')).toHaveLength(2);
    expect(plan.deployments!.get('loc-a')!.replicas).toBe(1);
  });

  it('rolls a template change with a surge instance first, named and numbered as surge', () => {
    const w = world(spec(2, 'nginx:1', { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }), {
      'h-a': 'loc-a',
    });
    settle(w);
    const oldHash = w.instances[0]!.spec.templateHash;
    w.workload.spec = spec(2, 'nginx:2', { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const plan = pass(w);
    expect(plan.create).toEqual([
      { name: 'web-loc-a-surge-0', location: 'loc-a', host: 'h-a', ordinal: SURGE_ORDINAL_BASE, surge: true },
    ]);
    expect(plan.events.map((e) => e.reason)).toContain('SurgeStarted');
    // The older template stays recorded while instances still run it.
    expect(plan.deployments!.get('loc-a')!.revisions!.map((r) => r.templateHash)).toEqual([oldHash]);
    expect(plan.intents![0]!.intent.revisions!.map((r) => r.templateHash)).toEqual([oldHash]);
    expect(plan.requeueAfterMs).toBe(5_000);
    // Surge instances are no replicas: placement neither counts nor removes them.
    expect(snapshot(w).placement.instances.find((i) => i.name === 'web-loc-a-surge-0')?.surge).toBe(true);
    expect(plan.remove).toEqual([]);
  });

  it('ends a rollout with every replica on the new template and no surge instance left', () => {
    const w = world(spec(4, 'nginx:1', { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }), {
      'h-a': 'loc-a',
    });
    settle(w);
    w.workload.spec = spec(4, 'nginx:2', { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    settle(w);
    const hash = planWorkload(snapshot(w), valid(w)).template.hash;
    expect(w.instances.map((i) => [i.metadata.name, i.spec.templateHash])).toEqual(
      ['web-loc-a-0', 'web-loc-a-1', 'web-loc-a-2', 'web-loc-a-3'].map((n) => [n, hash]),
    );
    expect(w.deployments[0]!.spec.revisions).toEqual([]);
  });
});

describe('planBlocked', () => {
  it('changes nothing but the status, with a warning', () => {
    const w = world(spec(2), { 'h-a': 'loc-a' });
    settle(w);
    const plan = planBlocked(snapshot(w), { reason: 'MissingReferences', message: 'waiting for secret/x' });
    expect(plan.deployments).toBeUndefined();
    expect(plan.intents).toBeUndefined();
    expect([
      plan.create,
      plan.remove,
      plan.switchTemplate,
      plan.removeAfterIntents,
      plan.instanceStatus,
    ]).toEqual([[], [], [], [], []]);
    expect(plan.events).toEqual([
      { type: 'Warning', reason: 'MissingReferences', message: 'waiting for secret/x' },
    ]);
    expect(plan.status.invalid).toEqual({ reason: 'MissingReferences', message: 'waiting for secret/x' });
    expect(plan.status.instances).toHaveLength(2);
  });
});

describe('planWorkload properties', () => {
  const arbitraryCase = fc.record({
    hosts: fc.integer({ min: 1, max: 4 }),
    locations: fc.integer({ min: 1, max: 3 }),
    replicas: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }),
    maxSurge: fc.integer({ min: 0, max: 2 }),
    maxUnavailable: fc.integer({ min: 0, max: 2 }),
  });

  it('converges on every change of replicas and template; the fixed point plans no write; names are never reused while they exist', () => {
    fc.assert(
      fc.property(arbitraryCase, (c) => {
        const hosts: Record<string, string> = {};
        for (let h = 0; h < c.hosts; h++) hosts[`h-${h}`] = `loc-${h % c.locations}`;
        const strategy = { rollingUpdate: { maxSurge: c.maxSurge, maxUnavailable: c.maxUnavailable } };
        const w = world(spec(c.replicas[0]!, 'img:0', strategy), hosts);
        c.replicas.forEach((replicas, version) => {
          w.workload.spec = spec(replicas, `img:${version}`, strategy);
          let settled = false;
          for (let n = 0; n < 60 && !settled; n++) {
            const before = new Set(w.instances.map((i) => i.metadata.name));
            const plan = pass(w);
            hostsConverge(w);
            // A new Instance takes no name that exists, and its ordinal says whether it is a surge instance.
            for (const x of plan.create) {
              expect(before.has(x.name)).toBe(false);
              expect(x.surge ? x.ordinal >= SURGE_ORDINAL_BASE : x.ordinal < SURGE_ORDINAL_BASE).toBe(true);
            }
            settled = done(plan);
          }
          expect(settled).toBe(true);
          const plan = planWorkload(snapshot(w), valid(w));
          // Fixed point: every replica placed on the current template, no surge instance, nothing to write.
          expect(w.instances.filter((i) => i.spec.templateHash === plan.template.hash)).toHaveLength(
            replicas,
          );
          expect(w.instances).toHaveLength(replicas);
          expect(writes(plan)).toEqual({
            ...writes(plan),
            create: [],
            remove: [],
            switchTemplate: [],
            removeAfterIntents: [],
          });
          expect(plan.intents!.map((i) => i.intent)).toEqual(w.intents.map((i) => i.intent));
          expect(plan.deployments).toEqual(new Map(w.deployments.map((d) => [d.spec.location, d.spec])));
          expect(plan.status.instances.filter((o) => o.reported?.ready)).toHaveLength(replicas);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('gives the same plan for the same snapshot', () => {
    fc.assert(
      fc.property(arbitraryCase, (c) => {
        const hosts: Record<string, string> = {};
        for (let h = 0; h < c.hosts; h++) hosts[`h-${h}`] = `loc-${h % c.locations}`;
        const w = world(spec(c.replicas[0]!), hosts);
        settle(w);
        w.workload.spec = spec(c.replicas.at(-1)!, 'img:next');
        const s = snapshot(w);
        expect(writes(planWorkload(s, valid(w)))).toEqual(writes(planWorkload(s, valid(w))));
      }),
      { numRuns: 40 },
    );
  });
});
