/**
 * The IPAM claims on a JetStream KV bucket (`<prefix>-ipam`): segment ids, address blocks and addresses, each
 * one key made only if absent, so of two coordinators (or a new leader and an old one that has not yet
 * noticed) asking for the same one exactly one wins; the loser learns the winner's claim and answers from it.
 * Releases delete only the revision read, so a claim made in the meantime is never removed.
 *
 * Every claim and release is a bucket-wide compare-and-set (shared/nats/bucket-cas.ts): read the stream's last
 * sequence and the key from the stream leader, decide, publish with `Nats-Expected-Last-Sequence`; when anything
 * was written to the bucket in between the server refuses, and the store re-reads and decides again (the key may
 * now be taken). The per-key check of nats.js `kv.create` is not enough: on the nats-server we ship (2.9.10) it
 * can let two writers win on an R3 bucket (docs/reliability.md § "NATS compare-and-set").
 *
 * The store mirrors the bucket in memory (a watch on updates, then a read of every key, newest revision wins)
 * and hands the allocator (ipam.ts) that view; a stale view only costs a retry, never a duplicate.
 *
 * Keys: `seg.<id>`, `blk.<namespace>/<network>.<base>_<prefix>`, `addr.<namespace>/<network>.<address>`.
 */
import { type JetStreamClient, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import { type KV, type KvEntry, Kvm, KvWatchInclude } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { isWrongRevision, publishIfLastSequence, readForCas } from '../../shared/nats/bucket-cas.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { type Block, formatCidr, formatIPv4, parseCidr, parseIPv4 } from './cidr.js';
import type { EffectiveNetwork } from './config.js';
import {
  type AddressClaim,
  type AddressRequest,
  allocateAddresses,
  blockKey,
  freeSegment,
  type NetworkClaims,
} from './ipam.js';

/** A claim as stored (JSON). */
type Claim =
  | { kind: 'segment'; network: string; segment: number; claimedAt: string }
  | { kind: 'block'; network: string; block: string; pool: string; location: string; claimedAt: string }
  | {
      kind: 'address';
      network: string;
      address: string;
      pool: string;
      owner: string;
      workload: string;
      location: string;
      static: boolean;
      claimedAt: string;
    };

/** What happened to one request. */
export type AddressOutcome =
  /** It has this address. */
  | { owner: string; address: number }
  /** Its static address is held by another slot. */
  | { owner: string; conflict: AddressClaim & { address: number } }
  /** Not now: the pool is full, or another coordinator was faster (the next pass retries). */
  | { owner: string; pending: string };

/** Options of {@link IpamStore}. */
export interface IpamStoreOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Replicas of the bucket (3 on a NATS cluster). */
  replicas?: number;
  /** How long an unused claim is kept before the reaper releases it (default 2 min). */
  graceMs?: number;
  /** Prefix length of an address block (default 26). */
  blockPrefix?: number;
}

export class IpamStore {
  private kv: KV | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  /** Key → revision and claim (undefined after a delete). */
  private view = new Map<string, { revision: number; claim?: Claim }>();
  private stopWatch: (() => void) | undefined;
  /** Claims won and lost to another writer, and writes refused because the bucket changed (re-decided). */
  readonly counts = { won: 0, lost: 0, released: 0, refused: 0 };

  constructor(private readonly opts: IpamStoreOptions) {}

