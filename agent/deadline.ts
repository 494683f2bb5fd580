/**
 * Bounds on calls into a runtime that may hang rather than fail: a SIGSTOPped or wedged dockerd accepts
 * connections and never answers, and a call without a bound would stall the reconcile loop (instances stay
 * "Running" in every report) or the agent's start. {@link withDeadline} turns a hang into an error after a
 * deadline; {@link SingleFlight} keeps at most one call per key outstanding, so a daemon that stays hung costs
 * one pending request, not one more per pass.
 */

/** `p`, or an error `<what> did not answer within <ms> ms` once `ms` have passed (p keeps running). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** One outstanding call per key: a caller arriving while one runs shares it instead of starting another. */
export class SingleFlight<T> {
  private readonly pending = new Map<string, Promise<T>>();

  /** The running call for `key`, or a new one from `call`; bounded by `ms` for this caller. */
  run(key: string, call: () => Promise<T>, ms: number, what: string): Promise<T> {
    let p = this.pending.get(key);
    if (!p) {
      p = call().finally(() => this.pending.delete(key));
      // Its outcome is read by the callers; a rejection after every caller gave up is not unhandled.
      p.catch(() => undefined);
      this.pending.set(key, p);
    }
    return withDeadline(p, ms, what);
  }
}
