/**
 * The controller's own writes, recognised when the informers echo them back, so that they do not queue another
 * pass of the Workload: the pass that wrote an object already acted on exactly that state (level-triggered: a
 * pass reads everything afresh, and the state it left needs nothing more until something else changes).
 *
 * Algorithm: every object the controller creates or patches is recorded by kind, namespace and name with the
 * resourceVersion the API server returned; an informer event whose object carries a recorded resourceVersion is
 * that write coming back — it is consumed (recognised once) and the caller skips queueing for it. Anything else —
 * another writer's change, a delete, a write whose echo was missed and relisted — carries another
 * resourceVersion and queues as before.
 *
 * Invariant: only an object state this controller itself produced is ever skipped; a change by anybody else is
 * never skipped. At most {@link MAX_PER_OBJECT} versions are kept per object (the oldest go first), and an
 * object's entry goes with its delete event, so the record stays the size of the objects.
 */

/** Versions remembered per object: a pass writes an object a handful of times at most. */
export const MAX_PER_OBJECT = 4;

/** An object as the informers hand it out. */
interface Observed {
  metadata: { namespace?: string; name?: string; resourceVersion?: string };
}

export class OwnWrites {
  private readonly versions = new Map<string, string[]>();

  private static id(kind: string, o: Observed): string {
    return `${kind}/${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
  }

  /** Records an object as a write of ours returned it (nothing without a resourceVersion). */
  record(kind: string, written: Observed | undefined): void {
    const rv = written?.metadata?.resourceVersion;
    if (!written || !rv) return;
    const id = OwnWrites.id(kind, written);
    const list = this.versions.get(id) ?? [];
    list.push(rv);
    if (list.length > MAX_PER_OBJECT) list.shift();
    this.versions.set(id, list);
  }

  /**
   * True when an informer event carries one of our writes (consumed: a second event of the same version is not
   * ours). A delete is never ours here: it forgets the object and returns false.
   */
  isEcho(kind: string, observed: Observed, event: 'add' | 'update' | 'delete'): boolean {
    const id = OwnWrites.id(kind, observed);
    if (event === 'delete') {
      this.versions.delete(id);
      return false;
    }
    const rv = observed.metadata.resourceVersion;
    const list = this.versions.get(id);
    const i = rv && list ? list.indexOf(rv) : -1;
    if (i < 0) return false;
    // Versions before it will never come (a watch delivers in order): drop them with it.
    list!.splice(0, i + 1);
    if (!list!.length) this.versions.delete(id);
    return true;
  }

  /** Objects with versions still awaited (for tests and metrics). */
  get size(): number {
    return this.versions.size;
  }
}
