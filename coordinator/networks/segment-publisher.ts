/**
 * Keeps the segments KV bucket (`<prefix>-segments`) equal to what the Workloads' interfaces need
 * (segments.ts): the Workload controller hands over each Workload's members after a pass; a debounced sync
 * writes the keys that changed (peers, MTU; never for the time alone) and deletes those no Network needs any
 * more. Deletes wait for a warm-up after start, so that a new leader that has not reconciled every Workload
 * yet does not take peers away. Agents read their own location's keys (shared/nats/permissions.ts).
 */
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { MESSAGE_VERSION, type NetworkSegment } from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { openLocationBucket } from '../intents/store.js';
import { desiredSegments, type SegmentMember } from './segments.js';

/** Options of {@link SegmentPublisher}. */
export interface SegmentPublisherOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** A host's overlay address, from its last report. */
  overlayOf: (host: string) => string | undefined;
  /** Replicas of the bucket (3 on a NATS cluster). */
  replicas?: number;
  /** No deletes before this long after start (default 30 s: the controller's warm-up). */
  warmupMs?: number;
  /** Delay that gathers changes into one sync (default 200 ms). */
  debounceMs?: number;
}

export class SegmentPublisher {
  private kv: KV | undefined;
  private readonly members = new Map<string, SegmentMember[]>();
  /** What each key holds now (JSON without version and time), with its revision. */
  private readonly written = new Map<string, { revision: number; digest: string }>();
  private readonly startedAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  /** Writes and deletes done (for tests and metrics). */
  readonly counts = { writes: 0, deletes: 0 };

  constructor(private readonly opts: SegmentPublisherOptions) {}

  /** Opens (or creates) the bucket and reads what is in it. */
  async start(): Promise<void> {
    this.kv = await openLocationBucket(this.opts.nc, this.opts.subjects.segmentsBucket, this.opts.replicas);
    for await (const key of await this.kv.keys()) {
      const e = await this.kv.get(key);
      if (e?.operation !== 'PUT') continue;
      let digest = '';
      try {
        digest = digestOf(e.json<NetworkSegment>());
      } catch {
        // unreadable: rewritten on the next sync
      }
      this.written.set(key, { revision: e.revision, digest });
    }
  }

  /** Stops the pending sync. */
  stop(): void {
    clearTimeout(this.timer);
  }

  /** The members of one Workload (by controller key) after a pass; [] when it has none or is gone. */
  setMembers(workload: string, members: SegmentMember[]): void {
    const before = JSON.stringify(this.members.get(workload) ?? []);
    if (members.length) this.members.set(workload, members);
    else this.members.delete(workload);
    if (before !== JSON.stringify(members)) this.schedule();
  }

  /** Syncs soon (a host's overlay address may have changed). */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.syncing = this.syncing.then(() =>
        this.sync().catch((err) => {
          this.opts.log.warn({ err: (err as Error).message }, 'segments not synced; retrying');
          this.schedule();
        }),
      );
    }, this.opts.debounceMs ?? 200);
    this.timer.unref?.();
  }

  /** Makes the bucket match the members now. */
  async sync(): Promise<void> {
    const kv = this.kv;
    if (!kv) return;
    const want = desiredSegments([...this.members.values()].flat(), this.opts.overlayOf, this.opts.subjects);
    for (const [key, entry] of want) {
      const body: NetworkSegment = { v: MESSAGE_VERSION, ...entry, updatedAt: new Date().toISOString() };
      const digest = digestOf(body);
      if (this.written.get(key)?.digest === digest) continue;
      const revision = await kv.put(key, JSON.stringify(body));
      this.written.set(key, { revision, digest });
      this.counts.writes++;
    }
    if (performance.now() - this.startedAt < (this.opts.warmupMs ?? 30_000)) {
      if ([...this.written.keys()].some((k) => !want.has(k))) this.scheduleAfterWarmup();
      return;
    }
    for (const key of [...this.written.keys()]) {
      if (want.has(key)) continue;
      await kv.delete(key);
      this.written.delete(key);
      this.counts.deletes++;
    }
  }

  private scheduleAfterWarmup(): void {
    const left = (this.opts.warmupMs ?? 30_000) - (performance.now() - this.startedAt);
    setTimeout(() => this.schedule(), Math.max(0, left) + 10).unref?.();
  }
}

/** What decides whether an entry changed: everything but its version and time. */
function digestOf(s: NetworkSegment): string {
  return JSON.stringify({ segment: s.segment, network: s.network, mtu: s.mtu, peers: s.peers });
}
