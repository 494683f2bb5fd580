/**
 * Watches the Network segments of this agent's location in the segments KV bucket (`<location>.<segment>`, the
 * peer lists the coordinator writes; messages.ts NetworkSegment). The reconciler hands them to the host's network
 * (`HostNetwork.syncSegments`) whenever they change. Until the first full read, {@link SegmentWatcher.all} is
 * undefined: nothing is synced (and so nothing removed) on a partial view.
 */
import { EventEmitter } from 'node:events';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../shared/log.js';
import { decode, NetworkSegment } from '../shared/nats/messages.js';
import type { Subjects } from '../shared/nats/subjects.js';

/** Options of {@link SegmentWatcher}. */
export interface SegmentWatcherOptions {
  /** The connection, or its promise. */
  nc: NatsConnection | Promise<NatsConnection>;
  subjects: Subjects;
  /** This host's location: only its keys are read (the agent's permissions allow no other). */
  location: string;
  log: Logger;
}

/** Emits `change` whenever the set of segments changes. */
export class SegmentWatcher extends EventEmitter {
  private segments = new Map<string, NetworkSegment>();
  private synced = false;
  private stopped = false;
  private watch: { stop(): void } | undefined;

  constructor(private readonly opts: SegmentWatcherOptions) {
    super();
  }

  /** The location's segments, or undefined until they were read once. */
  all(): NetworkSegment[] | undefined {
    return this.synced ? [...this.segments.values()] : undefined;
  }

  start(): void {
    void this.follow();
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
  }

  private parse(key: string, value: Uint8Array): NetworkSegment | undefined {
    try {
      return decode(NetworkSegment, value);
    } catch (err) {
      this.opts.log.warn({ key, err: (err as Error).message }, 'ignoring malformed segment');
      return undefined;
    }
  }

  private async follow(): Promise<void> {
    const filter = this.opts.subjects.segmentFilter(this.opts.location);
    while (!this.stopped) {
      try {
        const nc = await this.opts.nc;
        const kv = await new Kvm(nc).open(this.opts.subjects.segmentsBucket);
        // Read the location's keys, then follow from the stream position the read started at (as intents.ts).
        const last = (await kv.status()).streamInfo.state.last_seq;
        const fresh = new Map<string, NetworkSegment>();
        for await (const key of await kv.keys(filter)) {
          const e = await kv.get(key);
          if (e?.operation !== 'PUT') continue;
          const s = this.parse(e.key, e.value);
          if (s) fresh.set(e.key, s);
        }
        this.segments = fresh;
        this.synced = true;
        this.emit('change');
        const watch = await kv.watch({ key: filter, resumeFromRevision: last + 1 });
        this.watch = watch;
        if (this.stopped) watch.stop();
        for await (const e of watch) {
          if (this.stopped) break;
          if (e.operation === 'DEL' || e.operation === 'PURGE') this.segments.delete(e.key);
          else {
            const s = this.parse(e.key, e.value);
            if (s) this.segments.set(e.key, s);
          }
          this.emit('change');
        }
      } catch (err) {
        if (this.stopped) return;
        this.opts.log.debug({ err: (err as Error).message }, 'segments watch ended; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
