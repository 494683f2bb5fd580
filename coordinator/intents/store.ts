/**
 * Writes deployment intents into the JetStream KV bucket, one key per (location, Workload). Every write is a
 * compare-and-set against the revision this coordinator last saw, so two coordinators can never interleave;
 * an unchanged intent is not rewritten. Secret values are sealed per receiving host, never stored in clear.
 */
import { createHash } from 'node:crypto';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { type DeploymentIntent, encode, type ResolvedValues } from '../../shared/nats/messages.js';
import { hasValues, type KeyPair, newSealKey, sealValues } from '../../shared/nats/seal.js';
import type { Subjects } from '../../shared/nats/subjects.js';

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
  /** CAS retries before a write gives up (default 3). */
  retries?: number;
}

/** Thrown when a compare-and-set write still conflicts after the retries. */
export class IntentConflictError extends Error {}

export class IntentStore {
  private kv: KV | undefined;
  private written = new Map<string, { revision: number; digest: string }>();
  private readonly sealKey: KeyPair;
  /** CAS conflicts met (another writer changed a key first). */
  conflicts = 0;
  /** Writes done. */
  writes = 0;

  constructor(private readonly opts: IntentStoreOptions) {
    this.sealKey = opts.sealKey ?? newSealKey();
  }

  /** Public curve key intents are sealed with (`sealer` of each intent). */
  get sealerKey(): string {
    return this.sealKey.getPublicKey();
  }

  /** Opens (or creates) the bucket and reads what is in it. */
  async start(): Promise<void> {
    this.kv = await openLocationBucket(this.opts.nc, this.opts.subjects.intentsBucket, this.opts.replicas);
    for await (const key of await this.kv.keys()) {
      const e = await this.kv.get(key);
      if (e?.operation !== 'PUT') continue;
      // An intent without secrets is recognised after a restart, so an unchanged one is not rewritten; one with
      // sealed values is rewritten once (this process seals with a new key).
      let digest = '';
      try {
        const stored = JSON.parse(e.string()) as DeploymentIntent;
        if (!stored.sealed) {
          const hosts = [...new Set(stored.instances.map((i) => i.host))].sort();
          digest = intentDigest(
            stored,
            undefined,
            hosts.map((h) => [h, ''] as const),
          );
        }
      } catch {
        // Unreadable: it will be overwritten by the next reconcile.
      }
      this.written.set(key, { revision: e.revision, digest });
    }
    this.opts.log.info(
      { bucket: this.opts.subjects.intentsBucket, keys: this.written.size },
      'intent store ready',
    );
  }

  /** Keys currently in the bucket for one Workload (any location). */
  keysOf(namespace: string, workload: string): string[] {
    const suffix = `.${namespace}.${workload}`;
    return [...this.written.keys()].filter((k) => k.endsWith(suffix));
  }

  /**
   * Writes the intent when it differs from what this store last wrote (updatedAt does not count; neither does
   * the random nonce of sealing). `values` (resolved Secret/ConfigMap data) are sealed to each receiving
   * host's key into `intent.sealed`; a host without a known key gets no entry (logged), so its agent starts
   * the instance without them rather than anyone reading them in clear.
   * Returns whether it wrote; throws {@link IntentConflictError} when another writer keeps winning.
   */
  async put(intent: DeploymentIntent, values?: ResolvedValues): Promise<boolean> {
    const kv = this.kv!;
    const key = this.opts.subjects.intentKey(intent.location, intent.namespace, intent.workload);
    const hosts = [...new Set(intent.instances.map((i) => i.host))].sort();
    const keys = hosts.map((h) => [h, hasValues(values) ? (this.opts.hostKey?.(h) ?? '') : ''] as const);
    const digest = intentDigest(intent, values, keys);
    const prev = this.written.get(key);
    if (prev && prev.digest === digest) return false;

    const body: DeploymentIntent = { ...intent };
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
    const retries = this.opts.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        const current = this.written.get(key);
        const revision = current ? await kv.update(key, data, current.revision) : await kv.create(key, data);
        this.written.set(key, { revision, digest });
        this.writes++;
        return true;
      } catch (err) {
        if (!isWrongRevision(err)) throw err;
        this.conflicts++;
        if (attempt >= retries) {
          throw new IntentConflictError(
            `intent ${key}: another writer keeps changing it (${(err as Error).message})`,
          );
        }
        // Someone else wrote the key (another coordinator, or a stale cache): learn its revision and retry,
        // so the last level-triggered reconcile wins as a whole, never interleaved with another write.
        this.opts.log.warn({ key, attempt }, 'intent changed under us; re-reading revision');
        const e = await kv.get(key);
        if (e && e.operation === 'PUT') this.written.set(key, { revision: e.revision, digest: '' });
        else if (e) this.written.set(key, { revision: e.revision, digest: '' });
        else this.written.delete(key);
      }
    }
  }

  /** Removes an intent (the agents then stop its instances). */
  async delete(key: string): Promise<void> {
    if (!this.written.has(key)) return;
    await this.kv!.delete(key);
    this.written.delete(key);
  }
}

/** What decides whether an intent changed: everything but updatedAt and the sealing, plus the clear values and host keys. */
function intentDigest(
  intent: DeploymentIntent,
  values: ResolvedValues | undefined,
  keys: ReadonlyArray<readonly [string, string]>,
): string {
  return createHash('sha256')
    .update(JSON.stringify({ ...intent, sealed: undefined, sealer: undefined, updatedAt: undefined }))
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

/** The KV compare-and-set failure (JetStream error 10071 "wrong last sequence", or key exists on create). */
export function isWrongRevision(err: unknown): boolean {
  const text = `${(err as Error)?.message ?? ''} ${(err as { api_error?: { err_code?: number } })?.api_error?.err_code ?? ''}`;
  return /wrong last sequence|10071|key exists|10164/i.test(text);
}
