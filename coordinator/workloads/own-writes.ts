/**
 * The controller's own writes, and when the informers have delivered them back (client-go's "expectations", by
 * resourceVersion): a pass waits while a write of the previous pass of its Workload has not come back yet
 * ({@link pending}), since planning from caches without it would create those Instances again or write the same
 * status twice. (Echoes are not skipped: a patch that changes nothing returns the version the server has, which
 * may be somebody else's change still on its way, and that event must queue a pass.)
 *
 * Algorithm: every object the controller creates or patches is recorded by kind, namespace and name with the
 * resourceVersion the API server returned, under the queue key of the Workload that wrote it; an informer event
 * carrying a recorded resourceVersion is that write coming back — it is consumed, with the versions before it. An
 * echo may beat the write's response: the last {@link SEEN_RECENT} delivered versions are remembered, and a write
 * whose version was already delivered is not awaited.
 *
 * Invariants: a pass never waits for longer than {@link PENDING_MS} (an echo lost to a relist, or out of the
 * remembered window); at most {@link MAX_PER_OBJECT} versions are kept per object, and an object's entry goes with
 * its delete event or its echo, so the record stays the size of the writes in flight.
 */

/** Versions remembered per object: a pass writes an object a handful of times at most. */
export const MAX_PER_OBJECT = 4;
/** How long a write of ours counts as pending at most (the informer's echo normally takes milliseconds). */
export const PENDING_MS = 5000;

/** An object as the informers hand it out. */
interface Observed {
  metadata: { namespace?: string; name?: string; resourceVersion?: string };
}

interface Entry {
  /** Versions we wrote whose echo has not come, oldest first, with when (monotonic clock). */
  versions: Array<{ rv: string; at: number }>;
  /** Queue key of the Workload whose pass wrote it. */
  owner: string;
}

/** Versions the informers delivered lately, remembered so that a write whose echo came first is not awaited. */
export const SEEN_RECENT = 4096;

export class OwnWrites {
  private readonly entries = new Map<string, Entry>();
  /** The last {@link SEEN_RECENT} `id@rv` the informers delivered, oldest first (an echo can beat the response). */
  private readonly seen = new Set<string>();
  /** Objects with versions in flight, by owner. */
  private readonly byOwner = new Map<string, Set<string>>();

  private static id(kind: string, o: Observed): string {
    return `${kind}/${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
  }

  /** Records an object as a write of ours returned it (nothing without a resourceVersion), for `owner`'s pass. */
  record(kind: string, written: Observed | undefined, owner: string, now = performance.now()): void {
    const rv = written?.metadata?.resourceVersion;
    if (!written || !rv) return;
    const id = OwnWrites.id(kind, written);
    // Its echo was delivered before the write's response came back, or the write changed nothing (a no-op patch
    // returns the version the caches have): nothing to wait for.
    if (this.seen.has(`${id}@${rv}`)) return;
    const entry = this.entries.get(id) ?? { versions: [], owner };
    if (entry.owner !== owner) this.forget(id);
    entry.owner = owner;
    entry.versions.push({ rv, at: now });
    if (entry.versions.length > MAX_PER_OBJECT) entry.versions.shift();
    this.entries.set(id, entry);
    const ids = this.byOwner.get(owner) ?? new Set<string>();
    ids.add(id);
    this.byOwner.set(owner, ids);
  }

  /**
   * True when an informer event carries one of our writes (consumed: a second event of the same version is not
   * ours). A delete is never ours here: it forgets the object and returns false.
   */
  isEcho(kind: string, observed: Observed, event: 'add' | 'update' | 'delete'): boolean {
    const id = OwnWrites.id(kind, observed);
    const seen = `${id}@${observed.metadata.resourceVersion ?? ''}`;
    this.seen.delete(seen);
    this.seen.add(seen);
    if (this.seen.size > SEEN_RECENT) this.seen.delete(this.seen.values().next().value!);
    if (event === 'delete') {
      this.forget(id);
      return false;
    }
    const rv = observed.metadata.resourceVersion;
    const entry = this.entries.get(id);
    const i = rv && entry ? entry.versions.findIndex((v) => v.rv === rv) : -1;
    if (i < 0) return false;
    // Versions before it will never come (a watch delivers in order): drop them with it.
    entry!.versions.splice(0, i + 1);
    if (!entry!.versions.length) this.forget(id);
    return true;
  }

  /** Whether a write `owner`'s passes made has not come back from the informers yet (for under PENDING_MS). */
  pending(owner: string, now = performance.now()): boolean {
    const ids = this.byOwner.get(owner);
    if (!ids) return false;
    let waiting = false;
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry?.versions.some((v) => now - v.at < PENDING_MS)) waiting = true;
      else this.forget(id);
    }
    return waiting;
  }

  private forget(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    const ids = this.byOwner.get(entry.owner);
    ids?.delete(id);
    if (ids && !ids.size) this.byOwner.delete(entry.owner);
  }

  /** Objects with versions still awaited (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }
}
