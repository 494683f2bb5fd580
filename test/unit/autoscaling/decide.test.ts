/** The autoscaler's decision (pure): HPA's algorithm, tolerance, bounds, stabilisation, rate limits, missing metrics. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AutoscalerMemory,
  type AutoscalerSpec,
  DEFAULT_SCALE_DOWN,
  DEFAULT_SCALE_UP,
  decide,
  type InstanceSample,
} from '../../../coordinator/autoscaling/decide.js';
import { resolveAutoscaling } from '../../../coordinator/autoscaling/spec.js';

const spec = (o: Partial<AutoscalerSpec> = {}): AutoscalerSpec => ({
  minReplicas: 1,
  maxReplicas: 10,
  targetUtilization: 50,
  tolerance: 0.1,
  up: DEFAULT_SCALE_UP,
  down: DEFAULT_SCALE_DOWN,
  ...o,
});
const empty: AutoscalerMemory = { recommendations: [], scaleEvents: [] };
/** n ready instances of request 100m, each using `usage` millicores. */
const at = (n: number, usage: number | undefined, ready = true): InstanceSample[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `i-${i}`,
    ready,
    requestMillis: 100,
    ...(usage === undefined ? {} : { usageMillis: usage }),
  }));

describe('decide', () => {
  it('desired = ceil(current × utilisation ÷ target)', () => {
    const d = decide({ spec: spec(), currentReplicas: 2, instances: at(2, 90), memory: empty, now: 1e6 });
    // 90 % against 50 %: ratio 1.8, 2 × 1.8 = 3.6 → 4.
    expect(d.desiredReplicas).toBe(4);
    expect(d.rescale).toBe(true);
    expect(Math.round(d.utilization!)).toBe(90);
    expect(d.message).toContain('CPU utilisation 90 % of request (target 50 %, 2 measured)');
  });

  it('does nothing within the tolerance', () => {
    const d = decide({ spec: spec(), currentReplicas: 3, instances: at(3, 54), memory: empty, now: 1e6 });
    expect(d).toMatchObject({ desiredReplicas: 3, rescale: false, reason: 'WithinTolerance' });
  });

  it('goes to the bounds first, whatever the metrics', () => {
    expect(decide({ spec: spec(), currentReplicas: 12, instances: [], memory: empty, now: 0 })).toMatchObject(
      {
        desiredReplicas: 10,
        reason: 'AboveMax',
      },
    );
    expect(
      decide({ spec: spec({ minReplicas: 2 }), currentReplicas: 1, instances: [], memory: empty, now: 0 }),
    ).toMatchObject({ desiredReplicas: 2, reason: 'BelowMin' });
  });

  it('leaves a Workload scaled to 0 by hand alone', () => {
    const d = decide({ spec: spec(), currentReplicas: 0, instances: [], memory: empty, now: 0 });
    expect(d).toMatchObject({ desiredReplicas: 0, rescale: false, reason: 'ScalingDisabled' });
  });

  it('keeps the count without any measurement', () => {
    const d = decide({
      spec: spec(),
      currentReplicas: 3,
      instances: at(3, undefined),
      memory: empty,
      now: 0,
    });
    expect(d).toMatchObject({ desiredReplicas: 3, rescale: false, reason: 'NoMetrics' });
  });

  it('counts missing instances as 0 % when scaling up, as the target when scaling down', () => {
    // Up: 2 at 100 %, 2 missing (0 %) → average 50 % of a 50 % target: no change.
    const up = decide({
      spec: spec(),
      currentReplicas: 4,
      instances: [...at(2, 100), ...at(2, undefined)],
      memory: empty,
      now: 0,
    });
    expect(up).toMatchObject({ desiredReplicas: 4, reason: 'WithinTolerance' });
    // Down: 2 at 0 %, 2 missing (50 %) → 25 %: ratio 0.5 × 4 = 2 (no window).
    const down = decide({
      spec: spec({ down: { ...DEFAULT_SCALE_DOWN, windowSeconds: 0 } }),
      currentReplicas: 4,
      instances: [...at(2, 0), ...at(2, undefined)],
      memory: empty,
      now: 0,
    });
    expect(down.desiredReplicas).toBe(2);
  });

  it('limits the scale-up rate (4 instances or 100 % per 15 s by default)', () => {
    const d = decide({
      spec: spec({ maxReplicas: 100 }),
      currentReplicas: 2,
      instances: at(2, 1000),
      memory: empty,
      now: 0,
    });
    // Proposal 40; max(2 + 4, 2 × 2) = 6.
    expect(d).toMatchObject({ proposal: 40, desiredReplicas: 6, limitedBy: 'scaleUpRate' });
    // 5 s later: the period started at 2, so still at most 6.
    const again = decide({
      spec: spec({ maxReplicas: 100 }),
      currentReplicas: 6,
      instances: at(6, 1000),
      memory: d.memory,
      now: 5000,
    });
    expect(again.desiredReplicas).toBe(6);
    // After the period: 6 → max(10, 12) = 12.
    const later = decide({
      spec: spec({ maxReplicas: 100 }),
      currentReplicas: 6,
      instances: at(6, 1000),
      memory: again.memory,
      now: 16_000,
    });
    expect(later.desiredReplicas).toBe(12);
  });

  it('scales down only after the window: the maximum of the proposals within it', () => {
    const s = spec({ down: { ...DEFAULT_SCALE_DOWN, windowSeconds: 60 } });
    let m = empty;
    const busy = decide({ spec: s, currentReplicas: 4, instances: at(4, 50), memory: m, now: 0 });
    m = busy.memory;
    const idle1 = decide({ spec: s, currentReplicas: 4, instances: at(4, 5), memory: m, now: 30_000 });
    expect(idle1).toMatchObject({ desiredReplicas: 4, limitedBy: 'stabilization' });
    const idle2 = decide({
      spec: s,
      currentReplicas: 4,
      instances: at(4, 5),
      memory: idle1.memory,
      now: 61_000,
    });
    expect(idle2.desiredReplicas).toBe(1);
  });

  it('resolves the spec with HPA defaults', () => {
    const r = resolveAutoscaling(
      { minReplicas: 1, maxReplicas: 3 },
      { downWindowSeconds: 20, tolerance: 0.1 },
    );
    expect(r).toMatchObject({ targetUtilization: 80, up: { windowSeconds: 0 }, down: { windowSeconds: 20 } });
    const w = resolveAutoscaling({
      minReplicas: 1,
      maxReplicas: 3,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } },
        },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: 5 } },
    });
    expect(r.down.policies).toEqual(DEFAULT_SCALE_DOWN.policies);
    expect(w).toMatchObject({ targetUtilization: 60, down: { windowSeconds: 5 } });
  });
});

