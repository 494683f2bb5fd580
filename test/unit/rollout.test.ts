/** Rolling updates: which instances switch to a new template when, and the surge instances beside them (pure). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  planRollout,
  type RolloutInput,
  type RolloutInstance,
  resolveIntOrPercent,
} from '../../coordinator/workloads/rollout.js';

const inst = (
  name: string,
  location: string,
  hash = 'old',
  ready = true,
  surge = false,
  host = `${location}-h`,
): RolloutInstance => ({ name, location, host, hash, ready, surge });

const base = { hash: 'new', strategy: 'RollingUpdate' as const };

describe('planRollout', () => {
  it('without surge, switches within maxUnavailable, host by host', () => {
    const p = planRollout({
      ...base,
      desired: 4,
      maxUnavailable: 2,
      maxSurge: 0,
      instances: [inst('b-0', 'b'), inst('a-1', 'a'), inst('a-0', 'a'), inst('c-0', 'c')],
    });
    expect(p.switchNow).toEqual(['a-0', 'a-1']);
    expect(p.waiting).toBe(2);
    expect(p.addSurge).toEqual([]);
  });

  it('treats maxSurge 0 and maxUnavailable 0 as one at a time', () => {
    const p = planRollout({
      ...base,
      desired: 2,
      maxUnavailable: 0,
      maxSurge: 0,
      instances: [inst('a-0', 'a'), inst('a-1', 'a')],
    });
    expect(p.switchNow).toEqual(['a-0']);
  });

  it('switches unready old instances for free, before ready ones', () => {
    const p = planRollout({
      ...base,
      desired: 3,
      maxUnavailable: 0,
      maxSurge: 1,
      instances: [inst('a-0', 'a'), inst('a-1', 'a', 'old', false), inst('a-2', 'a')],
    });
    expect(p.switchNow).toEqual(['a-1']);
    expect(p.addSurge).toEqual([{ location: 'a', host: 'a-h' }]);
  });

  it('never switches an instance of unknown state (its host not heard since a restart), nor counts it ready', () => {
    // A coordinator restarted mid-rollout: a-0 already switched and ready; the hosts of a-1 and a-2 not heard yet.
    const unknown = (name: string) => ({ ...inst(name, 'a', 'old', false), unknown: true });
    const p = planRollout({
      ...base,
      desired: 3,
      maxUnavailable: 1,
      maxSurge: 0,
      instances: [inst('a-0', 'a', 'new'), unknown('a-1'), unknown('a-2')],
    });
    expect(p.switchNow).toEqual([]);
    expect(p.waiting).toBe(2);
    // Once heard (ready on the old template), one switches.
    const heard = planRollout({
      ...base,
      desired: 3,
      maxUnavailable: 1,
      maxSurge: 0,
      instances: [inst('a-0', 'a', 'new'), inst('a-1', 'a'), inst('a-2', 'a')],
    });
    expect(heard.switchNow).toEqual(['a-1']);
  });

  it('with surge and maxUnavailable 0: a surge instance first, a switch only once it is ready', () => {
    const four = ['a-0', 'a-1', 'a-2', 'a-3'].map((n) => inst(n, 'a'));
    const first = planRollout({ ...base, desired: 4, maxUnavailable: 0, maxSurge: 1, instances: four });
    expect(first.switchNow).toEqual([]);
    expect(first.addSurge).toEqual([{ location: 'a', host: 'a-h' }]);
    const surgeUnready = [...four, inst('a-surge-0', 'a', 'new', false, true)];
    const waiting = planRollout({
      ...base,
      desired: 4,
      maxUnavailable: 0,
      maxSurge: 1,
      instances: surgeUnready,
    });
    expect(waiting.switchNow).toEqual([]);
    expect([...waiting.keepSurge]).toEqual(['a-surge-0']);
    expect(waiting.addSurge).toEqual([]);
    const surgeReady = [...four, inst('a-surge-0', 'a', 'new', true, true)];
    const go = planRollout({ ...base, desired: 4, maxUnavailable: 0, maxSurge: 1, instances: surgeReady });
    expect(go.switchNow).toEqual(['a-0']);
  });

  it('removes surge instances once every replica is ready on the new template', () => {
    const p = planRollout({
      ...base,
      desired: 2,
      maxUnavailable: 0,
      maxSurge: 1,
      instances: [
        inst('a-0', 'a', 'new'),
        inst('a-1', 'a', 'new'),
        inst('a-surge-0', 'a', 'new', true, true),
      ],
    });
    expect(p.keepSurge.size).toBe(0);
    expect(p.addSurge).toEqual([]);
    expect(p.switchNow).toEqual([]);
  });

  it('runs no surge for a first placement or a scale-up', () => {
    const p = planRollout({
      ...base,
      desired: 3,
      maxUnavailable: 0,
      maxSurge: 1,
      instances: [inst('a-0', 'a', 'new'), inst('a-1', 'a', 'new', false), inst('a-2', 'a', 'new', false)],
    });
    expect(p).toEqual({ switchNow: [], keepSurge: new Set(), addSurge: [], waiting: 0 });
  });

  it('Recreate switches everything at once and runs no surge', () => {
    const p = planRollout({
      ...base,
      strategy: 'Recreate',
      desired: 3,
      maxUnavailable: 0,
      maxSurge: 1,
      instances: [inst('a-0', 'a'), inst('b-0', 'b'), inst('c-0', 'c', 'new')],
    });
    expect(p.switchNow.sort()).toEqual(['a-0', 'b-0']);
    expect(p.addSurge).toEqual([]);
  });
});

/**
 * Runs a whole rollout: every pass applies the plan (switched and new instances are not ready), then the
 * agents make some of the unready instances on the new template ready. Returns the fewest ready and the most
 * instances seen after any pass, and the passes taken.
 */
