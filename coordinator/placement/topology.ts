/**
 * Rules that count instances per topology domain (kube-scheduler's PodTopologySpread and InterPodAffinity):
 * topology spread constraints, and instance affinity / anti-affinity terms, required and preferred.
 *
 * A domain is a value of a host label (the topology key). For each rule the engine keeps the number of matching
 * instances per domain and updates it as it places instances, so checking a host costs a few array reads. Each
 * check below is a small pure function of those counts.
 */
import type { PodAffinityTerm, TopologySpreadConstraint } from '../../shared/api/placement.js';
import { workloadKey } from '../workloads/naming.js';
import {
  compileLabelSelector,
  type ExtraRequirement,
  hostLabel,
  type LabelPredicate,
  type Labels,
} from './labels.js';
import type { HostInfo, InstanceInfo, WorkloadInfo } from './types.js';

/** The domains of one topology key over the hosts. */
export interface Dim {
  key: string;
  /** Domain id of each host (by host index), -1 when the host does not have the label. */
  domainOf: Int32Array;
  /** Domain values by id. */
  domains: string[];
  /** True when no two hosts share a domain (e.g. `kubernetes.io/hostname`): a domain is a host. */
  unique: boolean;
}

/** Groups hosts by the value of `key`. */
export function buildDim(hosts: readonly HostInfo[], key: string): Dim {
  const ids = new Map<string, number>();
  const domains: string[] = [];
  const domainOf = new Int32Array(hosts.length);
  let labelled = 0;
  for (let i = 0; i < hosts.length; i++) {
    const v = hostLabel(hosts[i]!, key);
    if (v === undefined) {
      domainOf[i] = -1;
      continue;
    }
    labelled++;
    let id = ids.get(v);
    if (id === undefined) {
      id = domains.length;
      ids.set(v, id);
      domains.push(v);
    }
    domainOf[i] = id;
  }
  return { key, domainOf, domains, unique: domains.length === labelled };
}

/** A topology spread constraint, compiled. */
export interface SpreadRule {
  kind: 'spread';
  constraint: TopologySpreadConstraint;
  dim: Dim;
  /** DoNotSchedule: a filter; ScheduleAnyway: a score. */
  hard: boolean;
  maxSkew: number;
  minDomains: number;
  /** 1 when the Workload's own new instances match the selector (so placing one adds to a count). */
  self: 0 | 1;
  /** Which existing instances are counted. */
  matches: (inst: InstanceInfo) => boolean;
  /** True when only the Workload's own instances can match (no labelSelector). */
  ownOnly: boolean;
  /** Hosts whose instances count and whose domains are eligible (nodeAffinityPolicy, nodeTaintsPolicy). */
  eligibleHost: Uint8Array;
  eligibleDomain: Uint8Array;
  eligibleDomainCount: number;
  /** Matching instances per domain, on eligible hosts. */
  counts: Int32Array;
  /** Smallest count over eligible domains (0 while fewer than minDomains are eligible). */
  min: number;
  /** How many eligible domains hold `min`. */
  atMin: number;
}

/** An instance affinity or anti-affinity term, compiled. */
export interface PodRule {
  kind: 'affinity' | 'antiAffinity';
  required: boolean;
  /** Weight of a preferred term (0 for required ones). */
  weight: number;
  term: PodAffinityTerm;
  dim: Dim;
  self: 0 | 1;
  matches: (inst: InstanceInfo) => boolean;
  counts: Int32Array;
  /** Matching instances on hosts that have the topology label. */
  total: number;
}

export type Rule = SpreadRule | PodRule;

/** The requirements `matchLabelKeys` (In) and `mismatchLabelKeys` (NotIn) add, from the instance's own labels. */
export function labelKeyRequirements(
  own: Labels,
  matchKeys: readonly string[] | undefined,
  mismatchKeys?: readonly string[] | undefined,
): ExtraRequirement[] {
  const out: ExtraRequirement[] = [];
  for (const key of matchKeys ?? []) {
    const v = own[key];
    if (v !== undefined) out.push({ key, operator: 'In', values: [v] });
  }
  for (const key of mismatchKeys ?? []) {
    const v = own[key];
    if (v !== undefined) out.push({ key, operator: 'NotIn', values: [v] });
  }
  return out;
}

/** Whether an instance is one of the replicas of the Workload with that owner key (surge instances are not). */
export function isOwnReplica(inst: InstanceInfo, key: string): boolean {
  return inst.workload === key && inst.surge !== true;
}

