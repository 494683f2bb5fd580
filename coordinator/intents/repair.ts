/**
 * What a repair of the intents bucket must do, as data: compares what the store wrote (`want`) with what the
 * bucket holds (`actual`) and returns the writes and deletions, in the order they must be applied.
 *
 * Algorithm: the fence first (until it is ours again an older writer could still write); then every intent
 * that is missing or whose bytes differ; then the deletion of intents nobody of ours wrote; markers last, so a
 * marker never vouches for an intent that is not back yet. When markers are not managed yet (the leader has
 * not made its first pass), the markers in the bucket are left as they are.
 *
 * Invariant: applying the operations in order to `actual` gives exactly `want` plus the fence (plus, when
 * markers are not managed, the markers `actual` had) — and nothing is written that already holds those bytes.
 */

/** A value as the bucket holds it. */
export interface StoredValue {
  /** Its bytes. */
  data: Uint8Array;
  /** Its revision (stream sequence). */
  revision: number;
}

/** What {@link planRepair} compares. */
export interface RepairInput {
  /** Key of the fence. */
  fenceKey: string;
  /** The fence's bytes as this writer wrote them. */
  fence: Uint8Array;
  /** What the bucket must hold besides the fence: intents, and markers when managed. */
  want: ReadonlyMap<string, Uint8Array>;
  /** What it holds (live keys only). */
  actual: ReadonlyMap<string, StoredValue>;
  /** Whether a key is a marker. */
  isMarker: (key: string) => boolean;
  /** Whether markers are managed (written and deleted); otherwise those in the bucket are left alone. */
  manageMarkers: boolean;
}

/** One operation on the bucket. */
export interface RepairOp {
  /** The key. */
  key: string;
  /** Write `want`'s bytes (or the fence's), or delete the key. */
  op: 'write' | 'delete';
}

function same(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** The operations that make the bucket hold what the store wrote, in the order to apply them. */
export function planRepair(input: RepairInput): RepairOp[] {
  const { fenceKey, fence, want, actual, isMarker, manageMarkers } = input;
  const ops: RepairOp[] = [];
  if (!same(actual.get(fenceKey)?.data, fence)) ops.push({ key: fenceKey, op: 'write' });
  const sorted = (keys: Iterable<string>) => [...keys].sort();
  const differs = (k: string) => !same(actual.get(k)?.data, want.get(k)!);
  for (const k of sorted(want.keys())) if (!isMarker(k) && differs(k)) ops.push({ key: k, op: 'write' });
  for (const k of sorted(actual.keys()))
    if (k !== fenceKey && !isMarker(k) && !want.has(k)) ops.push({ key: k, op: 'delete' });
  if (manageMarkers) {
    for (const k of sorted(want.keys())) if (isMarker(k) && differs(k)) ops.push({ key: k, op: 'write' });
    for (const k of sorted(actual.keys()))
      if (isMarker(k) && !want.has(k)) ops.push({ key: k, op: 'delete' });
  }
  return ops;
}
