/**
 * The validate stage's network checks (coordinator/workloads/attachments.ts) and the effective Network
 * (coordinator/networks/config.ts): every refusal names its field; the docs' network examples pass as written.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { effectiveNetwork, maxNetworkMtu } from '../../../coordinator/networks/config.js';
import { attachmentsOf, checkAttachments } from '../../../coordinator/workloads/attachments.js';
import { type NetworkInterface, type NetworkSpec, WorkloadSpec } from '../../../shared/api/index.js';

const settings = { underlayMtu: 1500 };
/** The Networks of examples/prerequisites/networks.yaml, by name. */
const prerequisites = new Map<string, NetworkSpec>(
  parseAllDocuments(
    readFileSync(path.resolve(import.meta.dirname, '../../../examples/prerequisites/networks.yaml'), 'utf8'),
  ).map((d) => {
    const o = d.toJSON() as { metadata: { name: string }; spec: NetworkSpec };
    return [o.metadata.name, o.spec];
  }),
);

/**
 * A Workload spec with these interfaces, put in past the schema: the schema refuses two primaries, a Network twice,
 * both spellings and a static address with replicas > 1 too (its cross-field rules, shared/api/cel.ts), and these
 * tests are about the validate stage's own checks, which hold even for an object that skipped the schema.
 */
function workload(networkInterfaces: unknown[], replicas = 1): WorkloadSpec {
  const base = WorkloadSpec.parse({ replicas, template: { spec: { image: 'nginx:1.25' } } });
  const spec = { ...base.template.spec, networkInterfaces: networkInterfaces as NetworkInterface[] };
  return { ...base, template: { ...base.template, spec } };
}
const check = (networkInterfaces: unknown[], replicas = 1, nets = prerequisites) =>
  checkAttachments(workload(networkInterfaces, replicas), 'default', (n) => nets.get(n), settings);

describe('the network examples of the Workload guide', () => {
  it('accepts a single network, several with a primary and a subnet, and a static IP, as written', () => {
    expect(check([{ networkRef: { name: 'production-network' } }])).toBeUndefined();
    const multiple = [
      { networkRef: { name: 'public-network' }, primary: true },
      { networkRef: { name: 'backend-network' }, subnetRef: { name: 'backend-subnet' } },
      { networkRef: { name: 'data-network' } },
    ];
    expect(check(multiple)).toBeUndefined();
    expect(
      attachmentsOf(workload(multiple).template.spec).map((a) => [a.network, a.subnet, a.primary]),
    ).toEqual([
      ['public-network', '', true],
      ['backend-network', 'backend-subnet', false],
      ['data-network', '', false],
    ]);
    expect(check([{ networkRef: { name: 'production-network' }, ipAddress: '10.0.1.100' }])).toBeUndefined();
  });

  it("accepts Datum's network: spelling in the Workload's namespace", () => {
    expect(check([{ network: { name: 'data-network', namespace: 'default' } }])).toBeUndefined();
  });
});

describe('refusals name the field', () => {
  const cases: Array<[string, unknown[], number, RegExp]> = [
    [
      'two primaries',
      [
        { networkRef: { name: 'public-network' }, primary: true },
        { networkRef: { name: 'data-network' }, primary: true },
      ],
      1,
      /^spec\.template\.spec\.networkInterfaces\[1\]\.primary: only one interface may be primary/,
    ],
    [
      'one Network twice',
      [{ networkRef: { name: 'data-network' } }, { network: { name: 'data-network' } }],
      1,
      /^spec\.template\.spec\.networkInterfaces\[1\]: Network data-network is already attached/,
    ],
    [
      'a static address with two replicas',
      [{ networkRef: { name: 'production-network' }, ipAddress: '10.0.1.100' }],
      2,
      /^spec\.template\.spec\.networkInterfaces\[0\]\.ipAddress: a static address can be given to one instance only/,
    ],
    [
      'IPv6',
      [{ networkRef: { name: 'production-network' }, ipAddress: 'fd00::5' }],
      1,
      /^spec\.template\.spec\.networkInterfaces\[0\]\.ipAddress: fd00::5: IPv6 is not supported yet/,
    ],
    [
      'an address outside the Network',
      [{ networkRef: { name: 'production-network' }, ipAddress: '10.9.0.5' }],
      1,
      /^spec\.template\.spec\.networkInterfaces\[0\]\.ipAddress: 10\.9\.0\.5 is not inside Network production-network \(10\.0\.0\.0\/16\)/,
    ],
    [
      'an address outside the subnet',
      [
        {
          networkRef: { name: 'backend-network' },
          subnetRef: { name: 'backend-subnet' },
          ipAddress: '10.2.2.5',
        },
      ],
      1,
      /\[0\]\.ipAddress: 10\.2\.2\.5 is not inside subnet backend-subnet \(10\.2\.1\.0\/24\)/,
    ],
    [
      'a reserved address',
      [
        {
          networkRef: { name: 'backend-network' },
          subnetRef: { name: 'backend-subnet' },
          ipAddress: '10.2.1.255',
        },
      ],
      1,
      /\[0\]\.ipAddress: 10\.2\.1\.255 is reserved/,
    ],
    [
      'a Network of another namespace',
      [{ network: { name: 'data-network', namespace: 'other' } }],
      1,
      /^spec\.template\.spec\.networkInterfaces\[0\]\.network\.namespace: /,
    ],
    [
      'both spellings',
      [{ networkRef: { name: 'data-network' }, network: { name: 'data-network' } }],
      1,
      /^spec\.template\.spec\.networkInterfaces\[0\]: set exactly one of networkRef or network/,
    ],
  ];
  for (const [what, list, replicas, message] of cases) {
    it(what, () => expect(check(list, replicas)).toMatch(message));
  }

  it('more than 8 interfaces are refused by the schema, naming the field', () => {
    const nine = Array.from({ length: 9 }, (_, i) => ({ networkRef: { name: `n${i}` } }));
    const r = WorkloadSpec.safeParse({ template: { spec: { image: 'nginx', networkInterfaces: nine } } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues[0]?.path)).toBe('["template","spec","networkInterfaces"]');
  });

  it('a Network whose MTU the overlay cannot carry, or IPv6, is refused on the attachment', () => {
    const nets = new Map<string, NetworkSpec>([
      ['jumbo', { ipv4Cidr: '10.0.0.0/16', mtu: 9000 }],
      ['v6', { ipFamilies: ['IPv4', 'IPv6'] }],
    ]);
    expect(check([{ networkRef: { name: 'jumbo' } }], 1, nets)).toBe(
      'spec.template.spec.networkInterfaces[0]: Network jumbo cannot be used: spec.mtu: 9000 exceeds 1450, the most the overlay carries (underlay MTU 1500 less 50 bytes of VXLAN)',
    );
    expect(check([{ networkRef: { name: 'v6' } }], 1, nets)).toMatch(
      /spec\.ipFamilies: IPv6 is not supported yet/,
    );
  });
});

