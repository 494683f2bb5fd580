import { describe, expect, it } from 'vitest';
import { schedule } from '../../../coordinator/placement/index.js';
import type { HostInfo, ScheduleInput } from '../../../coordinator/placement/types.js';
import {
  apply,
  countBy,
  GiB,
  HOSTNAME,
  host,
  hostsOf,
  instance,
  REGION,
  workload,
  ZONE,
} from './fixtures.js';

/** Three zones × two hosts. */
function zones(): HostInfo[] {
  return ['a', 'b', 'c'].flatMap((z) =>
    [1, 2].map((i) => host(`${z}${i}`, { zone: `us-central1-${z}`, region: 'us-central1' })),
  );
}

describe('plan basics', () => {
  it('places every replica, names them <workload>-<location>-<ordinal>, groups by location', () => {
    const plan = schedule({ workload: workload('web', 4), hosts: zones(), instances: [] });
    expect(plan.unplaced).toBe(0);
    expect(plan.reason).toBeUndefined();
    expect(plan.place).toHaveLength(4);
    for (const p of plan.place) expect(p.name).toMatch(new RegExp(`^web-${p.location}-\\d+$`));
    expect(Object.values(plan.byLocation).flat()).toHaveLength(4);
    for (const [loc, list] of Object.entries(plan.byLocation))
      for (const p of list) expect(p.location).toBe(loc);
  });

  it('uses the lowest free ordinal in the location', () => {
    const h = host('h1', { zone: 'z' });
    const own = (n: string) => instance(n, h, { workload: 'default/web' });
    const plan = schedule({
      workload: workload('web', 4),
      hosts: [h],
      instances: [own('web-z-0'), own('web-z-2')],
    });
    expect(plan.place.map((p) => p.name)).toEqual(['web-z-1', 'web-z-3']);
    expect(plan.byLocation.z!.map((p) => p.name)).toEqual(['web-z-0', 'web-z-1', 'web-z-2', 'web-z-3']);
  });

  it('zero hosts: nothing placed, with a reason', () => {
    const plan = schedule({ workload: workload('web', 2), hosts: [], instances: [] });
    expect(plan).toMatchObject({ unplaced: 2, reason: '0/0 hosts are available.' });
  });
});

