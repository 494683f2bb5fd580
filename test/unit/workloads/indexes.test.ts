/**
 * The indexes over the Instance and WorkloadDeployment caches (coordinator/workloads/instance-index.ts,
 * coordinator/kube/label-index.ts) and the allocation index (coordinator/hosts/allocation.ts): after any sequence of add, update and delete events they answer exactly what a
 * scan of the cache would.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AllocationIndex } from '../../../coordinator/hosts/allocation.js';
import { LabelIndex } from '../../../coordinator/kube/label-index.js';
import { InstanceIndex } from '../../../coordinator/workloads/instance-index.js';
import { WORKLOAD_UID_LABEL } from '../../../coordinator/workloads/objects.js';
import type { InstanceObject } from '../../../coordinator/workloads/types.js';

const instance = (name: string, ns: string, uid: string | undefined, host: string, workload: string) =>
  ({
    metadata: { name, namespace: ns, ...(uid ? { labels: { [WORKLOAD_UID_LABEL]: uid } } : {}) },
    spec: { workloadRef: { name: workload }, host, location: 'loc' },
  }) as unknown as InstanceObject;

const event = fc.record({
  kind: fc.constantFrom('add' as const, 'update' as const, 'delete' as const),
  name: fc.constantFrom('a', 'b', 'c', 'd'),
  ns: fc.constantFrom('n1', 'n2'),
  uid: fc.option(fc.constantFrom('u1', 'u2', 'u3'), { nil: undefined }),
  host: fc.constantFrom('h1', 'h2', 'h3'),
  workload: fc.constantFrom('w1', 'w2'),
});

describe('InstanceIndex', () => {
  it('answers what a scan of the cache answers, after any events', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const index = new InstanceIndex();
        const cache = new Map<string, InstanceObject>();
        for (const e of events) {
          const obj = instance(e.name, e.ns, e.uid, e.host, e.workload);
          const key = `${e.ns}/${e.name}`;
          // The informer delivers an update only for an object it holds and a delete with its last state.
          if (e.kind === 'delete') {
            const last = cache.get(key);
            if (!last) continue;
            cache.delete(key);
            index.apply(last, 'delete');
          } else {
            const kind = cache.has(key) ? 'update' : 'add';
            cache.set(key, obj);
            index.apply(obj, kind);
          }
        }
        const all = [...cache.values()];
        expect(index.size).toBe(all.length);
        for (const uid of ['u1', 'u2', 'u3']) {
          const want = all.filter((i) => i.metadata.labels?.[WORKLOAD_UID_LABEL] === uid);
          expect(new Set(index.ofWorkload(uid))).toEqual(new Set(want));
        }
        for (const ns of ['n1', 'n2'])
          for (const w of ['w1', 'w2']) {
            const want = all.filter((i) => i.metadata.namespace === ns && i.spec.workloadRef.name === w);
            expect(new Set(index.ofWorkloadNamed(ns, w))).toEqual(new Set(want));
          }
        for (const host of ['h1', 'h2', 'h3']) {
          const want = new Set(
            all
              .filter((i) => i.spec.host === host)
              .map((i) => `${i.metadata.namespace}/${i.spec.workloadRef.name}`),
          );
          expect(new Set(index.workloadsOn(host).map(([ns, w]) => `${ns}/${w}`))).toEqual(want);
        }
      }),
    );
  });

  it('follows a cache through its change events', () => {
    let handler: ((o: InstanceObject, e: 'add' | 'update' | 'delete') => void) | undefined;
    const index = new InstanceIndex({ onChange: (fn) => (handler = fn) });
    const a = instance('web-0', 'default', 'uid-web', 'h1', 'web');
    handler?.(a, 'add');
    expect(index.ofWorkload('uid-web')).toEqual([a]);
    expect(index.workloadsOn('h1')).toEqual([['default', 'web']]);
    handler?.(instance('web-0', 'default', 'uid-web', 'h2', 'web'), 'update');
    expect(index.workloadsOn('h1')).toEqual([]);
    expect(index.workloadsOn('h2')).toEqual([['default', 'web']]);
    handler?.(a, 'delete');
    expect(index.ofWorkload('uid-web')).toEqual([]);
    expect(index.workloadsOn('h2')).toEqual([]);
  });
});

describe('LabelIndex', () => {
  it('answers what a scan of the cache answers, after any events', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const index = new LabelIndex<InstanceObject>(WORKLOAD_UID_LABEL);
        const cache = new Map<string, InstanceObject>();
        for (const e of events) {
          const obj = instance(e.name, e.ns, e.uid, e.host, e.workload);
          const key = `${e.ns}/${e.name}`;
          if (e.kind === 'delete') {
            const last = cache.get(key);
            if (!last) continue;
            cache.delete(key);
            index.apply(last, 'delete');
          } else {
            const kind = cache.has(key) ? 'update' : 'add';
            cache.set(key, obj);
            index.apply(obj, kind);
          }
        }
        for (const uid of ['u1', 'u2', 'u3']) {
          const want = [...cache.values()].filter((i) => i.metadata.labels?.[WORKLOAD_UID_LABEL] === uid);
          expect(new Set(index.get(uid))).toEqual(new Set(want));
        }
      }),
    );
  });
});

describe('AllocationIndex', () => {
  it('after any events (read between them or not) equals a fresh scan of the cache', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ e: event, cpu: fc.integer({ min: 0, max: 500 }), read: fc.boolean() }), {
          maxLength: 60,
        }),
        (events) => {
          const cache = new Map<string, InstanceObject>();
          let handler: ((o: InstanceObject, e: 'add' | 'update' | 'delete') => void) | undefined;
          const source = {
            list: () => [...cache.values()],
            onChange: (fn: typeof handler) => (handler = fn),
          };
          const index = new AllocationIndex(source as never);
          for (const { e, cpu, read } of events) {
            const obj = instance(e.name, e.ns, e.uid, e.host, e.workload);
            obj.spec.resources = { cpuMillis: cpu, memoryBytes: cpu * 2 };
            const key = `${e.ns}/${e.name}`;
            if (e.kind === 'delete') {
              const last = cache.get(key);
              if (!last) continue;
              cache.delete(key);
              handler?.(last, 'delete');
            } else {
              const kind = cache.has(key) ? 'update' : 'add';
              cache.set(key, obj);
              handler?.(obj, kind);
            }
            if (read) index.all();
          }
          const fresh = new AllocationIndex({ list: source.list, onChange: () => undefined });
          const strip = (m: ReadonlyMap<string, { allocated: unknown; instances: number }>) =>
            new Map([...m].map(([h, a]) => [h, { allocated: a.allocated, instances: a.instances }]));
          expect(strip(index.all())).toEqual(strip(fresh.all()));
        },
      ),
    );
  });
});
