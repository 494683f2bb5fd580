/**
 * The NATS protocol between coordinator and agents on real nats-servers: intents written with a bucket-wide
 * compare-and-set and an epoch (a deposed writer writes nothing after the new one's first write), agents that resume from the revision they have after a restart or a server
 * restart, malformed and newer messages, secret values sealed per host, and a three-server cluster that loses
 * a member while intents keep flowing.
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { IntentWatcher } from '../../agent/intents.js';
import { HostRegistry } from '../../coordinator/hosts/registry.js';
import {
  IntentStore,
  IntentStoreDeposedError,
  IntentTooLargeError,
} from '../../coordinator/intents/store.js';
import { createLogger } from '../../shared/log.js';
import { connectNats } from '../../shared/nats/connect.js';
import { type HostReport, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { newSealKey } from '../../shared/nats/seal.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup, startNatsClusterForTest, tempDir, useNats, waitFor } from '../harness/index.js';
import { testIntent } from '../harness/objects.js';

const log = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const subjects = new Subjects('edge');

async function client(servers: string[]): Promise<NatsConnection> {
  const nc = await connectNats({ servers, name: 'test' });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

/** The intent of `workload` in `location`: one instance on each of `hosts`. */
const intent = (location: string, workload: string, hosts: string[]) =>
  testIntent({ location, namespace: 'default', workload, hosts, templateHash: 'h1' });

/** How long the waits of this file wait: a message, on local servers. */
const WAIT = { timeoutMs: 15_000, intervalMs: 50 };

/** Retries `f` until it does not throw (what the level-triggered coordinator does after a server restart). */
const retry = (what: string, f: () => Promise<unknown>, timeoutMs = 30_000) =>
  waitFor(
    what,
    async () => {
      await f();
      return true;
    },
    { timeoutMs, intervalMs: 250 },
  );

function watcher(
  nc: NatsConnection,
  location: string,
  stateDir: string,
  host?: string,
  sealKey = newSealKey(),
) {
  const w = new IntentWatcher({ nc, subjects, location, stateDir, log, ...(host ? { host, sealKey } : {}) });
  cleanup(() => w.stop());
  return w;
}

function report(host: string, extra: Record<string, unknown> = {}): HostReport {
  return {
    v: MESSAGE_VERSION,
    host,
    location: 'loc-a',
    labels: {},
    capacity: { cpuMillis: 1000, memoryBytes: 2 ** 30 },
    allocatable: { cpuMillis: 1000, memoryBytes: 2 ** 30 },
    runtimes: ['gvisor'],
    agentVersion: 'test',
    startedAt: new Date().toISOString(),
    seq: 1,
    heartbeatMs: 1000,
    instances: [],
    time: new Date().toISOString(),
    ...extra,
  } as HostReport;
}

