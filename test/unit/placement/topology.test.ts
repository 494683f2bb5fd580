import { describe, expect, it } from 'vitest';
import {
  addToSpread,
  affinitySatisfied,
  antiAffinitySatisfied,
  buildDim,
  compilePodRule,
  compileSpreadRule,
  firstOfGroup,
  MISSING_LABEL_PENALTY,
  podPreference,
  recomputeMin,
  type SpreadRule,
  spreadAllows,
  spreadPenalty,
} from '../../../coordinator/placement/topology.js';
import type { HostInfo, InstanceInfo } from '../../../coordinator/placement/types.js';
import { HOSTNAME, host, instance, workload, ZONE } from './fixtures.js';

/** The 4-node, 2-zone cluster of the Kubernetes topology spread docs. */
function cluster(): HostInfo[] {
  return [
    host('node1', { zone: 'zoneA' }),
    host('node2', { zone: 'zoneA' }),
    host('node3', { zone: 'zoneB' }),
    host('node4', { zone: 'zoneB' }),
  ];
}

const all = (n: number) => new Uint8Array(n).fill(1);

function spread(
  hosts: HostInfo[],
  key: string,
  maxSkew: number,
  pods: InstanceInfo[],
  extra: object = {},
): SpreadRule {
  const w = workload('mypod', 1, undefined, { instanceLabels: { foo: 'bar' } });
  const r = compileSpreadRule(
    {
      maxSkew,
      topologyKey: key,
      whenUnsatisfiable: 'DoNotSchedule',
      labelSelector: { matchLabels: { foo: 'bar' } },
      ...extra,
    },
    w,
    buildDim(hosts, key),
    all(hosts.length),
    all(hosts.length),
  );
  for (const p of pods) {
    if (!r.matches(p)) continue;
    const h = hosts.findIndex((x) => x.name === p.host);
    const d = r.dim.domainOf[h]!;
    if (d >= 0 && r.eligibleHost[h]) r.counts[d]!++;
  }
  recomputeMin(r);
  return r;
}

describe('topology domains', () => {
  it('groups hosts by label value and knows host-unique keys', () => {
    const hosts = cluster();
    const zone = buildDim(hosts, ZONE);
    expect(zone.domains).toEqual(['zoneA', 'zoneB']);
    expect([...zone.domainOf]).toEqual([0, 0, 1, 1]);
    expect(zone.unique).toBe(false);
    expect(buildDim(hosts, HOSTNAME).unique).toBe(true);
    expect([...buildDim(hosts, 'rack').domainOf]).toEqual([-1, -1, -1, -1]);
  });
});

