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
import { DeploymentIntent, decode, IntentMarker, type ResolvedValues } from '../shared/nats/messages.js';
import { type KeyPair, openValues } from '../shared/nats/seal.js';
import type { Subjects } from '../shared/nats/subjects.js';
import type { InstanceRequest } from './drivers/driver.js';
import {
  type Applied,
  apply,
  emptyView,
  fullRead,
  heldKeys,
  type IntentView,
  type Trust,
  trustOf,
  type ViewEntry,
} from './intent-view.js';
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
  /** Told of every write of the copy on disk: nothing when it was written, the error when it was not. */
  onSave?: (err?: Error) => void;
  /** How soon a copy that could not be written is tried again (default 5000 ms). */
  saveRetryMs?: number;
}

interface Snapshot {
  /** Highest KV revision seen. */
  revision: number;
  /** Intents by KV key (held ones included). */
  intents: Record<string, DeploymentIntent>;
  /** The rest of the view (absent in copies written before markers: then nothing is trusted until NATS answers). */
  view?: Omit<IntentView, 'intents'>;
  /** Creation time of the bucket's stream the revision belongs to. */
  bucket?: string;
}

/**
 * Emits `change` whenever the set of intents changes, and `trust` when removals become allowed or held (see
 * intent-view.ts: an agent removes nothing on the strength of a bucket it cannot trust).
 */
export class IntentWatcher extends EventEmitter {
  private view: IntentView = emptyView();
  /** Creation time of the bucket's stream (a recreated bucket has another). */
  private bucket = '';
  private revision = 0;
  /** Values ignored because a newer coordinator's epoch had been seen (a deposed writer's). */
  staleIntents = 0;
  private lastTrust: Trust | undefined;
  private stopped = false;
  /** True once the intents came from NATS or from disk: before that, nothing may be removed. */
  synced = false;
  /**
   * True once this process has read the location from NATS. The copy on disk may be behind (a write it could not
   * make on a full disk, a restored state directory): an instance started from a newer intent would look
   * unintended to it, so removals wait for this.
   */
  current = false;
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
  /** Set while the copy on disk is behind (its last write failed): retried until it is written. */
  private saveRetry: NodeJS.Timeout | undefined;
  private copyBehind = false;

  constructor(private readonly opts: IntentWatcherOptions) {
    super();
  }

  /** Highest KV revision seen (from NATS or the copy on disk). */
  get lastRevision(): number {
    return this.revision;
  }

  /** Every intent of the location (held ones included), with this host's sealed values opened into `values`. */
  all(): HostIntent[] {
    return Object.entries(this.view.intents).map(([key, intent]) => this.withValues(key, intent));
  }

  /** Whether removals may follow the intents now, and why not. */
  trust(): Trust {
    return trustOf(this.view);
  }

  /** Intents held although the bucket no longer has them (lost, or not yet confirmed deleted). */
  held(): string[] {
    return heldKeys(this.view);
  }

  /** The fencing epoch last seen and the installation the agent follows. */
  get epoch(): number {
    return this.view.epoch;
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
    if (this.saveRetry) clearTimeout(this.saveRetry);
  }

  private get file(): string {
    return join(this.opts.stateDir, 'intents.json');
  }

