/** The address allocator (coordinator/networks/ipam.ts): examples and its invariants, property-tested. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contains, formatIPv4, parseIPv4 } from '../../../coordinator/networks/cidr.js';
import { effectiveNetwork } from '../../../coordinator/networks/config.js';
import {
  type AddressClaim,
  type AddressRequest,
  allocateAddresses,
  blockKey,
  freeSegment,
  type NetworkClaims,
} from '../../../coordinator/networks/ipam.js';

const eff = effectiveNetwork(
  { ipv4Cidr: '10.0.0.0/24', subnets: [{ name: 'sub', ipv4Cidr: '10.0.0.64/27' }] },
  { underlayMtu: 1500 },
);
if (!('network' in eff)) throw new Error('bad test network');
const network = eff.network;
const ip = (t: string) => parseIPv4(t)!;
const empty: NetworkClaims = { addresses: new Map(), blocks: new Map() };

/** The claims after applying a result (what the store does). */
function apply(
  claims: NetworkClaims,
  requests: readonly AddressRequest[],
  r: ReturnType<typeof allocateAddresses>,
): NetworkClaims {
  const addresses = new Map(claims.addresses);
  const blocks = new Map(claims.blocks);
  for (const a of r.release) addresses.delete(a);
  r.decisions.forEach((d, i) => {
    const q = requests[i]!;
    if (d.kind !== 'claim') return;
    if (d.block) blocks.set(blockKey(d.block), { block: d.block, location: q.location, pool: q.pool });
    addresses.set(d.address, { owner: q.owner, workload: q.workload, pool: q.pool });
  });
  return { addresses, blocks };
}

describe('allocateAddresses', () => {
  it('gives each location its own block, skipping reserved addresses and the subnets', () => {
    const requests: AddressRequest[] = [
      { owner: 'd/a-0', workload: 'd/a', location: 'us', pool: '' },
      { owner: 'd/a-1', workload: 'd/a', location: 'us', pool: '' },
      { owner: 'd/b-0', workload: 'd/b', location: 'eu', pool: '' },
      { owner: 'd/c-0', workload: 'd/c', location: 'eu', pool: 'sub' },
    ];
    const r = allocateAddresses({ network, claims: empty, requests });
    expect(r.decisions.map((d) => (d.kind === 'claim' ? formatIPv4(d.address) : d.kind))).toEqual([
      '10.0.0.2', // .0 network, .1 gateway
      '10.0.0.3',
      '10.0.0.96', // eu's block 10.0.0.64/26 starts with the subnet 10.0.0.64/27, which is left to its pool
      '10.0.0.66', // the subnet's own pool: .64 network, .65 gateway
    ]);
    expect(r.decisions.map((d) => (d.kind === 'claim' && d.block ? blockKey(d.block) : '-'))).toEqual([
      `${ip('10.0.0.0')}/26`,
      '-',
      `${ip('10.0.0.64')}/26`,
      `${ip('10.0.0.64')}/27`,
    ]);
  });

  it('keeps what a slot holds, and releases what it holds no more', () => {
    const claims: NetworkClaims = {
      addresses: new Map<number, AddressClaim>([
        [ip('10.0.0.7'), { owner: 'd/a-0', workload: 'd/a', pool: '' }],
        [ip('10.0.0.9'), { owner: 'd/a-0', workload: 'd/a', pool: '' }],
      ]),
      blocks: new Map([
        [`${ip('10.0.0.0')}/26`, { block: { base: ip('10.0.0.0'), prefix: 26 }, location: 'us', pool: '' }],
      ]),
    };
    const r = allocateAddresses({
      network,
      claims,
      requests: [{ owner: 'd/a-0', workload: 'd/a', location: 'us', pool: '' }],
    });
    expect(r.decisions).toEqual([{ owner: 'd/a-0', kind: 'keep', address: ip('10.0.0.7') }]);
    expect(r.release).toEqual([ip('10.0.0.9')]);
  });

  it('gives a static address to one slot and names the holder to the other', () => {
    const requests: AddressRequest[] = [
      { owner: 'd/x-0', workload: 'd/x', location: 'us', pool: '', static: ip('10.0.0.100') },
      { owner: 'd/y-0', workload: 'd/y', location: 'eu', pool: '', static: ip('10.0.0.100') },
    ];
    const r = allocateAddresses({ network, claims: empty, requests });
    expect(r.decisions[0]).toMatchObject({ kind: 'claim', address: ip('10.0.0.100') });
    expect(r.decisions[1]).toMatchObject({ kind: 'conflict', holder: { owner: 'd/x-0', workload: 'd/x' } });
    // A dynamic request never takes it.
    const after = apply(empty, requests, r);
    const dyn = allocateAddresses({
      network,
      claims: after,
      requests: [{ owner: 'd/z-0', workload: 'd/z', location: 'us', pool: '' }],
    });
    expect(dyn.decisions[0]).toMatchObject({ kind: 'claim' });
    expect((dyn.decisions[0] as { address: number }).address).not.toBe(ip('10.0.0.100'));
  });

  it('says so when a pool is full', () => {
    const requests = Array.from({ length: 30 }, (_, i) => ({
      owner: `d/s-${i}`,
      workload: 'd/s',
      location: 'us',
      pool: 'sub',
    }));
    const r = allocateAddresses({ network, claims: empty, requests });
    // A /27 less network, gateway and broadcast: 29 addresses.
    expect(r.decisions.filter((d) => d.kind === 'claim')).toHaveLength(29);
    // Slots are served in owner order, so the last of them (d/s-9) finds none.
    expect(r.decisions.filter((d) => d.kind === 'exhausted')).toEqual([
      { owner: 'd/s-9', kind: 'exhausted', pool: 'sub' },
    ]);
  });

  it('finds the lowest free segment id', () => {
    expect(freeSegment(new Set())).toBe(1);
    expect(freeSegment(new Set([1, 2, 4]))).toBe(3);
  });
});

