/**
 * Watches the deployment intents of this agent's location in the JetStream KV bucket, and keeps the last
 * copy on local disk so that an agent restarted while NATS is unreachable resumes from it.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeploymentIntent, decode } from '../shared/nats/messages.js';
import type { Subjects } from '../shared/nats/subjects.js';
import type { Logger } from '../shared/log.js';

interface Snapshot {
  /** Highest KV revision seen. */
  revision: number;
  /** Intents by KV key. */
  intents: Record<string, DeploymentIntent>;
}

/** Emits `change` whenever the set of intents changes. */
export class IntentWatcher extends EventEmitter {
  private intents = new Map<string, DeploymentIntent>();
  private revision = 0;
  private stopped = false;
  /** True once the intents came from NATS or from disk: before that, nothing may be removed. */
  synced = false;
  /** Messages that failed to parse. */
  malformed = 0;

  constructor(
    private readonly opts: { nc: NatsConnection; subjects: Subjects; location: string; stateDir: string; log: Logger },
  ) {
    super();
  }

  /** Every intent of the location. */
  all(): DeploymentIntent[] {
    return [...this.intents.values()];
  }

  /** Loads the copy on disk, then follows the bucket until stopped. */
  async start(): Promise<void> {
    this.load();
    void this.follow();
  }

  stop(): void {
    this.stopped = true;
  }

  private get file(): string {
    return join(this.opts.stateDir, 'intents.json');
  }

  private load(): void {
    try {
      const snap = JSON.parse(readFileSync(this.file, 'utf8')) as Snapshot;
      for (const [k, v] of Object.entries(snap.intents)) this.intents.set(k, DeploymentIntent.parse(v));
      this.revision = snap.revision;
      this.synced = true;
      this.opts.log.info({ intents: this.intents.size, revision: this.revision }, 'resumed intents from disk');
      this.emit('change');
    } catch {
      // No copy yet: wait for NATS.
    }
  }

  private save(): void {
    mkdirSync(this.opts.stateDir, { recursive: true });
    const snap: Snapshot = { revision: this.revision, intents: Object.fromEntries(this.intents) };
    writeFileSync(`${this.file}.tmp`, JSON.stringify(snap));
    renameSync(`${this.file}.tmp`, this.file);
  }

  private parse(key: string, value: Uint8Array): DeploymentIntent | undefined {
    try {
      return decode(DeploymentIntent, value);
    } catch (err) {
      this.malformed++;
      this.opts.log.warn({ key, err: (err as Error).message }, 'ignoring malformed intent');
      return undefined;
    }
  }

  private async openBucket(): Promise<KV> {
    const kvm = new Kvm(this.opts.nc);
    for (;;) {
      try {
        return await kvm.open(this.opts.subjects.intentsBucket);
      } catch (err) {
        this.opts.log.debug({ err: (err as Error).message }, 'intents bucket not ready');
        await new Promise((r) => setTimeout(r, 1000));
        if (this.stopped) throw new Error('stopped');
      }
    }
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.openBucket();
        const filter = this.opts.subjects.intentFilter(this.opts.location);
        // Snapshot first, then follow from the stream position the snapshot started at: a full re-read
        // (rather than resuming from our own revision) also notices keys deleted while we were away.
        const status = await kv.status();
        const from = status.streamInfo.state.last_seq + 1;
        const fresh = new Map<string, DeploymentIntent>();
        for await (const key of await kv.keys(filter)) {
          const e = await kv.get(key);
          if (!e || e.operation !== 'PUT') continue;
          const intent = this.parse(e.key, e.value);
          if (intent) fresh.set(e.key, intent);
        }
        this.intents = fresh;
        this.synced = true;
        this.save();
        this.emit('change');
        const watch = await kv.watch({ key: filter, resumeFromRevision: from });
        for await (const e of watch) {
          if (this.stopped) break;
          this.revision = Math.max(this.revision, e.revision);
          if (e.operation === 'DEL' || e.operation === 'PURGE') {
            this.intents.delete(e.key);
          } else {
            const intent = this.parse(e.key, e.value);
            if (!intent) continue;
            this.intents.set(e.key, intent);
          }
          this.save();
          this.emit('change');
        }
      } catch (err) {
        if (this.stopped) return;
        this.opts.log.warn({ err: (err as Error).message }, 'intent watch ended; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
