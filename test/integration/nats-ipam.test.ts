/**
 * The IPAM store (coordinator/networks/store.ts) on a real nats-server: two coordinators, each with its own
 * connection and store, race for the same addresses, static and dynamic, and exactly one wins each; a new
 * leader sees what the old one claimed; releases and the reaper leave nothing claimed that no slot uses.
 * The race runs again on three members with an R3 bucket, where the per-key compare-and-set of the nats-server
 * we ship lets two writers win (docs/reliability.md § "NATS compare-and-set"): still exactly one winner.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { formatIPv4, parseIPv4 } from '../../coordinator/networks/cidr.js';
import { effectiveNetwork } from '../../coordinator/networks/config.js';
import type { AddressRequest } from '../../coordinator/networks/ipam.js';
import { type AddressOutcome, IpamStore } from '../../coordinator/networks/store.js';
import { createLogger } from '../../shared/log.js';
import { connectNats } from '../../shared/nats/connect.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup, useNats, useNatsCluster, waitFor } from '../harness/index.js';

const log = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const nats = useNats();
const cluster = useNatsCluster({ size: 3, jetstream: true });
let prefixes = 0;

async function client(servers = [nats().url]): Promise<NatsConnection> {
  const nc = await connectNats({ servers, name: 'test' });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

async function store(
  subjects: Subjects,
  graceMs?: number,
  on?: { servers: string[]; replicas: number },
): Promise<IpamStore> {
  const s = new IpamStore({
    nc: await client(on?.servers),
    subjects,
    log,
    blockPrefix: 28,
    ...(graceMs !== undefined ? { graceMs } : {}),
    ...(on ? { replicas: on.replicas } : {}),
  });
  await s.start();
  cleanup(() => s.stop());
  return s;
}

const eff = effectiveNetwork({ ipv4Cidr: '10.0.0.0/24' }, { underlayMtu: 1500 });
if (!('network' in eff)) throw new Error('bad network');
const network = eff.network;
const requests = (workload: string, n: number, location = 'us'): AddressRequest[] =>
  Array.from({ length: n }, (_, i) => ({
    owner: `default/${workload}-${i}`,
    workload: `default/${workload}`,
    location,
    pool: '',
  }));
const got = (outcomes: AddressOutcome[]) =>
  outcomes.flatMap((o) => ('address' in o ? [[o.owner, formatIPv4(o.address)] as const] : []));

describe('two coordinators racing for addresses', () => {
  it('hand out no address twice: every contested claim has exactly one winner, the losers take others next pass', async () => {
    const subjects = new Subjects(`race${prefixes++}`);
    const [a, b] = await Promise.all([store(subjects), store(subjects)]);
    // Both views are empty, so both decide the same lowest addresses for their own slots.
    const ra = requests('alpha', 20);
    const rb = requests('beta', 20);
    const [oa, ob] = await Promise.all([
      a.assign('default/net', network, ra),
      b.assign('default/net', network, rb),
    ]);
    const first = [...got(oa), ...got(ob)];
    expect(new Set(first.map(([, ip]) => ip)).size).toBe(first.length);
    // Every address both wanted went to exactly one of them: the sum of winners is what was contested.
    expect(a.counts.lost + b.counts.lost).toBeGreaterThan(0);
    // Passes go on (level-triggered) until every slot has one.
    const holders = new Map<string, string>();
    await waitFor(
      'every slot has an address',
      async () => {
        const [xa, xb] = await Promise.all([
          a.assign('default/net', network, ra),
          b.assign('default/net', network, rb),
        ]);
        holders.clear();
        for (const [owner, ip] of [...got(xa), ...got(xb)]) {
          expect(holders.get(ip) ?? owner).toBe(owner);
          holders.set(ip, owner);
        }
        return holders.size === 40;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    // Each slot has one address, the same in both views.
    expect(new Set(holders.values()).size).toBe(40);
    const fresh = await store(subjects);
    const claims = fresh.networkClaims('default/net');
    expect(claims.addresses.size).toBe(40);
    for (const [ip, owner] of holders) expect(claims.addresses.get(parseIPv4(ip)!)?.owner).toBe(owner);
  });

  it('give a static address asked for by two Workloads to exactly one; the other learns who holds it', async () => {
    const subjects = new Subjects(`race${prefixes++}`);
    const [a, b] = await Promise.all([store(subjects), store(subjects)]);
    const wanted = parseIPv4('10.0.0.100')!;
    for (let round = 0; round < 10; round++) {
      const ra: AddressRequest[] = [
        {
          owner: `default/x${round}-0`,
          workload: `default/x${round}`,
          location: 'us',
          pool: '',
          static: wanted + round,
        },
      ];
      const rb: AddressRequest[] = [
        {
          owner: `default/y${round}-0`,
          workload: `default/y${round}`,
          location: 'eu',
          pool: '',
          static: wanted + round,
        },
      ];
      const [[oa], [ob]] = await Promise.all([
        a.assign('default/net', network, ra),
        b.assign('default/net', network, rb),
      ]);
      const winners = [oa!, ob!].filter((o) => 'address' in o);
      expect(winners).toHaveLength(1);
      const loser = [oa!, ob!].find((o) => !('address' in o))!;
      const winner = winners[0]!;
      expect(loser).toMatchObject({ conflict: { owner: winner.owner, address: wanted + round } });
    }
  });

  it('a new leader keeps every slot on its address; scale-down releases; the reaper frees what no Instance uses', async () => {
    const subjects = new Subjects(`race${prefixes++}`);
    const old = await store(subjects);
    const before = got(await old.assign('default/net', network, requests('web', 3)));
    expect(before).toHaveLength(3);
    old.stop();
    const leader = await store(subjects, 0);
    expect(got(await leader.assign('default/net', network, requests('web', 3)))).toEqual(before);
    // Scale to 2: the third slot's address is released.
    const wanted = new Set(requests('web', 2).map((r) => `default/net|${r.owner}`));
    expect(await leader.releaseUnwanted('default/web', wanted)).toBe(1);
    expect(leader.networkClaims('default/net').addresses.size).toBe(2);
    // A claim whose Instance never came (a crash between allocation and creation) goes after the grace period
    // (0 here); so do its now empty block and the segment of the Network that is gone.
    expect(await leader.ensureSegment('default/net')).toBe(1);
    expect(await leader.ensureSegment('default/other')).toBe(2);
    const reaped = await leader.reap(
      (owner) => owner === 'default/web-0',
      (n) => n === 'default/other',
    );
    expect(reaped).toBe(1); // web-1's address; the block still has web-0, the Network still has an address
    expect(leader.networkClaims('default/net').addresses.size).toBe(1);
    await leader.releaseUnwanted('default/web', new Set());
    expect(
      await leader.reap(
        () => false,
        (n) => n === 'default/other',
      ),
    ).toBe(2); // the block and the segment
    expect(leader.segmentOf('default/net')).toBeUndefined();
    expect(leader.segmentOf('default/other')).toBe(2);
    // Released ids and addresses are free again.
    expect(await leader.ensureSegment('default/third')).toBe(1);
  });

  it('give a Network one segment id even when two coordinators ask at once', async () => {
    const subjects = new Subjects(`race${prefixes++}`);
    const [a, b] = await Promise.all([store(subjects), store(subjects)]);
    const ids = await Promise.all(
      ['n1', 'n2', 'n3'].flatMap((n) => [a.ensureSegment(`default/${n}`), b.ensureSegment(`default/${n}`)]),
    );
    // Each store answers with an id it holds; two Networks never share one.
    const byNet = new Map<number, Set<string>>();
    ids.forEach((id, i) => {
      const n = ['n1', 'n2', 'n3'][Math.floor(i / 2)]!;
      byNet.set(id, (byNet.get(id) ?? new Set()).add(n));
    });
    for (const nets of byNet.values()) expect(nets.size).toBe(1);
    // And both answer the same id for the same Network.
    expect([ids[0], ids[2], ids[4]]).toEqual([ids[1], ids[3], ids[5]]);
    expect(new Set(ids).size).toBe(3);
  });
});

describe('two coordinators racing on three members with an R3 ipam bucket', () => {
  it('give every contested address exactly one winner, round after round, as the bucket itself records', async () => {
    const subjects = new Subjects(`r3race${prefixes++}`);
    const urls = cluster().urls;
    // Each coordinator talks to a different member first, so their writes reach the stream leader by two routes.
    const on = (m: number) => ({ servers: [...urls.slice(m), ...urls.slice(0, m)], replicas: 3 });
    const a = await store(subjects, undefined, on(0));
    const b = await store(subjects, undefined, on(1));
    const ROUNDS = 20;
    const PER_ROUND = 10;
    const first = parseIPv4('10.0.0.1')!;
    const winners = new Map<number, string>();
    for (let round = 0; round < ROUNDS; round++) {
      // Both ask for the same PER_ROUND static addresses, each for its own slots.
      const ask = (who: string): AddressRequest[] =>
        Array.from({ length: PER_ROUND }, (_, i) => ({
          owner: `default/${who}${round}-${i}`,
          workload: `default/${who}${round}`,
          location: who === 'a' ? 'us' : 'eu',
          pool: '',
          static: first + round * PER_ROUND + i,
        }));
      const [oa, ob] = await Promise.all([
        a.assign('default/net', network, ask('a')),
        b.assign('default/net', network, ask('b')),
      ]);
      for (let i = 0; i < PER_ROUND; i++) {
        const both = [oa[i]!, ob[i]!];
        const won = both.filter((o) => 'address' in o);
        expect(won, `round ${round}, address ${formatIPv4(first + round * PER_ROUND + i)}`).toHaveLength(1);
        const loser = both.find((o) => !('address' in o))!;
        expect(loser).toMatchObject({ conflict: { owner: won[0]!.owner } });
        winners.set(first + round * PER_ROUND + i, won[0]!.owner);
      }
    }
    // What the bucket holds (a third store reading it afresh) agrees with every winner.
    const fresh = await store(subjects, undefined, on(2));
    const claims = fresh.networkClaims('default/net');
    expect(claims.addresses.size).toBe(ROUNDS * PER_ROUND);
    for (const [address, owner] of winners) expect(claims.addresses.get(address)?.owner).toBe(owner);
  });
});
