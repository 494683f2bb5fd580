/**
 * Instances kept in a JetStream KV bucket instead of etcd (`--instances-api=aggregated`): one key per Instance
 * (`<namespace>.<name>`), the object as JSON. The bucket's sequence numbers are the resourceVersions: every
 * change has one, strictly increasing across the bucket, so a list's resourceVersion is simply the last one seen.
 *
 * One watch of the whole bucket keeps an in-memory mirror (what the controllers read, as they read a
 * ResourceCache) and a bounded history of changes (what API watches replay, watch.ts). Writes go to the bucket
 * only — create-if-absent, compare-and-set updates retried on a conflict, deletes — and come back through the
 * watch, as writes through kube-apiserver come back through an informer. The bucket is replicated like the
 * intents (`--kv-replicas`), so a new leader finds every Instance where the last one left them.
 */
import crypto from 'node:crypto';
import { ApiException } from '@kubernetes/client-node';
import { type KV, type KvEntry, Kvm, KvWatchInclude } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import type { InstanceCache, InstanceObject, InstanceWrites } from '../workloads/types.js';
import { mergePatch } from './merge-patch.js';
import { INSTANCES_GROUP, STORAGE_VERSION } from './versions.js';
import { appendHistory, type WatchEvent } from './watch.js';

/** What the store needs. */
export interface InstanceStoreOptions {
  /** The coordinator's NATS connection. */
  nc: NatsConnection;
  /** Bucket name (Subjects.instancesBucket). */
  bucket: string;
  /** Bucket replicas. */
  replicas: number;
  /** Logger. */
  log: Logger;
  /** Changes kept for watches from an older resourceVersion (default 10,000). */
  historyLimit?: number;
}

/** A change listener of the API server (watch.ts events, in revision order). */
export type ChangeListener = (e: WatchEvent) => void;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The KV key of an Instance. */
export function instanceStoreKey(namespace: string, name: string): string {
  return `${namespace}.${name}`;
}

/** A Kubernetes-style API error (what isConflict/isNotFound recognise). */
function apiError(code: number, reason: string, message: string): ApiException<unknown> {
  return new ApiException(
    code,
    message,
    { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code },
    {},
  );
}

export class InstanceStore implements InstanceCache, InstanceWrites {
  private kv: KV | undefined;
  private readonly objects = new Map<string, InstanceObject>();
  private readonly handlers: Array<(o: InstanceObject, e: 'add' | 'update' | 'delete') => void> = [];
  private readonly listeners = new Set<ChangeListener>();
  private stopWatch: (() => void) | undefined;
  private started = false;
  /** The last revision taken in (the list's resourceVersion). */
  revision = 0;
  /** Changes after {@link compactedThrough}, oldest first. */
  readonly history: WatchEvent[] = [];
  /** Revision through which changes were dropped from the history. */
  compactedThrough = 0;

  constructor(private readonly o: InstanceStoreOptions) {}

