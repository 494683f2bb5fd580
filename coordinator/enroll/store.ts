/**
 * The enrollment service's records in a JetStream KV bucket the coordinator owns (`<prefix>-enroll`): join
 * tokens under `tokens.<id>` and enrolled hosts under `hosts.<host>`. Every change is a compare-and-set on the
 * revision read, so two writers (a second coordinator during a leader change) can never both use the last use
 * of a token. The compare-and-set is bucket-wide (shared/nats/bucket-cas.ts): on an R3 bucket of the
 * nats-server we ship, the per-key one can let two writers win. Enrolled hosts are also kept in memory: the host registry asks for a host's bound identity on
 * every report.
 */
import { type JetStreamClient, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { publishIfLastSequence, readForCas } from '../../shared/nats/bucket-cas.js';
import { HostEnrollment, TokenRecord } from '../../shared/nats/enrollment.js';
import { decode, encode } from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import type { BoundIdentity } from '../hosts/admission.js';

/** A record and the revision it was read at (for compare-and-set). */
export interface Versioned<T> {
  value: T;
  revision: number;
}

export interface EnrollmentStoreOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Replicas of the bucket (3 on a NATS cluster). */
  replicas?: number;
}

export class EnrollmentStore {
  private kv: KV | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private readonly hostsByName = new Map<string, HostEnrollment>();

  constructor(private readonly opts: EnrollmentStoreOptions) {}

  /** Opens (or creates) the bucket and loads the enrolled hosts. */
  async start(): Promise<void> {
    this.js = jetstream(this.opts.nc);
    this.jsm = await this.js.jetstreamManager();
    this.kv = await new Kvm(this.opts.nc).create(this.opts.subjects.enrollBucket, {
      history: 1,
      replicas: this.opts.replicas ?? 1,
    });
    for (const h of await this.list('hosts.>', HostEnrollment)) this.hostsByName.set(h.host, h);
    this.opts.log.info({ hosts: this.hostsByName.size }, 'enrollment records loaded');
  }

  private bucket(): KV {
    if (!this.kv) throw new Error('enrollment store not started');
    return this.kv;
  }

  private async list<T>(filter: string, schema: { parse(v: unknown): T }): Promise<T[]> {
    const out: T[] = [];
    for await (const key of await this.bucket().keys(filter)) {
      const e = await this.bucket().get(key);
      if (e?.operation !== 'PUT') continue;
      try {
        out.push(schema.parse(e.json()));
      } catch (err) {
        this.opts.log.warn({ key, err: (err as Error).message }, 'unreadable enrollment record skipped');
      }
    }
    return out;
  }

  private async get<T extends { parse(v: unknown): unknown }>(
    key: string,
    schema: T,
  ): Promise<Versioned<ReturnType<T['parse']>> | undefined> {
    const e = await this.bucket().get(key);
    if (e?.operation !== 'PUT') return undefined;
    return { value: decode(schema as never, e.value) as ReturnType<T['parse']>, revision: e.revision };
  }

  /**
   * Writes `value` if the key is still at `revision` (0: must not exist) and nothing else was written to the
   * bucket since; throws on a conflict (the caller reads and decides again).
   */
  private async put(key: string, value: unknown, revision: number): Promise<void> {
    const bucket = this.opts.subjects.enrollBucket;
    const subject = `$KV.${bucket}.${key}`;
    this.bucket();
    const read = await readForCas(this.jsm!, `KV_${bucket}`, subject);
    const current = read.entry && !read.entry.deleted ? read.entry.revision : 0;
    if (current !== revision)
      throw new Error(
        `enrollment record ${key} is at revision ${current}, not ${revision}: wrong last sequence`,
      );
    await publishIfLastSequence(this.js!, subject, encode(value), read.lastSequence);
  }

  token(id: string): Promise<Versioned<TokenRecord> | undefined> {
    return this.get(`tokens.${id}`, TokenRecord);
  }

  putToken(t: TokenRecord, revision: number): Promise<void> {
    return this.put(`tokens.${t.id}`, t, revision);
  }

  tokens(): Promise<TokenRecord[]> {
    return this.list('tokens.>', TokenRecord);
  }

  host(name: string): Promise<Versioned<HostEnrollment> | undefined> {
    return this.get(`hosts.${name}`, HostEnrollment);
  }

  async putHost(h: HostEnrollment, revision: number): Promise<void> {
    await this.put(`hosts.${h.host}`, h, revision);
    this.hostsByName.set(h.host, h);
  }

  /** Every enrolled host (revoked ones too), from memory. */
  hosts(): HostEnrollment[] {
    return [...this.hostsByName.values()];
  }

  /** The identity a host's credentials were issued for (the host registry's admission rule). */
  identityOf(host: string): BoundIdentity | undefined {
    const h = this.hostsByName.get(host);
    return h && { location: h.location, revoked: h.revokedAt !== undefined };
  }
}
