/**
 * The interface stages of a pass (coordinator/workloads/interfaces.ts) and the segments bucket's contents
 * (coordinator/networks/segments.ts), pure.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIPv4 } from '../../../coordinator/networks/cidr.js';
import { desiredSegments, type SegmentMember } from '../../../coordinator/networks/segments.js';
import {
  addressPlan,
  type NetworkAnswer,
  segmentMembers,
  slotMac,
  withInterfaces,
} from '../../../coordinator/workloads/interfaces.js';
import type { WorkloadPlan } from '../../../coordinator/workloads/types.js';
import type { NetworkSpec } from '../../../shared/api/index.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { testIntent } from '../../harness/objects.js';

const settings = { underlayMtu: 1500 };
const nets = new Map<string, NetworkSpec>([
  ['front', { ipv4Cidr: '10.0.0.0/16' }],
  ['back', { ipv4Cidr: '10.2.0.0/16', subnets: [{ name: 'db', ipv4Cidr: '10.2.1.0/24' }], mtu: 1400 }],
]);
const template = {
  image: 'nginx:latest',
  networkInterfaces: [
    { networkRef: { name: 'front' }, networkPolicy: { ingress: [{ ports: [{ port: 80 }] }] } },
    { networkRef: { name: 'back' }, subnetRef: { name: 'db' }, primary: true },
  ],
};

/** A plan of web: web-us-0 (exists) and web-us-1 (new), with what the status needs. */
function plan(): WorkloadPlan {
  const intent = testIntent({
    workload: 'web',
    namespace: 'default',
    location: 'us',
    hosts: ['h1', 'h2'],
    template,
  });
  const observed = intent.instances.map((i) => ({
    name: i.name,
    location: 'us',
    host: i.host,
    templateHash: 'x',
  }));
  return {
    instanceMetadata: { labels: {} },
    template: { hash: 'x', runtime: 'gvisor', requests: { cpuMillis: 0, memoryBytes: 0 } },
    create: [{ name: 'web-us-1', location: 'us', host: 'h2', ordinal: 1, surge: false }],
    remove: [],
    switchTemplate: [],
    intents: [{ intent, values: { env: {}, files: {}, registryAuth: [] } }],
    removeAfterIntents: [],
    instanceStatus: observed,
    deploymentStatus: new Map(),
    status: {
      desired: 2,
      generation: 1,
      selector: '',
      instances: observed,
      unplaced: 0,
      deleting: false,
      maxUnavailable: 0,
      now: '2026-01-01T00:00:00Z',
    },
    events: [],
  };
}

const answer = (segment: number, addresses: Record<string, string>): NetworkAnswer => ({
  segment,
  outcomes: new Map(
    Object.entries(addresses).map(([owner, ip]) => [owner, { owner, address: parseIPv4(ip)! }]),
  ),
});

/** The plan with interfaces, `front` answered with .2 and .3 and `back` with `back`. */
function assign(back: NetworkAnswer): WorkloadPlan {
  const p = plan();
  const ap = addressPlan(p, 'default', 'web', (n) => nets.get(n), settings);
  const front = answer(3, { 'default/web-us-0': '10.0.0.2', 'default/web-us-1': '10.0.0.3' });
  return withInterfaces(
    p,
    ap,
    new Map([
      ['front', front],
      ['back', back],
    ]),
    'default',
  );
}

