/**
 * The crash-loop backoff of instances that stop by themselves (a VM that powers off or crashes), after the
 * kubelet's: the first restart is at once, each further one waits 10 s, 20 s, 40 s, … up to 5 min, counted from
 * when the stop is first seen; a run of more than 10 min forgets the loop.
 *
 * Counting from the stop, not from the last start, matters: a VM that takes longer to crash than the wait (a
 * slow boot under TCG) would otherwise restart at once every time.
 *
 * Waits are measured on the monotonic clock; only how long a run lasted compares wall times (the driver's start
 * time). A host clock stepped back a day made a pending 10 s wait last a day and a day (issue 14, clock steps).
 */

/** What is remembered of one instance's crash loop. */
export interface CrashRecord {
  /** Restarts of this crash loop so far. */
  restarts: number;
  /** When the stop being waited out may restart (monotonic clock, ms). */
  notBefore: number;
  /** The run (its start time) whose stop is being waited out. */
  stoppedRun: string | undefined;
  /** The run last restarted from: a listing of it taken before the restart finished is no new stop. */
  restartedRun: string | undefined;
}

const FORGET_AFTER_MS = 10 * 60_000;
const FIRST_WAIT_MS = 10_000;
const MAX_WAIT_MS = 300_000;
/** What a stale view of an already restarted run waits: the next pass sees the new run. */
const STALE_WAIT_MS = 1000;

const fresh = (): CrashRecord => ({
  restarts: 0,
  notBefore: 0,
  stoppedRun: undefined,
  restartedRun: undefined,
});

/**
 * The decision for a stopped instance whose run started at `startedAt` (undefined when the driver does not say):
 * `wait` 0 means restart now. `now` is on the monotonic clock (`performance.now()`), `wallNow` on the wall clock
 * (epoch ms, for the run's length; defaults to `now` for callers that use one clock). Pure; the caller keeps
 * `record` for the next call.
 */
export function crashBackoff(
  prev: CrashRecord | undefined,
  startedAt: string | undefined,
  now: number,
  wallNow: number = now,
): { wait: number; record: CrashRecord } {
  let c: CrashRecord = prev ? { ...prev } : fresh();
  // Runs are told apart by their start time; a driver that reports none gets one identity per restart.
  const run = startedAt ?? `restart-${c.restarts}`;
  if (c.restartedRun === run) return { wait: STALE_WAIT_MS, record: c };
  if (c.stoppedRun !== run) {
    // A new stop. A run that lasted long enough ends the loop: this stop starts a new one.
    if (startedAt !== undefined && wallNow - Date.parse(startedAt) > FORGET_AFTER_MS) c = fresh();
    c.stoppedRun = run;
    c.notBefore = c.restarts === 0 ? now : now + Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** (c.restarts - 1));
  }
  if (now < c.notBefore) return { wait: c.notBefore - now, record: c };
  c.restarts++;
  c.restartedRun = run;
  return { wait: 0, record: c };
}
