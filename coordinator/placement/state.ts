/**
 * The placement state for one Workload: hosts with their static verdicts and free resources, the compiled
 * domain rules with their counts, and an index that finds the best host for the next instance quickly.
 *
 * Ranking of a feasible host (lexicographic, first difference decides):
 *   1. ScheduleAnyway topology spread: the least excess over maxSkew;
 *   2. preferences: the highest sum of preferred node-affinity weights and preferred instance (anti-)affinity
 *      weights times matching instances in the domain;
 *   3. resources: Spread (least allocated after placing) or BinPack (most allocated);
 *   4. the host name, ascending.
 *
 * Speed: hosts are grouped into cells that share the domain of every non-host-unique topology key that a rule
 * uses, so every rule on such a key gives the same verdict for the whole cell; each cell keeps its hosts in a
 * heap ordered by what differs per host. Choosing a host costs O(cells + log hosts), not O(hosts).
 */
import type { PlacementScoring } from '../../shared/api/placement.js';
import { workloadKey } from '../workloads/naming.js';
import { existingAntiAffinityFilter, type HostFilter, staticFilters } from './filters.js';
import { IndexHeap } from './heap.js';
import { DomainRules, type Verdict } from './rules.js';
import { compileNodePreferences, noHost, offerHost, resourceScore } from './scoring.js';
import type { SpreadRule } from './topology.js';
import type { HostInfo, InstanceInfo, ScheduleInput, WorkloadInfo } from './types.js';

interface Cell {
  heap: IndexHeap;
  /** A host of the cell: every cell-level rule gives the same verdict for all of its hosts. */
  rep: number;
}

export type { Verdict } from './rules.js';

export class PlacementState {
  readonly workload: WorkloadInfo;
  readonly key: string;
  readonly hosts: readonly HostInfo[];
  private index: Map<string, number> | undefined;
  readonly scoring: PlacementScoring;
  readonly reqCpu: number;
  readonly reqMem: number;
  readonly filters: HostFilter[];
  /** Per host: index + 1 of the first static filter that rejects it, 0 when none does. */
  readonly staticFail: Int16Array;
  readonly capCpu: Float64Array;
  readonly capMem: Float64Array;
  readonly usedCpu: Float64Array;
  readonly usedMem: Float64Array;
  /** Per host: sum of matched preferred node-affinity weights. */
  readonly nodePreference: Float64Array;
  /** Topology spread and instance (anti-)affinity, with their counts. */
  readonly rules: DomainRules;
  /** The Workload's own instances (on listed hosts or not). */
  readonly own: InstanceInfo[] = [];

  // Search index.
  private readonly cells: Cell[] = [];
  private live: number[] = [];
  private readonly blocked: Uint8Array;
  private readonly kPenalty: Float64Array;
  private readonly kPreference: Float64Array;
  private readonly kResource: Float64Array;
  private readonly pos: Int32Array;
  private readonly cellOf: Int32Array;

