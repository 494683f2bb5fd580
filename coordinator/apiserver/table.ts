/**
 * Server-side printing: objects to a meta.k8s.io/v1 Table, what `kubectl get` asks for with
 * `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`. Same output as kube-apiserver's for a CRD with these
 * printer columns: a Name column first, then each printer column (its JSONPath evaluated on the object; a date
 * shown as an age like kubectl's `5m3s`), one row per object carrying the object's metadata (`includeObject`
 * Metadata, the default), the whole object (Object) or nothing (None).
 */
import type { PrinterColumn } from '../../shared/api/kinds.js';
import type { StoredObject } from './versions.js';

/** What the row's `object` holds (`?includeObject=`). */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** A meta.k8s.io/v1 Table. */
export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string };
  columnDefinitions: Array<{
    name: string;
    type: string;
    format: string;
    description: string;
    priority: number;
  }>;
  rows: Array<{ cells: unknown[]; object?: unknown }>;
}

/** Reads a printer column's JSONPath (`.a.b[0].c`) from an object; undefined when any step is missing. */
export function readJsonPath(obj: unknown, path: string): unknown {
  const steps = path.replace(/^\./, '').match(/[^.[\]]+|\[\d+\]/g) ?? [];
  let cur: unknown = obj;
  for (const step of steps) {
    if (cur === null || cur === undefined || typeof cur !== 'object') return undefined;
    cur = step.startsWith('[')
      ? (cur as unknown[])[Number(step.slice(1, -1))]
      : (cur as Record<string, unknown>)[step];
  }
  return cur;
}

/** A duration as kubectl prints ages (k8s.io/apimachinery/pkg/util/duration.HumanDuration). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.trunc(hours / 24) % 365;
    return d === 0 ? `${Math.trunc(hours / 24 / 365)}y` : `${Math.trunc(hours / 24 / 365)}y${d}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** One cell: what kube-apiserver's CRD table convertor puts there (null when the path is missing). */
function cell(column: PrinterColumn, obj: unknown, nowMs: number): unknown {
  const v = readJsonPath(obj, column.jsonPath);
  if (v === undefined || v === null) return null;
  switch (column.type) {
    case 'date': {
      const t = Date.parse(String(v));
      return Number.isNaN(t) ? null : humanDuration(nowMs - t);
    }
    case 'integer':
      return typeof v === 'number' ? Math.trunc(v) : null;
    case 'boolean':
      return typeof v === 'boolean' ? v : null;
    default:
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
}

/** Converts objects to a Table with a Name column and `columns`. */
export function toTable(
  objects: readonly StoredObject[],
  columns: readonly PrinterColumn[],
  opts: { nowMs: number; includeObject?: IncludeObject; resourceVersion?: string; noHeaders?: boolean },
): Table {
  const include = opts.includeObject ?? 'Metadata';
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: opts.resourceVersion ? { resourceVersion: opts.resourceVersion } : {},
    columnDefinitions: opts.noHeaders
      ? []
      : [
          {
            name: 'Name',
            type: 'string',
            format: 'name',
            description: 'Name must be unique within a namespace.',
            priority: 0,
          },
          ...columns.map((c) => ({
            name: c.name,
            type: c.type === 'date' ? 'date' : c.type,
            format: '',
            description: c.description ?? '',
            priority: c.priority ?? 0,
          })),
        ],
    rows: objects.map((o) => ({
      cells: [o.metadata.name, ...columns.map((c) => cell(c, o, opts.nowMs))],
      ...(include === 'None'
        ? {}
        : {
            object:
              include === 'Object'
                ? o
                : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
          }),
    })),
  };
}

/** Whether an Accept header asks for a meta.k8s.io/v1 Table (the first acceptable type that we can serve). */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim());
    const p = Object.fromEntries(params.map((x) => x.split('=').map((s) => s.trim()) as [string, string]));
    if (type === 'application/json' && p.as === 'Table') {
      if (p.g === 'meta.k8s.io' && p.v === 'v1') return true;
      continue;
    }
    if (type === 'application/json' || type === '*/*' || type === 'application/*') return false;
  }
  return false;
}