describe('reconcile', () => {
  it('keeps instances whose host is listed, even when not ready, cordoned or no longer matching', () => {
    const hs = [
      host('h1', { ready: false }),
      host('h2', { cordoned: true }),
      host('h3', { provider: 'aws' }),
    ];
    const instances = hs.map((h, i) => instance(`web-${h.location}-${i}`, h, { workload: 'default/web' }));
    const plan = schedule({ workload: workload('web', 3, { providers: ['gcp'] }), hosts: hs, instances });
    expect(plan.keep.map((k) => k.host).sort()).toEqual(['h1', 'h2', 'h3']);
    expect(plan.place).toEqual([]);
    expect(plan.remove).toEqual([]);
  });

  it('removes instances whose host is gone (HostGone) and replaces them elsewhere', () => {
    const hs = zones();
    const gone = host('gone', { zone: 'us-central1-a' });
    const instances = [
      instance('web-us-central1-a-0', gone, { workload: 'default/web' }),
      instance('web-us-central1-b-0', hs[2]!, { workload: 'default/web' }),
    ];
    const plan = schedule({ workload: workload('web', 2), hosts: hs, instances });
    expect(plan.remove).toEqual([{ name: 'web-us-central1-a-0', reason: 'HostGone' }]);
    expect(plan.keep.map((k) => k.name)).toEqual(['web-us-central1-b-0']);
    expect(plan.place).toHaveLength(1);
    expect(plan.place[0]!.host).not.toBe('gone');
    // A replacement in the same location does not reuse the removed name.
    if (plan.place[0]!.location === 'us-central1-a') expect(plan.place[0]!.name).toBe('web-us-central1-a-1');
  });

  it('places nothing new on hosts that are not ready or cordoned', () => {
    const hs = [host('h1', { ready: false }), host('h2', { cordoned: true }), host('h3')];
    const plan = schedule({ workload: workload('web', 3), hosts: hs, instances: [] });
    expect(hostsOf(plan)).toEqual(['h3', 'h3', 'h3']);
  });

  it('scale-down removes where the spread is most skewed, highest ordinal first', () => {
    const hs = zones();
    const [a1, a2, b1] = hs as [HostInfo, HostInfo, HostInfo];
    const own = (n: string, h: HostInfo) => instance(n, h, { workload: 'default/web' });
    const instances = [
      own('web-us-central1-a-0', a1),
      own('web-us-central1-a-1', a2),
      own('web-us-central1-a-2', a1),
      own('web-us-central1-b-0', b1),
    ];
    for (const i of instances)
      hs.find((h) => h.name === i.host)!.allocated.cpuMillis += i.resources.cpuMillis;
    const spread = {
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' as const },
      ],
    };
    const plan = schedule({ workload: workload('web', 2, spread), hosts: hs, instances });
    // Zone a holds 3: both removals come from it. First from a1, which holds two (the highest ordinal), then
    // a1 and a2 are even and a2 (the greater name) gives one up.
    expect(plan.remove).toEqual([
      { name: 'web-us-central1-a-2', reason: 'ScaleDown' },
      { name: 'web-us-central1-a-1', reason: 'ScaleDown' },
    ]);
    expect(countBy(plan, hs, ZONE)).toEqual({ 'us-central1-a': 1, 'us-central1-b': 1 });
  });

  it('scale-down prefers instances on hosts that are not ready', () => {
    const hs = [host('h1'), host('h2', { ready: false })];
    const instances = [
      instance('web-zone-a-0', hs[0]!, { workload: 'default/web' }),
      instance('web-zone-a-1', hs[1]!, { workload: 'default/web' }),
    ];
    const plan = schedule({ workload: workload('web', 1), hosts: hs, instances });
    expect(plan.remove).toEqual([{ name: 'web-zone-a-1', reason: 'ScaleDown' }]);
  });

  it('scale to zero removes all', () => {
    const hs = zones();
    const instances = hs.map((h, i) => instance(`web-${h.location}-${i}`, h, { workload: 'default/web' }));
    const plan = schedule({ workload: workload('web', 0), hosts: hs, instances });
    expect(plan.remove).toHaveLength(6);
    expect(plan.keep).toEqual([]);
    expect(plan.byLocation).toEqual({});
  });
});

describe('node selection', () => {
  it('nodeSelector (the Workload guide example)', () => {
    const hs = [
      host('h1', { zone: 'us-central1-a', region: 'us-central1', provider: 'gcp' }),
      host('h2', { zone: 'us-central1-b', region: 'us-central1', provider: 'gcp' }),
      host('h3', { zone: 'us-central1-a', region: 'us-central1', provider: 'aws' }),
    ];
    const p = { nodeSelector: { [REGION]: 'us-central1', [ZONE]: 'us-central1-a', provider: 'gcp' } };
    expect(hostsOf(schedule({ workload: workload('w', 3, p), hosts: hs, instances: [] }))).toEqual([
      'h1',
      'h1',
      'h1',
    ]);
  });

  it('required node affinity: terms ORed, Gt/Lt', () => {
    const hs = [
      host('small', { labels: { cores: '2' } }),
      host('big', { labels: { cores: '16' } }),
      host('gpu', { labels: { gpu: 'yes' } }),
    ];
    const p = {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'cores', operator: 'Gt' as const, values: ['8'] }] },
              { matchExpressions: [{ key: 'gpu', operator: 'Exists' as const }] },
            ],
          },
        },
      },
    };
    const plan = schedule({ workload: workload('w', 4, p), hosts: hs, instances: [] });
    expect(new Set(hostsOf(plan))).toEqual(new Set(['big', 'gpu']));
  });

  it('preferred node affinity: the Kubernetes docs weights example', () => {
    const hs = [
      host('n1', { labels: { 'label-1': 'key-1' } }),
      host('n2', { labels: { 'label-2': 'key-2' } }),
    ];
    const p = {
      affinity: {
        nodeAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 1,
              preference: {
                matchExpressions: [{ key: 'label-1', operator: 'In' as const, values: ['key-1'] }],
              },
            },
            {
              weight: 50,
              preference: {
                matchExpressions: [{ key: 'label-2', operator: 'In' as const, values: ['key-2'] }],
              },
            },
          ],
        },
      },
    };
    expect(hostsOf(schedule({ workload: workload('w', 1, p), hosts: hs, instances: [] }))).toEqual(['n2']);
  });

  it('providers and regions shorthand (the infrastructure providers doc)', () => {
    const hs = [
      host('gcp-c1', { provider: 'gcp', region: 'us-central1' }),
      host('gcp-e1', { provider: 'gcp', region: 'europe-west1' }),
      host('aws-c1', { provider: 'aws', region: 'us-central1' }),
    ];
    const plan = schedule({
      workload: workload('my-app', 3, { providers: ['gcp'], regions: ['us-central1'] }),
      hosts: hs,
      instances: [],
    });
    expect(hostsOf(plan)).toEqual(['gcp-c1', 'gcp-c1', 'gcp-c1']);
  });

  it('runtime: a VM goes only where VMs run', () => {
    const hs = [host('containers', { runtimes: ['gvisor'] }), host('vms', { runtimes: ['vm'] })];
    expect(
      hostsOf(
        schedule({ workload: workload('vm', 2, undefined, { runtime: 'vm' }), hosts: hs, instances: [] }),
      ),
    ).toEqual(['vms', 'vms']);
  });
});

