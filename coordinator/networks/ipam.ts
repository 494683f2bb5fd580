/**
 * The address allocator, pure, after Calico's block IPAM. A Network's pools (its range, each subnet) are cut
 * into blocks (/26 by default, the pool itself when smaller); a location claims blocks and hands out their
 * addresses, so a location's addresses are close together and the status can list the blocks in use.
 *
 * Algorithm, per request, in order — owners that already hold an address, then static addresses, then the
 * rest sorted by owner (so the same input gives the same answer):
 *   1. an owner (an instance slot, `<namespace>/<instance>`) that holds an address in the pool it asks for (the
 *      static one, when it asks for one) keeps it; any other address it holds in the Network is released;
 *   2. a static address is claimed when nobody holds it, else it is a conflict naming the holder;
 *   3. otherwise the lowest free address of the location's blocks; when they are full, the lowest free block
 *      of the pool is claimed for the location; when none is free, the lowest free address of any block (a
 *      borrow); when there is none, the pool is exhausted.
 * Free means: inside the pool, not reserved (network, gateway, broadcast), not in an excluded block (a subnet,
 * for the Network-wide pool), and not claimed before or earlier in this pass.
 *
 * Invariant: no address is decided for two owners, and a new address is never one already claimed. The claims
 * themselves are made by the store with create-if-absent, so two coordinators with stale views still cannot
 * both win an address: the loser sees the winner's claim on its next pass.
 */
import { type Block, contains, lastOf } from './cidr.js';
import type { EffectiveNetwork, Pool } from './config.js';

/** An address claimed in the IPAM bucket. */
export interface AddressClaim {
  /** The slot that holds it: `<namespace>/<instance>`. */
  owner: string;
  /** The Workload of that slot, `<namespace>/<name>`, for messages. */
  workload: string;
  /** The pool it was taken from (subnet name; `''`: Network-wide). */
  pool: string;
}

/** What the bucket holds for one Network, as the allocator reads it. */
export interface NetworkClaims {
  /** Claimed addresses. */
  addresses: ReadonlyMap<number, AddressClaim>;
  /** Claimed blocks: `<base>/<prefix>` → the location that claimed it, with its block. */
  blocks: ReadonlyMap<string, { block: Block; location: string; pool: string }>;
}

/** One interface of one slot that needs an address on the Network. */
export interface AddressRequest {
  /** The slot, `<namespace>/<instance>`. */
  owner: string;
  /** Its Workload, `<namespace>/<name>`. */
  workload: string;
  /** Location of the slot. */
  location: string;
  /** Pool to allocate from (subnet name; `''`: Network-wide). */
  pool: string;
  /** The static address asked for. */
  static?: number;
}

/** What the allocator needs. */
export interface AllocationInput {
  /** The Network (config.ts). */
  network: EffectiveNetwork;
  /** What is claimed now. */
  claims: NetworkClaims;
  /** Every slot that needs an address on this Network now (requests of other owners do not matter). */
  requests: readonly AddressRequest[];
  /** Prefix length of a block (default 26: 64 addresses). */
  blockPrefix?: number;
}

/** The answer for one request. */
export type AddressDecision =
  /** It holds this address already. */
  | { owner: string; kind: 'keep'; address: number }
  /** Claim this address, after claiming `block` for the location when given. */
  | { owner: string; kind: 'claim'; address: number; pool: string; block?: Block }
  /** The static address is held by another slot. */
  | { owner: string; kind: 'conflict'; address: number; holder: AddressClaim }
  /** No address is free in the pool. */
  | { owner: string; kind: 'exhausted'; pool: string };

/** What one pass decides for one Network. */
export interface AllocationResult {
  /** One decision per request, in request order. */
  decisions: AddressDecision[];
  /** Addresses to release: held by a requesting owner that keeps or takes another one. */
  release: number[];
}

/** Key of a block in {@link NetworkClaims.blocks}. */
export function blockKey(b: Block): string {
  return `${b.base}/${b.prefix}`;
}