describe('intents on one nats-server', () => {
  const nats = useNats({ jetstream: true });

  it('two writers are fenced: once a newer store took the bucket, the older one writes nothing, ever', async () => {
    const kv = await new Kvm(await client([nats().url])).create(subjects.intentsBucket, { history: 1 });
    const writes: Array<{ key: string; writer?: string; epoch?: number }> = [];
    const watch = await kv.watch({ key: '>' });
    cleanup(() => watch.stop());
    void (async () => {
      for await (const e of watch)
        if (e.operation === 'PUT') writes.push({ key: e.key, ...(JSON.parse(e.string()) as object) });
    })();
    const a = new IntentStore({ nc: await client([nats().url]), subjects, log, writer: 'a', resyncMs: 0 });
    const b = new IntentStore({ nc: await client([nats().url]), subjects, log, writer: 'b', resyncMs: 0 });
    await a.start();
    expect(await a.put(intent('loc-cas', 'web', ['h1']))).toBe(true);
    await b.start(); // the new leader: takes a higher epoch and restamps web, unchanged
    expect(b.epoch).toBeGreaterThan(a.epoch);
    // a still believes it leads (a paused ex-leader waking up): the bucket refuses it, and it stands down.
    await expect(a.put(intent('loc-cas', 'web', ['h3']))).rejects.toThrow(IntentStoreDeposedError);
    expect(a.deposedBy).toEqual({ writer: 'b', epoch: b.epoch });
    await expect(a.delete(subjects.intentKey('loc-cas', 'default', 'web'))).rejects.toThrow(
      IntentStoreDeposedError,
    );
    const e = await kv.get(subjects.intentKey('loc-cas', 'default', 'web'));
    const stored = JSON.parse(e!.string());
    expect(stored.instances.map((i: { host: string }) => i.host)).toEqual(['h1']);
    expect({ writer: stored.writer, epoch: stored.epoch }).toEqual({ writer: 'b', epoch: b.epoch });

    // Racing on one key: every write of a is refused; b's land.
    const raced = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => [
        a.put(intent('loc-cas', 'race', [`a${i}`])),
        b.put(intent('loc-cas', 'race', [`b${i}`])),
      ]).flat(),
    );
    expect(raced.filter((r, i) => i % 2 === 0 && r.status === 'fulfilled')).toEqual([]);
    expect(raced.filter((r, i) => i % 2 === 1 && r.status === 'rejected')).toEqual([]);
    await waitFor('the race seen', () => writes.some((w) => w.key.endsWith('.race')), WAIT);
    const firstOfB = writes.findIndex((w) => w.writer === 'b');
    expect(firstOfB).toBeGreaterThanOrEqual(0);
    expect(writes.slice(firstOfB).filter((w) => w.writer === 'a')).toEqual([]);

    // An unchanged intent (only updatedAt differs) is not rewritten.
    const before = b.writes;
    await b.put(intent('loc-cas', 'web', ['h1']));
    expect(b.writes).toBe(before);
    // Nor by a restarted coordinator that finds it in the bucket.
    const restarted = new IntentStore({ nc: await client([nats().url]), subjects, log, resyncMs: 0 });
    await restarted.start();
    expect(await restarted.put(intent('loc-cas', 'web', ['h1']))).toBe(false);
    expect(await restarted.put(intent('loc-cas', 'web', ['h4']))).toBe(true);
  });

  it('an intent larger than the server takes is refused before sending, with a clear error; nothing is written', async () => {
    const store = new IntentStore({ nc: await client([nats().url]), subjects, log, resyncMs: 0 });
    await store.start();
    const huge = { ...intent('loc-big', 'web', ['h1']), template: { image: 'x'.repeat(2 * 1024 * 1024) } };
    const writes = store.writes;
    await expect(store.put(huge)).rejects.toThrow(IntentTooLargeError);
    await expect(store.put(huge)).rejects.toThrow(/max_payload of \d+ bytes/);
    expect(store.writes).toBe(writes);
    expect(store.tooLarge).toBe(2);
    expect(store.keysOf('default', 'web').filter((k) => k.startsWith('loc-big.'))).toEqual([]);
    // The store keeps working for everything else.
    expect(await store.put(intent('loc-big', 'small', ['h1']))).toBe(true);
  });

  it('an agent sees only its location, and resumes from its revision after a restart (changes and deletions made while it was away)', async () => {
    const store = new IntentStore({ nc: await client([nats().url]), subjects, log });
    await store.start();
    await store.put(intent('loc-r', 'one', ['h1']));
    await store.put(intent('loc-r', 'two', ['h1']));
    await store.put(intent('loc-other', 'one', ['h9']));
    const stateDir = tempDir();
    const nc = await client([nats().url]);
    const w1 = watcher(nc, 'loc-r', stateDir);
    await w1.start();
    await waitFor('both intents', () => w1.all().length === 2, WAIT);
    expect(w1.all().every((i) => i.location === 'loc-r')).toBe(true);
    expect(w1.fullReads).toBe(1);
    const revision = w1.lastRevision;
    w1.stop();

    await store.put(intent('loc-r', 'one', ['h1', 'h2']));
    await store.delete(subjects.intentKey('loc-r', 'default', 'two'));
    await store.put(intent('loc-r', 'three', ['h1']));

    const w2 = watcher(nc, 'loc-r', stateDir);
    await w2.start();
    // From disk at once (no NATS round trip needed), then the changes after its revision.
    expect(w2.synced).toBe(true);
    expect(w2.lastRevision).toBe(revision);
    await waitFor(
      'changes made while away',
      () => {
        const names = w2
          .all()
          .map((i) => i.workload)
          .sort()
          .join(',');
        return names === 'one,three' && w2.all().find((i) => i.workload === 'one')!.instances.length === 2;
      },
      WAIT,
    );
    expect(w2.resumes).toBe(1);
    expect(w2.fullReads).toBe(0);
    expect(w2.lastRevision).toBeGreaterThan(revision);
  });

  it('an agent keeps following across a nats-server restart', async () => {
    const store = new IntentStore({ nc: await client([nats().url]), subjects, log });
    await store.start();
    const nc = await client([nats().url]);
    const w = watcher(nc, 'loc-restart', tempDir());
    await w.start();
    await store.put(intent('loc-restart', 'web', ['h1']));
    await waitFor('first intent', () => w.all().length === 1, WAIT);
    await nats().restart();
    await retry('write after the restart', () => store.put(intent('loc-restart', 'web', ['h1', 'h2'])));
    await waitFor('intent written after the restart', () => w.all()[0]?.instances.length === 2, {
      ...WAIT,
      timeoutMs: 30_000,
    });
  });

  it('malformed messages are rejected and counted; newer fields are tolerated; nobody crashes', async () => {
    const nc = await client([nats().url]);
    const registry = new HostRegistry({ nc: await client([nats().url]), subjects, log });
    registry.start();
    cleanup(() => registry.stop());
    await new IntentStore({ nc, subjects, log }).start(); // the bucket exists (this test may run alone)
    const w = watcher(await client([nats().url]), 'loc-bad', tempDir());
    await w.start();
    await waitFor('watcher synced', () => w.synced, WAIT);

    nc.publish(subjects.hostReport('h-bad'), 'not json');
    nc.publish(subjects.hostReport('h-bad'), JSON.stringify({ v: 1, host: 'h-bad' }));
    nc.publish(subjects.hostReport('h-other'), JSON.stringify(report('h-bad'))); // claims another host
    nc.publish(
      subjects.hostReport('h-new'),
      JSON.stringify(report('h-new', { v: 7, futureField: { x: 1 } })),
    );
    await nc.flush();
    await waitFor('newer report accepted', () => registry.get('h-new'), WAIT);
    expect(registry.malformed).toBe(3);
    // Reports sent as requests are acknowledged: empty when accepted, the reason when rejected.
    const ack = await nc.request(subjects.hostReport('h-ack'), JSON.stringify(report('h-ack')), {
      timeout: 2000,
    });
    expect(ack.data.length).toBe(0);
    const nack = await nc.request(subjects.hostReport('h-ack'), '{"v":1}', { timeout: 2000 });
    expect(nack.string()).toMatch(/malformed message: host: /);
    expect(registry.malformed).toBe(4);
    expect(registry.get('h-bad')).toBeUndefined();

    const kv = await new Kvm(nc).open(subjects.intentsBucket);
    await kv.put(subjects.intentKey('loc-bad', 'default', 'garbage'), '{"v":1,"location":');
    await kv.put(
      subjects.intentKey('loc-bad', 'default', 'incomplete'),
      JSON.stringify({ v: 1, location: 'loc-bad' }),
    );
    await kv.put(
      subjects.intentKey('loc-bad', 'default', 'newer'),
      JSON.stringify({ ...intent('loc-bad', 'newer', ['h1']), v: 9, extra: [1] }),
    );
    await waitFor('newer intent', () => w.all().find((i) => i.workload === 'newer'), WAIT);
    expect(w.malformed).toBe(2);
    expect(w.all().map((i) => i.workload)).toEqual(['newer']);
  });

  it('secret values are sealed to each receiving host: only that host opens them, and the bucket never holds them in clear', async () => {
    const keyA = newSealKey();
    const keyB = newSealKey();
    const hostKeys: Record<string, string> = { 'h-a': keyA.getPublicKey(), 'h-b': keyB.getPublicKey() };
    const store = new IntentStore({
      nc: await client([nats().url]),
      subjects,
      log,
      hostKey: (h) => hostKeys[h],
    });
    await store.start();
    const values = { env: { main: { PASSWORD: 's3cr3t-value' } }, files: {}, registryAuth: [] };
    await store.put(intent('loc-seal', 'db', ['h-a', 'h-b', 'h-c']), values);

    const kv = await new Kvm(await client([nats().url])).open(subjects.intentsBucket);
    const raw = (await kv.get(subjects.intentKey('loc-seal', 'default', 'db')))!.string();
    expect(raw).not.toContain('s3cr3t-value');
    expect(Object.keys(JSON.parse(raw).sealed).sort()).toEqual(['h-a', 'h-b']); // h-c has no key yet

    const nc = await client([nats().url]);
    const a = watcher(nc, 'loc-seal', tempDir(), 'h-a', keyA);
    const wrong = watcher(nc, 'loc-seal', tempDir(), 'h-b', keyA); // h-b's entry with another host's key
    const c = watcher(nc, 'loc-seal', tempDir(), 'h-c');
    for (const w of [a, wrong, c]) await w.start();
    await waitFor('intents', () => a.all().length && wrong.all().length && c.all().length, WAIT);
    expect(a.all()[0]!.values?.env.main?.PASSWORD).toBe('s3cr3t-value');
    expect(wrong.all()[0]!.values).toBeUndefined();
    expect(wrong.unopened).toBeGreaterThan(0);
    expect(c.all()[0]!.values).toBeUndefined();

    // Re-sealing (new nonce) does not count as a change; new values do.
    const writes = store.writes;
    await store.put(intent('loc-seal', 'db', ['h-a', 'h-b', 'h-c']), values);
    expect(store.writes).toBe(writes);
    await store.put(intent('loc-seal', 'db', ['h-a', 'h-b', 'h-c']), {
      ...values,
      env: { main: { PASSWORD: 'rotated' } },
    });
    await waitFor('rotated value', () => a.all()[0]!.values?.env.main?.PASSWORD === 'rotated', WAIT);
  });
});

