/**
 * Writes deployment intents into the JetStream KV bucket, one key per (location, Workload), fenced against
 * other coordinators and repaired when the bucket loses or changes data behind our back. Secret values are
 * sealed per receiving host, never stored in clear; an unchanged intent is not rewritten.
 *
 * Fencing. client-go's leader election gives no fencing: a leader paused past its Lease still believes it
 * leads when it wakes. So the bucket itself is the fence. Every write (put or delete) is published with
 * `Nats-Expected-Last-Sequence` set to the stream's last sequence as this store last left it: it lands only if
 * nobody wrote anything to the bucket since (a bucket-wide compare-and-set). A store's first act is to take an
 * epoch higher than any in the bucket (and than the Lease's transitions) and write it to the fence key; from
 * then on every write of an older store is refused by the server. On a refusal the store reads the fence: a
 * newer epoch means it is deposed — it never writes again and says so (`onDeposed`) — its own epoch means
 * somebody else changed the bucket, which it repairs before it retries. Every value carries the writer's
 * epoch and identity, and agents ignore a value older than an epoch they have seen (agent/intent-view.ts).
 *
 * Repair. The store keeps the bytes it last wrote under every key: what the bucket must hold. {@link repair}
 * reads the bucket and rewrites what is missing or differs, deletes what it did not write, intents before the
 * markers that vouch for them; {@link resync}, every `resyncMs`, asks the stream whether anybody but us wrote
 * (its creation time and last sequence are not what our last write left) and repairs if so. This covers a
 * bucket deleted and recreated, keys deleted or edited, and a store directory restored from an older copy
 * (acknowledged writes lost). Markers: once the coordinator has made its first full pass (`markersReady`),
 * each location gets `<location>._marker` listing its intent keys; agents remove instances only on the
 * strength of a marker (see shared/nats/messages.ts `IntentMarker`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { type JetStreamClient, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { errorText, isWrongRevision, publishIfLastSequence } from '../../shared/nats/bucket-cas.js';
import {
  type DeploymentIntent,
  encode,
  type IntentMarker,
  MESSAGE_VERSION,
  type ResolvedValues,
} from '../../shared/nats/messages.js';
import { hasValues, type KeyPair, newSealKey, sealValues } from '../../shared/nats/seal.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { planRepair, type StoredValue } from './repair.js';

/** Options of {@link IntentStore}. */
export interface IntentStoreOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Replicas of the bucket (3 on a NATS cluster). */
  replicas?: number;
  /** A host's public curve key (from its HostReport), to seal secret values to; undefined when unknown. */
  hostKey?: (host: string) => string | undefined;
  /** The coordinator's curve key pair that seals; a fresh one per process by default. */
  sealKey?: KeyPair;
  /** Repairs before a write gives up (default 3). */
  retries?: number;
  /** Identity of this writer, recorded in every value (default a random one). */
  writer?: string;
  /** Lowest epoch to take (the Lease's leaseTransitions when leading by election); the fence's + 1 if higher. */
  minEpoch?: number;
  /** Identity of the installation written into markers (the kube-system namespace's UID); default: the fence's, else a new one. */
  installation?: string;
  /** Write no markers until {@link markersReady} (the coordinator calls it after its first full pass). */
  deferMarkers?: boolean;
  /** Locations that need a marker even without intents (where hosts report), so their agents may remove. */
  locations?: () => Iterable<string>;
  /** How often {@link resync} runs (default 5000 ms; 0: never by itself). */
  resyncMs?: number;
  /** Called once when a newer writer took the bucket: this store writes nothing any more. */
  onDeposed?: (by: { writer: string; epoch: number }) => void;
}

/** Thrown when a write still fails after the repairs. */
export class IntentConflictError extends Error {}

/** Thrown by every write once a newer writer took the bucket (this coordinator is no longer the leader). */
export class IntentStoreDeposedError extends Error {}

/** Thrown when an intent is larger than the NATS server takes in one message; retrying will not help. */
export class IntentTooLargeError extends Error {
  constructor(
    readonly key: string,
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(
      `intent ${key} is ${bytes} bytes, more than the NATS server's max_payload of ${maxBytes} bytes: ` +
        'fewer replicas per location, a smaller template or fewer/lesser Secret values would fit',
    );
  }
}

/** The writers' fence: the current leader's epoch. */
interface Fence {
  v: number;
  installation: string;
  epoch: number;
  writer: string;
  updatedAt: string;
}

/** What the store holds for one intent key. */
interface Desired {
  /** The bytes last written. */
  data: Uint8Array;
  /** What decides whether a put changes it ({@link intentDigest}); '' when unknown (always rewritten). */
  digest: string;
  /** Location of the intent. */
  location: string;
}

