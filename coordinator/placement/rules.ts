/**
 * The domain rules of one Workload compiled against its hosts: topology spread constraints and instance
 * (anti-)affinity terms, with their per-domain counts. `PlacementState` asks them for a host's verdict and tells
 * them about every instance it places; the checks themselves are the small pure functions of `topology.ts`.
 *
 * Invariant: after `seal()`, every rule's counts equal the matching instances per domain (existing ones plus
 * those recorded with `commit`), so a verdict costs a few array reads per rule.
 */
import { Reasons } from './filters.js';
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
import type { HostInfo, InstanceInfo, ScheduleInput } from './types.js';

/** Result of evaluating rules on a host: a rejection phrase, or the penalty and preference it scores. */
export interface Verdict {
  /** Why a rule rejects the host; undefined when every rule admits it. */
  fail: string | undefined;
  /** ScheduleAnyway topology spread: the excess over maxSkew placing there would cause. */
  penalty: number;
  /** Preferred instance (anti-)affinity: weights times matching instances in the host's domains. */
  preference: number;
}

export class DomainRules {
  /** Host groupings by topology key, built once per key. */
  private readonly dims = new Map<string, Dim>();
  readonly spreads: SpreadRule[] = [];
  readonly podRules: PodRule[] = [];
  /** Every rule, spreads first. */
  readonly all: Rule[] = [];
  /** Rules on keys shared by several hosts: one verdict per cell of hosts. */
  readonly cellLevel: Rule[] = [];
  /** Rules on host-unique keys (e.g. `kubernetes.io/hostname`): one verdict per host. */
  readonly hostLevel: Rule[] = [];
  /** Rules the Workload's own new instances count towards. */
  private readonly selfRules: Rule[] = [];
  private readonly requiredAffinity: PodRule[] = [];
  /** Required affinity to the Workload's own instances while none exists yet: the first one may go anywhere. */
  private firstOfGroup = false;
  /** The verdict of the last `evaluate`, valid until the next one (reused: this is the hot path). */
  readonly verdict: Verdict = { fail: undefined, penalty: 0, preference: 0 };

  constructor(
    private readonly hosts: readonly HostInfo[],
    input: ScheduleInput,
    selected: Uint8Array,
    untainted: Uint8Array,
  ) {
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
    this.all.push(...this.spreads, ...this.podRules);
    for (const r of this.all) {
      (r.dim.unique ? this.hostLevel : this.cellLevel).push(r);
      if (r.self) this.selfRules.push(r);
      if (r.kind === 'affinity' && r.required) this.requiredAffinity.push(r);
    }
  }

  private dim(key: string): Dim {
    let d = this.dims.get(key);
    if (!d) {
      d = buildDim(this.hosts, key);
      this.dims.set(key, d);
    }
    return d;
  }

  /**
   * One pass over all instances: collects the Workload's own (`key`) into `own` and counts every rule. Rules that
   * can only match the Workload's own instances are counted from those alone. Returns the instances that carry
   * required anti-affinity. Call `seal()` afterwards.
   */
  countInstances(
    instances: readonly InstanceInfo[],
    key: string,
    own: InstanceInfo[],
    hostIndex: () => ReadonlyMap<string, number>,
  ): InstanceInfo[] {
    const guarded: InstanceInfo[] = [];
    const shared = this.all.filter((r) => r.kind !== 'spread' || !r.ownOnly);
    const ownOnly = this.all.filter((r) => r.kind === 'spread' && r.ownOnly);
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
          if (h === -2) h = hostIndex().get(inst.host) ?? -1;
          if (h < 0) break;
          this.count(r, h);
        }
      }
    }
    if (ownOnly.length === 0 || own.length === 0) return guarded;
    const index = hostIndex();
    for (const inst of own) {
      const h = index.get(inst.host);
      if (h === undefined) continue;
      for (const r of ownOnly) if (r.matches(inst)) this.count(r, h);
    }
    return guarded;
  }

  /** Derives what the counts imply (each spread's minimum, the first-of-group exception). */
  seal(): void {
    for (const r of this.spreads) recomputeMin(r);
    this.firstOfGroup = firstOfGroup(this.requiredAffinity);
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

  /** Evaluates `rules` for host i into `verdict`; returns false when one rejects the host. */
  evaluate(rules: readonly Rule[], i: number): boolean {
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
   * Counts one new instance of the Workload on host i. Returns true when that changes the verdict of hosts
   * other than i's cell (a spread minimum on a host-unique key moved, or the first-of-group exception ended), so
   * every host must be re-keyed.
   */
  commit(i: number): boolean {
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
        if (this.hostLevel.some((r) => r.kind === 'affinity' && r.required)) global = true;
      }
    }
    return global;
  }
}