/**
 * Compiles a spread constraint. Without `labelSelector` it counts the Workload's own instances; with one, the
 * instances in the Workload's namespace that match it. `hostSelected[i]` says whether host i passes the
 * Workload's host selection (nodeSelector, nodeAffinity, providers, regions) and `hostUntainted[i]` whether it is
 * ready and not cordoned, for `nodeAffinityPolicy` (default Honor) and `nodeTaintsPolicy` (default Ignore).
 */
export function compileSpreadRule(
  c: TopologySpreadConstraint,
  workload: WorkloadInfo,
  dim: Dim,
  hostSelected: Uint8Array,
  hostUntainted: Uint8Array,
): SpreadRule {
  const extra = labelKeyRequirements(workload.instanceLabels, c.matchLabelKeys);
  const key = workloadKey(workload);
  let matches: (inst: InstanceInfo) => boolean;
  let self: 0 | 1;
  if (c.labelSelector === undefined) {
    const extraMatch = extra.length > 0 ? compileLabelSelector({}, extra) : undefined;
    matches = extraMatch ? (i) => isOwnReplica(i, key) && extraMatch(i.labels) : (i) => isOwnReplica(i, key);
    self = 1;
  } else {
    const sel = compileLabelSelector(c.labelSelector, extra);
    const ns = workload.namespace;
    matches = (i) => i.namespace === ns && sel(i.labels);
    self = sel(workload.instanceLabels) ? 1 : 0;
  }
  const honorAffinity = (c.nodeAffinityPolicy ?? 'Honor') === 'Honor';
  const honorTaints = (c.nodeTaintsPolicy ?? 'Ignore') === 'Honor';
  const n = dim.domainOf.length;
  const eligibleHost = new Uint8Array(n);
  const eligibleDomain = new Uint8Array(dim.domains.length);
  let eligibleDomainCount = 0;
  for (let i = 0; i < n; i++) {
    const d = dim.domainOf[i]!;
    if (d < 0 || (honorAffinity && !hostSelected[i]) || (honorTaints && !hostUntainted[i])) continue;
    eligibleHost[i] = 1;
    if (!eligibleDomain[d]) {
      eligibleDomain[d] = 1;
      eligibleDomainCount++;
    }
  }
  return {
    kind: 'spread',
    constraint: c,
    dim,
    hard: c.whenUnsatisfiable === 'DoNotSchedule',
    maxSkew: c.maxSkew,
    minDomains: c.minDomains ?? 1,
    self,
    matches,
    ownOnly: c.labelSelector === undefined,
    eligibleHost,
    eligibleDomain,
    eligibleDomainCount,
    counts: new Int32Array(dim.domains.length),
    min: 0,
    atMin: 0,
  };
}

/**
 * Compiles an instance (anti-)affinity term. It is about the instances whose namespace is in `namespaces` or
 * matches `namespaceSelector` (`{}`: all namespaces; neither: the Workload's namespace) and whose labels match
 * `labelSelector` (with `matchLabelKeys` / `mismatchLabelKeys` from the Workload's instance labels).
 */
export function compilePodRule(
  kind: PodRule['kind'],
  term: PodAffinityTerm,
  required: boolean,
  weight: number,
  workload: WorkloadInfo,
  dim: Dim,
  namespaceLabels: Readonly<Record<string, Record<string, string>>>,
): PodRule {
  const sel = compileLabelSelector(
    term.labelSelector,
    labelKeyRequirements(workload.instanceLabels, term.matchLabelKeys, term.mismatchLabelKeys),
  );
  const nsList = term.namespaces ?? [];
  const nsSel = term.namespaceSelector;
  let nsMatch: (ns: string) => boolean;
  if (nsSel && !nsSel.matchLabels && !nsSel.matchExpressions?.length) {
    nsMatch = () => true;
  } else if (nsList.length === 0 && !nsSel) {
    const own = workload.namespace;
    nsMatch = (ns) => ns === own;
  } else {
    const set = new Set(nsList);
    const compiled: LabelPredicate | undefined = nsSel ? compileLabelSelector(nsSel) : undefined;
    nsMatch = (ns) => set.has(ns) || compiled?.(namespaceLabels[ns] ?? {}) === true;
  }
  return {
    kind,
    required,
    weight,
    term,
    dim,
    self: nsMatch(workload.namespace) && sel(workload.instanceLabels) ? 1 : 0,
    matches: (i) => nsMatch(i.namespace) && sel(i.labels),
    counts: new Int32Array(dim.domains.length),
    total: 0,
  };
}

/** Recomputes the smallest count over eligible domains (0 while fewer than minDomains are eligible). */
export function recomputeMin(r: SpreadRule): void {
  if (r.eligibleDomainCount < r.minDomains || r.eligibleDomainCount === 0) {
    r.min = 0;
    r.atMin = 0;
    return;
  }
  let min = Number.POSITIVE_INFINITY;
  let at = 0;
  const { counts, eligibleDomain } = r;
  for (let d = 0; d < counts.length; d++) {
    if (!eligibleDomain[d]) continue;
    const c = counts[d]!;
    if (c < min) {
      min = c;
      at = 1;
    } else if (c === min) at++;
  }
  r.min = min;
  r.atMin = at;
}

