/**
 * The agent's view of its location's intents (agent/intent-view.ts): values of a deposed writer ignored, keys
 * lost from the bucket held until a trusted marker says they are gone, nothing dropped without a marker.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  apply,
  emptyView,
  fullRead,
  heldKeys,
  type IntentView,
  trustOf,
  type ViewEntry,
} from '../../agent/intent-view.js';
import type { IntentMarker } from '../../shared/nats/messages.js';
import { testIntent, testMarker } from '../harness/objects.js';

const key = (w: string) => `loc.ns.${w}`;
const put = (w: string, epoch: number, hosts = ['h1']): ViewEntry => ({
  kind: 'intent',
  key: key(w),
  intent: testIntent({ workload: w, hosts, epoch }),
});
const marker = (epoch: number, workloads: string[], over: Partial<IntentMarker> = {}): ViewEntry => ({
  kind: 'marker',
  marker: testMarker({ epoch, keys: workloads.map(key), installation: 'inst', ...over }),
});
const del = (w: string): ViewEntry => ({ kind: 'delete', key: key(w) });
const run = (entries: ViewEntry[], from: IntentView = emptyView()) =>
  entries.reduce((v, e) => apply(v, e).view, from);
const names = (v: IntentView) => Object.keys(v.intents).sort();

describe('intent view', () => {
  it('follows puts and deletions while a marker of the current epoch vouches', () => {
    const v = run([put('a', 1), put('b', 1), marker(1, ['a', 'b']), del('b'), marker(1, ['a'])]);
    expect(trustOf(v)).toEqual({ trusted: true });
    expect(names(v)).toEqual([key('a')]);
    expect(v.installation).toBe('inst');
  });

  it('holds a key the bucket lost while the marker still lists it, and drops it once the marker does not', () => {
    let v = run([put('a', 1), put('b', 1), marker(1, ['a', 'b']), del('b')]);
    expect(names(v)).toEqual([key('a'), key('b')]);
    expect(heldKeys(v)).toEqual([key('b')]);
    v = run([marker(1, ['a'])], v);
    expect(names(v)).toEqual([key('a')]);
  });

  it('removes nothing without a marker: an emptied or recreated bucket', () => {
    let v = run([put('a', 1), marker(1, ['a']), { kind: 'marker-delete' }, del('a')]);
    expect(trustOf(v).trusted).toBe(false);
    expect(trustOf(v).reason).toMatch(/no marker/);
    expect(names(v)).toEqual([key('a')]);
    // A full read of a recreated, empty bucket keeps everything too.
    v = fullRead(v, [], false).view;
    expect(names(v)).toEqual([key('a')]);
    expect(trustOf(v).trusted).toBe(false);
    // The coordinator restores it: trusted again, and what it no longer wants goes.
    v = run([put('a', 2), marker(2, ['a'])], v);
    expect(trustOf(v).trusted).toBe(true);
  });

  it('ignores a value of a deposed writer (an epoch older than one seen), and distrusts its marker', () => {
    const before = run([put('a', 2, ['h1']), marker(2, ['a'])]);
    const a = apply(before, put('a', 1, ['h9']));
    expect(a.stale).toEqual({ key: key('a'), epoch: 1, seen: 2 });
    expect(a.view.intents[key('a')]!.instances[0]!.host).toBe('h1');
    const v = run([marker(1, [])], a.view);
    expect(trustOf(v).trusted).toBe(false);
    expect(names(v)).toEqual([key('a')]);
  });

  it('holds while a new leader restamps, until its marker comes', () => {
    let v = run([put('a', 1), put('b', 1), marker(1, ['a', 'b'])]);
    v = run([put('a', 2), del('b')], v); // the old marker is now older than epoch 2
    expect(trustOf(v).trusted).toBe(false);
    expect(names(v)).toEqual([key('a'), key('b')]);
    v = run([marker(2, ['a'])], v);
    expect(names(v)).toEqual([key('a')]);
  });

  it('never follows another installation', () => {
    const v = run([put('a', 1), marker(1, ['a']), marker(5, [], { installation: 'other' }), del('a')]);
    expect(trustOf(v).reason).toMatch(/another installation/);
    expect(names(v)).toEqual([key('a')]);
  });

  it('a restored older copy of the same bucket: its older values are ignored and nothing is dropped', () => {
    const before = run([put('a', 3, ['h1']), put('b', 3), marker(3, ['a', 'b'])]);
    const { view, stale } = fullRead(before, [put('a', 2, ['h7']), marker(2, ['a'])], true);
    expect(stale).toHaveLength(1);
    expect(view.intents[key('a')]!.instances[0]!.host).toBe('h1');
    expect(names(view)).toEqual([key('a'), key('b')]);
    expect(trustOf(view).trusted).toBe(false);
  });

  it('property: whatever the bucket does, a held intent is dropped only by a trusted marker not listing it', () => {
    const workloads = ['a', 'b', 'c'];
    const entry = fc.oneof(
      fc.record({ w: fc.constantFrom(...workloads), e: fc.nat(3) }).map(({ w, e }) => put(w, e)),
      fc.constantFrom(...workloads).map(del),
      fc
        .record({ e: fc.nat(3), ks: fc.subarray(workloads), other: fc.boolean() })
        .map(({ e, ks, other }) => marker(e, ks, other ? { installation: 'other' } : {})),
      fc.constant<ViewEntry>({ kind: 'marker-delete' }),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), (entries) => {
        let v = emptyView();
        for (const e of entries) {
          const next = apply(v, e).view;
          for (const k of Object.keys(v.intents)) {
            if (k in next.intents) continue;
            const t = trustOf(next);
            expect(t.trusted).toBe(true);
            expect(next.marker!.keys).not.toContain(k);
            expect(next.present).not.toContain(k);
          }
          v = next;
        }
      }),
    );
  });
});