function simulate(
  input: Omit<RolloutInput, 'instances'> & { layout: number[] },
  readyPicks: (candidates: number) => number[],
): { fewestReady: number; most: number; passes: number; final: RolloutInstance[] } {
  let instances: RolloutInstance[] = input.layout.flatMap((n, l) =>
    Array.from({ length: n }, (_, i) => inst(`l${l}-${i}`, `l${l}`, 'old', true, false, `l${l}-h${i % 2}`)),
  );
  let fewestReady = Number.POSITIVE_INFINITY;
  let most = 0;
  let passes = 0;
  let surgeSeq = 0;
  const done = () => instances.every((i) => !i.surge && i.hash === input.hash && i.ready);
  while (!done() && passes < 500) {
    passes++;
    const p = planRollout({ ...input, instances });
    const switched = new Set(p.switchNow);
    instances = instances
      .filter((i) => !i.surge || p.keepSurge.has(i.name))
      .map((i) => (switched.has(i.name) ? { ...i, hash: input.hash, ready: false } : i));
    for (const s of p.addSurge)
      instances.push({ name: `s${surgeSeq++}`, ...s, hash: input.hash, ready: false, surge: true });
    fewestReady = Math.min(fewestReady, instances.filter((i) => i.ready).length);
    most = Math.max(most, instances.length);
    const unready = instances.filter((i) => !i.ready);
    for (const k of readyPicks(unready.length)) if (unready[k]) unready[k].ready = true;
  }
  return { fewestReady, most, passes, final: instances };
}

describe('a whole rolling update (property)', () => {
  it('never drops below desired − maxUnavailable ready, never exceeds desired + maxSurge, and finishes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.infiniteStream(fc.array(fc.nat(8), { maxLength: 3 })),
        (layout, maxSurge, maxUnavailable, picks) => {
          const desired = layout.reduce((a, b) => a + b, 0);
          const floor = desired - (maxSurge === 0 && maxUnavailable === 0 ? 1 : maxUnavailable);
          const it = picks[Symbol.iterator]();
          const r = simulate(
            { ...base, desired, maxSurge, maxUnavailable, layout },
            // Some unready instances become ready each pass; at least one, so the rollout can progress.
            (n) => (n ? [0, ...(it.next().value as number[])] : []),
          );
          expect(r.fewestReady).toBeGreaterThanOrEqual(Math.max(0, floor));
          expect(r.most).toBeLessThanOrEqual(desired + maxSurge);
          expect(r.passes).toBeLessThan(500);
          expect(r.final).toHaveLength(desired);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the reported case: four instances in one location, maxSurge 1, maxUnavailable 0, never below four ready', () => {
    const r = simulate({ ...base, desired: 4, maxSurge: 1, maxUnavailable: 0, layout: [4] }, (n) =>
      Array.from({ length: n }, (_, i) => i),
    );
    expect(r.fewestReady).toBe(4);
    expect(r.most).toBe(5);
  });
});

describe('resolveIntOrPercent', () => {
  it('defaults to 25% rounded down and reads numbers and percentages', () => {
    expect(resolveIntOrPercent(undefined, 3)).toBe(0);
    expect(resolveIntOrPercent(undefined, 8)).toBe(2);
    expect(resolveIntOrPercent('50%', 5)).toBe(2);
    expect(resolveIntOrPercent(3, 5)).toBe(3);
    expect(resolveIntOrPercent(undefined, 3, 25, true)).toBe(1);
  });
});