/** The outcome of one {@link IntentStore.repair}. */
export interface RepairResult {
  /** Keys rewritten (missing or changed). */
  rewritten: string[];
  /** Keys deleted (not written by us). */
  deleted: string[];
}

const MARKER_SUFFIX = '._marker';

export class IntentStore {
  private kv: KV | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private readonly desired = new Map<string, Desired>();
  /** Marker bytes by location, as last written (a location's entry exists once it has a marker). */
  private readonly markers = new Map<string, Uint8Array>();
  private fenceData: Uint8Array | undefined;
  private markersOn = false;
  /** The stream as our last write left it: anything else means somebody else wrote. */
  private expected = { created: '', lastSeq: 0 };
  private readonly sealKey: KeyPair;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private depositor: { writer: string; epoch: number } | undefined;
  /** Write counter within the epoch, stamped on every intent and marker (see IntentMarker.generation). */
  private generation = 0;
  readonly writer: string;
  /** This store's fencing epoch (0 before start). */
  epoch = 0;
  /** Identity of the installation (set by start). */
  installation = '';
  /** Writes refused because somebody else had written the bucket. */
  conflicts = 0;
  /** Intent puts done. */
  writes = 0;
  /** Repairs that found something to restore, and keys they rewrote or deleted. */
  repairs = 0;
  repairedKeys = 0;
  /** Intents refused for their size. */
  tooLarge = 0;

  constructor(private readonly opts: IntentStoreOptions) {
    this.sealKey = opts.sealKey ?? newSealKey();
    this.writer = opts.writer ?? `intent-store-${randomUUID().slice(0, 8)}`;
  }

  /** Public curve key intents are sealed with (`sealer` of each intent). */
  get sealerKey(): string {
    return this.sealKey.getPublicKey();
  }

  /** The writer that deposed this store, if one did. */
  get deposedBy(): { writer: string; epoch: number } | undefined {
    return this.depositor;
  }

  private get stream(): string {
    return `KV_${this.opts.subjects.intentsBucket}`;
  }

  private subject(key: string): string {
    return `$KV.${this.opts.subjects.intentsBucket}.${key}`;
  }