/** Decides the address of every request. */
export function allocateAddresses(input: AllocationInput): AllocationResult {
  const { network, claims } = input;
  const taken = new Map(claims.addresses);
  const blocks = new Map(claims.blocks);
  /** Addresses each requesting owner holds now, lowest first. */
  const held = new Map<string, number[]>();
  for (const [address, c] of [...claims.addresses].sort((a, b) => a[0] - b[0])) {
    held.set(c.owner, [...(held.get(c.owner) ?? []), address]);
  }
  const decisions = new Map<AddressRequest, AddressDecision>();
  const release: number[] = [];
  const pending: AddressRequest[] = [];

  // 1. Owners that hold a fitting address keep it and give up the others.
  for (const r of input.requests) {
    const mine = held.get(r.owner) ?? [];
    const pool = network.pools.get(r.pool);
    const fits = (a: number) =>
      claims.addresses.get(a)!.pool === r.pool &&
      (r.static !== undefined ? a === r.static : !!pool && free(pool, a, true));
    const kept = mine.find(fits);
    for (const a of mine) if (a !== kept) release.push(a);
    if (kept !== undefined) decisions.set(r, { owner: r.owner, kind: 'keep', address: kept });
    else pending.push(r);
  }
  for (const a of release) taken.delete(a);

  // 2. Static addresses, then 3. the rest, by owner.
  const ordered = [
    ...pending.filter((r) => r.static !== undefined),
    ...pending
      .filter((r) => r.static === undefined)
      .sort((a, b) => (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0)),
  ];
  const blockPrefix = input.blockPrefix ?? 26;
  for (const r of ordered) {
    const claim: AddressClaim = { owner: r.owner, workload: r.workload, pool: r.pool };
    if (r.static !== undefined) {
      const holder = taken.get(r.static);
      if (holder && holder.owner !== r.owner) {
        decisions.set(r, { owner: r.owner, kind: 'conflict', address: r.static, holder });
      } else {
        taken.set(r.static, claim);
        decisions.set(r, { owner: r.owner, kind: 'claim', address: r.static, pool: r.pool });
      }
      continue;
    }
    const pool = network.pools.get(r.pool);
    const found = pool ? dynamicAddress(pool, r, Math.max(blockPrefix, pool.block.prefix)) : undefined;
    if (!found) {
      decisions.set(r, { owner: r.owner, kind: 'exhausted', pool: r.pool });
      continue;
    }
    taken.set(found.address, claim);
    if (found.block)
      blocks.set(blockKey(found.block), { block: found.block, location: r.location, pool: r.pool });
    decisions.set(r, {
      owner: r.owner,
      kind: 'claim',
      address: found.address,
      pool: r.pool,
      ...(found.block ? { block: found.block } : {}),
    });
  }
  return {
    decisions: input.requests.map((r) => decisions.get(r)!),
    release: [...new Set(release)].sort((a, b) => a - b),
  };

  /** Whether an address of the pool may be handed out (ignoring claims when `ignoreClaims`). */
  function free(pool: Pool, a: number, ignoreClaims = false): boolean {
    return (
      contains(pool.block, a) &&
      !pool.reserved.has(a) &&
      !pool.exclude.some((x) => contains(x, a)) &&
      (ignoreClaims || !taken.has(a))
    );
  }

  /** The lowest free address of a block, if any. */
  function firstFree(pool: Pool, b: Block): number | undefined {
    for (let a = b.base; a <= lastOf(b); a++) if (free(pool, a)) return a;
    return undefined;
  }

  /** Step 3: the location's blocks, a new block, or a borrowed address. */
  function dynamicAddress(
    pool: Pool,
    r: AddressRequest,
    prefix: number,
  ): { address: number; block?: Block } | undefined {
    const ofPool = [...blocks.values()]
      .filter((b) => b.pool === r.pool)
      .sort((a, b) => a.block.base - b.block.base);
    for (const b of ofPool) {
      if (b.location !== r.location) continue;
      const a = firstFree(pool, b.block);
      if (a !== undefined) return { address: a };
    }
    const claimed = new Set(ofPool.map((b) => b.block.base));
    const step = 2 ** (32 - prefix);
    for (let base = pool.block.base; base <= lastOf(pool.block); base += step) {
      if (claimed.has(base)) continue;
      const block = { base, prefix };
      if (pool.exclude.some((x) => contains(x, base) && contains(x, lastOf(block)))) continue;
      const a = firstFree(pool, block);
      if (a !== undefined) return { address: a, block };
    }
    for (const b of ofPool) {
      const a = firstFree(pool, b.block);
      if (a !== undefined) return { address: a };
    }
    return undefined;
  }
}

/** The lowest segment id (1..16777215) not in `used`, or undefined when every id is used. */
export function freeSegment(used: ReadonlySet<number>): number | undefined {
  for (let id = 1; id <= 16_777_215; id++) if (!used.has(id)) return id;
  return undefined;
}