describe('capacity and scoring', () => {
  it('never exceeds capacity, and says what is short', () => {
    const hs = [
      host('h1', { capacity: { cpuMillis: 1000, memoryBytes: 4 * GiB } }),
      host('h2', { capacity: { cpuMillis: 4000, memoryBytes: GiB } }),
    ];
    const w = workload('w', 10, undefined, { resources: { cpuMillis: 500, memoryBytes: GiB } });
    const plan = schedule({ workload: w, hosts: hs, instances: [] });
    expect(hostsOf(plan)).toEqual(['h1', 'h1', 'h2']);
    expect(plan.unplaced).toBe(7);
    expect(plan.reason).toBe('0/2 hosts are available: 1 Insufficient cpu, 1 Insufficient memory.');
  });

  it('counts what is already allocated', () => {
    const hs = [
      host('h1', {
        capacity: { cpuMillis: 1000, memoryBytes: GiB },
        allocated: { cpuMillis: 900, memoryBytes: 0 },
      }),
    ];
    expect(schedule({ workload: workload('w', 2), hosts: hs, instances: [] }).place).toHaveLength(1);
  });

  it('the kube-scheduler style reason: 0/12 hosts are available: 7 Insufficient memory, 5 didn’t match node selector.', () => {
    const hs = [
      ...Array.from({ length: 7 }, (_, i) =>
        host(`big-${i}`, { provider: 'gcp', capacity: { cpuMillis: 8000, memoryBytes: GiB } }),
      ),
      ...Array.from({ length: 5 }, (_, i) => host(`aws-${i}`, { provider: 'aws' })),
    ];
    const w = workload(
      'w',
      1,
      { nodeSelector: { provider: 'gcp' } },
      { resources: { cpuMillis: 100, memoryBytes: 2 * GiB } },
    );
    expect(schedule({ workload: w, hosts: hs, instances: [] }).reason).toBe(
      "0/12 hosts are available: 7 Insufficient memory, 5 didn't match node selector.",
    );
  });

  it('Spread (default) uses the least allocated host; BinPack fills the most allocated first', () => {
    const hs = [host('h1'), host('h2'), host('h3')];
    expect(hostsOf(schedule({ workload: workload('w', 3), hosts: hs, instances: [] }))).toEqual([
      'h1',
      'h2',
      'h3',
    ]);
    const packed = schedule({ workload: workload('w', 3, { scoring: 'BinPack' }), hosts: hs, instances: [] });
    expect(hostsOf(packed)).toEqual(['h1', 'h1', 'h1']);
  });
});