const arbSpec = fc
  .record({
    min: fc.integer({ min: 1, max: 8 }),
    extra: fc.integer({ min: 0, max: 12 }),
    target: fc.integer({ min: 10, max: 150 }),
    upWindow: fc.integer({ min: 0, max: 120 }),
    downWindow: fc.integer({ min: 0, max: 600 }),
  })
  .map(({ min, extra, target, upWindow, downWindow }) =>
    spec({
      minReplicas: min,
      maxReplicas: min + extra,
      targetUtilization: target,
      up: { ...DEFAULT_SCALE_UP, windowSeconds: upWindow },
      down: { ...DEFAULT_SCALE_DOWN, windowSeconds: downWindow },
    }),
  );
const arbInstances = fc.array(
  fc.record({
    name: fc.constant('i'),
    ready: fc.boolean(),
    requestMillis: fc.integer({ min: 1, max: 4000 }),
    usageMillis: fc.option(fc.integer({ min: 0, max: 8000 }), { nil: undefined }),
  }),
  { maxLength: 25 },
);
/** A run of syncs: each step a time advance and the instances seen. */
const arbRun = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 90_000 }), instances: arbInstances }), {
  minLength: 1,
  maxLength: 30,
});

/** Runs syncs, applying each decision as the controller would; returns each step's input and decision. */
function simulate(s: AutoscalerSpec, start: number, run: Array<{ dt: number; instances: InstanceSample[] }>) {
  let memory = empty;
  let now = 1_000_000;
  let current = start;
  const out: Array<{ current: number; now: number; d: ReturnType<typeof decide> }> = [];
  for (const step of run) {
    now += step.dt;
    const d = decide({
      spec: s,
      currentReplicas: current,
      instances: step.instances.map(clean),
      memory,
      now,
    });
    out.push({ current, now, d });
    memory = d.memory;
    current = d.desiredReplicas;
  }
  return out;
}
const clean = (i: InstanceSample): InstanceSample =>
  i.usageMillis === undefined ? { name: i.name, ready: i.ready, requestMillis: i.requestMillis } : i;

