/** Rolling updates: which locations get a new template when (pure). */
import { describe, expect, it } from 'vitest';
import {
  planRollout,
  type RolloutLocation,
  resolveIntOrPercent,
} from '../../coordinator/workloads/rollout.js';

const loc = (
  location: string,
  publishedHash: string | undefined,
  instances: number,
  ready = instances,
  surge = 0,
  surgeReady = 0,
): RolloutLocation => ({ location, publishedHash, instances, ready, surge, surgeReady });

describe('planRollout', () => {
  it('updates one location at a time while everything else is ready (maxUnavailable 0)', () => {
    const p = planRollout({
      hash: 'new',
      strategy: 'RollingUpdate',
      maxUnavailable: 0,
      maxSurge: 0,
      locations: [loc('b', 'old', 1), loc('a', 'old', 1), loc('c', 'old', 1)],
    });
    expect([...p.update]).toEqual(['a']);
    expect(p.waiting).toEqual(['b', 'c']);
  });

  it('waits while an updated location is not ready again, then moves on', () => {
    const waiting = planRollout({
      hash: 'new',
      strategy: 'RollingUpdate',
      maxUnavailable: 0,
      maxSurge: 0,
      locations: [loc('a', 'new', 1, 0), loc('b', 'old', 1), loc('c', 'old', 1)],
    });
    expect([...waiting.update]).toEqual(['a']);
    const next = planRollout({
      hash: 'new',
      strategy: 'RollingUpdate',
      maxUnavailable: 0,
      maxSurge: 0,
      locations: [loc('a', 'new', 1), loc('b', 'old', 1), loc('c', 'old', 1)],
    });
    expect([...next.update].sort()).toEqual(['a', 'b']);
  });

  it('rolls several locations at once within maxUnavailable', () => {
    const p = planRollout({
      hash: 'new',
      strategy: 'RollingUpdate',
      maxUnavailable: 2,
      maxSurge: 0,
      locations: [loc('a', 'old', 1), loc('b', 'old', 1), loc('c', 'old', 1)],
    });
    expect([...p.update].sort()).toEqual(['a', 'b']);
  });

  it('gives new locations the new template at once, and Recreate updates everything', () => {
    expect([
      ...planRollout({
        hash: 'n',
        strategy: 'RollingUpdate',
        maxUnavailable: 0,
        maxSurge: 0,
        locations: [loc('a', undefined, 2, 0), loc('b', 'o', 1)],
      }).update,
    ]).toEqual(['a']);
    expect(
      planRollout({
        hash: 'n',
        strategy: 'Recreate',
        maxUnavailable: 0,
        maxSurge: 0,
        locations: [loc('a', 'o', 2), loc('b', 'o', 1)],
      }).update.size,
    ).toBe(2);
  });

  it('without surge: never more unready instances on the new template than the budget, except one location at a time', () => {
    for (let seed = 0; seed < 200; seed++) {
      const rnd = (n: number) => Math.floor(Math.abs(Math.sin(seed * 97 + n * 13)) * 10_000) % 4;
      const locations = ['a', 'b', 'c', 'd'].map((l, i) => {
        const instances = rnd(i) + 1;
        return loc(l, rnd(i + 10) ? 'old' : 'new', instances, Math.min(instances, rnd(i + 20) + 1));
      });
      const maxUnavailable = rnd(99);
      const p = planRollout({
        hash: 'new',
        strategy: 'RollingUpdate',
        maxUnavailable,
        maxSurge: 0,
        locations,
      });
      const before = locations
        .filter((l) => l.publishedHash === 'new')
        .reduce((n, l) => n + l.instances - l.ready, 0);
      const rolled = locations.filter((l) => l.publishedHash === 'old' && p.update.has(l.location));
      const inFlight = before + rolled.reduce((n, l) => n + l.instances, 0);
      if (rolled.length)
        expect(inFlight <= Math.max(1, maxUnavailable) || (before === 0 && rolled.length === 1)).toBe(true);
    }
  });
});