describe('topology spread', () => {
  const hard = (maxSkew = 1, extra: object = {}) => ({
    topologySpreadConstraints: [
      { maxSkew, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' as const, ...extra },
    ],
  });

  it('DoNotSchedule over zones keeps the skew within maxSkew', () => {
    // Zone a has four hosts, b and c one each.
    const hs = [
      ...['a1', 'a2', 'a3', 'a4'].map((n) => host(n, { zone: 'a' })),
      host('b1', { zone: 'b' }),
      host('c1', { zone: 'c' }),
    ];
    const plan = schedule({ workload: workload('w', 7), hosts: hs, instances: [] });
    expect(countBy(plan, hs, ZONE)).toEqual({ a: 5, b: 1, c: 1 }); // least allocated alone
    const spread = schedule({ workload: workload('w', 7, hard()), hosts: hs, instances: [] });
    expect(countBy(spread, hs, ZONE)).toEqual({ a: 3, b: 2, c: 2 });
  });

  it('the Workload guide advanced example: 5 replicas, zone spread, region selector, prefer gcp', () => {
    const hs = [
      host('gcp-a', { zone: 'us-central1-a', region: 'us-central1', provider: 'gcp' }),
      host('aws-a', { zone: 'us-central1-a', region: 'us-central1', provider: 'aws' }),
      host('gcp-b', { zone: 'us-central1-b', region: 'us-central1', provider: 'gcp' }),
      host('aws-c', { zone: 'us-central1-c', region: 'us-central1', provider: 'aws' }),
      host('gcp-eu', { zone: 'europe-west1-b', region: 'europe-west1', provider: 'gcp' }),
    ];
    const placement = {
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' as const },
      ],
      nodeSelector: { [REGION]: 'us-central1' },
      affinity: {
        nodeAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              preference: {
                matchExpressions: [{ key: 'provider', operator: 'In' as const, values: ['gcp'] }],
              },
            },
          ],
        },
      },
    };
    const plan = schedule({ workload: workload('backend-api', 5, placement), hosts: hs, instances: [] });
    expect(countBy(plan, hs, ZONE)).toEqual({ 'us-central1-a': 2, 'us-central1-b': 2, 'us-central1-c': 1 });
    // Within zone a, gcp is preferred.
    expect(hostsOf(plan).filter((h) => h.endsWith('-a'))).toEqual(['gcp-a', 'gcp-a']);
    expect(hostsOf(plan)).not.toContain('gcp-eu');
  });

  it('when a zone is full, DoNotSchedule leaves replicas unplaced rather than skew', () => {
    const hs = [
      host('a1', { zone: 'a', capacity: { cpuMillis: 100, memoryBytes: GiB } }),
      host('b1', { zone: 'b' }),
    ];
    const plan = schedule({ workload: workload('w', 4, hard()), hosts: hs, instances: [] });
    expect(countBy(plan, hs, ZONE)).toEqual({ a: 1, b: 2 });
    expect(plan.unplaced).toBe(1);
    expect(plan.reason).toBe(
      "0/2 hosts are available: 1 Insufficient cpu, 1 didn't match topology spread constraints.",
    );
  });

  it('ScheduleAnyway places anyway', () => {
    const hs = [
      host('a1', { zone: 'a', capacity: { cpuMillis: 100, memoryBytes: GiB } }),
      host('b1', { zone: 'b' }),
    ];
    const soft = {
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'ScheduleAnyway' as const },
      ],
    };
    const plan = schedule({ workload: workload('w', 4, soft), hosts: hs, instances: [] });
    expect(plan.unplaced).toBe(0);
    expect(countBy(plan, hs, ZONE)).toEqual({ a: 1, b: 3 });
  });

  it('ScheduleAnyway balances when it can (the guide: spread over providers, maxSkew 2)', () => {
    const hs = [
      host('g1', { provider: 'gcp' }),
      host('g2', { provider: 'gcp' }),
      host('g3', { provider: 'gcp' }),
      host('w1', { provider: 'aws', allocated: { cpuMillis: 4000, memoryBytes: 0 } }),
    ];
    const soft = {
      topologySpreadConstraints: [
        { maxSkew: 2, topologyKey: 'provider', whenUnsatisfiable: 'ScheduleAnyway' as const },
      ],
    };
    const counts = countBy(
      schedule({ workload: workload('w', 8, soft), hosts: hs, instances: [] }),
      hs,
      'provider',
    );
    expect(Math.abs(counts.gcp! - counts.aws!)).toBeLessThanOrEqual(2);
  });

  it('hosts without the topology label are not used by DoNotSchedule', () => {
    const hs = [host('labelled', { zone: 'a' }), { ...host('bare'), labels: {} }];
    const plan = schedule({ workload: workload('w', 2, hard()), hosts: hs, instances: [] });
    expect(hostsOf(plan)).toEqual(['labelled', 'labelled']);
  });

  it('minDomains: with fewer zones than minDomains, at most maxSkew per zone', () => {
    const hs = zones().slice(0, 4); // two zones
    const plan = schedule({
      workload: workload('w', 5, hard(1, { minDomains: 3 })),
      hosts: hs,
      instances: [],
    });
    expect(Object.values(countBy(plan, hs, ZONE))).toEqual([1, 1]);
    expect(plan.unplaced).toBe(3);
  });

  it('several constraints are ANDed: zone and host', () => {
    const hs = zones();
    const p = {
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' as const },
        { maxSkew: 1, topologyKey: HOSTNAME, whenUnsatisfiable: 'DoNotSchedule' as const },
      ],
      scoring: 'BinPack' as const,
    };
    const plan = schedule({ workload: workload('w', 9), hosts: hs, instances: [] });
    expect(plan.unplaced).toBe(0);
    const both = schedule({ workload: workload('w', 9, p), hosts: hs, instances: [] });
    const perHost = Object.values(countBy(both, hs, HOSTNAME)).sort();
    expect(perHost).toEqual([1, 1, 1, 2, 2, 2]);
    expect(Object.values(countBy(both, hs, ZONE))).toEqual([3, 3, 3]);
  });

  it('a labelSelector counts other Workloads’ instances too', () => {
    const hs = [host('a1', { zone: 'a' }), host('b1', { zone: 'b' })];
    const others = [0, 1].map((i) => instance(`fe-${i}`, hs[0]!, { labels: { tier: 'fe' } }));
    const p = {
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: ZONE,
          whenUnsatisfiable: 'DoNotSchedule' as const,
          labelSelector: { matchLabels: { tier: 'fe' } },
        },
      ],
    };
    const w = workload('w', 2, p, { instanceLabels: { tier: 'fe', workload: 'w' } });
    expect(hostsOf(schedule({ workload: w, hosts: hs, instances: others }))).toEqual(['b1', 'b1']);
  });
});