  constructor(input: ScheduleInput) {
    const { workload, hosts } = input;
    this.workload = workload;
    this.key = workloadKey(workload);
    this.hosts = hosts;
    const n = hosts.length;
    this.scoring = workload.placement?.scoring ?? 'Spread';
    this.reqCpu = workload.resources.cpuMillis;
    this.reqMem = workload.resources.memoryBytes;
    this.filters = staticFilters(workload);
    this.staticFail = new Int16Array(n);
    this.capCpu = new Float64Array(n);
    this.capMem = new Float64Array(n);
    this.usedCpu = new Float64Array(n);
    this.usedMem = new Float64Array(n);
    this.nodePreference = new Float64Array(n);
    this.blocked = new Uint8Array(n);
    this.kPenalty = new Float64Array(n);
    this.kPreference = new Float64Array(n);
    this.kResource = new Float64Array(n);
    this.pos = new Int32Array(n).fill(-1);
    this.cellOf = new Int32Array(n).fill(-1);

    // Static verdicts, resources and preferences per host.
    const selected = new Uint8Array(n);
    const untainted = new Uint8Array(n);
    const prefer = compileNodePreferences(
      workload.placement?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
    );
    // staticFilters() starts with NodeUnschedulable, NodeReady and Runtime; those are checked inline here.
    const selectors = this.filters.slice(3);
    const runtime = workload.runtime;
    const { capCpu, capMem, usedCpu, usedMem, staticFail, nodePreference } = this;
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      capCpu[i] = h.capacity.cpuMillis;
      capMem[i] = h.capacity.memoryBytes;
      usedCpu[i] = h.allocated.cpuMillis;
      usedMem[i] = h.allocated.memoryBytes;
      const cordoned = h.cordoned === true;
      untainted[i] = h.ready && !cordoned ? 1 : 0;
      let fail = cordoned ? 1 : !h.ready ? 2 : h.runtimes.includes(runtime) ? 0 : 3;
      let sel = 1;
      for (let f = 0; f < selectors.length; f++) {
        if (selectors[f]!.test(h)) continue;
        if (fail === 0) fail = f + 4;
        sel = 0;
        break;
      }
      staticFail[i] = fail;
      selected[i] = sel;
      if (prefer && fail === 0) nodePreference[i] = prefer(h);
    }
    this.rules = new DomainRules(hosts, input, selected, untainted);
    const guarded = this.rules.countInstances(input.instances, this.key, this.own, () => this.hostIndex);
    // Existing instances' anti-affinity rules out hosts without changing which hosts node affinity selects
    // (topology spread's nodeAffinityPolicy counts on that), so it is applied after the selectors; the
    // instances that carry such rules were collected by the pass above.
    const existing = guarded.length > 0 ? existingAntiAffinityFilter(input, guarded) : undefined;
    if (existing) {
      this.filters.push(existing);
      const code = this.filters.length;
      for (let i = 0; i < n; i++) if (staticFail[i] === 0 && !existing.test(hosts[i]!)) staticFail[i] = code;
    }
    this.rules.seal();
    this.buildCells();
  }

  /** Host index by name (built on first use: most calls never need it). */
  get hostIndex(): ReadonlyMap<string, number> {
    if (!this.index) {
      this.index = new Map();
      for (let i = 0; i < this.hosts.length; i++) this.index.set(this.hosts[i]!.name, i);
    }
    return this.index;
  }

  /** Whether one more instance fits on host i. */
  fits(i: number): boolean {
    return (
      this.usedCpu[i]! + this.reqCpu <= this.capCpu[i]! && this.usedMem[i]! + this.reqMem <= this.capMem[i]!
    );
  }

  /**
   * Every rule on host i, from scratch: whether they admit it, with the verdict (penalty and preference, or why
   * not). The verdict is valid until the next evaluation. For the exhaustive search and explanations.
   */
  checkAll(i: number): { ok: boolean; verdict: Readonly<Verdict> } {
    return { ok: this.rules.evaluate(this.rules.all, i), verdict: this.rules.verdict };
  }

  /** The topology spread rules (for the reconcile stage's view of the current spread). */
  get spreads(): readonly SpreadRule[] {
    return this.rules.spreads;
  }

  /** Recomputes what orders host i inside its cell. */
  private rekey(i: number): void {
    const ok = this.rules.evaluate(this.rules.hostLevel, i);
    this.blocked[i] = ok ? 0 : 1;
    this.kPenalty[i] = this.rules.verdict.penalty;
    this.kPreference[i] = this.nodePreference[i]! + this.rules.verdict.preference;
    this.kResource[i] = resourceScore(
      this.scoring,
      this.capCpu[i]!,
      this.capMem[i]!,
      this.usedCpu[i]! + this.reqCpu,
      this.usedMem[i]! + this.reqMem,
    );
  }

  /** The order of hosts inside a cell: not blocked, least penalty, most preferred, best resources, name. */
  private makeOrder(): (a: number, b: number) => boolean {
    const { blocked, kPenalty, kPreference, kResource } = this;
    const names = this.hosts.map((h) => h.name);
    return (a, b) => {
      const ba = blocked[a]!;
      const bb = blocked[b]!;
      if (ba !== bb) return ba < bb;
      const pa = kPenalty[a]!;
      const pb = kPenalty[b]!;
      if (pa !== pb) return pa < pb;
      const qa = kPreference[a]!;
      const qb = kPreference[b]!;
      if (qa !== qb) return qa > qb;
      const ra = kResource[a]!;
      const rb = kResource[b]!;
      if (ra !== rb) return ra > rb;
      return names[a]! < names[b]!;
    };
  }

  private buildCells(): void {
    const cellDims = [...new Set(this.rules.cellLevel.map((r) => r.dim))];
    const members: number[][] = [];
    const n = this.hosts.length;
    const order = this.makeOrder();
    const { staticFail, capCpu, capMem, usedCpu, usedMem, kResource, cellOf, reqCpu, reqMem } = this;
    const binPack = this.scoring === 'BinPack';
    const hostLevel = this.rules.hostLevel.length > 0;
    // Cell of a host: one cell without cell-level rules; by domain id for one key; by the tuple for several.
    const single = cellDims.length === 1 ? cellDims[0]! : undefined;
    const byDomain = single ? new Int32Array(single.domains.length + 1).fill(-1) : undefined;
    const byKey = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      if (staticFail[i] !== 0) continue;
      const uc = usedCpu[i]! + reqCpu;
      const um = usedMem[i]! + reqMem;
      const cc = capCpu[i]!;
      const cm = capMem[i]!;
      if (uc > cc || um > cm) continue;
      let c: number;
      if (cellDims.length === 0) c = 0;
      else if (byDomain) {
        const d = single!.domainOf[i]! + 1;
        c = byDomain[d]!;
        if (c < 0) c = byDomain[d] = members.length;
      } else {
        let key = '';
        for (const d of cellDims) key += `${d.domainOf[i]},`;
        c = byKey.get(key) ?? -1;
        if (c < 0) {
          c = members.length;
          byKey.set(key, c);
        }
      }
      if (c === members.length) {
        members.push([]);
        this.cells.push({ heap: new IndexHeap(this.pos, order), rep: i });
      }
      members[c]!.push(i);
      cellOf[i] = c;
      if (hostLevel) this.rekey(i);
      else {
        const used = ((cc > 0 ? uc / cc : 1) + (cm > 0 ? um / cm : 1)) / 2;
        kResource[i] = binPack ? used : 1 - used;
        this.kPreference[i] = this.nodePreference[i]!;
      }
    }
    for (let c = 0; c < this.cells.length; c++) this.cells[c]!.heap.heapify(members[c]!);
    this.live = this.cells.map((_, c) => c);
  }

  /** Re-keys every host still in a cell (after a change that affects all of them). */
  private rebuild(): void {
    for (const c of this.live) {
      const heap = this.cells[c]!.heap;
      const keep: number[] = [];
      for (const i of heap.items) {
        if (!this.fits(i)) {
          this.pos[i] = -1;
          continue;
        }
        this.rekey(i);
        keep.push(i);
      }
      heap.heapify(keep);
    }
  }

  /** The best host for the next instance, or -1 when none is feasible. */
  select(): number {
    const best = noHost();
    let emptied = false;
    const v = this.rules.verdict;
    const cellLevel = this.rules.cellLevel;
    for (const c of this.live) {
      const cell = this.cells[c]!;
      const top = cell.heap.peek();
      if (top < 0) {
        emptied = true;
        continue;
      }
      if (this.blocked[top]) continue;
      if (cellLevel.length > 0 && !this.rules.evaluate(cellLevel, cell.rep)) continue;
      offerHost(
        best,
        this.hosts,
        top,
        v.penalty + this.kPenalty[top]!,
        v.preference + this.kPreference[top]!,
        this.kResource[top]!,
      );
    }
    if (emptied) this.live = this.live.filter((c) => this.cells[c]!.heap.size > 0);
    return best.host;
  }

  /** Records one new instance on host i. */
  commit(i: number): void {
    this.usedCpu[i] = this.usedCpu[i]! + this.reqCpu;
    this.usedMem[i] = this.usedMem[i]! + this.reqMem;
    const global = this.rules.commit(i);
    if (global) {
      this.rebuild();
      return;
    }
    const c = this.cellOf[i]!;
    const heap = this.cells[c]?.heap;
    if (!heap?.has(i)) return;
    if (!this.fits(i)) heap.remove(i);
    else {
      this.rekey(i);
      heap.update(i);
    }
  }
}
