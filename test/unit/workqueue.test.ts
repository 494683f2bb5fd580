/** The controllers' work queue: dedupe, one pass at a time per key, backoff, and coalescing bursts of events. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from '../../coordinator/kube/workqueue.js';
import { createLogger } from '../../shared/log.js';

const log = createLogger({ name: 'test', level: 'silent' });

describe('WorkQueue', () => {
  // The queue measures intervals on performance.now(); the wall clock (Date) is faked too so it can be stepped.
  beforeEach(() =>
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
    }),
  );
  afterEach(() => vi.useRealTimers());

  it('coalesces a burst of events for one key into one pass per interval', async () => {
    const passes: number[] = [];
    const q = new WorkQueue(
      async () => {
        passes.push(Date.now());
        return undefined;
      },
      { log, name: 't', minIntervalMs: 500 },
    );
    q.add('w');
    await vi.advanceTimersByTimeAsync(1);
    for (let i = 0; i < 100; i++) {
      q.add('w');
      await vi.advanceTimersByTimeAsync(10);
    }
    // A second of events: passes at 0, 500 and 1000 ms, then nothing pending.
    await vi.advanceTimersByTimeAsync(2000);
    expect(passes.length).toBe(3);
    for (let i = 1; i < passes.length; i++) expect(passes[i]! - passes[i - 1]!).toBeGreaterThanOrEqual(500);
    q.stop();
  });

  it('lets `burst` passes of a key run back to back, then one per interval (a token bucket)', async () => {
    const passes: number[] = [];
    const q = new WorkQueue(
      async () => {
        passes.push(performance.now());
        return undefined;
      },
      { log, name: 't', minIntervalMs: 500, burst: 3 },
    );
    const start = performance.now();
    // An apply's passes: the Workload, then the host's first reports, a few ms apart: none waits.
    for (let i = 0; i < 3; i++) {
      q.add('w');
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(passes.map((t) => t - start)).toEqual([0, 10, 20]);
    // The fourth waits for a token (one back per 500 ms since the last pass, less what was left).
    q.add('w');
    await vi.advanceTimersByTimeAsync(400);
    expect(passes).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(100);
    expect(passes).toHaveLength(4);
    // A sustained stream of events: one pass per interval, never more than the bucket allows.
    const from = performance.now();
    for (let i = 0; i < 300; i++) {
      q.add('w');
      await vi.advanceTimersByTimeAsync(10);
    }
    const inStream = passes.filter((t) => t > from).length;
    expect(inStream).toBeGreaterThanOrEqual(5);
    expect(inStream).toBeLessThanOrEqual(3000 / 500 + 1);
    // Quiet for a while: the bucket is full again.
    await vi.advanceTimersByTimeAsync(2000);
    const n = passes.length;
    for (let i = 0; i < 3; i++) {
      q.add('w');
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(passes).toHaveLength(n + 3);
    q.stop();
  });

  it('does not count a skipped pass (a handler that waits) against the burst', async () => {
    const passes: number[] = [];
    let waits = 2;
    const q = new WorkQueue(
      async () => {
        passes.push(performance.now());
        return waits-- > 0 ? { requeueAfterMs: 20, skipped: true } : undefined;
      },
      { log, name: 't', minIntervalMs: 500 },
    );
    const start = performance.now();
    q.add('w');
    await vi.advanceTimersByTimeAsync(100);
    expect(passes.map((t) => t - start)).toEqual([0, 20, 40]);
    q.stop();
  });

  it('runs other keys without waiting, and a key again at once after its interval', async () => {
    const seen: string[] = [];
    const q = new WorkQueue(
      async (k) => {
        seen.push(k);
        return undefined;
      },
      { log, name: 't', minIntervalMs: 500 },
    );
    q.add('a');
    q.add('b');
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual(['a', 'b']);
    await vi.advanceTimersByTimeAsync(600);
    q.add('a');
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual(['a', 'b', 'a']);
    q.stop();
  });

  it('brings a long requeue forward when an event arrives', async () => {
    const seen: number[] = [];
    let first = true;
    const q = new WorkQueue(
      async () => {
        seen.push(Date.now());
        if (first) {
          first = false;
          return { requeueAfterMs: 10_000 };
        }
        return undefined;
      },
      { log, name: 't', minIntervalMs: 500 },
    );
    const start = Date.now();
    q.add('w');
    await vi.advanceTimersByTimeAsync(100);
    q.add('w');
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen).toHaveLength(2);
    expect(seen[1]! - start).toBeLessThan(1000);
    q.stop();
  });

  it('is not held up by a wall clock stepped back (issue 14: every key waited out the step)', async () => {
    const seen: string[] = [];
    const q = new WorkQueue(
      async (k) => {
        seen.push(k);
        return undefined;
      },
      { log, name: 't', minIntervalMs: 500 },
    );
    q.add('w');
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(600);
    // NTP steps the wall clock back a minute; a new event for the same key is handled at once all the same.
    vi.setSystemTime(Date.now() - 60_000);
    q.add('w');
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual(['w', 'w']);
    // And forward: the interval still holds (a burst is not let through by a step ahead).
    vi.setSystemTime(Date.now() + 60_000);
    q.add('w');
    await vi.advanceTimersByTimeAsync(100);
    expect(seen).toEqual(['w', 'w']);
    await vi.advanceTimersByTimeAsync(500);
    expect(seen).toEqual(['w', 'w', 'w']);
    q.stop();
  });

  it('retries a failing key with growing backoff', async () => {
    let calls = 0;
    const q = new WorkQueue(
      async () => {
        calls++;
        throw new Error('boom');
      },
      { log, name: 't' },
    );
    q.add('w');
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(300);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toBe(3);
    q.stop();
  });
});

describe('WorkQueue.length', () => {
  it('counts the keys waiting for a worker, once each', async () => {
    const q = new WorkQueue(async () => undefined, { log, name: 't', workers: 1 });
    q.hold();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    q.release();
    await q.idle();
    expect(q.length).toBe(0);
  });
});
