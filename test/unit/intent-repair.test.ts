/** planRepair (coordinator/intents/repair.ts): the fence first, intents, foreign keys gone, markers last. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRepair, type StoredValue } from '../../coordinator/intents/repair.js';

const b = (s: string) => new TextEncoder().encode(s);
const isMarker = (k: string) => k.endsWith('._marker');
const stored = (entries: Record<string, string>) =>
  new Map<string, StoredValue>(
    Object.entries(entries).map(([k, v], i) => [k, { data: b(v), revision: i + 1 }]),
  );

describe('planRepair', () => {
  it('restores lost and edited intents before the markers, deletes what we did not write', () => {
    const ops = planRepair({
      fenceKey: '_fence',
      fence: b('F'),
      want: new Map([
        ['l.ns.a', b('A')],
        ['l.ns.b', b('B')],
        ['l._marker', b('M')],
      ]),
      actual: stored({ 'l.ns.a': 'edited', 'l.ns.x': 'foreign', 'k._marker': 'stale' }),
      isMarker,
      manageMarkers: true,
    });
    expect(ops).toEqual([
      { key: '_fence', op: 'write' },
      { key: 'l.ns.a', op: 'write' },
      { key: 'l.ns.b', op: 'write' },
      { key: 'l.ns.x', op: 'delete' },
      { key: 'l._marker', op: 'write' },
      { key: 'k._marker', op: 'delete' },
    ]);
  });

  it('does nothing when the bucket holds what we wrote; leaves markers alone until they are managed', () => {
    const want = new Map([['l.ns.a', b('A')]]);
    const actual = stored({ _fence: 'F', 'l.ns.a': 'A', 'l._marker': 'old' });
    expect(
      planRepair({ fenceKey: '_fence', fence: b('F'), want, actual, isMarker, manageMarkers: false }),
    ).toEqual([]);
  });

  it('property: applying the plan gives exactly what we want, and rewrites nothing already right', () => {
    const key = fc.constantFrom('l.ns.a', 'l.ns.b', 'm.ns.c', 'l._marker', 'm._marker', '_fence');
    const val = fc.constantFrom('1', '2', '3');
    fc.assert(
      fc.property(
        fc.dictionary(key, val),
        fc.dictionary(key, val),
        fc.boolean(),
        (wantObj, actualObj, manageMarkers) => {
          delete wantObj._fence;
          const want = new Map(Object.entries(wantObj).map(([k, v]) => [k, b(v)]));
          const actual = stored(actualObj);
          const ops = planRepair({
            fenceKey: '_fence',
            fence: b('F'),
            want,
            actual,
            isMarker,
            manageMarkers,
          });
          const after = new Map<string, string>(Object.entries(actualObj));
          for (const o of ops) {
            if (o.op === 'delete') after.delete(o.key);
            else after.set(o.key, o.key === '_fence' ? 'F' : new TextDecoder().decode(want.get(o.key)));
            if (o.op === 'write' && o.key !== '_fence')
              expect((actualObj as Record<string, string>)[o.key]).not.toBe(
                (wantObj as Record<string, string>)[o.key],
              );
          }
          const expected = new Map<string, string>([['_fence', 'F']]);
          for (const [k, v] of Object.entries(wantObj)) if (manageMarkers || !isMarker(k)) expected.set(k, v);
          if (!manageMarkers)
            for (const [k, v] of Object.entries(actualObj)) if (isMarker(k)) expected.set(k, v);
          expect(Object.fromEntries(after)).toEqual(Object.fromEntries(expected));
          // Markers come after every intent operation.
          const firstMarker = ops.findIndex((o) => isMarker(o.key));
          if (firstMarker >= 0) expect(ops.slice(firstMarker).every((o) => isMarker(o.key))).toBe(true);
        },
      ),
    );
  });
});