  /**
   * Opens (or creates) the bucket, takes an epoch above every one in it, writes the fence, and restamps every
   * intent with the new epoch (so that agents, which ignore values older than an epoch they have seen, keep
   * honouring them), and the markers unless deferred.
   */
  async start(): Promise<void> {
    this.js = jetstream(this.opts.nc);
    this.jsm = await this.js.jetstreamManager();
    await this.serial(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.takeOver();
          return;
        } catch (err) {
          if (!isWrongRevision(err) || attempt >= 5) throw err;
          // Another writer wrote while we read: read again and take an epoch above it.
          this.opts.log.warn({ attempt }, 'intents bucket changed while taking it over; again');
        }
      }
    });
    const every = this.opts.resyncMs ?? 5000;
    if (every > 0)
      this.timer = setInterval(
        () =>
          void this.resync().catch((err) =>
            this.opts.log.warn({ err: (err as Error).message }, 'intents resync failed'),
          ),
        every,
      );
    this.timer?.unref();
    this.opts.log.info(
      {
        bucket: this.opts.subjects.intentsBucket,
        keys: this.desired.size,
        epoch: this.epoch,
        writer: this.writer,
        installation: this.installation,
      },
      'intent store ready',
    );
  }

  /** Stops the periodic resync (writes already queued still run). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async takeOver(): Promise<void> {
    await this.openBucket();
    const { actual, fence } = await this.readBucket();
    let highest = fence?.epoch ?? 0;
    for (const v of actual.values()) highest = Math.max(highest, epochOf(v.data));
    this.epoch = Math.max(highest + 1, this.opts.minEpoch ?? 0, 1);
    this.installation = this.opts.installation ?? fence?.installation ?? randomUUID();
    this.fenceData = encode({
      v: MESSAGE_VERSION,
      installation: this.installation,
      epoch: this.epoch,
      writer: this.writer,
      updatedAt: new Date().toISOString(),
    } satisfies Fence);
    // The fence first: from here on every write of an older writer is refused.
    await this.publish(this.opts.subjects.intentFenceKey, this.fenceData);
    this.desired.clear();
    this.markers.clear();
    const markerLocations: string[] = [];
    for (const [key, value] of [...actual].sort(([a], [b]) => a.localeCompare(b))) {
      if (key.endsWith(MARKER_SUFFIX)) {
        markerLocations.push(key.slice(0, -MARKER_SUFFIX.length));
        continue;
      }
      const location = locationOfKey(key);
      const restamped = this.restamp(value.data);
      if (!restamped || location === undefined) {
        // Unreadable, or not an intent key: the controller overwrites or withdraws it; repair leaves it be.
        this.desired.set(key, { data: value.data, digest: '', location: location ?? '' });
        continue;
      }
      await this.publish(key, restamped.data);
      this.desired.set(key, { data: restamped.data, digest: restamped.digest, location });
    }
    if (!this.opts.deferMarkers) {
      this.markersOn = true;
      await this.writeMarkers(markerLocations);
    }
  }

  /** The stored intent with this store's epoch and identity, and the digest a put compares with. */
  private restamp(data: Uint8Array): { data: Uint8Array; digest: string } | undefined {
    try {
      const stored = JSON.parse(new TextDecoder().decode(data)) as DeploymentIntent;
      if (typeof stored !== 'object' || !Array.isArray(stored?.instances)) return undefined;
      // An intent without secrets is recognised after a restart, so an unchanged one is not rewritten by the
      // controller; one with sealed values is rewritten once (this process seals with a new key).
      let digest = '';
      if (!stored.sealed) {
        const hosts = [...new Set(stored.instances.map((i) => i.host))].sort();
        digest = intentDigest(
          stored,
          undefined,
          hosts.map((h) => [h, ''] as const),
        );
      }
      const stamp = { epoch: this.epoch, writer: this.writer, generation: ++this.generation };
      return { data: encode({ ...stored, ...stamp }), digest };
    } catch {
      return undefined;
    }
  }

  /** Keys currently in the bucket for one Workload (any location). */
  keysOf(namespace: string, workload: string): string[] {
    const suffix = `.${namespace}.${workload}`;
    return [...this.desired.keys()].filter((k) => k.endsWith(suffix));
  }

  /**
   * Writes the intent when it differs from what this store last wrote (updatedAt does not count; neither does
   * the random nonce of sealing). `values` (resolved Secret/ConfigMap data) are sealed to each receiving
   * host's key into `intent.sealed`; a host without a known key gets no entry (logged), so its agent starts
   * the instance without them rather than anyone reading them in clear.
   * Returns whether it wrote; throws {@link IntentStoreDeposedError} once deposed, {@link IntentTooLargeError}
   * for an intent NATS cannot carry, {@link IntentConflictError} when the bucket keeps changing under us.
   */
  put(intent: DeploymentIntent, values?: ResolvedValues): Promise<boolean> {
    return this.serial(async () => {
      this.assertLeading();
      const key = this.opts.subjects.intentKey(intent.location, intent.namespace, intent.workload);
      const hosts = [...new Set(intent.instances.map((i) => i.host))].sort();
      const keys = hosts.map((h) => [h, hasValues(values) ? (this.opts.hostKey?.(h) ?? '') : ''] as const);
      const digest = intentDigest(intent, values, keys);
      const prev = this.desired.get(key);
      if (prev && prev.digest === digest) return false;

      const body: DeploymentIntent = {
        ...intent,
        epoch: this.epoch,
        writer: this.writer,
        generation: ++this.generation,
      };
      delete body.sealed;
      delete body.sealer;
      if (hasValues(values)) {
        const sealed: Record<string, string> = {};
        for (const [host, pub] of keys) {
          if (pub) sealed[host] = sealValues(this.sealKey, pub, values);
          else this.opts.log.warn({ key, host }, 'host has no seal key yet; secret values not sent to it');
        }
        body.sealed = sealed;
        body.sealer = this.sealKey.getPublicKey();
      }
      const data = encode(body);
      const max = this.opts.nc.info?.max_payload;
      // A little under the limit: the message also carries the subject and headers.
      if (max && data.length > max - 512) {
        this.tooLarge++;
        throw new IntentTooLargeError(key, data.length, max);
      }
      const t0 = performance.now();
      const seq = await this.write(key, data);
      this.desired.set(key, { data, digest, location: intent.location });
      this.writes++;
      // Read by the apply benchmark (bench/apply.ts): the write was acknowledged at this line's time.
      this.opts.log.debug({ key, seq, ms: Math.round(performance.now() - t0) }, 'intent written');
      if (!prev) await this.writeMarker(intent.location);
      return true;
    });
  }

  /** Removes an intent (the agents then stop its instances once the location's marker no longer lists it). */
  delete(key: string): Promise<void> {
    return this.serial(async () => {
      const prev = this.desired.get(key);
      if (!prev) return;
      this.assertLeading();
      await this.write(key, undefined);
      this.desired.delete(key);
      await this.writeMarker(prev.location);
    });
  }

  /**
   * The coordinator's first full pass is done: every location's intents are what they should be, so their
   * markers may vouch for them.
   */
  markersReady(): Promise<void> {
    return this.serial(async () => {
      this.assertLeading();
      this.markersOn = true;
      await this.writeMarkers([]);
    });
  }

  /**
   * Restores what the bucket should hold if anybody but us wrote to it (or it was recreated, or lost writes):
   * compares the stream with what our last write left; repairs on a difference. Also gives a marker to every
   * location that has hosts but none yet. Returns what the repair did, or undefined when nothing was amiss.
   */
  resync(): Promise<RepairResult | undefined> {
    return this.serial(async () => {
      if (this.depositor) return undefined;
      let info: { created: string; lastSeq: number } | undefined;
      try {
        const si = await this.jsm!.streams.info(this.stream);
        info = { created: si.created, lastSeq: si.state.last_seq };
      } catch (err) {
        if (!isNoStream(err)) throw err;
      }
      let result: RepairResult | undefined;
      if (!info || info.created !== this.expected.created || info.lastSeq !== this.expected.lastSeq)
        result = await this.repairLocked(info ? 'changed behind our back' : 'bucket gone');
      if (this.markersOn) {
        const missing = [...(this.opts.locations?.() ?? [])].filter((l) => !this.markers.has(l));
        if (missing.length) await this.writeMarkers(missing);
      }
      return result;
    });
  }

  /** Makes the bucket hold exactly what this store wrote (see the module comment). */
  repair(): Promise<RepairResult> {
    return this.serial(() => this.repairLocked('asked'));
  }

  private async repairLocked(why: string): Promise<RepairResult> {
    this.assertLeading();
    await this.openBucket();
    const { actual, fence } = await this.readBucket();
    if (fence && (fence.epoch > this.epoch || (fence.epoch === this.epoch && fence.writer !== this.writer)))
      this.depose(fence);
    const want = new Map<string, Uint8Array>();
    for (const [k, d] of this.desired) want.set(k, d.data);
    if (this.markersOn) {
      for (const [loc, data] of this.markers) want.set(this.opts.subjects.intentMarkerKey(loc), data);
    }
    const ops = planRepair({
      fenceKey: this.opts.subjects.intentFenceKey,
      fence: this.fenceData!,
      want,
      actual,
      isMarker: (k) => k.endsWith(MARKER_SUFFIX),
      manageMarkers: this.markersOn,
    });
    for (const { key, op } of ops)
      await this.publish(key, op === 'write' ? (want.get(key) ?? this.fenceData) : undefined);
    const fenceKey = this.opts.subjects.intentFenceKey;
    const result = {
      rewritten: ops.filter((o) => o.op === 'write' && o.key !== fenceKey).map((o) => o.key),
      deleted: ops.filter((o) => o.op === 'delete').map((o) => o.key),
    };
    if (ops.length) {
      this.repairs++;
      this.repairedKeys += result.rewritten.length + result.deleted.length;
      this.opts.log.warn(
        { why, rewritten: result.rewritten.length, deleted: result.deleted.length, epoch: this.epoch },
        'intents bucket repaired',
      );
    }
    return result;
  }

  /** Marker writes for these locations, every location with intents, and every known one. */
  private async writeMarkers(extra: Iterable<string>): Promise<void> {
    const locations = new Set<string>(extra);
    for (const d of this.desired.values()) if (d.location) locations.add(d.location);
    for (const l of this.markers.keys()) locations.add(l);
    for (const l of this.opts.locations?.() ?? []) locations.add(l);
    for (const l of [...locations].sort()) await this.writeMarker(l);
  }

  private async writeMarker(location: string): Promise<void> {
    if (!this.markersOn || !location) return;
    const keys = [...this.desired]
      .filter(([, d]) => d.location === location)
      .map(([k]) => k)
      .sort();
    const data = encode({
      v: MESSAGE_VERSION,
      installation: this.installation,
      epoch: this.epoch,
      writer: this.writer,
      generation: ++this.generation,
      keys,
      updatedAt: new Date().toISOString(),
    } satisfies IntentMarker);
    await this.write(this.opts.subjects.intentMarkerKey(location), data);
    this.markers.set(location, data);
  }

  /** A fenced write that repairs the bucket and retries when somebody else wrote first. */
  private async write(key: string, data: Uint8Array | undefined): Promise<number> {
    const retries = this.opts.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      this.assertLeading();
      try {
        return await this.publish(key, data);
      } catch (err) {
        if (!isWrongRevision(err) && !isNoStream(err)) throw err;
        this.conflicts++;
        if (attempt >= retries)
          throw new IntentConflictError(
            `intent ${key}: the bucket keeps changing under us (${(err as Error).message})`,
          );
        this.opts.log.warn({ key, attempt, err: (err as Error).message }, 'intents bucket changed under us');
        // Deposed (a newer fence) throws here; otherwise the bucket is made ours again, then the write retried.
        await this.repairLocked('write refused');
      }
    }
  }

  /** One publish, accepted only if the stream's last sequence is still the one our last write left. */
  private async publish(key: string, data: Uint8Array | undefined): Promise<number> {
    const seq = await publishIfLastSequence(this.js!, this.subject(key), data, this.expected.lastSeq);
    this.expected.lastSeq = seq;
    return seq;
  }

  private async openBucket(): Promise<void> {
    this.kv = await openLocationBucket(this.opts.nc, this.opts.subjects.intentsBucket, this.opts.replicas);
  }

  /** Every live key with its value (read from the stream leader, never a lagging direct get), and the fence. */
  private async readBucket(): Promise<{ actual: Map<string, StoredValue>; fence: Fence | undefined }> {
    const si = await this.jsm!.streams.info(this.stream);
    this.expected = { created: si.created, lastSeq: si.state.last_seq };
    const actual = new Map<string, StoredValue>();
    let fence: Fence | undefined;
    for await (const key of await this.kv!.keys()) {
      const m = await this.jsm!.streams.getMessage(this.stream, { last_by_subj: this.subject(key) });
      if (!m || m.header?.get('KV-Operation')) continue;
      if (key === this.opts.subjects.intentFenceKey) {
        try {
          fence = JSON.parse(new TextDecoder().decode(m.data)) as Fence;
        } catch {
          fence = undefined;
        }
      }
      actual.set(key, { data: m.data, revision: m.seq });
    }
    return { actual, fence };
  }

  private depose(fence: Fence): never {
    if (!this.depositor) {
      this.depositor = { writer: fence.writer, epoch: fence.epoch };
      this.stop();
      this.opts.log.error(
        { epoch: this.epoch, by: fence.writer, theirEpoch: fence.epoch },
        'a newer coordinator took the intents bucket: writing nothing more',
      );
      this.opts.onDeposed?.(this.depositor);
    }
    throw new IntentStoreDeposedError(
      `deposed by ${fence.writer} (epoch ${fence.epoch} > ${this.epoch}): not writing`,
    );
  }

  private assertLeading(): void {
    if (this.depositor)
      throw new IntentStoreDeposedError(
        `deposed by ${this.depositor.writer} (epoch ${this.depositor.epoch} > ${this.epoch}): not writing`,
      );
  }

  /** Runs one bucket operation at a time: the fence needs our writes in sequence. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f, f);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

/** The location of an intent key `<location>.<namespace>.<workload>` (locations may contain dots). */
function locationOfKey(key: string): string | undefined {
  const parts = key.split('.');
  return parts.length >= 3 ? parts.slice(0, -2).join('.') : undefined;
}