describe('allocateAddresses, properties', () => {
  const owners = Array.from({ length: 24 }, (_, i) => `ns/w${i % 4}-${i}`);
  const arbClaims = fc
    .array(
      fc.record({
        owner: fc.constantFrom(...owners),
        address: fc.integer({ min: 2, max: 254 }),
        pool: fc.constant(''),
      }),
      { maxLength: 20 },
    )
    .map((list) => {
      const addresses = new Map<number, AddressClaim>();
      for (const c of list) {
        const a = ip('10.0.0.0') + c.address;
        const inSub = contains(network.pools.get('sub')!.block, a);
        if (!network.pools.get('')!.reserved.has(a))
          addresses.set(a, {
            owner: c.owner,
            workload: c.owner.replace(/-\d+$/, ''),
            pool: inSub ? 'sub' : '',
          });
      }
      return { addresses, blocks: new Map() } as NetworkClaims;
    });
  const arbRequests = fc
    .uniqueArray(
      fc.record({
        owner: fc.constantFrom(...owners),
        location: fc.constantFrom('us', 'eu', 'ap'),
        pool: fc.constantFrom('', 'sub'),
        static: fc.option(fc.integer({ min: 2, max: 254 }), { nil: undefined }),
      }),
      { selector: (r) => r.owner, maxLength: 24 },
    )
    .map((list) =>
      list.map((r): AddressRequest => {
        const a = r.static === undefined ? undefined : ip('10.0.0.0') + r.static;
        const pool = network.pools.get(r.pool)!;
        const ok = a !== undefined && contains(pool.block, a) && !pool.reserved.has(a);
        return {
          owner: r.owner,
          workload: r.owner.replace(/-\d+$/, ''),
          location: r.location,
          pool: r.pool,
          ...(ok ? { static: a } : {}),
        };
      }),
    );

  it('never gives one address to two slots, nor a claimed one; new addresses are free and in their pool; a second pass changes nothing', () => {
    fc.assert(
      fc.property(arbClaims, arbRequests, (claims, requests) => {
        const r = allocateAddresses({ network, claims, requests, blockPrefix: 28 });
        const released = new Set(r.release);
        const holders = new Map<number, string>();
        for (const [a, c] of claims.addresses) if (!released.has(a)) holders.set(a, c.owner);
        r.decisions.forEach((d, i) => {
          const q = requests[i]!;
          if (d.kind === 'keep') {
            expect(claims.addresses.get(d.address)?.owner).toBe(q.owner);
            expect(released.has(d.address)).toBe(false);
          }
          if (d.kind === 'claim') {
            const prior = holders.get(d.address);
            expect(prior === undefined || prior === q.owner).toBe(true);
            holders.set(d.address, q.owner);
            const pool = network.pools.get(q.pool)!;
            expect(contains(pool.block, d.address)).toBe(true);
            expect(pool.reserved.has(d.address)).toBe(false);
            if (q.static !== undefined) expect(d.address).toBe(q.static);
            else expect(pool.exclude.some((x) => contains(x, d.address))).toBe(false);
          }
          if (d.kind === 'conflict') {
            expect(q.static).toBe(d.address);
            expect(d.holder.owner).not.toBe(q.owner);
          }
          // A released address is one the requesting owner held.
          for (const a of r.release)
            expect(requests.some((x) => x.owner === claims.addresses.get(a)?.owner)).toBe(true);
        });
        const after = apply(claims, requests, r);
        const again = allocateAddresses({ network, claims: after, requests, blockPrefix: 28 });
        expect(again.release).toEqual([]);
        again.decisions.forEach((d, i) => {
          if (r.decisions[i]!.kind === 'claim' || r.decisions[i]!.kind === 'keep')
            expect(d.kind).toBe('keep');
        });
      }),
      { numRuns: 300 },
    );
  });

  it('a new block goes to the location that asked; an address from another location block only when no block is free', () => {
    fc.assert(
      fc.property(arbRequests, (requests) => {
        const dynamic = requests.filter((q) => q.static === undefined);
        const r = allocateAddresses({ network, claims: empty, requests: dynamic, blockPrefix: 28 });
        const after = apply(empty, dynamic, r);
        r.decisions.forEach((d, i) => {
          if (d.kind !== 'claim') return;
          const q = dynamic[i]!;
          const block = [...after.blocks.values()].find(
            (b) => b.pool === q.pool && contains(b.block, d.address),
          );
          expect(block).toBeDefined();
          if (d.block) expect(block!.location).toBe(q.location);
          if (block!.location !== q.location) {
            // Borrowed: every block of the pool is claimed (the addresses of unclaimed ones are all excluded).
            const pool = network.pools.get(q.pool)!;
            const prefix = Math.max(28, pool.block.prefix);
            for (
              let base = pool.block.base;
              base < pool.block.base + 2 ** (32 - pool.block.prefix);
              base += 2 ** (32 - prefix)
            ) {
              const claimed = after.blocks.has(`${base}/${prefix}`);
              const usable = Array.from({ length: 2 ** (32 - prefix) }, (_, k) => base + k).some(
                (a) => !pool.reserved.has(a) && !pool.exclude.some((x) => contains(x, a)),
              );
              expect(claimed || !usable).toBe(true);
            }
          }
        });
      }),
      { numRuns: 200 },
    );
  });
});