describe('intents on a cluster of three nats-servers', () => {
  it('keeps writing and delivering intents (R3 bucket) when a member is killed', async () => {
    const cluster = await startNatsClusterForTest({ size: 3, jetstream: true });
    const store = new IntentStore({ nc: await client(cluster.urls), subjects, log, replicas: 3 });
    await store.start();
    const w = watcher(await client([cluster.urls[1]!, cluster.urls[2]!]), 'loc-c', tempDir());
    await w.start();
    await store.put(intent('loc-c', 'web', ['h1']));
    await waitFor('intent before the kill', () => w.all().length === 1, { ...WAIT, timeoutMs: 30_000 });

    await cluster.servers[0]!.kill();
    // Writes may fail while the stream elects a new leader; the coordinator retries (level-triggered).
    await retry('write after the kill', () => store.put(intent('loc-c', 'web', ['h1', 'h2'])), 60_000);
    await waitFor('the write delivered to the agent', () => w.all()[0]?.instances.length === 2, {
      ...WAIT,
      timeoutMs: 60_000,
    });
    await retry('second write', () => store.put(intent('loc-c', 'api', ['h3'])));
    await waitFor('a second intent after the kill', () => w.all().length === 2, {
      ...WAIT,
      timeoutMs: 30_000,
    });
  });
});
