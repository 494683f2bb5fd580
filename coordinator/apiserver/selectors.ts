/**
 * Label and field selectors as kube-apiserver reads them from `?labelSelector=` and `?fieldSelector=`.
 *
 * Label selector grammar (k8s.io/apimachinery/pkg/labels): comma-separated requirements, each one of
 * `key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (v1,v2)`, `key notin (v1,v2)`. An object matches when
 * every requirement holds; `!=` and `notin` hold for objects without the key. Field selectors take `=`, `==`
 * and `!=` on the fields {@link FIELDS} lists (as kube-apiserver does for custom resources: metadata.name and
 * metadata.namespace). A malformed selector is a {@link SelectorError} naming the parameter.
 */

/** One requirement of a selector. */
export interface Requirement {
  /** Label key, or field path. */
  key: string;
  /** How it is compared. */
  op: 'exists' | 'notexists' | 'in' | 'notin';
  /** Values (for `in`/`notin`; `=`/`==` is `in` one value, `!=` is `notin` one value). */
  values: string[];
}

/** A selector that could not be read; the message names the query parameter. */
export class SelectorError extends Error {
  override name = 'SelectorError';
}

/** The fields a field selector may name. */
export const FIELDS: Record<string, (o: { metadata: { name: string; namespace?: string } }) => string> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace ?? '',
};

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim());
}

/** Parses a label selector; the empty string selects everything. */
export function parseLabelSelector(selector: string): Requirement[] {
  if (!selector.trim()) return [];
  const bad = (term: string, why: string) =>
    new SelectorError(`labelSelector: ${why} in "${term}" (selector "${selector}")`);
  return splitTerms(selector).map((term): Requirement => {
    if (!term) throw bad(term, 'empty requirement');
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(term);
    let r: Requirement;
    if (set) {
      const values = set[3]!.split(',').map((v) => v.trim());
      r = { key: set[1]!, op: set[2] as 'in' | 'notin', values };
    } else {
      const cmp = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
      if (cmp) {
        r = { key: cmp[1]!, op: cmp[2] === '!=' ? 'notin' : 'in', values: [cmp[3]!.trim()] };
      } else if (term.startsWith('!')) r = { key: term.slice(1).trim(), op: 'notexists', values: [] };
      else r = { key: term, op: 'exists', values: [] };
    }
    if (!KEY.test(r.key)) throw bad(term, `invalid label key "${r.key}"`);
    for (const v of r.values) if (!VALUE.test(v) || v.length > 63) throw bad(term, `invalid value "${v}"`);
    return r;
  });
}

/** Parses a field selector over {@link FIELDS}. */
export function parseFieldSelector(selector: string): Requirement[] {
  if (!selector.trim()) return [];
  return splitTerms(selector).map((term): Requirement => {
    const cmp = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!cmp) throw new SelectorError(`fieldSelector: expected field=value or field!=value, got "${term}"`);
    if (!FIELDS[cmp[1]!])
      throw new SelectorError(
        `fieldSelector: field "${cmp[1]}" is not supported (supported: ${Object.keys(FIELDS).join(', ')})`,
      );
    return { key: cmp[1]!, op: cmp[2] === '!=' ? 'notin' : 'in', values: [cmp[3]!.trim()] };
  });
}

/** Whether the labels satisfy every requirement. */
export function matchesLabels(
  requirements: Requirement[],
  labels: Record<string, string> | undefined,
): boolean {
  return requirements.every((r) => holds(r, labels?.[r.key]));
}

/** Whether the object's fields satisfy every requirement (from {@link parseFieldSelector}). */
export function matchesFields(
  requirements: Requirement[],
  o: { metadata: { name: string; namespace?: string } },
): boolean {
  return requirements.every((r) => holds(r, FIELDS[r.key]!(o)));
}

function holds(r: Requirement, value: string | undefined): boolean {
  switch (r.op) {
    case 'exists':
      return value !== undefined;
    case 'notexists':
      return value === undefined;
    case 'in':
      return value !== undefined && r.values.includes(value);
    case 'notin':
      return value === undefined || !r.values.includes(value);
  }
}
