/**
 * Watches the deployment intents of this agent's location in the JetStream KV bucket, and keeps the last
 * copy on local disk so that an agent restarted while NATS is unreachable resumes from it. {@link requestsFor}
 * turns the intents into what this host's drivers must run.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { writeFileAtomic } from '../shared/atomic-file.js';
import type { Logger } from '../shared/log.js';
import { DeploymentIntent, decode, type ResolvedValues } from '../shared/nats/messages.js';
import { type KeyPair, openValues } from '../shared/nats/seal.js';
import type { Subjects } from '../shared/nats/subjects.js';
import type { InstanceRequest } from './drivers/driver.js';
import { type RejectedIntent, salvageIntent } from './malformed.js';

/** An intent as the agent hands it out: with this host's secret values opened (in memory only). */
export type HostIntent = DeploymentIntent & { values?: ResolvedValues };

/**
 * The instances `host` must run, as the drivers take them: one request per instance the intents place on the
 * host. During a rolling update an instance may still run an older template revision of its intent
 * (`instances[].templateHash`); it gets that revision's template, limits and values. A revision the intent does
 * not carry is not something the coordinator writes: the instance gets the current template (where it is headed
 * anyway), with a warning.
 */
export function requestsFor(host: string, intents: HostIntent[], log: Logger): InstanceRequest[] {
  const out: InstanceRequest[] = [];
  for (const intent of intents) {
    for (const inst of intent.instances) {
      if (inst.host !== host) continue;
      const wanted = inst.templateHash ?? intent.templateHash;
      const older =
        wanted === intent.templateHash ? undefined : intent.revisions?.find((r) => r.templateHash === wanted);
      if (wanted !== intent.templateHash && !older) {
        log.warn(
          { instance: `${intent.namespace}/${inst.name}`, templateHash: wanted },
          'intent names a template revision it does not carry; running its current template',
        );
      }
      const values = older ? intent.values?.revisions?.[wanted] : intent.values;
      out.push({
        namespace: intent.namespace,
        name: inst.name,
        workload: intent.workload,
        templateHash: older ? wanted : intent.templateHash,
        template: older?.template ?? intent.template,
        limits: older?.limits ?? intent.limits,
        labels: inst.labels,
        ...(values ? { values } : {}),
        ...(inst.interfaces?.length ? { interfaces: inst.interfaces } : {}),
      });
    }
  }
  return out;
}

