/**
 * A binary min-heap of small integer ids (host indexes) under a caller-supplied order, with removal and
 * re-keying of any id. `pos` is shared by all heaps over the same ids (an id is in at most one heap).
 */
export class IndexHeap {
  items: number[] = [];

  constructor(
    private readonly pos: Int32Array,
    /** True when a must come out before b. Must be a strict total order for determinism. */
    private readonly before: (a: number, b: number) => boolean,
  ) {}

  get size(): number {
    return this.items.length;
  }

  peek(): number {
    return this.items.length > 0 ? this.items[0]! : -1;
  }

  has(id: number): boolean {
    const p = this.pos[id]!;
    return p >= 0 && p < this.items.length && this.items[p] === id;
  }

  push(id: number): void {
    this.items.push(id);
    this.pos[id] = this.items.length - 1;
    this.up(this.items.length - 1);
  }

  /** Takes `ids` (the array itself, not a copy) as the content and restores the heap order in O(n). */
  heapify(ids?: number[]): void {
    if (ids) this.items = ids;
    const items = this.items;
    for (let i = 0; i < items.length; i++) this.pos[items[i]!] = i;
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  pop(): number {
    const top = this.peek();
    if (top >= 0) this.remove(top);
    return top;
  }

  remove(id: number): void {
    const i = this.pos[id]!;
    const items = this.items;
    const last = items.pop()!;
    this.pos[id] = -1;
    if (i === items.length) return;
    items[i] = last;
    this.pos[last] = i;
    this.update(last);
  }

  /** Restores the order after the key of `id` changed. */
  update(id: number): void {
    const i = this.pos[id]!;
    if (!this.up(i)) this.down(i);
  }

  private up(i: number): boolean {
    const items = this.items;
    const id = items[i]!;
    let moved = false;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!this.before(id, p)) break;
      items[i] = p;
      this.pos[p] = i;
      i = parent;
      moved = true;
    }
    items[i] = id;
    this.pos[id] = i;
    return moved;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const id = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.before(items[r]!, items[l]!)) c = r;
      const child = items[c]!;
      if (!this.before(child, id)) break;
      items[i] = child;
      this.pos[child] = i;
      i = c;
    }
    items[i] = id;
    this.pos[id] = i;
  }
}