describe('planRollout with surge', () => {
  const opts = { hash: 'new', strategy: 'RollingUpdate' as const, maxUnavailable: 0, maxSurge: 1 };

  it('starts surge instances in one location before anything switches', () => {
    const p = planRollout({
      ...opts,
      locations: [loc('a', 'old', 1), loc('b', 'old', 1), loc('c', 'old', 1)],
    });
    expect([...p.update]).toEqual([]);
    expect([...p.surge]).toEqual([['a', 1]]);
    expect(p.waiting).toEqual(['b', 'c']);
  });

  it('switches the location once its surge is ready, keeps the surge until the location is ready again', () => {
    const switching = planRollout({ ...opts, locations: [loc('a', 'old', 1, 1, 1, 1), loc('b', 'old', 1)] });
    expect([...switching.update]).toEqual(['a']);
    expect(switching.surge.get('a')).toBe(1);
    const restarting = planRollout({ ...opts, locations: [loc('a', 'new', 1, 0, 1, 1), loc('b', 'old', 1)] });
    expect(restarting.surge.get('a')).toBe(1);
    expect(restarting.waiting).toEqual(['b']);
    const done = planRollout({ ...opts, locations: [loc('a', 'new', 1, 1, 1, 1), loc('b', 'old', 1)] });
    expect(done.surge.has('a')).toBe(false);
    expect([...done.surge]).toEqual([]); // b waits until a's surge is gone
    const next = planRollout({ ...opts, locations: [loc('a', 'new', 1, 1), loc('b', 'old', 1)] });
    expect([...next.surge]).toEqual([['b', 1]]);
  });

  it('rolls a broken location first', () => {
    const p = planRollout({ ...opts, locations: [loc('a', 'old', 1), loc('b', 'old', 1, 0)] });
    expect([...p.surge]).toEqual([['b', 1]]);
  });

  it('a whole rollout never drops below the desired ready count and finishes', () => {
    for (let seed = 0; seed < 100; seed++) {
      const rnd = (n: number) => Math.floor(Math.abs(Math.sin(seed * 31 + n * 7)) * 10_000);
      const sizes = [1, 2, 3].slice(0, (rnd(1) % 3) + 1).map((_, i) => (rnd(i + 5) % 2) + 1);
      const maxSurge = Math.max(...sizes);
      let state = sizes.map((k, i) => loc(String.fromCharCode(97 + i), 'old', k));
      const desired = sizes.reduce((a, b) => a + b, 0);
      let steps = 0;
      while (state.some((l) => l.publishedHash !== 'new' || l.surge > 0 || l.ready < l.instances)) {
        expect(++steps).toBeLessThan(100);
        const p = planRollout({ ...opts, maxSurge, locations: state });
        state = state.map((l) => {
          const next = { ...l };
          if (p.update.has(l.location) && l.publishedHash !== 'new') {
            next.publishedHash = 'new';
            next.ready = 0; // the agent replaces them: down for a step
          } else if (l.ready < l.instances) next.ready = l.instances;
          const want = p.surge.get(l.location) ?? 0;
          next.surgeReady = want > l.surge ? l.surgeReady : Math.min(want, l.surge);
          next.surge = want;
          return next;
        });
        const ready = state.reduce((n, l) => n + l.ready + l.surgeReady, 0);
        expect(ready).toBeGreaterThanOrEqual(desired);
      }
    }
  });
});

describe('resolveIntOrPercent', () => {
  it('defaults to 25% rounded down and reads numbers and percentages', () => {
    expect(resolveIntOrPercent(undefined, 3)).toBe(0);
    expect(resolveIntOrPercent(undefined, 8)).toBe(2);
    expect(resolveIntOrPercent('50%', 5)).toBe(2);
    expect(resolveIntOrPercent(3, 5)).toBe(3);
  });
});