/** Options of {@link IntentWatcher}. */
export interface IntentWatcherOptions {
  /** The connection, or its promise: an agent started while NATS is unreachable runs from disk meanwhile. */
  nc: NatsConnection | Promise<NatsConnection>;
  subjects: Subjects;
  location: string;
  stateDir: string;
  log: Logger;
  /** This host, whose entry of `sealed` it opens. */
  host?: string;
  /** This host's curve key pair, to open the values sealed to it. */
  sealKey?: KeyPair;
  /** How often the watch's consumer is checked to still exist (default 5000 ms). */
  watchdogMs?: number;
}

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
  private rejected = new Map<string, RejectedIntent>();
  /** Times the watch resumed from the revision it had, and times it had to read the location afresh. */
  resumes = 0;
  fullReads = 0;
  private watch: { stop(): void } | undefined;
  /** Sealed values that did not open with this host's key. */
  unopened = 0;
  /** Opened values by intent key, valid while the sealed text is the same. */
  private opened = new Map<string, { sealed: string; values: ResolvedValues }>();

  /** The connection once established. */
  private nc: NatsConnection | undefined;

  constructor(private readonly opts: IntentWatcherOptions) {
    super();
  }

  /** Highest KV revision seen (from NATS or the copy on disk). */
  get lastRevision(): number {
    return this.revision;
  }

  /** Every intent of the location, with this host's sealed values opened into `values`. */
  all(): HostIntent[] {
    return [...this.intents].map(([key, intent]) => this.withValues(key, intent));
  }

  private withValues(key: string, intent: DeploymentIntent): HostIntent {
    const host = this.opts.host;
    const sealed = host ? intent.sealed?.[host] : undefined;
    if (!sealed || !intent.sealer) return intent;
    const cached = this.opened.get(key);
    if (cached?.sealed === sealed) return { ...intent, values: cached.values };
    if (!this.opts.sealKey) return intent;
    try {
      const values = openValues(this.opts.sealKey, intent.sealer, sealed);
      this.opened.set(key, { sealed, values });
      return { ...intent, values };
    } catch (err) {
      this.unopened++;
      this.opts.log.error({ key, err: (err as Error).message }, 'secret values of this intent do not open');
      return intent;
    }
  }

  /** Loads the copy on disk, then follows the bucket until stopped. */
  async start(): Promise<void> {
    this.load();
    void this.follow();
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
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
      this.opts.log.info(
        { intents: this.intents.size, revision: this.revision },
        'resumed intents from disk',
      );
      this.emit('change');
    } catch (err) {
      // No copy yet: wait for NATS. A copy that exists but does not read is said loudly, and treated the same:
      // nothing is known until NATS answers, so nothing is removed meanwhile.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.opts.log.error(
          { file: this.file, err: (err as Error).message },
          'intents copy on disk is unreadable; waiting for NATS',
        );
    }
  }

  private save(): void {
    mkdirSync(this.opts.stateDir, { recursive: true });
    const snap: Snapshot = { revision: this.revision, intents: Object.fromEntries(this.intents) };
    writeFileAtomic(this.file, JSON.stringify(snap));
  }

  private parse(key: string, value: Uint8Array): DeploymentIntent | undefined {
    try {
      const intent = decode(DeploymentIntent, value);
      this.rejected.delete(key);
      return intent;
    } catch (err) {
      this.malformed++;
      this.opts.log.warn({ key, err: (err as Error).message }, 'ignoring malformed intent');
      const salvaged = salvageIntent(key, value, (err as Error).message);
      if (salvaged) this.rejected.set(key, salvaged);
      return undefined;
    }
  }

  /** Intents that failed validation, as far as they could be read (the reconciler reports their instances). */
  malformedIntents(): RejectedIntent[] {
    return [...this.rejected.values()];
  }

  private async openBucket(): Promise<KV> {
    this.nc = await this.opts.nc;
    const kvm = new Kvm(this.nc);
    for (;;) {
      try {
        // Direct gets (the coordinator creates the bucket with allow_direct): their subject names the key.
        return await kvm.open(this.opts.subjects.intentsBucket, { allow_direct: true });
      } catch (err) {
        this.opts.log.debug({ err: (err as Error).message }, 'intents bucket not ready');
        await new Promise((r) => setTimeout(r, 1000));
        if (this.stopped) throw new Error('stopped');
      }
    }
  }

  /**
   * Ends a watch whose consumer is gone (e.g. it lived on a cluster member that died and the library has not
   * re-created it yet), so {@link follow} resumes from our revision on a fresh consumer.
   */
  private watchdog(watch: { stop(): void }): NodeJS.Timeout {
    const consumer = (watch as { _data?: { info(cached?: boolean): Promise<unknown> } })._data;
    let failures = 0;
    return setInterval(() => {
      if (!consumer || !this.nc || this.nc.isClosed()) return;
      consumer.info(false).then(
        () => {
          failures = 0;
        },
        (err: Error) => {
          if (++failures < 2) return;
          this.opts.log.warn({ err: err.message }, 'intent watch consumer lost; resuming on a new one');
          watch.stop();
        },
      );
    }, this.opts.watchdogMs ?? 5000);
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.openBucket();
        const filter = this.opts.subjects.intentFilter(this.opts.location);
        const status = await kv.status();
        const last = status.streamInfo.state.last_seq;
        let from: number;
        if (this.synced && this.revision > 0 && this.revision <= last) {
          // Resume from the revision we have: the bucket keeps the latest message of every key, delete markers
          // included, so every change after our revision is still there to be delivered.
          from = this.revision + 1;
          this.resumes++;
          this.opts.log.info({ revision: this.revision, behind: last - this.revision }, 'resuming intents');
        } else {
          // Nothing to resume from (or the bucket was re-created): read the location's keys, then follow from
          // the stream position the read started at.
          from = last + 1;
          const fresh = new Map<string, DeploymentIntent>();
          for await (const key of await kv.keys(filter)) {
            const e = await kv.get(key);
            if (e?.operation !== 'PUT') continue;
            const intent = this.parse(e.key, e.value);
            if (intent) fresh.set(e.key, intent);
          }
          this.intents = fresh;
          this.revision = last;
          this.fullReads++;
          this.synced = true;
          this.save();
          this.emit('change');
        }
        const watch = await kv.watch({ key: filter, resumeFromRevision: from });
        this.watch = watch;
        if (this.stopped) watch.stop();
        const watchdog = this.watchdog(watch);
        try {
          for await (const e of watch) {
            if (this.stopped) break;
            this.revision = Math.max(this.revision, e.revision);
            if (e.operation === 'DEL' || e.operation === 'PURGE') {
              this.intents.delete(e.key);
              this.opened.delete(e.key);
              this.rejected.delete(e.key);
            } else {
              const intent = this.parse(e.key, e.value);
              if (!intent) {
                this.save();
                continue;
              }
              this.intents.set(e.key, intent);
            }
            this.save();
            this.emit('change');
          }
        } finally {
          clearInterval(watchdog);
        }
      } catch (err) {
        if (this.stopped) return;
        this.opts.log.warn({ err: (err as Error).message }, 'intent watch ended; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
