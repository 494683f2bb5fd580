/**
 * An index of a cache by the value of one label (client-go's Indexer with a label index function), kept in step
 * with the cache's change events, so a reader of "the objects labelled X" does not scan the whole cache.
 *
 * Invariant: after every event, `get(v)` holds exactly the cached objects whose label has value `v` (an update
 * that changes the value is removed from the old value first).
 */

/** The object fields the index reads. */
interface Labelled {
  metadata: { name?: string; namespace?: string; labels?: Record<string, string> | undefined };
}

export class LabelIndex<T extends Labelled> {
  private readonly byValue = new Map<string, Map<string, T>>();
  /** The value each indexed object was filed under, by `namespace/name`. */
  private readonly valueOf = new Map<string, string>();

  constructor(
    private readonly label: string,
    source?: { onChange(fn: (obj: T, event: 'add' | 'update' | 'delete') => void): void },
  ) {
    source?.onChange((obj, event) => this.apply(obj, event));
  }

  /** Applies one change event; objects without the label are not indexed. */
  apply(obj: T, event: 'add' | 'update' | 'delete'): void {
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
    const old = this.valueOf.get(key);
    if (old !== undefined) {
      const set = this.byValue.get(old);
      set?.delete(key);
      if (set?.size === 0) this.byValue.delete(old);
      this.valueOf.delete(key);
    }
    const value = obj.metadata.labels?.[this.label];
    if (event === 'delete' || value === undefined) return;
    this.valueOf.set(key, value);
    let set = this.byValue.get(value);
    if (!set) {
      set = new Map();
      this.byValue.set(value, set);
    }
    set.set(key, obj);
  }

  /** The objects whose label has that value. */
  get(value: string): T[] {
    return [...(this.byValue.get(value)?.values() ?? [])];
  }
}
