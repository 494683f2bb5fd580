/**
 * Writes deployment intents into the JetStream KV bucket, one key per (location, Workload). Every write is a
 * compare-and-set against the revision this coordinator last saw, so two coordinators can never interleave;
 * an unchanged intent is not rewritten.
 */
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { type DeploymentIntent, encode, type ResolvedValues } from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';

export class IntentStore {
  private kv: KV | undefined;
  private written = new Map<string, { revision: number; body: string }>();

  constructor(
    private readonly opts: { nc: NatsConnection; subjects: Subjects; log: Logger; replicas?: number },
  ) {}

  /** Opens (or creates) the bucket and reads what is in it. */
  async start(): Promise<void> {
    const kvm = new Kvm(this.opts.nc);
    this.kv = await kvm.create(this.opts.subjects.intentsBucket, { history: 1, replicas: this.opts.replicas ?? 1 });
    for await (const key of await this.kv.keys()) {
      const e = await this.kv.get(key);
      if (e && e.operation === 'PUT') this.written.set(key, { revision: e.revision, body: e.string() });
    }
    this.opts.log.info({ bucket: this.opts.subjects.intentsBucket, keys: this.written.size }, 'intent store ready');
  }

  /** Keys currently in the bucket for one Workload (any location). */
  keysOf(namespace: string, workload: string): string[] {
    const suffix = `.${namespace}.${workload}`;
    return [...this.written.keys()].filter((k) => k.endsWith(suffix));
  }

  /**
   * Writes the intent when it differs from what is stored (the updatedAt field does not count).
   * `values` (resolved Secret/ConfigMap data) are sealed to each receiving host's key into `intent.sealed`;
   * they are never written in clear text.
   */
  async put(intent: DeploymentIntent, values?: ResolvedValues): Promise<boolean> {
    if (values && (Object.keys(values.env).length || Object.keys(values.files).length || values.registryAuth.length)) {
      // Sealing per host lands with the NATS security work; until then secret values are not sent at all.
      this.opts.log.warn({ workload: `${intent.namespace}/${intent.workload}` }, 'secret values not sent: sealing not available yet');
    }
    const kv = this.kv!;
    const key = this.opts.subjects.intentKey(intent.location, intent.namespace, intent.workload);
    const comparable = JSON.stringify({ ...intent, updatedAt: undefined });
    const prev = this.written.get(key);
    if (prev && prev.body && JSON.stringify({ ...JSON.parse(prev.body), updatedAt: undefined }) === comparable) return false;
    const body = JSON.stringify(intent);
    for (let attempt = 0; ; attempt++) {
      try {
        const current = this.written.get(key);
        const revision = current ? await kv.update(key, encode(intent), current.revision) : await kv.create(key, encode(intent));
        this.written.set(key, { revision, body });
        return true;
      } catch (err) {
        if (attempt >= 3) throw err;
        // Someone else wrote the key (another coordinator, or a stale cache): re-read and try again.
        const e = await kv.get(key);
        if (e && e.operation === 'PUT') this.written.set(key, { revision: e.revision, body: e.string() });
        else if (e) this.written.set(key, { revision: e.revision, body: '' });
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