describe('topology spread (examples of the Kubernetes docs)', () => {
  const hosts = cluster();
  const pods = ['node1', 'node2', 'node3'].map((n, i) =>
    instance(`p${i}`, hosts.find((h) => h.name === n)!, { labels: { foo: 'bar' } }),
  );

  it('one constraint: 3 pods in zoneA(2)/zoneB(1), maxSkew 1 → only zoneB', () => {
    const r = spread(hosts, ZONE, 1, pods);
    expect([...r.counts]).toEqual([2, 1]);
    expect(r.min).toBe(1);
    expect(spreadAllows(r, 0)).toBe(false); // [3, 1]: skew 2
    expect(spreadAllows(r, 1)).toBe(true); // [2, 2]
  });

  it('maxSkew 2 also allows zoneA', () => {
    expect(spreadAllows(spread(hosts, ZONE, 2, pods), 0)).toBe(true);
  });

  it('two constraints: zone and node → only node4', () => {
    const zone = spread(hosts, ZONE, 1, pods);
    const node = spread(hosts, HOSTNAME, 1, pods);
    const ok = hosts.map(
      (_, i) => spreadAllows(zone, zone.dim.domainOf[i]!) && spreadAllows(node, node.dim.domainOf[i]!),
    );
    expect(ok).toEqual([false, false, false, true]);
  });

  it('minDomains: with fewer eligible domains the minimum counts as 0', () => {
    const r = spread(hosts, ZONE, 1, pods.slice(0, 1), { minDomains: 3 });
    expect(r.min).toBe(0);
    expect(spreadAllows(r, 0)).toBe(false); // zoneA already holds maxSkew instances
    expect(spreadAllows(r, 1)).toBe(true);
  });

  it('nodeAffinityPolicy Honor leaves domains the Workload cannot use out of the minimum', () => {
    const hs = [...cluster(), host('node5', { zone: 'zoneC' })];
    const ps = pods.concat(instance('p3', hs[3]!, { labels: { foo: 'bar' } }));
    const selected = new Uint8Array([1, 1, 1, 1, 0]); // e.g. zone NotIn [zoneC]
    const w = workload('mypod', 1, undefined, { instanceLabels: { foo: 'bar' } });
    const make = (policy: 'Honor' | 'Ignore') => {
      const c = {
        maxSkew: 1,
        topologyKey: ZONE,
        whenUnsatisfiable: 'DoNotSchedule' as const,
        labelSelector: { matchLabels: { foo: 'bar' } },
        nodeAffinityPolicy: policy,
      };
      const r = compileSpreadRule(c, w, buildDim(hs, ZONE), selected, all(hs.length));
      for (const p of ps) {
        const h = hs.findIndex((x) => x.name === p.host);
        if (r.eligibleHost[h]) r.counts[r.dim.domainOf[h]!]!++;
      }
      recomputeMin(r);
      return r;
    };
    expect(make('Honor').min).toBe(2); // zoneC ignored: [2, 2]
    expect(spreadAllows(make('Honor'), 0)).toBe(true);
    expect(make('Ignore').min).toBe(0); // zoneC counts with 0
    expect(spreadAllows(make('Ignore'), 0)).toBe(false);
  });

  it('nodeTaintsPolicy Honor leaves cordoned or not-ready hosts out', () => {
    const hs = cluster();
    const w = workload('w', 1);
    const untainted = new Uint8Array([1, 1, 0, 0]);
    const c = { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' as const };
    expect(compileSpreadRule(c, w, buildDim(hs, ZONE), all(4), untainted).eligibleDomainCount).toBe(2);
    const honor = compileSpreadRule(
      { ...c, nodeTaintsPolicy: 'Honor' },
      w,
      buildDim(hs, ZONE),
      all(4),
      untainted,
    );
    expect(honor.eligibleDomainCount).toBe(1);
  });

  it('hosts without the topology key are not feasible for DoNotSchedule', () => {
    expect(spreadAllows(spread(hosts, ZONE, 1, pods), -1)).toBe(false);
  });

  it('ScheduleAnyway: a penalty only beyond maxSkew; hosts without the key last', () => {
    const r = spread(hosts, ZONE, 1, pods);
    expect(spreadPenalty(r, 1)).toBe(0);
    expect(spreadPenalty(r, 0)).toBe(1);
    expect(spreadPenalty(r, -1)).toBe(MISSING_LABEL_PENALTY);
  });

  it('the minimum follows placements', () => {
    const r = spread(hosts, ZONE, 1, pods);
    expect(addToSpread(r, 1)).toBe(true);
    expect(r.min).toBe(2);
    expect(addToSpread(r, 1)).toBe(false);
    expect(r.min).toBe(2);
  });

  it('without labelSelector it counts the Workload’s own instances, matchLabelKeys narrows', () => {
    const w = workload('web', 1, undefined, { instanceLabels: { app: 'web', version: 'v2' } });
    const dim = buildDim(hosts, ZONE);
    const own = compileSpreadRule(
      { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' },
      w,
      dim,
      all(4),
      all(4),
    );
    expect(own.self).toBe(1);
    expect(own.ownOnly).toBe(true);
    expect(own.matches(instance('a', hosts[0]!, { workload: 'default/web' }))).toBe(true);
    expect(own.matches(instance('b', hosts[0]!, { workload: 'default/api', labels: { app: 'web' } }))).toBe(
      false,
    );
    const keyed = compileSpreadRule(
      { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule', matchLabelKeys: ['version'] },
      w,
      dim,
      all(4),
      all(4),
    );
    expect(
      keyed.matches(instance('c', hosts[0]!, { workload: 'default/web', labels: { version: 'v1' } })),
    ).toBe(false);
    expect(
      keyed.matches(instance('d', hosts[0]!, { workload: 'default/web', labels: { version: 'v2' } })),
    ).toBe(true);
  });

  it('an explicit selector counts instances of other Workloads in the namespace only', () => {
    const w = workload('web', 1, undefined, { instanceLabels: { app: 'web' } });
    const r = compileSpreadRule(
      {
        maxSkew: 1,
        topologyKey: ZONE,
        whenUnsatisfiable: 'DoNotSchedule',
        labelSelector: { matchLabels: { tier: 'fe' } },
      },
      w,
      buildDim(hosts, ZONE),
      all(4),
      all(4),
    );
    expect(r.self).toBe(0);
    expect(r.matches(instance('a', hosts[0]!, { labels: { tier: 'fe' } }))).toBe(true);
    expect(r.matches(instance('b', hosts[0]!, { namespace: 'other', labels: { tier: 'fe' } }))).toBe(false);
  });
});

describe('instance (anti-)affinity terms', () => {
  const hosts = cluster();
  const dim = buildDim(hosts, ZONE);
  const w = workload('web', 1, undefined, { instanceLabels: { app: 'web' } });

  it('namespaces: own by default, listed, or by namespaceSelector ({} = all)', () => {
    const term = (extra: object) =>
      compilePodRule(
        'affinity',
        { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: ZONE, ...extra },
        true,
        0,
        w,
        dim,
        {
          prod: { env: 'prod' },
        },
      );
    const db = (ns: string) => instance('db', hosts[0]!, { namespace: ns, labels: { app: 'db' } });
    expect(term({}).matches(db('default'))).toBe(true);
    expect(term({}).matches(db('prod'))).toBe(false);
    expect(term({ namespaces: ['prod'] }).matches(db('prod'))).toBe(true);
    expect(term({ namespaces: ['prod'] }).matches(db('default'))).toBe(false);
    expect(term({ namespaceSelector: {} }).matches(db('anything'))).toBe(true);
    expect(term({ namespaceSelector: { matchLabels: { env: 'prod' } } }).matches(db('prod'))).toBe(true);
    expect(term({ namespaceSelector: { matchLabels: { env: 'prod' } } }).matches(db('dev'))).toBe(false);
  });

  it('required affinity needs a matching instance in the domain; anti-affinity none', () => {
    const r = compilePodRule(
      'affinity',
      { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: ZONE },
      true,
      0,
      w,
      dim,
      {},
    );
    r.counts[0] = 1;
    expect(affinitySatisfied(r, 0)).toBe(true);
    expect(affinitySatisfied(r, 1)).toBe(false);
    expect(affinitySatisfied(r, -1)).toBe(false);
    expect(antiAffinitySatisfied(r, 0)).toBe(false);
    expect(antiAffinitySatisfied(r, 1)).toBe(true);
    expect(antiAffinitySatisfied(r, -1)).toBe(true);
  });

  it('preferences: weight per matching instance, negative for anti-affinity', () => {
    const a = compilePodRule('affinity', { labelSelector: {}, topologyKey: ZONE }, false, 10, w, dim, {});
    const n = compilePodRule('antiAffinity', { labelSelector: {}, topologyKey: ZONE }, false, 10, w, dim, {});
    a.counts[0] = 3;
    n.counts[0] = 3;
    expect(podPreference(a, 0)).toBe(30);
    expect(podPreference(n, 0)).toBe(-30);
    expect(podPreference(a, -1)).toBe(0);
  });

  it('the first instance of a group with affinity to itself may go anywhere', () => {
    const self = compilePodRule(
      'affinity',
      { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: ZONE },
      true,
      0,
      w,
      dim,
      {},
    );
    const other = compilePodRule(
      'affinity',
      { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: ZONE },
      true,
      0,
      w,
      dim,
      {},
    );
    expect(self.self).toBe(1);
    expect(firstOfGroup([self])).toBe(true);
    expect(firstOfGroup([self, other])).toBe(false);
    self.total = 1;
    expect(firstOfGroup([self])).toBe(false);
    expect(firstOfGroup([])).toBe(false);
  });

  it('matchLabelKeys / mismatchLabelKeys use the Workload’s own label values', () => {
    const ww = workload('web', 1, undefined, { instanceLabels: { app: 'web', tenant: 't1' } });
    const r = compilePodRule(
      'antiAffinity',
      { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: ZONE, mismatchLabelKeys: ['tenant'] },
      true,
      0,
      ww,
      dim,
      {},
    );
    expect(r.matches(instance('a', hosts[0]!, { labels: { app: 'web', tenant: 't1' } }))).toBe(false);
    expect(r.matches(instance('b', hosts[0]!, { labels: { app: 'web', tenant: 't2' } }))).toBe(true);
  });
});