describe('instance affinity and anti-affinity', () => {
  it("honours existing instances' required anti-affinity: a newcomer they select stays out of their domain", () => {
    const hs = zones();
    const term = { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: ZONE };
    // A database that wants no web instance in its zone (us-central1-b).
    const db = instance('db-0', hs[2]!, { workload: 'default/db', labels: { app: 'database' } });
    const guarded = { ...db, antiAffinity: [term] };
    const plan = schedule({ workload: workload('web', 4), hosts: hs, instances: [guarded] });
    expect(plan.unplaced).toBe(0);
    expect(countBy(plan, hs, ZONE)['us-central1-b']).toBeUndefined();
    // Without the rule the zone is used.
    const free = schedule({ workload: workload('web', 6), hosts: hs, instances: [db] });
    expect(countBy(free, hs, ZONE)['us-central1-b']).toBe(2);
    // Only instances the term selects, in the namespaces it names, are kept out.
    const other = schedule({ workload: workload('api', 6), hosts: hs, instances: [guarded] });
    expect(countBy(other, hs, ZONE)['us-central1-b']).toBe(2);
    const elsewhere = schedule({
      workload: { ...workload('web', 6), namespace: 'other' },
      hosts: hs,
      instances: [guarded],
    });
    expect(countBy(elsewhere, hs, ZONE)['us-central1-b']).toBe(2);
    // When nothing else is left, the reason says why.
    const only = schedule({ workload: workload('web', 1), hosts: [hs[2]!], instances: [guarded] });
    expect(only.reason).toBe(
      "0/1 hosts are available: 1 didn't satisfy existing instances' anti-affinity rules.",
    );
  });

  it('required affinity: co-locate with a database in the same zone (the guide example)', () => {
    const hs = zones();
    const db = instance('db-0', hs[3]!, { workload: 'default/db', labels: { app: 'database' } });
    const p = {
      affinity: {
        podAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: { app: 'database' } }, topologyKey: ZONE },
          ],
        },
      },
    };
    const plan = schedule({ workload: workload('web', 4, p), hosts: hs, instances: [db] });
    expect(countBy(plan, hs, ZONE)).toEqual({ 'us-central1-b': 4 });
    const none = schedule({ workload: workload('web', 1, p), hosts: hs, instances: [] });
    expect(none.unplaced).toBe(1);
    expect(none.reason).toBe("0/6 hosts are available: 6 didn't match instance affinity rules.");
  });

  it('required affinity to itself: the first instance goes anywhere, the rest follow it', () => {
    const hs = zones();
    const p = {
      affinity: {
        podAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: ZONE },
          ],
        },
      },
    };
    const plan = schedule({ workload: workload('web', 5, p), hosts: hs, instances: [] });
    expect(Object.keys(countBy(plan, hs, ZONE))).toHaveLength(1);
    expect(plan.unplaced).toBe(0);
  });

  it('the Kubernetes docs example: redis-cache one per node, web-server with a cache and one per node', () => {
    const hs = [host('node-1'), host('node-2'), host('node-3'), host('node-4')];
    const cache = workload(
      'redis-cache',
      3,
      {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              { labelSelector: { matchLabels: { app: 'store' } }, topologyKey: HOSTNAME },
            ],
          },
        },
      },
      { instanceLabels: { app: 'store' } },
    );
    let input: ScheduleInput = { workload: cache, hosts: hs, instances: [] };
    const cachePlan = schedule(input);
    expect(new Set(hostsOf(cachePlan)).size).toBe(3);
    input = apply(input, cachePlan);
    const web = workload(
      'web-server',
      4,
      {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              { labelSelector: { matchLabels: { app: 'web-store' } }, topologyKey: HOSTNAME },
            ],
          },
          podAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              { labelSelector: { matchLabels: { app: 'store' } }, topologyKey: HOSTNAME },
            ],
          },
        },
      },
      { instanceLabels: { app: 'web-store' } },
    );
    const webPlan = schedule({ ...input, workload: web });
    expect(hostsOf(webPlan)).toEqual(hostsOf(cachePlan));
    expect(webPlan.unplaced).toBe(1);
    expect(webPlan.reason).toBe(
      "0/4 hosts are available: 3 didn't match instance anti-affinity rules, 1 didn't match instance affinity rules.",
    );
  });

  it('preferred anti-affinity on hostname spreads over hosts (the guide example)', () => {
    const hs = [
      host('h1', { capacity: { cpuMillis: 64000, memoryBytes: 64 * GiB } }),
      host('h2'),
      host('h3'),
    ];
    const p = {
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: { labelSelector: { matchLabels: { app: 'web-app' } }, topologyKey: HOSTNAME },
            },
          ],
        },
      },
      scoring: 'BinPack' as const,
    };
    const w = workload('web-app', 3, p, { instanceLabels: { app: 'web-app' } });
    expect(hostsOf(schedule({ workload: w, hosts: hs, instances: [] }))).toEqual(['h1', 'h2', 'h3']);
  });

  it('preferred affinity draws towards the domain with most matching instances', () => {
    const hs = zones();
    const cache = [
      instance('c0', hs[4]!, { labels: { app: 'cache' } }),
      instance('c1', hs[5]!, { labels: { app: 'cache' } }),
    ];
    const p = {
      affinity: {
        podAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 10,
              podAffinityTerm: { labelSelector: { matchLabels: { app: 'cache' } }, topologyKey: ZONE },
            },
          ],
        },
      },
    };
    expect(
      countBy(schedule({ workload: workload('w', 3, p), hosts: hs, instances: cache }), hs, ZONE),
    ).toEqual({ 'us-central1-c': 3 });
  });

  it('terms only see the namespaces they name', () => {
    const hs = [host('h1'), host('h2')];
    const db = instance('db', hs[0]!, { namespace: 'data', labels: { app: 'db' } });
    const term = (namespaces?: string[]) => ({
      affinity: {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            {
              labelSelector: { matchLabels: { app: 'db' } },
              topologyKey: HOSTNAME,
              ...(namespaces ? { namespaces } : {}),
            },
          ],
        },
      },
    });
    expect(
      hostsOf(schedule({ workload: workload('w', 2, term()), hosts: hs, instances: [db] })).sort(),
    ).toEqual(['h1', 'h2']);
    expect(
      hostsOf(schedule({ workload: workload('w', 2, term(['data'])), hosts: hs, instances: [db] })),
    ).toEqual(['h2', 'h2']);
  });
});