  /** Opens (or creates) the bucket and mirrors it. */
  async start(): Promise<void> {
    this.js = jetstream(this.opts.nc);
    this.jsm = await this.js.jetstreamManager();
    const kvm = new Kvm(this.opts.nc);
    this.kv = await kvm.create(this.opts.subjects.ipamBucket, {
      history: 1,
      replicas: this.opts.replicas ?? 1,
    });
    const watch = await this.kv.watch({ include: KvWatchInclude.UpdatesOnly });
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const e of watch) this.learn(e);
    })().catch((err) => this.opts.log.warn({ err: (err as Error).message }, 'ipam watch ended'));
    for await (const key of await this.kv.keys()) {
      const e = await this.kv.get(key);
      if (e) this.learn(e);
    }
    this.opts.log.info({ bucket: this.opts.subjects.ipamBucket, keys: this.view.size }, 'ipam store ready');
  }

  /** Stops mirroring. */
  stop(): void {
    this.stopWatch?.();
  }

  /** Takes in an entry unless the view already has a newer revision of its key. */
  private learn(e: KvEntry): void {
    this.learnRaw(e.key, e.revision, e.operation === 'PUT' ? e.value : undefined);
  }

  /** Takes in a key's revision and value (undefined: deleted) unless the view already has a newer one. */
  private learnRaw(key: string, revision: number, value: Uint8Array | undefined): void {
    const known = this.view.get(key);
    if (known && known.revision >= revision) return;
    if (!value) {
      this.view.set(key, { revision });
      return;
    }
    try {
      this.view.set(key, { revision, claim: JSON.parse(new TextDecoder().decode(value)) as Claim });
    } catch {
      this.view.set(key, { revision });
    }
  }

  /** Every live claim, with its key and revision. */
  private *claims(): Generator<{ key: string; revision: number; claim: Claim }> {
    for (const [key, v] of this.view) if (v.claim) yield { key, revision: v.revision, claim: v.claim };
  }

  /** The segment id of a Network (`<namespace>/<name>`), if it has one: the lowest claimed for it. */
  segmentOf(network: string): number | undefined {
    let best: number | undefined;
    for (const { claim } of this.claims())
      if (
        claim.kind === 'segment' &&
        claim.network === network &&
        (best === undefined || claim.segment < best)
      )
        best = claim.segment;
    return best;
  }

  /**
   * The segment id of a Network, claimed when it has none: ids are tried from the lowest free one up; an id
   * another writer took first is learnt and the next one tried.
   */
  async ensureSegment(network: string): Promise<number> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const have = this.segmentOf(network);
      if (have !== undefined) return have;
      const used = new Set<number>();
      for (const { claim } of this.claims()) if (claim.kind === 'segment') used.add(claim.segment);
      const id = freeSegment(used);
      if (id === undefined) throw new Error('every segment id (1..16777215) is in use');
      const claim: Claim = { kind: 'segment', network, segment: id, claimedAt: new Date().toISOString() };
      if (await this.create(`seg.${id}`, claim)) return id;
    }
    throw new Error(`segment of ${network}: other writers keep taking the free ids`);
  }

  /** What is claimed on one Network, for the allocator. */
  networkClaims(network: string): NetworkClaims {
    const addresses = new Map<number, AddressClaim>();
    const blocks = new Map<string, { block: Block; location: string; pool: string }>();
    for (const { claim } of this.claims()) {
      if (claim.network !== network) continue;
      if (claim.kind === 'address') {
        const a = parseIPv4(claim.address);
        if (a !== undefined)
          addresses.set(a, { owner: claim.owner, workload: claim.workload, pool: claim.pool });
      } else if (claim.kind === 'block') {
        const b = parseCidr(claim.block);
        if (b) blocks.set(blockKey(b), { block: b, location: claim.location, pool: claim.pool });
      }
    }
    return { addresses, blocks };
  }

  /** Per location: the blocks claimed and the addresses allocated on a Network (for its status). */
  usage(network: string): Array<{ location: string; blocks: string[]; addresses: number }> {
    const by = new Map<string, { blocks: string[]; addresses: number }>();
    const of = (l: string) => by.get(l) ?? by.set(l, { blocks: [], addresses: 0 }).get(l)!;
    for (const { claim } of this.claims()) {
      if (claim.network !== network) continue;
      if (claim.kind === 'block') of(claim.location).blocks.push(claim.block);
      if (claim.kind === 'address') of(claim.location).addresses++;
    }
    return [...by]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([location, u]) => ({ location, blocks: u.blocks.sort(), addresses: u.addresses }));
  }

  /**
   * Gives every request an address on the Network (`<namespace>/<name>`): decided by the allocator on the
   * mirrored claims, then claimed key by key with create-if-absent. A request whose claim another writer won
   * is pending until the next pass; a static address held by another slot is a conflict naming it.
   */
  async assign(
    network: string,
    effective: EffectiveNetwork,
    requests: readonly AddressRequest[],
  ): Promise<AddressOutcome[]> {
    const claims = this.networkClaims(network);
    const result = allocateAddresses({
      network: effective,
      claims,
      requests,
      ...(this.opts.blockPrefix ? { blockPrefix: this.opts.blockPrefix } : {}),
    });
    for (const a of result.release)
      await this.releaseKey(addressKey(network, a), (c) => c.kind === 'address');
    const now = new Date().toISOString();
    const out: AddressOutcome[] = [];
    for (const [i, d] of result.decisions.entries()) {
      const r = requests[i]!;
      if (d.kind === 'keep') out.push({ owner: r.owner, address: d.address });
      else if (d.kind === 'conflict')
        out.push({ owner: r.owner, conflict: { ...d.holder, address: d.address } });
      else if (d.kind === 'exhausted')
        out.push({
          owner: r.owner,
          pending: `no free address in ${d.pool ? `subnet ${d.pool} of ` : ''}${network}`,
        });
      else {
        if (d.block) {
          const block: Claim = {
            kind: 'block',
            network,
            block: formatCidr(d.block),
            pool: d.pool,
            location: r.location,
            claimedAt: now,
          };
          // Losing a block to another location only costs locality: the address claim below still decides.
          await this.create(blockStoreKey(network, d.block), block);
        }
        const claim: Claim = {
          kind: 'address',
          network,
          address: formatIPv4(d.address),
          pool: d.pool,
          owner: r.owner,
          workload: r.workload,
          location: r.location,
          static: r.static !== undefined,
          claimedAt: now,
        };
        if (await this.create(addressKey(network, d.address), claim))
          out.push({ owner: r.owner, address: d.address });
        else {
          const holder = this.view.get(addressKey(network, d.address))?.claim;
          if (holder?.kind === 'address' && holder.owner === r.owner)
            out.push({ owner: r.owner, address: d.address });
          else if (r.static !== undefined && holder?.kind === 'address')
            out.push({
              owner: r.owner,
              conflict: {
                owner: holder.owner,
                workload: holder.workload,
                pool: holder.pool,
                address: d.address,
              },
            });
          else out.push({ owner: r.owner, pending: `${formatIPv4(d.address)} was taken by another writer` });
        }
      }
    }
    return out;
  }

  /**
   * Releases the address claims of a Workload (`<namespace>/<name>`) that no slot asks for any more:
   * `wanted` holds `<network>|<owner>` of every attachment its instances have.
   */
  async releaseUnwanted(workload: string, wanted: ReadonlySet<string>): Promise<number> {
    let n = 0;
    for (const { key, claim } of [...this.claims()]) {
      if (claim.kind !== 'address' || claim.workload !== workload) continue;
      if (wanted.has(`${claim.network}|${claim.owner}`)) continue;
      if (await this.releaseKey(key, (c) => c.kind === 'address' && c.owner === claim.owner)) n++;
    }
    return n;
  }

  /**
   * The reaper: releases, once older than the grace period, address claims whose slot has no Instance
   * (`ownerExists`), blocks with no address left in them, and segments of Networks that are gone
   * (`networkExists`) with no address left on them. A crash between a claim and the Instance it is for
   * therefore leaks nothing for longer than the grace period.
   */
  async reap(
    ownerExists: (owner: string) => boolean,
    networkExists: (network: string) => boolean,
  ): Promise<number> {
    const cutoff = Date.now() - (this.opts.graceMs ?? 120_000);
    const old = (c: Claim) => Date.parse(c.claimedAt) < cutoff;
    const all = [...this.claims()];
    const addressed = new Set<string>();
    const used = new Map<string, Set<number>>();
    for (const { claim } of all) {
      if (claim.kind !== 'address') continue;
      addressed.add(claim.network);
      const a = parseIPv4(claim.address);
      if (a !== undefined)
        (used.get(claim.network) ?? used.set(claim.network, new Set()).get(claim.network)!).add(a);
    }
    let n = 0;
    for (const { key, claim } of all) {
      if (!old(claim)) continue;
      let gone = false;
      if (claim.kind === 'address') gone = !ownerExists(claim.owner);
      else if (claim.kind === 'block') {
        const b = parseCidr(claim.block);
        gone =
          !!b &&
          ![...(used.get(claim.network) ?? [])].some((a) => a >= b.base && a < b.base + 2 ** (32 - b.prefix));
      } else {
        gone =
          (!networkExists(claim.network) && !addressed.has(claim.network)) ||
          this.segmentOf(claim.network) !== claim.segment;
      }
      if (gone && (await this.releaseKey(key, (c) => c.kind === claim.kind))) n++;
    }
    if (n) this.opts.log.info({ released: n }, 'ipam reaper released unused claims');
    return n;
  }

  /**
   * One bucket-wide compare-and-set on `key`: reads the stream's last sequence and the key from the leader,
   * lets `decide` choose (bytes to put, `null` to delete, `undefined` to give up), and publishes expecting that
   * last sequence; when the bucket changed in between, reads and decides again. Returns the new revision, or
   * undefined when `decide` gave up (the read is learnt into the view first) or the bucket kept changing.
   */
  private async compareAndSet(
    key: string,
    decide: (current: { revision: number; value?: Uint8Array } | undefined) => Uint8Array | null | undefined,
  ): Promise<number | undefined> {
    const bucket = this.opts.subjects.ipamBucket;
    const subject = `$KV.${bucket}.${key}`;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const read = await readForCas(this.jsm!, `KV_${bucket}`, subject);
      const e = read.entry;
      const current = e && { revision: e.revision, ...(e.deleted ? {} : { value: e.data }) };
      if (current) this.learnRaw(key, current.revision, current.value);
      const write = decide(current);
      if (write === undefined) return undefined;
      try {
        return await publishIfLastSequence(this.js!, subject, write ?? undefined, read.lastSequence);
      } catch (err) {
        if (!isWrongRevision(err)) throw err;
        this.counts.refused++;
        // Another write landed first; a short random pause keeps two stores from colliding in lockstep.
        await new Promise((r) => setTimeout(r, Math.random() * 5 * Math.min(attempt + 1, 10)));
      }
    }
    this.opts.log.warn({ key }, 'ipam bucket kept changing; the next pass retries');
    return undefined;
  }

  /** Creates a key if absent; on losing, learns the winner. Returns whether this writer made it. */
  private async create(key: string, claim: Claim): Promise<boolean> {
    const data = new TextEncoder().encode(JSON.stringify(claim));
    let taken = false;
    const revision = await this.compareAndSet(key, (current) => {
      taken = !!current?.value;
      return taken ? undefined : data;
    });
    if (revision === undefined) {
      if (taken) this.counts.lost++;
      return false;
    }
    this.view.set(key, { revision, claim });
    this.counts.won++;
    return true;
  }

  /** Deletes a key at the revision the view has, if its claim still matches; false when it changed meanwhile. */
  private async releaseKey(key: string, matches: (c: Claim) => boolean): Promise<boolean> {
    const v = this.view.get(key);
    if (!v?.claim || !matches(v.claim)) return false;
    const revision = await this.compareAndSet(key, (current) =>
      current?.value && current.revision === v.revision ? null : undefined,
    );
    if (revision === undefined) return false;
    this.view.set(key, { revision });
    this.counts.released++;
    return true;
  }
}

/** Compare-and-set attempts on one key before a pass gives up on it (the next pass retries). */
const CAS_ATTEMPTS = 64;

/** Key of an address claim. */
function addressKey(network: string, address: number): string {
  return `addr.${network}.${formatIPv4(address)}`;
}

/** Key of a block claim. */
function blockStoreKey(network: string, b: Block): string {
  return `blk.${network}.${formatIPv4(b.base)}_${b.prefix}`;
}
