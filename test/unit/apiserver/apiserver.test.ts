/**
 * The aggregated instances API's pure parts (coordinator/apiserver/): label and field selectors, server-side
 * tables, watch starts and selections, the bounded history, merge patch, routing, discovery, and the flag.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseRequestHeaderAuth } from '../../../coordinator/apiserver/auth.js';
import { apiResourceList, openApiV3, openApiV3Index } from '../../../coordinator/apiserver/discovery.js';
import { apiServices } from '../../../coordinator/apiserver/manifests.js';
import { mergePatch } from '../../../coordinator/apiserver/merge-patch.js';
import { route } from '../../../coordinator/apiserver/routes.js';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from '../../../coordinator/apiserver/selectors.js';
import { humanDuration, readJsonPath, toTable, wantsTable } from '../../../coordinator/apiserver/table.js';
import {
  INSTANCES_GROUP,
  SERVED_VERSIONS,
  type StoredObject,
} from '../../../coordinator/apiserver/versions.js';
import {
  appendHistory,
  throughSelection,
  type WatchEvent,
  watchStart,
} from '../../../coordinator/apiserver/watch.js';
import { ConfigError, loadCoordinatorConfig } from '../../../coordinator/config.js';
import { REPO_DIR } from '../../../deploy/stack/index.js';
import { InstanceKind } from '../../../shared/api/kinds.js';

const obj = (name: string, labels: Record<string, string> = {}, rv = 1, ns = 'default'): StoredObject => ({
  apiVersion: `${INSTANCES_GROUP}/v1alpha1`,
  kind: 'Instance',
  metadata: { name, namespace: ns, labels, resourceVersion: String(rv) },
});

describe('label selectors', () => {
  it('reads every operator as kube-apiserver does', () => {
    const l = { workload: 'web', tier: 'front' };
    const m = (s: string) => matchesLabels(parseLabelSelector(s), l);
    expect(m('')).toBe(true);
    expect(m('workload=web')).toBe(true);
    expect(m('workload==web,tier=front')).toBe(true);
    expect(m('workload!=web')).toBe(false);
    expect(m('missing!=x')).toBe(true);
    expect(m('workload in (api, web)')).toBe(true);
    expect(m('workload notin (api,web)')).toBe(false);
    expect(m('missing notin (a)')).toBe(true);
    expect(m('tier')).toBe(true);
    expect(m('!tier')).toBe(false);
    expect(m('!missing')).toBe(true);
    expect(m('edgeplane.dev/surge=true')).toBe(false);
  });

  it('names the parameter and the bad term', () => {
    expect(() => parseLabelSelector('workload=a b')).toThrow(SelectorError);
    expect(() => parseLabelSelector('a,,b')).toThrow(/labelSelector: empty requirement/);
    expect(() => parseLabelSelector('-bad=x')).toThrow(/invalid label key "-bad"/);
    expect(() => parseFieldSelector('spec.host=x')).toThrow(
      /fieldSelector: field "spec.host" is not supported/,
    );
  });

  it("an equality selector built from an object's labels selects it; changing one value unselects it", () => {
    const key = fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/);
    const value = fc.stringMatching(/^[a-z0-9]{1,8}$/);
    fc.assert(
      fc.property(fc.dictionary(key, value, { minKeys: 1, maxKeys: 5 }), (labels) => {
        const sel = Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        expect(matchesLabels(parseLabelSelector(sel), labels)).toBe(true);
        const [k0, v0] = Object.entries(labels)[0]!;
        expect(matchesLabels(parseLabelSelector(sel), { ...labels, [k0]: `${v0}x` })).toBe(false);
        expect(matchesLabels(parseLabelSelector(`${k0} notin (${v0})`), labels)).toBe(false);
      }),
    );
  });

  it('field selectors on name and namespace', () => {
    const o = obj('a', {}, 1, 'shop');
    expect(matchesFields(parseFieldSelector('metadata.name=a,metadata.namespace=shop'), o)).toBe(true);
    expect(matchesFields(parseFieldSelector('metadata.name!=a'), o)).toBe(false);
  });
});

describe('tables', () => {
  it('ages as kubectl prints them', () => {
    expect(humanDuration(5_000)).toBe('5s');
    expect(humanDuration(119_000)).toBe('119s');
    expect(humanDuration(5 * 60_000 + 3_000)).toBe('5m3s');
    expect(humanDuration(30 * 60_000)).toBe('30m');
    expect(humanDuration(5 * 3600_000 + 60_000)).toBe('5h1m');
    expect(humanDuration(30 * 3600_000)).toBe('30h');
    expect(humanDuration(3 * 86400_000)).toBe('3d');
    expect(humanDuration(-5_000)).toBe('<invalid>');
  });

  it('reads printer-column paths, with indexes', () => {
    const o = { status: { networkInterfaces: [{ assignments: { networkIP: '10.0.0.2' } }] } };
    expect(readJsonPath(o, '.status.networkInterfaces[0].assignments.networkIP')).toBe('10.0.0.2');
    expect(readJsonPath(o, '.status.networkInterfaces[1].assignments.networkIP')).toBeUndefined();
    expect(readJsonPath(o, '.spec.host')).toBeUndefined();
  });

  it("a Name column, then the kind's printer columns; one row per object with its metadata", () => {
    const now = Date.parse('2026-01-01T00:10:00Z');
    const o = {
      ...obj('web-0', { workload: 'web' }),
      metadata: { ...obj('web-0').metadata, creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { workloadRef: { name: 'web' }, location: 'l', host: 'h' },
      status: { phase: 'Running', ready: true },
    };
    const t = toTable([o], InstanceKind.printerColumns, { nowMs: now, resourceVersion: '7' });
    expect(t.columnDefinitions.map((c) => c.name)).toEqual([
      'Name',
      ...InstanceKind.printerColumns.map((c) => c.name),
    ]);
    expect(t.rows[0]!.cells).toEqual(['web-0', 'web', 'l', 'h', 'Running', null, true, null, '10m']);
    expect(t.rows[0]!.object).toMatchObject({ kind: 'PartialObjectMetadata', metadata: { name: 'web-0' } });
    expect(t.metadata.resourceVersion).toBe('7');
    expect(toTable([o], [], { nowMs: now, includeObject: 'None' }).rows[0]!.object).toBeUndefined();
  });

  it('answers a Table only when the client asks for meta.k8s.io/v1 first', () => {
    expect(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json')).toBe(true);
    expect(wantsTable('application/json')).toBe(false);
    expect(wantsTable(undefined)).toBe(false);
    expect(wantsTable('application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json')).toBe(false);
  });
});

describe('watch', () => {
  it('no resourceVersion, or "0": the current objects as ADDED; an old one: the history after it', () => {
    const a = obj('a', {}, 3);
    const history: WatchEvent[] = [
      { type: 'ADDED', object: obj('a', {}, 2), revision: 2 },
      { type: 'MODIFIED', object: a, previous: obj('a', {}, 2), revision: 3 },
    ];
    const cur = { objects: [a], revision: 3 };
    expect(watchStart(undefined, cur, history, 1)).toMatchObject({
      expired: false,
      events: [{ type: 'ADDED' }],
    });
    expect(watchStart('0', cur, history, 1)).toMatchObject({ expired: false, from: 3 });
    expect(watchStart('2', cur, history, 1)).toMatchObject({ expired: false, events: [{ revision: 3 }] });
    expect(watchStart('0', cur, history, 1)).not.toHaveProperty('events.1');
    expect(watchStart('1', cur, history, 2)).toEqual({ expired: true });
    expect(watchStart('x', cur, history, 0)).toEqual({ expired: true });
  });

  it('selections: moving in is ADDED, moving out is DELETED', () => {
    const sel = (o: StoredObject) => o.metadata.labels?.tier === 'front';
    const before = obj('a', { tier: 'back' }, 1);
    const after = obj('a', { tier: 'front' }, 2);
    expect(
      throughSelection({ type: 'MODIFIED', object: after, previous: before, revision: 2 }, sel)?.type,
    ).toBe('ADDED');
    expect(
      throughSelection({ type: 'MODIFIED', object: before, previous: after, revision: 3 }, sel)?.type,
    ).toBe('DELETED');
    expect(
      throughSelection({ type: 'MODIFIED', object: before, previous: before, revision: 3 }, sel),
    ).toBeUndefined();
  });

  it('property: replaying a watch through a selection gives the selected part of the final state', () => {
    const op = fc.record({
      name: fc.constantFrom('a', 'b', 'c'),
      tier: fc.constantFrom('front', 'back', null),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.nat(40), (ops, cut) => {
        // A store: null deletes, else puts.
        const state = new Map<string, StoredObject>();
        const history: WatchEvent[] = [];
        let rev = 0;
        let compacted = 0;
        for (const o of ops) {
          const prev = state.get(o.name);
          rev++;
          let e: WatchEvent | undefined;
          if (o.tier === null) {
            if (prev) {
              state.delete(o.name);
              e = { type: 'DELETED', object: prev, revision: rev };
            }
          } else {
            const next = obj(o.name, { tier: o.tier }, rev);
            state.set(o.name, next);
            e = prev
              ? { type: 'MODIFIED', object: next, previous: prev, revision: rev }
              : { type: 'ADDED', object: next, revision: rev };
          }
          if (e) compacted = appendHistory(history, compacted, e, 1000);
        }
        const sel = (o: StoredObject) => o.metadata.labels?.tier === 'front';
        // The selected state at revision `from` (rebuilt from the full history), then the watch's events.
        const from = Math.min(cut, rev);
        const seen = new Map<string, StoredObject>();
        for (const e of history.filter((x) => x.revision <= from)) {
          if (e.type === 'DELETED' || !sel(e.object)) seen.delete(e.object.metadata.name);
          else seen.set(e.object.metadata.name, e.object);
        }
        const start = watchStart(
          String(from),
          { objects: [...state.values()], revision: rev },
          history,
          compacted,
        );
        if (start.expired) return;
        for (const e of start.events) {
          const v = throughSelection(e, sel);
          if (!v) continue;
          if (v.type === 'DELETED') seen.delete(v.object.metadata.name);
          else seen.set(v.object.metadata.name, v.object);
        }
        const want = [...state.values()]
          .filter(sel)
          .map((o) => o.metadata.name)
          .sort();
        expect([...seen.keys()].sort()).toEqual(want);
      }),
    );
  });

  it('the history keeps at least the last `limit` changes and says through which revision it dropped', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 50 }), (n, limit) => {
        const h: WatchEvent[] = [];
        let c = 0;
        for (let r = 1; r <= n; r++)
          c = appendHistory(h, c, { type: 'ADDED', object: obj('a'), revision: r }, limit);
        expect(h.length).toBeGreaterThanOrEqual(Math.min(n, limit));
        expect(h[h.length - 1]!.revision).toBe(n);
        expect(c).toBe(h[0]!.revision - 1);
      }),
    );
  });
});

describe('merge patch (RFC 7386)', () => {
  it('merges objects, null removes, arrays replace', () => {
    expect(mergePatch({ a: 1, b: { c: 1, d: 2 }, e: [1] }, { b: { c: null, x: 3 }, e: [2] })).toEqual({
      a: 1,
      b: { d: 2, x: 3 },
      e: [2],
    });
  });
  it('property: applying a patch twice is applying it once', () => {
    const json = fc.jsonValue();
    fc.assert(
      fc.property(json, fc.dictionary(fc.string(), json), (t, p) => {
        const once = mergePatch(t, p);
        expect(mergePatch(once, p)).toEqual(once);
      }),
    );
  });
});

describe('routes, discovery and manifests', () => {
  const v = SERVED_VERSIONS[0]!;
  it('routes the paths kube-apiserver forwards; writes are read-only', () => {
    const base = `/apis/${INSTANCES_GROUP}/${v.version}`;
    expect(route('GET', `${base}/instances`)).toMatchObject({ kind: 'collection' });
    expect(route('GET', `${base}/namespaces/ns/instances`)).toMatchObject({
      kind: 'collection',
      namespace: 'ns',
    });
    expect(route('GET', `${base}/namespaces/ns/instances/x`)).toMatchObject({ kind: 'object', name: 'x' });
    expect(route('DELETE', `${base}/namespaces/ns/instances/x`)).toEqual({
      kind: 'read-only',
      resource: 'instances',
    });
    expect(route('GET', `/apis/${INSTANCES_GROUP}/v9`)).toEqual({ kind: 'not-found' });
    expect(route('GET', `/apis/other.io/v1`)).toEqual({ kind: 'not-found' });
    expect(route('GET', `/openapi/v3/apis/${INSTANCES_GROUP}/${v.version}`)).toMatchObject({
      kind: 'openapi-v3',
    });
  });

  it('one APIService and one discovery entry per served version', () => {
    expect(apiServices({ namespace: 'n', service: 's', port: 443 })).toHaveLength(SERVED_VERSIONS.length);
    expect(apiResourceList(v)).toMatchObject({
      resources: [{ name: 'instances', verbs: ['get', 'list', 'watch'] }],
    });
    const idx = openApiV3Index() as { paths: Record<string, { serverRelativeURL: string }> };
    expect(Object.keys(idx.paths)).toEqual(
      SERVED_VERSIONS.map((x) => `apis/${INSTANCES_GROUP}/${x.version}`),
    );
    const doc = openApiV3(v) as {
      components: { schemas: Record<string, { 'x-kubernetes-group-version-kind'?: unknown }> };
    };
    expect(Object.values(doc.components.schemas).some((s) => s['x-kubernetes-group-version-kind'])).toBe(
      true,
    );
  });

  it('deploy/kubernetes/instances-api ships one APIService per served version, as manifests.ts makes them', () => {
    const shipped = parseAllDocuments(
      readFileSync(path.join(REPO_DIR, 'deploy/kubernetes/instances-api/apiservice.yaml'), 'utf8'),
    ).map((d) => d.toJSON());
    const made = apiServices({ namespace: 'edgeplane-system', service: 'edge-coordinator', port: 443 });
    // The kustomization adds the part-of label.
    const unlabelled = made.map((m) => {
      const o = m as { metadata: { name: string; labels?: unknown } };
      return { ...o, metadata: { name: o.metadata.name } };
    });
    expect(shipped).toEqual(unlabelled);
  });

  it('reads the front proxy from extension-apiserver-authentication', () => {
    expect(
      parseRequestHeaderAuth({
        'requestheader-client-ca-file': 'PEM',
        'requestheader-allowed-names': '["front-proxy-client"]',
      }),
    ).toEqual({ clientCaPem: 'PEM', allowedNames: ['front-proxy-client'] });
    expect(() => parseRequestHeaderAuth({})).toThrow(/--requestheader-client-ca-file/);
  });
});

describe('--instances-api', () => {
  const base = {
    nats: 'nats://127.0.0.1:4222',
    subjectPrefix: 'edge',
    kvReplicas: '1',
    lostAfter: '30',
    leaderElect: false,
    leaseNamespace: 'kube-system',
    leaseName: 'edge-coordinator',
    leaseDuration: '15',
  };
  it('defaults to crd; aggregated needs its certificate; a bad mode names the flag', () => {
    expect(loadCoordinatorConfig(base, {}).instancesApi).toEqual({ mode: 'crd' });
    expect(() => loadCoordinatorConfig({ ...base, instancesApi: 'etcd' }, {})).toThrow(ConfigError);
    expect(() => loadCoordinatorConfig({ ...base, instancesApi: 'etcd' }, {})).toThrow(/--instances-api:/);
    expect(() => loadCoordinatorConfig({ ...base, instancesApi: 'aggregated' }, {})).toThrow(
      /--instances-api-cert/,
    );
    expect(() =>
      loadCoordinatorConfig(
        { ...base, instancesApi: 'aggregated', instancesApiCert: '/nope', instancesApiKey: '/nope' },
        {},
      ),
    ).toThrow(/--instances-api-cert: no such file/);
  });
});
