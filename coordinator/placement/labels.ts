/**
 * Label matching, as in Kubernetes: label selectors over instances (matchLabels, matchExpressions with In,
 * NotIn, Exists, DoesNotExist) and host selectors over hosts (the same plus Gt and Lt, and matchFields on the
 * host name). Selectors are compiled once into predicates so that matching a host or an instance is cheap.
 */
import type { LabelSelector } from '../../shared/api/meta.js';
import {
  HOSTNAME_LABEL,
  type NodeSelectorRequirement,
  type NodeSelectorTerm,
} from '../../shared/api/placement.js';
import type { HostInfo } from './types.js';

export type Labels = Readonly<Record<string, string>>;
export type LabelPredicate = (labels: Labels) => boolean;

/** A host's label, with `kubernetes.io/hostname` defaulting to the host name. */
export function hostLabel(host: HostInfo, key: string): string | undefined {
  const v = host.labels[key];
  if (v !== undefined) return v;
  return key === HOSTNAME_LABEL ? host.name : undefined;
}

const hasOwn = Object.prototype.hasOwnProperty;

function get(labels: Labels, key: string): string | undefined {
  return hasOwn.call(labels, key) ? labels[key] : undefined;
}

/** Parses a label value as Kubernetes does for Gt and Lt (a base-10 integer), or undefined. */
function parseIntLabel(v: string | undefined): number | undefined {
  if (v === undefined || !/^[+-]?\d+$/.test(v)) return undefined;
  return Number(v);
}

type Requirement = { key: string; operator: string; values?: readonly string[] | undefined };

/** Compiles one requirement (label or host selector) into a predicate over `T`, read through `read`. */
function compileRequirement<T>(
  r: Requirement,
  read: (obj: T, key: string) => string | undefined,
): (obj: T) => boolean {
  const values = r.values ?? [];
  const key = r.key;
  switch (r.operator) {
    case 'In': {
      const set = new Set(values);
      return (o) => {
        const v = read(o, key);
        return v !== undefined && set.has(v);
      };
    }
    case 'NotIn': {
      const set = new Set(values);
      return (o) => {
        const v = read(o, key);
        return v === undefined || !set.has(v);
      };
    }
    case 'Exists':
      return (o) => read(o, key) !== undefined;
    case 'DoesNotExist':
      return (o) => read(o, key) === undefined;
    case 'Gt':
    case 'Lt': {
      const bound = values.length === 1 ? parseIntLabel(values[0]) : undefined;
      if (bound === undefined) return () => false;
      const gt = r.operator === 'Gt';
      return (o) => {
        const n = parseIntLabel(read(o, key));
        return n !== undefined && (gt ? n > bound : n < bound);
      };
    }
    default:
      return () => false;
  }
}

/** A requirement added to a label selector (from matchLabelKeys / mismatchLabelKeys). */
export type ExtraRequirement = Requirement;

/**
 * Compiles a label selector over instance labels. An absent selector matches nothing (as in instance affinity
 * terms); an empty one (`{}`) matches everything. `extra` requirements are ANDed (matchLabelKeys).
 */
export function compileLabelSelector(
  selector: LabelSelector | undefined,
  extra: readonly Requirement[] = [],
): LabelPredicate {
  if (selector === undefined) return () => false;
  const checks: LabelPredicate[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    checks.push((l) => get(l, k) === v);
  }
  for (const r of selector.matchExpressions ?? []) checks.push(compileRequirement(r, get));
  for (const r of extra) checks.push(compileRequirement(r, get));
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (labels) => {
    for (const c of checks) if (!c(labels)) return false;
    return true;
  };
}

/** Whether instance labels match a selector (absent selector: no match). */
export function matchesLabelSelector(selector: LabelSelector | undefined, labels: Labels): boolean {
  return compileLabelSelector(selector)(labels);
}

export type HostPredicate = (host: HostInfo) => boolean;

/** Compiles a host requirement on labels (`matchExpressions`). */
export function compileNodeSelectorRequirement(r: NodeSelectorRequirement): HostPredicate {
  return compileRequirement(r, hostLabel);
}

/** Compiles a host requirement on fields (`matchFields`; the only field is `metadata.name`). */
function compileFieldRequirement(r: NodeSelectorRequirement): HostPredicate {
  if (r.key !== 'metadata.name') return () => false;
  return compileRequirement(r, (host: HostInfo) => host.name);
}

/** Compiles a host selector term: all its requirements hold. A term with no requirements matches no host. */
export function compileNodeSelectorTerm(term: NodeSelectorTerm): HostPredicate {
  const checks = [
    ...(term.matchExpressions ?? []).map(compileNodeSelectorRequirement),
    ...(term.matchFields ?? []).map(compileFieldRequirement),
  ];
  if (checks.length === 0) return () => false;
  return (host) => {
    for (const c of checks) if (!c(host)) return false;
    return true;
  };
}

/** Compiles a list of host selector terms, ORed. */
export function compileNodeSelectorTerms(terms: readonly NodeSelectorTerm[]): HostPredicate {
  const compiled = terms.map(compileNodeSelectorTerm);
  return (host) => {
    for (const c of compiled) if (c(host)) return true;
    return false;
  };
}

/** Compiles a `nodeSelector` map: every label present with exactly that value. */
export function compileNodeSelectorMap(selector: Readonly<Record<string, string>>): HostPredicate {
  const entries = Object.entries(selector);
  return (host) => {
    for (const [k, v] of entries) if (hostLabel(host, k) !== v) return false;
    return true;
  };
}
