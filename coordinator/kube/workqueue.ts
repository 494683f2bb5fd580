/**
 * A work queue after client-go's: keys are deduplicated, a key is never processed by two workers at once,
 * and a failed key is retried with per-key exponential backoff. Handlers read current state by key, so
 * dropping intermediate events is harmless (level-triggered). With `minIntervalMs`, a burst of events for one
 * key (every instance of a Workload changing state) is coalesced into one pass per interval, so the writes a
 * pass makes (status) are not one per event. `burst` lets that many passes of a key run back to back before the
 * interval applies (a token bucket per key: `burst` tokens, one back every `minIntervalMs`, one taken per pass),
 * so the few passes a change takes end to end (an apply, the host's first reports) do not each wait out an
 * interval, while a sustained stream of events still gets one pass per interval.
 *
 * Intervals and delays are measured on the monotonic clock (`performance.now()`), never the wall clock: a wall
 * clock stepped back 60 s (NTP, a VM restored) made every key passed in the last minute wait out that minute, so
 * the coordinator answered no change at all meanwhile (issue 14, clock steps).
 */
import type { Logger } from '../../shared/log.js';
import { apiErrorMessage } from './client.js';

/** What a handler may ask for after a successful pass. */
export interface ReconcileResult {
  /** Process the key again after this many milliseconds. */
  requeueAfterMs?: number;
  /** The handler did no work (it waits for something): the pass does not count against the key's burst. */
  skipped?: boolean;
}

export class WorkQueue {
  private queue: string[] = [];
  private queued = new Set<string>();
  private processing = new Set<string>();
  private dirty = new Set<string>();
  private failures = new Map<string, number>();
  private timers = new Map<string, NodeJS.Timeout>();
  /** Each key's pass allowance after its last pass (tokens left, and when that pass finished; monotonic clock). */
  private allowance = new Map<string, { tokens: number; at: number }>();
  /** When each pending timer fires (monotonic clock). */
  private due = new Map<string, number>();
  /** When each key was first asked for since its last pass started (monotonic clock), for the pass log. */
  private askedAt = new Map<string, number>();
  private active = 0;
  private stopped = false;
  /** While held, keys queue up but no pass runs (until the caches a handler reads have synced). */
  private held = false;
  private idleWaiters: Array<() => void> = [];
  /** Told of every finished pass (its duration in seconds, and whether it succeeded), e.g. for a histogram. */
  onPass: ((seconds: number, ok: boolean) => void) | undefined;

  constructor(
    private readonly handler: (key: string) => Promise<ReconcileResult | undefined>,
    private readonly opts: {
      workers?: number;
      log: Logger;
      name: string;
      maxBackoffMs?: number;
      /** Least time between two passes of one key, beyond its burst; events in between wait for the interval. */
      minIntervalMs?: number;
      /** Passes of one key that may run back to back before `minIntervalMs` applies (default 1). */
      burst?: number;
    },
  ) {}

  /** Passes `key` may start now (fractional: a token refills over one interval). */
  private tokens(key: string, now: number): number {
    const burst = Math.max(1, this.opts.burst ?? 1);
    const interval = this.opts.minIntervalMs ?? 0;
    const a = this.allowance.get(key);
    if (!a || interval <= 0) return burst;
    return Math.min(burst, a.tokens + (now - a.at) / interval);
  }

  add(key: string): void {
    if (this.stopped) return;
    const now = performance.now();
    if (!this.askedAt.has(key)) this.askedAt.set(key, now);
    const available = this.tokens(key, now);
    const wait = available >= 1 ? 0 : (1 - available) * (this.opts.minIntervalMs ?? 0);
    if (wait > 0 && !this.processing.has(key)) {
      // One pass at the end of the interval; a later pending requeue is brought forward to it.
      const due = this.due.get(key);
      if (due === undefined || due > now + wait) this.addAfter(key, wait);
      return;
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    const existing = this.timers.get(key);
    if (existing) clearTimeout(existing);
    this.due.set(key, performance.now() + ms);
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.due.delete(key);
        this.add(key);
      }, ms),
    );
  }

  /** Keys waiting for a worker (client-go's `Len()`): neither those running nor those waiting out a delay. */
  get length(): number {
    return this.queue.length;
  }

  /** Queues keys without processing them until {@link release}. */
  hold(): void {
    this.held = true;
  }

  /** Starts processing what was queued while held. */
  release(): void {
    this.held = false;
    this.pump();
  }

  private pump(): void {
    if (this.held) return;
    const workers = this.opts.workers ?? 4;
    while (this.active < workers && this.queue.length) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    const started = performance.now();
    // How long the key waited between the first event asking for it and this pass (minIntervalMs, a busy queue).
    const waitedMs = started - (this.askedAt.get(key) ?? started);
    this.askedAt.delete(key);
    const tokensBefore = this.tokens(key, started);
    let tokensLeft = Math.max(0, tokensBefore - 1);
    let ok = false;
    try {
      const result = await this.handler(key);
      ok = true;
      this.failures.delete(key);
      if (result?.skipped) tokensLeft = tokensBefore;
      if (result?.requeueAfterMs) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min(this.opts.maxBackoffMs ?? 60_000, 200 * 2 ** (n - 1));
      this.opts.log.warn(
        { queue: this.opts.name, key, err: apiErrorMessage(err), retryInMs: delay },
        'reconcile failed',
      );
      this.addAfter(key, delay);
    } finally {
      const ms = performance.now() - started;
      this.onPass?.(ms / 1000, ok);
      // The pass log the apply benchmark reads (bench/apply.ts): it started `ms` before this line's time.
      this.opts.log.debug(
        { queue: this.opts.name, key, waitedMs: Math.round(waitedMs), ms: Math.round(ms), ok },
        'pass',
      );
      // Refilled from the pass's end, as the interval was always counted.
      this.allowance.set(key, { tokens: tokensLeft, at: performance.now() });
      this.processing.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
      if (this.active === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when nothing is queued or running (timers excluded). */
  idle(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.due.clear();
  }
}
