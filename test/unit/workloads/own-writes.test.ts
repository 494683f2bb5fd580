/**
 * The controller's own writes (coordinator/workloads/own-writes.ts): their informer echoes are recognised, once;
 * another writer's change, a delete or a version never written by us is never taken for one; a Workload's pass
 * waits for its own writes only until they come back, and never longer than PENDING_MS.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PER_OBJECT, OwnWrites, PENDING_MS } from '../../../coordinator/workloads/own-writes.js';

const obj = (name: string, rv: string, namespace = 'ns') => ({
  metadata: { namespace, name, resourceVersion: rv },
});
const W = 'g|ns|web';

describe('OwnWrites', () => {
  it('recognises the echo of a write once, and nothing else', () => {
    const own = new OwnWrites();
    own.record('instance', obj('a', '10'), W);
    expect(own.isEcho('instance', obj('a', '9'), 'update')).toBe(false); // somebody else's, before ours
    expect(own.isEcho('instance', obj('b', '10'), 'add')).toBe(false); // another object
    expect(own.isEcho('workload.g', obj('a', '10'), 'update')).toBe(false); // another kind
    expect(own.isEcho('instance', obj('a', '10', 'other'), 'update')).toBe(false); // another namespace
    expect(own.isEcho('instance', obj('a', '10'), 'add')).toBe(true);
    expect(own.isEcho('instance', obj('a', '10'), 'update')).toBe(false); // consumed
    expect(own.size).toBe(0);
  });

  it('takes the finalizer patch and the status patch of one pass, whichever echo comes first', () => {
    const own = new OwnWrites();
    own.record('w', obj('web', '20'), W);
    own.record('w', obj('web', '22'), W);
    // A spec change by the user landed between our two writes: it is theirs.
    expect(own.isEcho('w', obj('web', '20'), 'update')).toBe(true);
    expect(own.isEcho('w', obj('web', '21'), 'update')).toBe(false);
    expect(own.isEcho('w', obj('web', '22'), 'update')).toBe(true);
  });

  it('never skips a delete, and forgets the object with it', () => {
    const own = new OwnWrites();
    own.record('instance', obj('a', '10'), W);
    expect(own.isEcho('instance', obj('a', '10'), 'delete')).toBe(false);
    expect(own.size).toBe(0);
    expect(own.pending(W)).toBe(false);
    expect(own.isEcho('instance', obj('a', '10'), 'update')).toBe(false);
  });

  it('records nothing without a resourceVersion', () => {
    const own = new OwnWrites();
    own.record('instance', { metadata: { namespace: 'ns', name: 'a' } }, W);
    own.record('instance', undefined, W);
    expect(own.size).toBe(0);
    expect(own.pending(W)).toBe(false);
  });

  it("keeps a Workload's next pass waiting until its writes are back, or PENDING_MS passed", () => {
    const own = new OwnWrites();
    own.record('instance', obj('web-0', '30'), W, 1000);
    own.record('w', obj('web', '31'), W, 1000);
    own.record('instance', obj('other-0', '32'), 'g|ns|other', 1000);
    expect(own.pending(W, 1001)).toBe(true);
    expect(own.isEcho('instance', obj('web-0', '30'), 'add')).toBe(true);
    expect(own.pending(W, 1002)).toBe(true); // the status write has not come back
    expect(own.isEcho('w', obj('web', '31'), 'update')).toBe(true);
    expect(own.pending(W, 1003)).toBe(false);
    expect(own.pending('g|ns|other', 1003)).toBe(true); // another Workload's writes are its own business
    // An echo lost (a relist delivered a later version): no longer waited for after PENDING_MS, and forgotten.
    expect(own.pending('g|ns|other', 1000 + PENDING_MS)).toBe(false);
    expect(own.size).toBe(0);
  });

  it('does not wait for a write whose echo came before its response, nor for a no-op write', () => {
    const own = new OwnWrites();
    expect(own.isEcho('instance', obj('a', '40'), 'update')).toBe(false); // delivered first
    own.record('instance', obj('a', '40'), W);
    expect(own.pending(W)).toBe(false);
    expect(own.size).toBe(0);
  });

  it('skips exactly the events carrying a version we wrote, and stays bounded', () => {
    fc.assert(
      fc.property(
        // A history of versions 1..n of one object, each written by us or by somebody else.
        fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }),
        (ours) => {
          const own = new OwnWrites();
          let skipped = 0;
          for (const [i, mine] of ours.entries()) {
            const rv = String(i + 1);
            if (mine) own.record('k', obj('x', rv), W);
            // The watch delivers every version, in order.
            if (own.isEcho('k', obj('x', rv), 'update')) {
              skipped++;
              expect(mine).toBe(true);
            }
            expect(own.pending(W)).toBe(false);
          }
          expect(skipped).toBe(ours.filter(Boolean).length);
        },
      ),
    );
    // Versions whose echo never comes (a relist) do not pile up.
    const own = new OwnWrites();
    for (let i = 0; i < 100; i++) own.record('k', obj('x', String(i)), W);
    expect(own.isEcho('k', obj('x', String(100 - MAX_PER_OBJECT - 1)), 'update')).toBe(false);
    expect(own.isEcho('k', obj('x', '99'), 'update')).toBe(true);
  });
});