describe('interfaces of a pass', () => {
  it('asks each Network for every slot, from the right pool', () => {
    const ap = addressPlan(plan(), 'default', 'web', (n) => nets.get(n), settings);
    expect([...ap.networks.keys()]).toEqual(['front', 'back']);
    expect(ap.networks.get('back')!.requests).toEqual([
      { owner: 'default/web-us-0', workload: 'default/web', location: 'us', pool: 'db' },
      { owner: 'default/web-us-1', workload: 'default/web', location: 'us', pool: 'db' },
    ]);
  });

  it('fills every intent instance with its interfaces: net<i>, a stable MAC, address/prefix, MTU, primary, ingress', () => {
    const out = assign(answer(4, { 'default/web-us-0': '10.2.1.2', 'default/web-us-1': '10.2.1.3' }));
    const first = out.intents![0]!.intent.instances[0]!;
    expect(first.interfaces).toEqual([
      {
        network: 'front',
        segment: 3,
        name: 'net0',
        mac: slotMac('default/web-us-0', 'front'),
        address: '10.0.0.2/16',
        mtu: 1450,
        primary: false,
        ingress: [{ ports: [{ port: 80 }] }],
      },
      {
        network: 'back',
        segment: 4,
        name: 'net1',
        mac: slotMac('default/web-us-0', 'back'),
        address: '10.2.1.2/24',
        mtu: 1400,
        primary: true,
      },
    ]);
    expect(out.create.map((c) => c.name)).toEqual(['web-us-1']);
    expect(out.status.addressing).toEqual({
      reason: 'AddressesAssigned',
      message: 'every interface has its address',
    });
    expect(segmentMembers(out, 'default')).toHaveLength(4);
  });

  it('creates no new Instance without its address, and names the field and holder of a static address in use', () => {
    const out = assign({
      segment: 4,
      outcomes: new Map([
        ['default/web-us-0', { owner: 'default/web-us-0', address: parseIPv4('10.2.1.2')! }],
        [
          'default/web-us-1',
          {
            owner: 'default/web-us-1',
            conflict: {
              owner: 'default/db-us-0',
              workload: 'default/db',
              pool: 'db',
              address: parseIPv4('10.2.1.9')!,
            },
          },
        ],
      ]),
    });
    expect(out.create).toEqual([]);
    expect(out.intents![0]!.intent.instances.map((i) => i.name)).toEqual(['web-us-0']);
    expect(out.instanceStatus.map((o) => o.name)).toEqual(['web-us-0']);
    expect(out.status.addressing).toEqual({
      reason: 'AddressConflict',
      message:
        'spec.template.spec.networkInterfaces[1].ipAddress: 10.2.1.9 is held by instance default/db-us-0 of Workload default/db',
    });
    expect(out.events.at(-1)).toMatchObject({ type: 'Warning', reason: 'AddressConflict' });
    expect(out.requeueAfterMs).toBeGreaterThan(0);
  });

  it('gives each slot and Network its own locally administered unicast MAC, the same every time', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (slot, net) => {
        const mac = slotMac(slot, net);
        expect(mac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
        expect(slotMac(slot, net)).toBe(mac);
      }),
    );
  });
});

describe('desiredSegments', () => {
  const subjects = new Subjects('edge');
  const overlay: Record<string, string> = { h1: '192.0.2.1', h2: '192.0.2.2', h3: '192.0.2.3' };

  it('gives every location with an instance the peers of all locations', () => {
    const members: SegmentMember[] = [
      { network: 'default/n', segment: 5, mtu: 1450, location: 'us', host: 'h1' },
      { network: 'default/n', segment: 5, mtu: 1450, location: 'eu', host: 'h2' },
      { network: 'default/m', segment: 6, mtu: 1400, location: 'eu', host: 'h3' },
      { network: 'default/m', segment: 6, mtu: 1400, location: 'eu', host: 'hx' }, // no overlay address
    ];
    const want = desiredSegments(members, (h) => overlay[h], subjects);
    expect([...want.keys()]).toEqual(['eu.5', 'us.5', 'eu.6']);
    expect(want.get('us.5')).toEqual({
      segment: 5,
      network: 'default/n',
      mtu: 1450,
      peers: [
        { host: 'h1', address: '192.0.2.1' },
        { host: 'h2', address: '192.0.2.2' },
      ],
    });
    expect(want.get('eu.6')!.peers).toEqual([{ host: 'h3', address: '192.0.2.3' }]);
  });

  it('lists a host as a peer of a segment exactly when one of its instances is on it', () => {
    const arb = fc.array(
      fc.record({
        segment: fc.integer({ min: 1, max: 4 }),
        location: fc.constantFrom('us', 'eu'),
        host: fc.constantFrom('h1', 'h2', 'h3'),
      }),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(arb, (list) => {
        const members = list.map((m) => ({ ...m, network: `default/n${m.segment}`, mtu: 1450 }));
        const want = desiredSegments(members, (h) => overlay[h], subjects);
        for (const m of members) {
          const entry = want.get(subjects.segmentKey(m.location, m.segment));
          expect(entry!.peers.map((p) => p.host)).toContain(m.host);
        }
        for (const [key, entry] of want) {
          const loc = key.split('.')[0];
          expect(members.some((m) => m.location === loc && m.segment === entry.segment)).toBe(true);
          for (const p of entry.peers)
            expect(members.some((m) => m.host === p.host && m.segment === entry.segment)).toBe(true);
        }
      }),
    );
  });
});