  private load(): void {
    try {
      const snap = JSON.parse(readFileSync(this.file, 'utf8')) as Snapshot;
      const intents: Record<string, DeploymentIntent> = {};
      for (const [k, v] of Object.entries(snap.intents)) intents[k] = DeploymentIntent.parse(v);
      this.view = snap.view
        ? { ...snap.view, intents }
        : { intents, present: Object.keys(intents), epoch: 0 };
      this.revision = snap.revision;
      this.bucket = snap.bucket ?? '';
      this.synced = true;
      this.opts.log.info(
        { intents: Object.keys(intents).length, revision: this.revision, epoch: this.view.epoch },
        'resumed intents from disk',
      );
      this.noteTrust();
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

  /**
   * Writes the copy on disk. A write that fails (a full or read-only disk) never stops the agent from following
   * NATS: the view in memory is current, the copy stays at its last good version (written atomically, never torn),
   * the failure is said once and reported (`onSave`), and the write is retried until it succeeds.
   */
  private save(): void {
    if (this.saveRetry) clearTimeout(this.saveRetry);
    this.saveRetry = undefined;
    try {
      mkdirSync(this.opts.stateDir, { recursive: true });
      const { intents, ...view } = this.view;
      const snap: Snapshot = { revision: this.revision, intents, view, bucket: this.bucket };
      writeFileAtomic(this.file, JSON.stringify(snap));
    } catch (err) {
      if (!this.copyBehind)
        this.opts.log.error(
          { file: this.file, revision: this.revision, err: (err as Error).message },
          'intents copy on disk not written: following NATS from memory, retrying the copy',
        );
      this.copyBehind = true;
      this.opts.onSave?.(err as Error);
      if (!this.stopped) {
        this.saveRetry = setTimeout(() => this.save(), this.opts.saveRetryMs ?? 5000);
        this.saveRetry.unref();
      }
      return;
    }
    if (this.copyBehind)
      this.opts.log.info({ revision: this.revision }, 'intents copy on disk written again');
    this.copyBehind = false;
    this.opts.onSave?.();
  }

  /** Logs and emits when removals become held or allowed again. */
  private noteTrust(): void {
    const t = trustOf(this.view);
    if (this.lastTrust && this.lastTrust.trusted === t.trusted && this.lastTrust.reason === t.reason) return;
    const was = this.lastTrust;
    this.lastTrust = t;
    if (!t.trusted)
      this.opts.log.warn(
        { reason: t.reason, held: this.held().length, epoch: this.view.epoch },
        'intents not trusted: removing no instance until the coordinator restores them',
      );
    else if (was && !was.trusted)
      this.opts.log.info({ epoch: this.view.epoch }, 'intents trusted again: removals resume');
    this.emit('trust', t);
  }

  /** Applies entries to the view; logs values of a deposed writer. */
  private applyAll(results: Applied[]): void {
    for (const a of results) {
      if (!a.stale) continue;
      this.staleIntents++;
      this.opts.log.warn(a.stale, 'ignoring an intent older than an epoch already seen (a deposed writer)');
    }
  }

  /** The view entry of one KV entry of the location; undefined for a malformed marker (treated as absent). */
  private entryOf(key: string, operation: string, value: Uint8Array): ViewEntry {
    const isMarker = key === this.opts.subjects.intentMarkerKey(this.opts.location);
    if (operation === 'DEL' || operation === 'PURGE') {
      this.opened.delete(key);
      this.rejected.delete(key);
      return isMarker ? { kind: 'marker-delete' } : { kind: 'delete', key };
    }
    if (isMarker) {
      try {
        return { kind: 'marker', marker: decode(IntentMarker, value) };
      } catch (err) {
        this.malformed++;
        this.opts.log.warn({ key, err: (err as Error).message }, 'ignoring malformed intents marker');
        return { kind: 'marker-delete' };
      }
    }
    const intent = this.parse(key, value);
    return intent ? { kind: 'intent', key, intent } : { kind: 'malformed', key };
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
  private watchdog(watch: { stop(): void }, kv: KV): NodeJS.Timeout {
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
      // A bucket recreated, or restored from an older copy (its last revision now below ours): a consumer that
      // resumes by itself would skip every revision up to ours, so read the location afresh instead.
      kv.status().then(
        (st) => {
          const { created } = st.streamInfo;
          const last = st.streamInfo.state.last_seq;
          if (created === this.bucket && last >= this.revision) return;
          this.opts.log.warn(
            { revision: this.revision, last, recreated: created !== this.bucket },
            'the intents bucket went back or was re-created; reading it afresh',
          );
          watch.stop();
        },
        () => undefined,
      );
    }, this.opts.watchdogMs ?? 5000);
  }

  /**
   * Marks the view {@link current} once a resumed watch has caught up: its consumer has nothing pending and
   * every message it delivered has been applied (revision ≥ its last delivered stream sequence).
   */
  private catchUp(watch: { stop(): void }): NodeJS.Timeout | undefined {
    const consumer = (
      watch as {
        _data?: {
          info(cached?: boolean): Promise<{ num_pending: number; delivered: { stream_seq: number } }>;
        };
      }
    )._data;
    if (!consumer) return undefined;
    const timer = setInterval(() => {
      if (this.current) {
        clearInterval(timer);
        return;
      }
      consumer.info(false).then(
        (info) => {
          if (this.current || info.num_pending > 0 || info.delivered.stream_seq > this.revision) return;
          this.current = true;
          clearInterval(timer);
          this.opts.log.info(
            { revision: this.revision },
            'intents current with NATS: removals may follow them',
          );
          this.emit('change');
        },
        () => undefined,
      );
    }, 250);
    return timer;
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.openBucket();
        const filter = this.opts.subjects.intentFilter(this.opts.location);
        const status = await kv.status();
        const last = status.streamInfo.state.last_seq;
        const created = status.streamInfo.created;
        let from: number;
        if (this.synced && this.revision > 0 && this.revision <= last && created === this.bucket) {
          // Resume from the revision we have: the bucket keeps the latest message of every key, delete markers
          // included, so every change after our revision is still there to be delivered.
          from = this.revision + 1;
          this.resumes++;
          this.opts.log.info({ revision: this.revision, behind: last - this.revision }, 'resuming intents');
        } else {
          // Nothing to resume from, the bucket was re-created, or it lost writes (restored from an older
          // copy): read the location's keys in revision order, then follow from where the read started.
          from = last + 1;
          const entries: Array<{ revision: number; entry: ViewEntry }> = [];
          for await (const key of await kv.keys(filter)) {
            const e = await kv.get(key);
            if (e?.operation !== 'PUT') continue;
            entries.push({ revision: e.revision, entry: this.entryOf(e.key, e.operation, e.value) });
          }
          entries.sort((a, b) => a.revision - b.revision);
          const sameBucket = created === this.bucket;
          if (this.bucket && !sameBucket)
            this.opts.log.warn({ created }, 'the intents bucket was re-created');
          else if (this.revision > last)
            this.opts.log.warn(
              { revision: this.revision, last },
              'the intents bucket lost writes we had seen',
            );
          const read = fullRead(
            this.view,
            entries.map((e) => e.entry),
            sameBucket,
          );
          this.applyAll(read.stale.map((stale) => ({ view: read.view, stale })));
          this.view = read.view;
          this.bucket = created;
          this.revision = last;
          this.fullReads++;
          this.synced = true;
          this.current = true;
          this.save();
          this.noteTrust();
          this.emit('change');
        }
        const watch = await kv.watch({ key: filter, resumeFromRevision: from });
        this.watch = watch;
        if (this.stopped) watch.stop();
        const watchdog = this.watchdog(watch, kv);
        const catchUp = this.current ? undefined : this.catchUp(watch);
        try {
          for await (const e of watch) {
            if (this.stopped) break;
            // Read by the apply benchmark (bench/apply.ts): when this agent heard of an intent change.
            this.opts.log.debug({ key: e.key, revision: e.revision, op: e.operation }, 'intent received');
            this.revision = Math.max(this.revision, e.revision);
            const a = apply(this.view, this.entryOf(e.key, e.operation, e.value));
            this.applyAll([a]);
            this.view = a.view;
            this.save();
            this.noteTrust();
            this.emit('change');
          }
        } finally {
          clearInterval(watchdog);
          if (catchUp) clearInterval(catchUp);
        }
      } catch (err) {
        if (this.stopped) return;
        this.opts.log.warn({ err: (err as Error).message }, 'intent watch ended; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
