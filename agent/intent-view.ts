/**
 * What an agent believes its location's intents are, and whether it may remove instances on the strength of
 * them: a pure fold over the bucket's entries in revision order.
 *
 * Algorithm. A value whose epoch is older than the highest the agent has seen in this bucket was written by a
 * deposed coordinator: it is ignored (the key keeps its previous intent). A key that leaves the bucket is
 * dropped only when a trusted marker does not list it; otherwise its last intent is held (keeps running). A
 * marker is trusted when it is present, of the agent's installation, and of an epoch no older than any seen.
 * Without a trusted marker (a recreated, emptied or restored bucket; a new leader still restoring) nothing
 * is dropped: the reconciler removes nothing until the coordinator has restored the location and vouched for
 * it with a new marker.
 *
 * Invariant: an intent the agent held is dropped only by a trusted marker that does not list its key — never
 * because the bucket lost it.
 */
import type { DeploymentIntent, IntentMarker } from '../shared/nats/messages.js';

/** The agent's view of its location. */
export interface IntentView {
  /** Last accepted intent per key, including held keys (listed by the marker, or untrusted, but gone from the bucket). */
  intents: Record<string, DeploymentIntent>;
  /** Keys live in the bucket now (a stale or malformed value counts: the key is there). */
  present: string[];
  /** The location's marker in the bucket, if any. */
  marker?: IntentMarker;
  /** Highest epoch seen in this bucket (values and markers). */
  epoch: number;
  /** The installation the agent belongs to: the first trusted marker's. */
  installation?: string;
  /** The newest marker of its installation seen in this bucket: an older one (a restored copy) is not trusted. */
  marked?: Stamp;
}

/** Where a value stands in the writers' order: epoch, then generation within it. */
export interface Stamp {
  /** Fencing epoch. */
  epoch: number;
  /** Write counter within the epoch. */
  generation: number;
}

const stampOf = (v: { epoch?: number | undefined; generation?: number | undefined }): Stamp => ({
  epoch: v.epoch ?? 0,
  generation: v.generation ?? 0,
});
const older = (a: Stamp, b: Stamp) =>
  a.epoch < b.epoch || (a.epoch === b.epoch && a.generation < b.generation);

/** Whether the view may be acted on for removals, and why not. */
export interface Trust {
  /** True: removals may follow the intents. */
  trusted: boolean;
  /** Why not (for logs, metrics and the host report). */
  reason?: string;
}

/** An empty view (nothing known yet). */
export function emptyView(): IntentView {
  return { intents: {}, present: [], epoch: 0 };
}

/** Whether the view's marker may be trusted for removals. */
export function trustOf(view: IntentView): Trust {
  const m = view.marker;
  if (!m)
    return {
      trusted: false,
      reason:
        'no marker of the coordinator for this location in the intents bucket (recreated, emptied or lost)',
    };
  if (view.installation && m.installation !== view.installation)
    return {
      trusted: false,
      reason: `the intents bucket belongs to another installation (${m.installation}, expected ${view.installation})`,
    };
  if (m.epoch < view.epoch)
    return {
      trusted: false,
      reason: `marker of epoch ${m.epoch} older than epoch ${view.epoch} seen (the coordinator is restoring the bucket)`,
    };
  if (view.marked && older(stampOf(m), view.marked))
    return {
      trusted: false,
      reason: `marker older than one already seen (${m.epoch}/${m.generation} < ${view.marked.epoch}/${view.marked.generation}): the bucket lost writes`,
    };
  return { trusted: true };
}

/** Drops held intents that a trusted marker no longer lists; adopts the installation of the first trusted marker. */
function settle(view: IntentView): IntentView {
  const m = view.marker;
  if (m && !view.installation && m.epoch >= view.epoch) view = { ...view, installation: m.installation };
  if (!trustOf(view).trusted) return view;
  const listed = new Set(m!.keys);
  const present = new Set(view.present);
  const intents: Record<string, DeploymentIntent> = {};
  for (const [k, v] of Object.entries(view.intents)) if (present.has(k) || listed.has(k)) intents[k] = v;
  return { ...view, intents };
}

/** One entry of the bucket, as the watch or a full read delivers it. */
export type ViewEntry =
  | { kind: 'intent'; key: string; intent: DeploymentIntent }
  /** A value that does not parse: the key is present, its last intent stays. */
  | { kind: 'malformed'; key: string }
  | { kind: 'marker'; marker: IntentMarker }
  | { kind: 'delete'; key: string }
  | { kind: 'marker-delete' };

/** What applying an entry did. */
export interface Applied {
  /** The new view. */
  view: IntentView;
  /** Set when an intent was ignored for its old epoch. */
  stale?: { key: string; epoch: number; seen: number };
}

/** Applies one entry (in revision order). */
export function apply(view: IntentView, e: ViewEntry): Applied {
  switch (e.kind) {
    case 'intent': {
      const present = view.present.includes(e.key) ? view.present : [...view.present, e.key];
      const epoch = e.intent.epoch ?? 0;
      if (epoch < view.epoch)
        return { view: { ...view, present }, stale: { key: e.key, epoch, seen: view.epoch } };
      const held = view.intents[e.key];
      // The same key going back in the writers' order: an older copy of the bucket brought it back.
      if (held && older(stampOf(e.intent), stampOf(held)))
        return { view: { ...view, present }, stale: { key: e.key, epoch, seen: held.epoch ?? 0 } };
      return {
        view: settle({
          ...view,
          present,
          epoch: Math.max(view.epoch, epoch),
          intents: { ...view.intents, [e.key]: e.intent },
        }),
      };
    }
    case 'malformed':
      return { view: { ...view, present: [...new Set([...view.present, e.key])] } };
    case 'marker': {
      const ours = !view.installation || view.installation === e.marker.installation;
      const stamp = stampOf(e.marker);
      const marked = ours && (!view.marked || older(view.marked, stamp)) ? stamp : view.marked;
      // Trust is judged against what was seen before this marker; then the marker counts as seen.
      const next = settle({
        ...view,
        marker: e.marker,
        epoch: Math.max(view.epoch, e.marker.epoch),
      });
      return { view: marked ? { ...next, marked } : next };
    }
    case 'delete':
      return { view: settle({ ...view, present: view.present.filter((k) => k !== e.key) }) };
    case 'marker-delete': {
      const { marker: _gone, ...rest } = view;
      return { view: rest };
    }
  }
}

/**
 * A full read of the location (after a restart without a usable revision, or a recreated or restored bucket):
 * the entries in revision order over what the agent held. A different bucket (recreated) starts its epochs
 * afresh; the same bucket (restored from an older copy, writes lost) keeps the highest epoch seen, so its
 * older values are ignored until the coordinator rewrites them.
 */
export function fullRead(
  prev: IntentView,
  entries: ViewEntry[],
  sameBucket: boolean,
): { view: IntentView; stale: NonNullable<Applied['stale']>[] } {
  let view: IntentView = {
    intents: prev.intents,
    present: [],
    epoch: sameBucket ? prev.epoch : 0,
    ...(prev.installation ? { installation: prev.installation } : {}),
    ...(sameBucket && prev.marked ? { marked: prev.marked } : {}),
  };
  const stale: NonNullable<Applied['stale']>[] = [];
  for (const e of entries) {
    const a = apply(view, e);
    view = a.view;
    if (a.stale) stale.push(a.stale);
  }
  return { view: settle(view), stale };
}

/** Keys whose intent is held although the bucket no longer has them. */
export function heldKeys(view: IntentView): string[] {
  const present = new Set(view.present);
  return Object.keys(view.intents).filter((k) => !present.has(k));
}
