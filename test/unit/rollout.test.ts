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
): RolloutLocation => ({
  location,
  publishedHash,
  instances,
  ready,
});

describe('planRollout', () => {
  it('updates one location at a time while everything else is ready (maxUnavailable 0)', () => {
    const p = planRollout({
      hash: 'new',
      strategy: 'RollingUpdate',
      maxUnavailable: 0,
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
      locations: [loc('a', 'new', 1, 0), loc('b', 'old', 1), loc('c', 'old', 1)],
    });
    expect([...waiting.update]).toEqual(['a']);
    const next = planRollout({
      hash: 'new',
      strategy: 'RollingUpdate',
      maxUnavailable: 0,
      locations: [loc('a', 'new', 1), loc('b', 'old', 1), loc('c', 'old', 1)],
    });
    expect([...next.update].sort()).toEqual(['a', 'b']);
  });

  it('rolls several locations at once within maxUnavailable', () => {
    const p = planRollout({
      hash: 'new',
      strategy: 'RollingUpdate',
      maxUnavailable: 2,
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
        locations: [loc('a', undefined, 2, 0), loc('b', 'o', 1)],
      }).update,
    ]).toEqual(['a']);
    expect(
      planRollout({
        hash: 'n',
        strategy: 'Recreate',
        maxUnavailable: 0,
        locations: [loc('a', 'o', 2), loc('b', 'o', 1)],
      }).update.size,
    ).toBe(2);
  });

  it('never has more unready instances than the budget, except one location when all else is ready', () => {
    for (let seed = 0; seed < 200; seed++) {
      const rnd = (n: number) => Math.floor(Math.abs(Math.sin(seed * 97 + n * 13)) * 10_000) % 4;
      const locations = ['a', 'b', 'c', 'd'].map((l, i) => {
        const instances = rnd(i) + 1;
        return loc(l, rnd(i + 10) ? 'old' : 'new', instances, Math.min(instances, rnd(i + 20) + 1));
      });
      const maxUnavailable = rnd(99);
      const p = planRollout({ hash: 'new', strategy: 'RollingUpdate', maxUnavailable, locations });
      const before = locations.reduce((n, l) => n + l.instances - l.ready, 0);
      const rolled = locations.filter((l) => l.publishedHash === 'old' && p.update.has(l.location));
      const inFlight = before + rolled.reduce((n, l) => n + l.instances, 0);
      if (rolled.length)
        expect(inFlight <= Math.max(1, maxUnavailable) || (before === 0 && rolled.length === 1)).toBe(true);
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
