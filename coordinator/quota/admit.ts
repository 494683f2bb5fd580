/**
 * ResourceQuota admission of a Workload's replicas, pure. Kubernetes enforces `count/…` quotas on our objects
 * itself; the compute resources of instances (which are not Pods) are Edgeplane's to enforce: `requests.cpu`
 * (also plain `cpu`), `requests.memory` (`memory`), `limits.cpu` and `limits.memory`, summed over every Instance
 * of the namespace.
 *
 * Algorithm: the usage of the namespace without this Workload (`usedByOthers`) plus `n` replicas of this one must
 * be within every quota's `hard` for every tracked resource a replica asks for; the largest such `n` up to the
 * wanted count is admitted. A resource a replica asks none of does not hold it back, even when others already
 * exceed the quota (Kubernetes' quota admission drops zero amounts from a request before comparing). Replicas already placed stay admitted (as Kubernetes never evicts a Pod when a quota shrinks): a
 * quota lowered below what runs stops growth, it removes nothing. The first quota and resource that holds the
 * count back is named, with what is used, what is asked and the hard limit.
 * Invariants: `allowed` ≤ wanted; `allowed` ≥ min(wanted, placed); without a tracked resource in any quota,
 * `allowed` = wanted; with allowed > placed, usedByOthers + allowed × perInstance ≤ hard for every quota and every resource
 * perInstance asks for.
 */
import {
  formatCpuMillis,
  formatMemoryBytes,
  parseCpuMillis,
  parseMemoryBytes,
} from '../../shared/resources.js';

/** The compute amounts quotas count, per instance or summed. */
export interface QuotaAmounts {
  /** requests.cpu, millicores. */
  requestsCpuMillis: number;
  /** requests.memory, bytes. */
  requestsMemoryBytes: number;
  /** limits.cpu, millicores. */
  limitsCpuMillis: number;
  /** limits.memory, bytes. */
  limitsMemoryBytes: number;
}

export const ZERO: QuotaAmounts = {
  requestsCpuMillis: 0,
  requestsMemoryBytes: 0,
  limitsCpuMillis: 0,
  limitsMemoryBytes: 0,
};

/** A ResourceQuota as admission reads it. */
export interface QuotaView {
  /** Its name. */
  name: string;
  /** spec.hard as written (quantities), every resource; those not tracked here are ignored. */
  hard: Record<string, string | number>;
}

/** The resource names tracked, and which amount each is. */
export const TRACKED: Record<string, keyof QuotaAmounts> = {
  'requests.cpu': 'requestsCpuMillis',
  cpu: 'requestsCpuMillis',
  'requests.memory': 'requestsMemoryBytes',
  memory: 'requestsMemoryBytes',
  'limits.cpu': 'limitsCpuMillis',
  'limits.memory': 'limitsMemoryBytes',
};

/** Input of {@link admitReplicas}. */
export interface AdmissionInput {
  /** The namespace's ResourceQuotas. */
  quotas: QuotaView[];
  /** What every other Workload's instances of the namespace use (their surge instances included). */
  usedByOthers: QuotaAmounts;
  /** What this Workload's own surge instances use (they count, but are not replicas). */
  usedBySurge?: QuotaAmounts;
  /** What one replica of this Workload asks. */
  perInstance: QuotaAmounts;
  /** spec.replicas. */
  wanted: number;
  /** Replicas of this Workload already placed (kept, whatever the quota says now). */
  placed: number;
}

/** Which quota holds the count back, and the figures. */
export interface QuotaBlock {
  /** ResourceQuota name. */
  quota: string;
  /** The resource (as the quota names it). */
  resource: string;
  /** What the namespace uses of it now, as a quantity. */
  used: string;
  /** What one more replica asks, as a quantity. */
  asked: string;
  /** The hard limit, as the quota wrote it. */
  hard: string;
}

/** The outcome. */
export interface Admission {
  /** Replicas that may be placed. */
  allowed: number;
  /** Whether any quota of the namespace tracks a resource of ours (QuotaGranted is shown only then). */
  applies: boolean;
  /** Set when `allowed` < wanted. */
  blocked?: QuotaBlock;
}

function fmt(key: keyof QuotaAmounts, v: number): string {
  return key.endsWith('CpuMillis') ? formatCpuMillis(v) : formatMemoryBytes(v);
}

function parse(key: keyof QuotaAmounts, q: string | number): number {
  return key.endsWith('CpuMillis') ? parseCpuMillis(q) : parseMemoryBytes(q);
}

/** Sums amounts. */
export function add(a: QuotaAmounts, b: QuotaAmounts, times = 1): QuotaAmounts {
  return {
    requestsCpuMillis: a.requestsCpuMillis + b.requestsCpuMillis * times,
    requestsMemoryBytes: a.requestsMemoryBytes + b.requestsMemoryBytes * times,
    limitsCpuMillis: a.limitsCpuMillis + b.limitsCpuMillis * times,
    limitsMemoryBytes: a.limitsMemoryBytes + b.limitsMemoryBytes * times,
  };
}

/** How many of the wanted replicas a namespace's quotas admit. */
export function admitReplicas(input: AdmissionInput): Admission {
  const base = add(input.usedByOthers, input.usedBySurge ?? ZERO);
  let allowed = input.wanted;
  let blocked: { quota: string; resource: string; key: keyof QuotaAmounts; hard: string } | undefined;
  let applies = false;
  for (const q of input.quotas) {
    for (const [resource, value] of Object.entries(q.hard).sort(([a], [b]) => a.localeCompare(b))) {
      const key = TRACKED[resource];
      if (!key) continue;
      applies = true;
      let hard: number;
      try {
        hard = parse(key, value);
      } catch {
        continue; // The API server validated it; nothing we cannot read is enforced.
      }
      const per = input.perInstance[key];
      const room = hard - base[key];
      const fit = per > 0 ? Math.max(0, Math.floor(room / per)) : Number.POSITIVE_INFINITY;
      if (fit < allowed) {
        allowed = fit;
        blocked = { quota: q.name, resource, key, hard: String(value) };
      }
    }
  }
  allowed = Math.min(input.wanted, Math.max(allowed, input.placed));
  if (allowed >= input.wanted || !blocked) return { allowed, applies };
  const { key, ...named } = blocked;
  const per = input.perInstance[key];
  return {
    allowed,
    applies,
    blocked: { ...named, used: fmt(key, base[key] + per * allowed), asked: fmt(key, per) },
  };
}

/** The QuotaGranted message of a blocked admission. */
export function quotaMessage(a: Admission, wanted: number): string {
  const b = a.blocked;
  if (!b) return `${wanted} replicas within every ResourceQuota of the namespace`;
  return `ResourceQuota ${b.quota}: ${b.resource} used ${b.used} of ${b.hard}, each replica asks ${b.asked}: ${a.allowed} of ${wanted} replicas admitted`;
}