describe('effectiveNetwork', () => {
  it('gives a Network that sets no MTU min(1460, underlay less 50): never refused by default', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1330, max: 9216 }), (underlayMtu) => {
        const r = effectiveNetwork({}, { underlayMtu });
        expect('network' in r && r.network.mtu).toBe(Math.min(1460, underlayMtu - 50));
      }),
    );
    expect(maxNetworkMtu(settings)).toBe(1450);
  });

  it("takes Datum's ipam.ipv4Range, and Datum's default range without one", () => {
    const datum = effectiveNetwork(
      { ipam: { mode: 'Auto', ipv4Range: '192.168.0.0/24' }, mtu: 1400 },
      settings,
    );
    expect('network' in datum && [datum.network.range, datum.network.mtu]).toEqual([
      { base: 0xc0a80000, prefix: 24 },
      1400,
    ]);
    const none = effectiveNetwork({ ipam: { mode: 'Auto' } }, settings);
    expect('network' in none && none.network.range).toEqual({ base: 0x0a800000, prefix: 9 });
  });

  it('refuses subnets outside the range or overlapping, naming the subnet', () => {
    expect(
      effectiveNetwork(
        { ipv4Cidr: '10.0.0.0/16', subnets: [{ name: 'a', ipv4Cidr: '10.1.0.0/24' }] },
        settings,
      ),
    ).toMatchObject({
      refused: {
        reason: 'InvalidRange',
        message: 'spec.subnets[0].ipv4Cidr: 10.1.0.0/24 is not inside 10.0.0.0/16',
      },
    });
    expect(
      effectiveNetwork(
        {
          ipv4Cidr: '10.0.0.0/16',
          subnets: [
            { name: 'a', ipv4Cidr: '10.0.0.0/24' },
            { name: 'b', ipv4Cidr: '10.0.0.128/25' },
          ],
        },
        settings,
      ),
    ).toMatchObject({ refused: { message: 'spec.subnets[1].ipv4Cidr: 10.0.0.128/25 overlaps 10.0.0.0/24' } });
    expect(effectiveNetwork({ ipv4Cidr: '10.0.0.1/16' }, settings)).toMatchObject({
      refused: { message: 'spec.ipv4Cidr: 10.0.0.1/16 is not an IPv4 CIDR without host bits' },
    });
  });
});

describe('attachment checks, property', () => {
  it('refuses exactly the lists with two primaries or a Network attached twice', () => {
    const names = ['production-network', 'public-network', 'data-network', 'backend-network'];
    fc.assert(
      fc.property(
        fc.array(fc.record({ name: fc.constantFrom(...names), primary: fc.boolean() }), {
          minLength: 1,
          maxLength: 8,
        }),
        (list) => {
          const r = check(list.map((n) => ({ networkRef: { name: n.name }, primary: n.primary })));
          const primaries = list.filter((n) => n.primary).length;
          const twice = new Set(list.map((n) => n.name)).size < list.length;
          expect(r === undefined).toBe(primaries <= 1 && !twice);
          if (r) expect(r).toMatch(/^spec\.template\.spec\.networkInterfaces\[\d\]/);
        },
      ),
    );
  });
});