/** The epoch a stored value carries (0 when none or unreadable). */
function epochOf(data: Uint8Array): number {
  try {
    const e = (JSON.parse(new TextDecoder().decode(data)) as { epoch?: unknown }).epoch;
    return typeof e === 'number' && Number.isFinite(e) ? e : 0;
  } catch {
    return 0;
  }
}

/** What decides whether an intent changed: everything but updatedAt, the sealing and the writer's stamp, plus the clear values and host keys. */
function intentDigest(
  intent: DeploymentIntent,
  values: ResolvedValues | undefined,
  keys: ReadonlyArray<readonly [string, string]>,
): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        ...intent,
        sealed: undefined,
        sealer: undefined,
        updatedAt: undefined,
        epoch: undefined,
        writer: undefined,
        generation: undefined,
      }),
    )
    .update(JSON.stringify(hasValues(values) ? values : null))
    .update(JSON.stringify(keys))
    .digest('hex');
}

/**
 * Opens (or creates) a KV bucket whose keys start with a location, read by that location's agents: one value
 * per key, and direct gets, which carry the key in their subject so NATS permissions can limit an agent to its
 * location (shared/nats/permissions.ts).
 */
export function openLocationBucket(nc: NatsConnection, bucket: string, replicas = 1): Promise<KV> {
  return new Kvm(nc).create(bucket, { history: 1, replicas, allow_direct: true });
}

/** The bucket's stream is gone (deleted, or not yet recreated). */
function isNoStream(err: unknown): boolean {
  return /no responders|503|stream not found|10059/i.test(errorText(err));
}
