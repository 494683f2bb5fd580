/**
 * Indexes of the Instance cache, kept in step with its change events (client-go's Indexer): the Instances of
 * each Workload (by the Workload's UID label) and the Workloads with Instances on each host. A pass reads its
 * Workload's Instances, and a host report or host state change finds the Workloads it concerns, without
 * scanning every Instance: at 100,000 Instances a scan per pass made placement quadratic in the fleet.
 *
 * Invariant: after every event, `ofWorkload(uid)` holds exactly the cached Instances labelled with that UID,
 * `ofWorkloadNamed(namespace, name)` those whose workloadRef names that Workload, and
 * `workloadsOn(host)` exactly the `namespace/workload` pairs of the cached Instances on that host (an update
 * that moves an Instance to another host or Workload is removed from where it was first).
 */
import { WORKLOAD_UID_LABEL } from './objects.js';
import type { InstanceObject } from './types.js';

/** The Instance fields the index reads. */
export type IndexedInstance = Pick<InstanceObject, 'metadata' | 'spec'>;

/** Where one Instance was indexed. */
interface Placement {
  /** Its Workload's UID (label), or '' without one. */
  uid: string;
  /** `spec.host`. */
  host: string;
  /** `namespace/workload` of `spec.workloadRef`. */
  workload: string;
}

export class InstanceIndex<T extends IndexedInstance = InstanceObject> {
  /** Instances by Workload UID, each by `namespace/name`. */
  private readonly byUid = new Map<string, Map<string, T>>();
  /** Instances by `namespace/workload` (spec.workloadRef; whatever their UID), each by `namespace/name`. */
  private readonly byWorkload = new Map<string, Map<string, T>>();
  /** Per host: `namespace/workload` → how many of its Instances are there. */
  private readonly byHost = new Map<string, Map<string, number>>();
  /** Where each indexed Instance is, by `namespace/name`. */
  private readonly where = new Map<string, Placement>();

  /** Follows a cache: `onChange` delivers every add, update and delete. */
  constructor(source?: { onChange(fn: (obj: T, event: 'add' | 'update' | 'delete') => void): void }) {
    source?.onChange((obj, event) => this.apply(obj, event));
  }

  /** Applies one change event. */
  apply(obj: T, event: 'add' | 'update' | 'delete'): void {
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    this.remove(key);
    if (event === 'delete') return;
    const p: Placement = {
      uid: obj.metadata.labels?.[WORKLOAD_UID_LABEL] ?? '',
      host: obj.spec.host,
      workload: `${obj.metadata.namespace ?? ''}/${obj.spec.workloadRef.name}`,
    };
    this.where.set(key, p);
    let mine = this.byUid.get(p.uid);
    if (!mine) {
      mine = new Map();
      this.byUid.set(p.uid, mine);
    }
    mine.set(key, obj);
    let named = this.byWorkload.get(p.workload);
    if (!named) {
      named = new Map();
      this.byWorkload.set(p.workload, named);
    }
    named.set(key, obj);
    let on = this.byHost.get(p.host);
    if (!on) {
      on = new Map();
      this.byHost.set(p.host, on);
    }
    on.set(p.workload, (on.get(p.workload) ?? 0) + 1);
  }

  private remove(key: string): void {
    const p = this.where.get(key);
    if (!p) return;
    this.where.delete(key);
    const mine = this.byUid.get(p.uid);
    mine?.delete(key);
    if (mine && mine.size === 0) this.byUid.delete(p.uid);
    const named = this.byWorkload.get(p.workload);
    named?.delete(key);
    if (named && named.size === 0) this.byWorkload.delete(p.workload);
    const on = this.byHost.get(p.host);
    const n = (on?.get(p.workload) ?? 0) - 1;
    if (n > 0) on?.set(p.workload, n);
    else on?.delete(p.workload);
    if (on && on.size === 0) this.byHost.delete(p.host);
  }

  /** The Instances labelled with that Workload UID. */
  ofWorkload(uid: string): T[] {
    return [...(this.byUid.get(uid)?.values() ?? [])];
  }

  /** The Instances whose spec.workloadRef names that Workload (any UID: an earlier one of the same name too). */
  ofWorkloadNamed(namespace: string, name: string): T[] {
    return [...(this.byWorkload.get(`${namespace}/${name}`)?.values() ?? [])];
  }

  /** `[namespace, workload]` of every Workload with an Instance on that host. */
  workloadsOn(host: string): Array<[string, string]> {
    return [...(this.byHost.get(host)?.keys() ?? [])].map((k) => {
      const slash = k.indexOf('/');
      return [k.slice(0, slash), k.slice(slash + 1)];
    });
  }

  /** How many Instances are indexed. */
  get size(): number {
    return this.where.size;
  }
}