describe('decide (properties)', () => {
  it('bounds: the result is within [min, max] unless scaled to 0 by hand', () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 1, max: 40 }), arbRun, (s, start, run) => {
        for (const { d } of simulate(s, start, run)) {
          expect(d.desiredReplicas).toBeGreaterThanOrEqual(s.minReplicas);
          expect(d.desiredReplicas).toBeLessThanOrEqual(s.maxReplicas);
        }
        const zero = decide({
          spec: s,
          currentReplicas: 0,
          instances: run[0]!.instances.map(clean),
          memory: empty,
          now: 0,
        });
        expect(zero.desiredReplicas).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('tolerance: a ratio within 10 % never changes an in-bounds count', () => {
    fc.assert(
      fc.property(
        arbSpec,
        fc.integer({ min: 0, max: 20 }),
        fc.double({ min: 0.9, max: 1.1, noNaN: true }),
        fc.integer({ min: 1, max: 20 }),
        (s, k, ratio, n) => {
          const current = Math.min(s.maxReplicas, s.minReplicas + (k % (s.maxReplicas - s.minReplicas + 1)));
          // Every instance measured and ready, at ratio × target (request 1000m so rounding stays small).
          const usage = Math.round((s.targetUtilization * ratio * 1000) / 100);
          const r = usage / ((s.targetUtilization * 1000) / 100);
          // (Exactly 10 % is at the mercy of floating point, in HPA too.)
          fc.pre(Math.abs(r - 1) <= 0.0999);
          const instances = Array.from({ length: n }, (_, i) => ({
            name: `i${i}`,
            ready: true,
            requestMillis: 1000,
            usageMillis: usage,
          }));
          const d = decide({ spec: s, currentReplicas: current, instances, memory: empty, now: 0 });
          expect(d.desiredReplicas).toBe(current);
          expect(d.rescale).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('stabilisation: a scale-down never goes below any proposal of its window', () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 1, max: 40 }), arbRun, (s, start, run) => {
        const steps = simulate(s, start, run);
        for (const { current, now, d } of steps) {
          if (d.desiredReplicas >= current || d.reason !== 'Recommended') continue;
          const within = d.memory.recommendations.filter((r) => r.at > now - s.down.windowSeconds * 1000);
          for (const r of within)
            expect(Math.min(r.replicas, s.maxReplicas)).toBeLessThanOrEqual(d.desiredReplicas);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('stabilisation: no scale-down within the window after a higher proposal', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 10 }),
        fc.integer({ min: 30, max: 600 }),
        fc.array(fc.integer({ min: 1, max: 29_000 }), { minLength: 1, maxLength: 10 }),
        (n, windowSeconds, gaps) => {
          const s = spec({ maxReplicas: 20, down: { ...DEFAULT_SCALE_DOWN, windowSeconds } });
          // At target: proposal n (stays). Then idle for less than the window: stays n.
          let d = decide({ spec: s, currentReplicas: n, instances: at(n, 50), memory: empty, now: 0 });
          let now = 0;
          for (const g of gaps) {
            now += g;
            if (now >= windowSeconds * 1000) break;
            d = decide({ spec: s, currentReplicas: n, instances: at(n, 0), memory: d.memory, now });
            expect(d.desiredReplicas).toBe(n);
          }
          // After the window the idle proposal (min) wins.
          const after = decide({
            spec: s,
            currentReplicas: n,
            instances: at(n, 0),
            memory: d.memory,
            now: windowSeconds * 1000 + 1,
          });
          expect(after.desiredReplicas).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rate: a scale-up never adds more than the policies allow within a period', () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 1, max: 40 }), arbRun, (s, start, run) => {
        const steps = simulate(s, Math.min(Math.max(start, s.minReplicas), s.maxReplicas), run);
        for (let i = 0; i < steps.length; i++) {
          const { now, d, current } = steps[i]!;
          if (d.desiredReplicas <= current) continue;
          // The count 15 s ago (the default policies' period): the last step at or before it, or the first.
          let base = steps[0]!.current;
          for (let j = 0; j <= i; j++) if (steps[j]!.now <= now - 15_000) base = steps[j]!.d.desiredReplicas;
          // HPA counts from the count at the start of the period (scale-downs within it added back).
          expect(d.desiredReplicas).toBeLessThanOrEqual(Math.max(base + 4, base * 2, s.minReplicas));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('memory holds nothing older than the longest window or period', () => {
    fc.assert(
      fc.property(arbSpec, fc.integer({ min: 1, max: 40 }), arbRun, (s, start, run) => {
        const steps = simulate(s, start, run);
        const { now, d } = steps.at(-1)!;
        const horizon = Math.max(s.up.windowSeconds, s.down.windowSeconds, 15) * 1000;
        for (const r of d.memory.recommendations) expect(r.at).toBeGreaterThan(now - horizon - 1);
        for (const e of d.memory.scaleEvents) expect(e.at).toBeGreaterThan(now - horizon - 1);
      }),
      { numRuns: 200 },
    );
  });
});
