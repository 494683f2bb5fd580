/**
 * Watch semantics as kube-apiserver gives them, over the store's change history.
 *
 * Every change of the store has a revision (the JetStream KV sequence, strictly increasing), which is the
 * object's resourceVersion and the list's. The store keeps the last changes ({@link WatchEvent}s, oldest
 * first) and the revision through which older ones were dropped (`compactedThrough`). A watch from
 * resourceVersion R replays every change after R, then follows; when changes after R were dropped it is told
 * `410 Gone` (reason Expired) and relists, as informers and `kubectl get -w` do. A watch without R (or R = "0")
 * starts with an ADDED event per current object. With a label or field selector, a change that moves an object
 * into the selection is ADDED and one that moves it out is DELETED (with its new state). Bookmarks, when asked
 * for (`allowWatchBookmarks`), carry only the current revision.
 *
 * Invariant: the events a watch delivers, applied in order to the state at R, give the state at the revision of
 * the last one, restricted to the selection.
 */
import type { StoredObject } from './versions.js';

/** One change of the store. */
export interface WatchEvent {
  /** What happened to the object. */
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The object after the change (for DELETED, its last state, at the delete's revision). */
  object: StoredObject;
  /** The object before the change (absent for ADDED). */
  previous?: StoredObject;
  /** Revision of the change. */
  revision: number;
}

/** An event as it goes on the wire. */
export interface WireEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: unknown;
}

/** Where a watch starts: the events to send first, or that it is too old. */
export type WatchStart = { expired: true } | { expired: false; events: WatchEvent[]; from: number };

/**
 * The events a watch from `resourceVersion` sends before following: the current objects as ADDED (no
 * resourceVersion, or "0"), or the history after it.
 */
export function watchStart(
  resourceVersion: string | undefined,
  current: { objects: readonly StoredObject[]; revision: number },
  history: readonly WatchEvent[],
  compactedThrough: number,
): WatchStart {
  if (!resourceVersion || resourceVersion === '0') {
    return {
      expired: false,
      from: current.revision,
      events: current.objects.map((o) => ({
        type: 'ADDED',
        object: o,
        revision: Number(o.metadata.resourceVersion ?? 0),
      })),
    };
  }
  const rv = Number(resourceVersion);
  if (!Number.isSafeInteger(rv) || rv < 0) return { expired: true };
  if (rv < compactedThrough) return { expired: true };
  return { expired: false, from: rv, events: history.filter((e) => e.revision > rv) };
}

/** The event as a watch with selection `selected` sees it, or undefined when it does not see it at all. */
export function throughSelection(
  e: WatchEvent,
  selected: (o: StoredObject) => boolean,
): Omit<WatchEvent, 'previous'> | undefined {
  const now = selected(e.object);
  if (e.type === 'ADDED') return now ? { type: 'ADDED', object: e.object, revision: e.revision } : undefined;
  if (e.type === 'DELETED')
    return now ? { type: 'DELETED', object: e.object, revision: e.revision } : undefined;
  const before = e.previous ? selected(e.previous) : false;
  if (before && now) return { type: 'MODIFIED', object: e.object, revision: e.revision };
  if (!before && now) return { type: 'ADDED', object: e.object, revision: e.revision };
  if (before && !now) return { type: 'DELETED', object: e.object, revision: e.revision };
  return undefined;
}

/** A BOOKMARK event at `revision`. */
export function bookmark(apiVersion: string, kind: string, revision: number): WireEvent {
  return { type: 'BOOKMARK', object: { apiVersion, kind, metadata: { resourceVersion: String(revision) } } };
}

/** The ERROR event that tells a watcher its resourceVersion is too old (410 Gone, reason Expired). */
export function expiredEvent(resourceVersion: string): WireEvent {
  return { type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${resourceVersion}`) };
}

/** A meta.k8s.io/v1 Status. */
export function status(code: number, reason: string, message: string, details?: object): object {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/**
 * Appends an event to a bounded history in place and returns the new compaction point. When the history grows
 * past `limit` by a quarter, the oldest are dropped down to `limit` (in one splice, so appending stays cheap);
 * the compaction point becomes the revision of the last one dropped.
 */
export function appendHistory(
  history: WatchEvent[],
  compactedThrough: number,
  e: WatchEvent,
  limit: number,
): number {
  history.push(e);
  if (history.length <= limit + Math.ceil(limit / 4)) return compactedThrough;
  const dropped = history.splice(0, history.length - limit);
  return dropped[dropped.length - 1]!.revision;
}