describe('gang', () => {
  const small = (name: string) => host(name, { capacity: { cpuMillis: 1000, memoryBytes: GiB } });
  const w = (replicas: number, minCount: number) =>
    workload('train', replicas, { gang: { minCount } }, { resources: { cpuMillis: 1000, memoryBytes: GiB } });

  it('places nothing when fewer than minCount can run, and says why', () => {
    const plan = schedule({
      workload: w(4, 4),
      hosts: [small('h1'), small('h2'), small('h3')],
      instances: [],
    });
    expect(plan.place).toEqual([]);
    expect(plan.unplaced).toBe(4);
    expect(plan.reason).toBe(
      'gang minCount 4 not met: only 3 of 4 instances can run; 0/3 hosts are available: 3 Insufficient cpu, 3 Insufficient memory.',
    );
  });

  it('places what fits once minCount can run', () => {
    const plan = schedule({
      workload: w(5, 3),
      hosts: [small('h1'), small('h2'), small('h3'), small('h4')],
      instances: [],
    });
    expect(plan.place).toHaveLength(4);
    expect(plan.unplaced).toBe(1);
  });

  it('counts running instances towards minCount', () => {
    const hs = [small('h1'), small('h2')];
    const running = instance('train-zone-a-0', hs[0]!, {
      workload: 'default/train',
      resources: { cpuMillis: 1000, memoryBytes: GiB },
    });
    hs[0]!.allocated = { cpuMillis: 1000, memoryBytes: GiB };
    const plan = schedule({ workload: w(2, 2), hosts: hs, instances: [running] });
    expect(plan.place.map((p) => p.host)).toEqual(['h2']);
  });

  it('replicas below minCount never run', () => {
    const plan = schedule({
      workload: w(2, 3),
      hosts: [small('h1'), small('h2'), small('h3')],
      instances: [],
    });
    expect(plan.place).toEqual([]);
    expect(plan.reason).toBe('replicas (2) is less than gang minCount 3');
  });
});

describe('determinism and stability', () => {
  it('the order of hosts and instances does not matter', () => {
    const hs = zones();
    const others = [
      instance('x', hs[1]!, { labels: { app: 'db' } }),
      instance('y', hs[4]!, { labels: { app: 'db' } }),
    ];
    const p = {
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' as const },
      ],
      affinity: {
        podAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 5,
              podAffinityTerm: { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: HOSTNAME },
            },
          ],
        },
      },
    };
    const a = schedule({ workload: workload('w', 5, p), hosts: hs, instances: others });
    const b = schedule({
      workload: workload('w', 5, p),
      hosts: [...hs].reverse(),
      instances: [...others].reverse(),
    });
    expect(b).toEqual(a);
  });

  it('applying a plan and scheduling again changes nothing', () => {
    const input: ScheduleInput = { workload: workload('w', 5), hosts: zones(), instances: [] };
    const next = apply(input, schedule(input));
    const again = schedule(next);
    expect(again.place).toEqual([]);
    expect(again.remove).toEqual([]);
    expect(again.keep).toHaveLength(5);
  });
});
