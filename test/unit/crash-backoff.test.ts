/** The crash-loop backoff of instances that stop by themselves: waits counted from the stop, doubling, bounded. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CrashRecord, crashBackoff } from '../../agent/crash-backoff.js';

const T0 = Date.parse('2026-12-02T08:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('crash-loop backoff', () => {
  it('waits on the monotonic clock: a wall clock stepped back a day does not stretch a pending wait', () => {
    const DAY = 86_400_000;
    let r: CrashRecord | undefined;
    // Two crashes: the first restarts at once, the second waits 10 s (monotonic 5 000 → 15 000).
    let d = crashBackoff(r, iso(T0), 1000, T0 + 1000);
    r = d.record;
    d = crashBackoff(r, iso(T0 + 2000), 5000, T0 + 5000);
    r = d.record;
    expect(d.wait).toBe(10_000);
    // The host clock steps back a day; 10 s later (monotonic) the instance restarts.
    d = crashBackoff(r, iso(T0 + 2000), 15_000, T0 + 15_000 - DAY);
    expect(d.wait).toBe(0);
  });

  it('restarts at once, then waits 10 s from the stop however long the run took to crash', () => {
    let r: CrashRecord | undefined;
    let d = crashBackoff(r, iso(T0), T0 + 1000);
    expect(d.wait).toBe(0);
    r = d.record;
    // The second run takes 25 s to crash (longer than the 10 s wait): it still waits 10 s from its stop.
    const run2 = T0 + 2000;
    d = crashBackoff(r, iso(run2), run2 + 25_000);
    expect(d.wait).toBe(10_000);
    r = d.record;
    d = crashBackoff(r, iso(run2), run2 + 30_000);
    expect(d.wait).toBe(5000);
    r = d.record;
    d = crashBackoff(r, iso(run2), run2 + 35_000);
    expect(d.wait).toBe(0);
    r = d.record;
    // Third stop: 20 s.
    const run3 = run2 + 36_000;
    d = crashBackoff(r, iso(run3), run3 + 1000);
    expect(d.wait).toBe(20_000);
  });

  it('does not restart twice from a listing taken before the restart finished', () => {
    const first = crashBackoff(undefined, iso(T0), T0 + 1000);
    expect(first.wait).toBe(0);
    const stale = crashBackoff(first.record, iso(T0), T0 + 1200);
    expect(stale.wait).toBeGreaterThan(0);
    expect(stale.record.restarts).toBe(1);
  });

  it('forgets the loop after a run of more than 10 minutes', () => {
    let r = crashBackoff(undefined, iso(T0), T0 + 1000).record;
    r = crashBackoff(r, iso(T0 + 2000), T0 + 3000).record;
    const longRun = T0 + 60_000;
    const d = crashBackoff(r, iso(longRun), longRun + 11 * 60_000);
    expect(d.wait).toBe(0);
    expect(d.record.restarts).toBe(1);
  });

  it('never restarts a new stop sooner than the doubling wait allows, and never waits over 5 minutes', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 900_000 }), { minLength: 1, maxLength: 12 }), (runs) => {
        // Each run lasts `runLength` ms, then stops; the caller polls every second until it may restart.
        let r: CrashRecord | undefined;
        let now = T0;
        let restarts = 0;
        for (const runLength of runs) {
          const started = now;
          now += runLength;
          const stoppedAt = now;
          let d = crashBackoff(r, iso(started), now);
          while (d.wait > 0) {
            expect(d.wait).toBeLessThanOrEqual(300_000);
            now += Math.min(d.wait, 1000);
            r = d.record;
            d = crashBackoff(r, iso(started), now);
          }
          r = d.record;
          const waited = now - stoppedAt;
          if (runLength > 10 * 60_000) restarts = 0;
          const expected = restarts === 0 ? 0 : Math.min(300_000, 10_000 * 2 ** (restarts - 1));
          expect(waited).toBeGreaterThanOrEqual(expected);
          expect(waited).toBeLessThan(expected + 1000);
          restarts++;
          now += 1;
        }
      }),
    );
  });
});
