import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexHeap } from '../../../coordinator/placement/heap.js';

describe('IndexHeap', () => {
  it('pops in order under pushes, removals and key changes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 20 }), fc.boolean()), { maxLength: 30 }),
        (keys, ops) => {
          const key = [...keys];
          const pos = new Int32Array(key.length).fill(-1);
          const before = (a: number, b: number) => key[a]! < key[b]! || (key[a] === key[b] && a < b);
          const heap = new IndexHeap(pos, before);
          heap.heapify(key.map((_, i) => i));
          const live = new Set(key.map((_, i) => i));
          for (const [at, value, remove] of ops) {
            const id = at % key.length;
            if (!live.has(id)) continue;
            if (remove) {
              heap.remove(id);
              live.delete(id);
            } else {
              key[id] = value;
              heap.update(id);
            }
          }
          const want = [...live].sort((a, b) => (before(a, b) ? -1 : 1));
          const got: number[] = [];
          while (heap.size > 0) got.push(heap.pop());
          expect(got).toEqual(want);
        },
      ),
    );
  });

  it('has() and peek()', () => {
    const pos = new Int32Array(3).fill(-1);
    const heap = new IndexHeap(pos, (a, b) => a < b);
    expect(heap.peek()).toBe(-1);
    heap.push(2);
    heap.push(1);
    expect(heap.peek()).toBe(1);
    expect(heap.has(2)).toBe(true);
    expect(heap.has(0)).toBe(false);
    heap.remove(2);
    expect(heap.has(2)).toBe(false);
  });
});
