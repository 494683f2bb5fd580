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
import { existingAntiAffinityFilter, type HostFilter, Reasons, staticFilters } from './filters.js';
import { IndexHeap } from './heap.js';
import { compileNodePreferences, noHost, offerHost, resourceScore } from './scoring.js';
import {
  addToSpread,
  affinitySatisfied,
  antiAffinitySatisfied,
  buildDim,
  compilePodRule,
  compileSpreadRule,
  type Dim,
  firstOfGroup,
  isOwnReplica,
  type PodRule,
  podPreference,
  type Rule,
  recomputeMin,
  type SpreadRule,
  spreadAllows,
  spreadPenalty,
} from './topology.js';
import type { HostInfo, InstanceInfo, ScheduleInput, WorkloadInfo } from './types.js';

interface Cell {
  heap: IndexHeap;
  /** A host of the cell: every cell-level rule gives the same verdict for all of its hosts. */
  rep: number;
}

/** Result of evaluating rules on a host: a rejection phrase, or the penalty and preference it scores. */
export interface Verdict {
  fail: string | undefined;
  penalty: number;
  preference: number;
}

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
  readonly dims = new Map<string, Dim>();
  readonly spreads: SpreadRule[] = [];
  readonly podRules: PodRule[] = [];
  readonly rules: Rule[] = [];
  /** Rules on keys shared by several hosts (evaluated once per cell) and on host-unique keys (per host). */
  private readonly cellRules: Rule[] = [];
  private readonly hostRules: Rule[] = [];
  private readonly selfRules: Rule[] = [];
  private readonly requiredAffinity: PodRule[] = [];
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
  private firstOfGroup = false;
  private readonly verdict: Verdict = { fail: undefined, penalty: 0, preference: 0 };

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
    this.compileRules(input, selected, untainted);
    const guarded = this.countInstances(input.instances);
    // Existing instances' anti-affinity rules out hosts without changing which hosts node affinity selects
    // (topology spread's nodeAffinityPolicy counts on that), so it is applied after the selectors; the
    // instances that carry such rules were collected by the pass above.
    const existing = guarded.length > 0 ? existingAntiAffinityFilter(input, guarded) : undefined;
    if (existing) {
      this.filters.push(existing);
      const code = this.filters.length;
      for (let i = 0; i < n; i++) if (staticFail[i] === 0 && !existing.test(hosts[i]!)) staticFail[i] = code;
    }
    for (const r of this.spreads) recomputeMin(r);
    this.firstOfGroup = firstOfGroup(this.requiredAffinity);
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

  private dim(key: string): Dim {
    let d = this.dims.get(key);
    if (!d) {
      d = buildDim(this.hosts, key);
      this.dims.set(key, d);
    }
    return d;
  }

  private compileRules(input: ScheduleInput, selected: Uint8Array, untainted: Uint8Array): void {
    const { workload } = input;
    const p = workload.placement;
    for (const c of p?.topologySpreadConstraints ?? []) {
      this.spreads.push(compileSpreadRule(c, workload, this.dim(c.topologyKey), selected, untainted));
    }
    const nsLabels = input.namespaceLabels ?? {};
    const affinity = p?.affinity;
    for (const [kind, spec] of [
      ['affinity', affinity?.podAffinity],
      ['antiAffinity', affinity?.podAntiAffinity],
    ] as const) {
      for (const t of spec?.requiredDuringSchedulingIgnoredDuringExecution ?? []) {
        this.podRules.push(compilePodRule(kind, t, true, 0, workload, this.dim(t.topologyKey), nsLabels));
      }
      for (const w of spec?.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
        const t = w.podAffinityTerm;
        this.podRules.push(
          compilePodRule(kind, t, false, w.weight, workload, this.dim(t.topologyKey), nsLabels),
        );
      }
    }
    this.rules.push(...this.spreads, ...this.podRules);
    for (const r of this.rules) {
      (r.dim.unique ? this.hostRules : this.cellRules).push(r);
      if (r.self) this.selfRules.push(r);
      if (r.kind === 'affinity' && r.required) this.requiredAffinity.push(r);
    }
  }

  /**
   * One pass over all instances: the Workload's own, and the counts of every rule. Rules that can only match
   * the Workload's own instances are counted from those alone.
   */
  /** Counts instances into the rules' domains; returns the instances that carry required anti-affinity. */
  private countInstances(instances: readonly InstanceInfo[]): InstanceInfo[] {
    const key = this.key;
    const own = this.own;
    const guarded: InstanceInfo[] = [];
    const shared = this.rules.filter((r) => r.kind !== 'spread' || !r.ownOnly);
    const ownOnly = this.rules.filter((r) => r.kind === 'spread' && r.ownOnly);
    const nr = shared.length;
    if (nr === 0) {
      for (let k = 0; k < instances.length; k++) {
        const inst = instances[k]!;
        if (isOwnReplica(inst, key)) own.push(inst);
        if (inst.antiAffinity !== undefined) guarded.push(inst);
      }
    } else {
      for (let k = 0; k < instances.length; k++) {
        const inst = instances[k]!;
        if (isOwnReplica(inst, key)) own.push(inst);
        if (inst.antiAffinity !== undefined) guarded.push(inst);
        let h = -2;
        for (let j = 0; j < nr; j++) {
          const r = shared[j]!;
          if (!r.matches(inst)) continue;
          if (h === -2) h = this.hostIndex.get(inst.host) ?? -1;
          if (h < 0) break;
          this.count(r, h);
        }
      }
    }
    if (ownOnly.length === 0 || own.length === 0) return guarded;
    const index = this.hostIndex;
    for (const inst of own) {
      const h = index.get(inst.host);
      if (h === undefined) continue;
      for (const r of ownOnly) if (r.matches(inst)) this.count(r, h);
    }
    return guarded;
  }

  private count(r: Rule, h: number): void {
    const d = r.dim.domainOf[h]!;
    if (d < 0) return;
    if (r.kind === 'spread') {
      if (r.eligibleHost[h]) r.counts[d]!++;
    } else {
      r.counts[d]!++;
      r.total++;
    }
  }

  /** Whether one more instance fits on host i. */
  fits(i: number): boolean {
    return (
      this.usedCpu[i]! + this.reqCpu <= this.capCpu[i]! && this.usedMem[i]! + this.reqMem <= this.capMem[i]!
    );
  }

  /**
   * Evaluates `rules` for host i into `this.verdict`; returns false when one rejects the host.
   */
  private evaluate(rules: readonly Rule[], i: number): boolean {
    const v = this.verdict;
    v.fail = undefined;
    v.penalty = 0;
    v.preference = 0;
    for (let j = 0; j < rules.length; j++) {
      const r = rules[j]!;
      const d = r.dim.domainOf[i]!;
      if (r.kind === 'spread') {
        if (r.hard) {
          if (!spreadAllows(r, d)) {
            v.fail = d < 0 ? Reasons.missingTopologyLabel(r.dim.key) : Reasons.topologySpread;
            return false;
          }
        } else v.penalty += spreadPenalty(r, d);
      } else if (r.required) {
        if (r.kind === 'affinity') {
          if (!affinitySatisfied(r, d) && !(this.firstOfGroup && d >= 0)) {
            v.fail = Reasons.podAffinity;
            return false;
          }
        } else if (!antiAffinitySatisfied(r, d)) {
          v.fail = Reasons.podAntiAffinity;
          return false;
        }
      } else v.preference += podPreference(r, d);
    }
    return true;
  }

  /**
   * Every rule on host i, from scratch: whether they admit it, with the verdict (penalty and preference, or why
   * not). The verdict is valid until the next evaluation. For the exhaustive search and explanations.
   */
  checkAll(i: number): { ok: boolean; verdict: Readonly<Verdict> } {
    return { ok: this.evaluate(this.rules, i), verdict: this.verdict };
  }

  /** Recomputes what orders host i inside its cell. */
  private rekey(i: number): void {
    const ok = this.evaluate(this.hostRules, i);
    this.blocked[i] = ok ? 0 : 1;
    this.kPenalty[i] = this.verdict.penalty;
    this.kPreference[i] = this.nodePreference[i]! + this.verdict.preference;
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
    const cellDims = [...new Set(this.cellRules.map((r) => r.dim))];
    const members: number[][] = [];
    const n = this.hosts.length;
    const order = this.makeOrder();
    const { staticFail, capCpu, capMem, usedCpu, usedMem, kResource, cellOf, reqCpu, reqMem } = this;
    const binPack = this.scoring === 'BinPack';
    const hostLevel = this.hostRules.length > 0;
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
    const v = this.verdict;
    for (const c of this.live) {
      const cell = this.cells[c]!;
      const top = cell.heap.peek();
      if (top < 0) {
        emptied = true;
        continue;
      }
      if (this.blocked[top]) continue;
      if (this.cellRules.length > 0 && !this.evaluate(this.cellRules, cell.rep)) continue;
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
    let global = false;
    for (const r of this.selfRules) {
      const d = r.dim.domainOf[i]!;
      if (d < 0) continue;
      if (r.kind === 'spread') {
        if (r.eligibleHost[i] && addToSpread(r, d) && r.dim.unique) global = true;
      } else {
        r.counts[d]!++;
        r.total++;
      }
    }
    if (this.requiredAffinity.length > 0) {
      const first = firstOfGroup(this.requiredAffinity);
      if (first !== this.firstOfGroup) {
        this.firstOfGroup = first;
        if (this.hostRules.some((r) => r.kind === 'affinity' && r.required)) global = true;
      }
    }
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