/** Adds one instance to domain `d`; returns true when the minimum changed. */
export function addToSpread(r: SpreadRule, d: number): boolean {
  const before = r.counts[d]!;
  r.counts[d] = before + 1;
  if (!r.eligibleDomain[d] || r.eligibleDomainCount < r.minDomains || before !== r.min) return false;
  r.atMin--;
  if (r.atMin > 0) return false;
  recomputeMin(r);
  return true;
}

/** Removes one instance from domain `d` (scale-down); keeps `min` right. */
export function removeFromSpread(r: SpreadRule, d: number): void {
  r.counts[d] = r.counts[d]! - 1;
  if (r.eligibleDomain[d]) recomputeMin(r);
}

/** Largest, second largest and smallest counts over the eligible domains of a spread constraint. */
export interface SpreadExtremes {
  max: number;
  atMax: number;
  second: number;
  min: number;
}

export function spreadExtremes(r: SpreadRule): SpreadExtremes {
  let max = 0;
  let atMax = 0;
  let second = 0;
  for (let d = 0; d < r.counts.length; d++) {
    if (!r.eligibleDomain[d]) continue;
    const c = r.counts[d]!;
    if (c > max) {
      second = max;
      max = c;
      atMax = 1;
    } else if (c === max) atMax++;
    else if (c > second) second = c;
  }
  return { max, atMax, second, min: r.min };
}

/**
 * How far the skew (largest minus smallest count) would exceed maxSkew after removing one instance from domain
 * `d`: scale-down prefers removals that leave every constraint satisfied.
 */
export function excessAfterRemoval(r: SpreadRule, e: SpreadExtremes, d: number): number {
  if (d < 0 || !r.eligibleDomain[d]) return Math.max(0, e.max - e.min - r.maxSkew);
  const left = r.counts[d]! - 1;
  const max = r.counts[d] === e.max && e.atMax === 1 ? Math.max(e.second, left) : e.max;
  const min = r.eligibleDomainCount < r.minDomains ? 0 : Math.min(e.min, left);
  return Math.max(0, max - min - r.maxSkew);
}

/**
 * The skew a domain would have after placing one more instance there: its count, plus 1 when the new
 * instance matches the selector, minus the smallest count.
 */
export function skewAfter(r: SpreadRule, d: number): number {
  return r.counts[d]! + r.self - r.min;
}

/** DoNotSchedule: whether a host in domain `d` (-1: no label) keeps the skew within maxSkew. */
export function spreadAllows(r: SpreadRule, d: number): boolean {
  return d >= 0 && skewAfter(r, d) <= r.maxSkew;
}

/** Penalty of a host missing the topology label of a ScheduleAnyway constraint: it ranks after the others. */
export const MISSING_LABEL_PENALTY = 1e6;

/**
 * ScheduleAnyway: how far placing in domain `d` would exceed maxSkew (0 within it). Hosts that reduce the skew
 * rank first; within maxSkew, other scores decide.
 */
export function spreadPenalty(r: SpreadRule, d: number): number {
  if (d < 0) return MISSING_LABEL_PENALTY;
  return Math.max(0, skewAfter(r, d) - r.maxSkew);
}

/** Required affinity: the domain already runs a matching instance. */
export function affinitySatisfied(r: PodRule, d: number): boolean {
  return d >= 0 && r.counts[d]! > 0;
}

/** Required anti-affinity: the domain runs no matching instance (hosts without the label pass). */
export function antiAffinitySatisfied(r: PodRule, d: number): boolean {
  return d < 0 || r.counts[d]! === 0;
}

/**
 * Preferred (anti-)affinity: `weight` for every matching instance in the domain, added for affinity and
 * subtracted for anti-affinity (kube-scheduler's InterPodAffinity score before normalisation).
 */
export function podPreference(r: PodRule, d: number): number {
  if (d < 0) return 0;
  const n = r.counts[d]!;
  return r.kind === 'affinity' ? r.weight * n : -r.weight * n;
}

/**
 * The exception kube-scheduler makes for the first instance of a group with affinity to itself: when no
 * instance anywhere matches the required affinity terms and the new instance matches all of them, the terms
 * hold on every host.
 */
export function firstOfGroup(requiredAffinity: readonly PodRule[]): boolean {
  if (requiredAffinity.length === 0) return false;
  for (const r of requiredAffinity) if (r.total > 0 || !r.self) return false;
  return true;
}