  /** Opens (or creates) the bucket, starts following it and reads every key; resolves once all are in. */
  async start(): Promise<void> {
    this.kv = await new Kvm(this.o.nc).create(this.o.bucket, { history: 1, replicas: this.o.replicas });
    const status = await this.kv.status();
    const last = (status as unknown as { streamInfo: { state: { last_seq: number } } }).streamInfo.state
      .last_seq;
    // Nothing before the first read is in the history: a watch from before it relists.
    this.revision = this.compactedThrough = last;
    const watch = await this.kv.watch({ include: KvWatchInclude.UpdatesOnly });
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const e of watch) this.learn(e);
    })().catch((err) => this.o.log.warn({ err: (err as Error).message }, 'instances watch ended'));
    for await (const key of await this.kv.keys()) {
      const e = await this.kv.get(key);
      if (e && e.revision <= last) this.learn(e);
    }
    this.started = true;
    this.o.log.info({ bucket: this.o.bucket, instances: this.objects.size }, 'instance store ready');
  }

  async stop(): Promise<void> {
    this.stopWatch?.();
    this.listeners.clear();
  }

  get isStarted(): boolean {
    return this.started;
  }

  onChange(handler: (o: InstanceObject, e: 'add' | 'update' | 'delete') => void): void {
    this.handlers.push(handler);
  }

  /** Follows every change after this call (the API server's watches). Returns the unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(namespace?: string): InstanceObject[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  get(namespace: string | undefined, name: string): InstanceObject | undefined {
    return this.objects.get(instanceStoreKey(namespace ?? '', name));
  }

  /** Takes in one entry of the bucket (initial read or watch); older than what is known: ignored. */
  private learn(e: KvEntry): void {
    const known = this.objects.get(e.key);
    if (known && Number(known.metadata.resourceVersion) >= e.revision) return;
    if (e.revision <= this.revision && this.started) return;
    let event: WatchEvent | undefined;
    if (e.operation === 'PUT') {
      let obj: InstanceObject;
      try {
        obj = JSON.parse(dec.decode(e.value)) as InstanceObject;
      } catch {
        this.o.log.warn({ key: e.key, revision: e.revision }, 'unreadable instance in the bucket; skipped');
        return;
      }
      obj.metadata.resourceVersion = String(e.revision);
      this.objects.set(e.key, obj);
      event = known
        ? { type: 'MODIFIED', object: obj, previous: known, revision: e.revision }
        : { type: 'ADDED', object: obj, revision: e.revision };
    } else if (known) {
      this.objects.delete(e.key);
      const gone = { ...known, metadata: { ...known.metadata, resourceVersion: String(e.revision) } };
      event = { type: 'DELETED', object: gone, revision: e.revision };
    }
    this.revision = Math.max(this.revision, e.revision);
    if (!event) return;
    this.compactedThrough = appendHistory(
      this.history,
      this.compactedThrough,
      event,
      this.o.historyLimit ?? 10_000,
    );
    for (const l of this.listeners) l(event);
    const kind = event.type === 'ADDED' ? 'add' : event.type === 'MODIFIED' ? 'update' : 'delete';
    for (const h of this.handlers) h(event.object as InstanceObject, kind);
  }

  private bucket(): KV {
    if (!this.kv) throw new Error('instance store not started');
    return this.kv;
  }

  async create(obj: InstanceObject): Promise<InstanceObject> {
    const namespace = obj.metadata.namespace ?? '';
    const stored: InstanceObject = {
      ...obj,
      apiVersion: `${INSTANCES_GROUP}/${STORAGE_VERSION}`,
      metadata: {
        ...obj.metadata,
        namespace,
        uid: crypto.randomUUID(),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        generation: 1,
      },
    };
    delete stored.metadata.resourceVersion;
    try {
      const revision = await this.bucket().create(
        instanceStoreKey(namespace, obj.metadata.name),
        enc.encode(JSON.stringify(stored)),
      );
      return { ...stored, metadata: { ...stored.metadata, resourceVersion: String(revision) } };
    } catch (err) {
      if (/wrong last sequence|key exists/i.test((err as Error).message))
        throw apiError(409, 'AlreadyExists', `instances "${obj.metadata.name}" already exists`);
      throw err;
    }
  }

  async delete(namespace: string, name: string): Promise<void> {
    const key = instanceStoreKey(namespace, name);
    if (!this.objects.has(key)) {
      const e = await this.bucket().get(key);
      if (e?.operation !== 'PUT') return;
    }
    await this.bucket().delete(key);
  }

  /** JSON merge patch of the Instance (compare-and-set on its revision, retried on a conflict). */
  patch(namespace: string, name: string, body: object): Promise<InstanceObject> {
    return this.update(namespace, name, (current) => mergePatch(current, body) as InstanceObject);
  }

  /** Replaces .status (what the status writer computed is the whole status). */
  patchStatus(namespace: string, name: string, status: unknown): Promise<InstanceObject> {
    return this.update(namespace, name, (current) => ({
      ...current,
      status: status as InstanceObject['status'],
    }));
  }

  private async update(
    namespace: string,
    name: string,
    change: (current: InstanceObject) => InstanceObject,
  ): Promise<InstanceObject> {
    const key = instanceStoreKey(namespace, name);
    for (let attempt = 0; ; attempt++) {
      const e = await this.bucket().get(key);
      if (e?.operation !== 'PUT') throw apiError(404, 'NotFound', `instances "${name}" not found`);
      const current = JSON.parse(dec.decode(e.value)) as InstanceObject;
      const next = change(current);
      // What a patch may not change.
      next.metadata = { ...next.metadata, name, namespace, uid: current.metadata.uid };
      next.apiVersion = current.apiVersion;
      next.kind = current.kind;
      delete next.metadata.resourceVersion;
      try {
        const revision = await this.bucket().update(key, enc.encode(JSON.stringify(next)), e.revision);
        return { ...next, metadata: { ...next.metadata, resourceVersion: String(revision) } };
      } catch (err) {
        if (attempt < 5 && /wrong last sequence/i.test((err as Error).message)) continue;
        throw err;
      }
    }
  }
}
