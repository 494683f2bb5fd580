/**
 * Lost or changed KV data (issue 14): the intents bucket loses keys, has a value edited behind our back, is
 * deleted and recreated empty, and has its store directory restored from an older copy (acknowledged writes
 * lost). The real IntentStore (the leader's writer, resyncing every second here) restores what it wrote within
 * a bound, and a real IntentWatcher (the agent's reader) never drops an intent meanwhile: it holds removals
 * while no marker of the coordinator vouches for the bucket, and ignores older values a restore brings back.
 * Before the fix nothing restored the bucket until a Workload changed, and an agent that found an empty,
 * recreated bucket dropped every intent (so its reconciler removed every instance).
 */
import fs from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { IntentWatcher } from '../../../agent/intents.js';
import { IntentStore } from '../../../coordinator/intents/store.js';
import { createLogger } from '../../../shared/log.js';
import { connectNats } from '../../../shared/nats/connect.js';
import { encode } from '../../../shared/nats/messages.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { cleanup, tempDir, useNats, waitFor } from '../../harness/index.js';
import { testIntent } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';

const log = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const subjects = new Subjects('edge');
const LOCATION = 'loc-repair';
const RESYNC_MS = 1000;
const WAIT = { timeoutMs: 60_000, intervalMs: 50 };

async function client(servers: string[]): Promise<NatsConnection> {
  const nc = await connectNats({ servers, name: 'test' });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

const intent = (workload: string, hosts: string[]) =>
  testIntent({ location: LOCATION, namespace: 'default', workload, hosts });
const key = (workload: string) => subjects.intentKey(LOCATION, 'default', workload);

describe('the intents bucket loses or changes data', () => {
  const nats = useNats({ jetstream: true });

  it('the leader restores it within a bound; the agent drops no intent meanwhile', async () => {
    const store = new IntentStore({
      nc: await client([nats().url]),
      subjects,
      log,
      writer: 'leader',
      resyncMs: 0,
    });
    await store.start();
    // The coordinator's resync timer, driven here so that one step can let the agent see the damage first.
    let resyncing = true;
    const resync = setInterval(() => {
      if (resyncing) store.resync().catch(() => undefined);
    }, RESYNC_MS);
    cleanup(() => clearInterval(resync));
    for (const w of ['a', 'b', 'c']) await store.put(intent(w, ['h1', 'h2']));
    const watcher = new IntentWatcher({
      nc: await client([nats().url]),
      subjects,
      location: LOCATION,
      stateDir: tempDir(),
      log,
      watchdogMs: 500,
    });
    await watcher.start();
    cleanup(() => watcher.stop());
    const names = () =>
      watcher
        .all()
        .map((i) => i.workload)
        .sort()
        .join(',');
    await waitFor(
      'the agent trusts its 3 intents',
      () => names() === 'a,b,c' && watcher.trust().trusted,
      WAIT,
    );

    // What the agent would run, sampled all along: it must never lose an intent nor see one edited.
    const violations: string[] = [];
    let sampling = true;
    const sampler = setInterval(() => {
      if (!sampling) return;
      const all = watcher.all();
      if (names() !== 'a,b,c') violations.push(`intents ${names()}`);
      for (const i of all)
        if (i.instances.map((x) => x.host).join(',') !== 'h1,h2') violations.push(`${i.workload} edited`);
    }, 20);
    cleanup(() => clearInterval(sampler));

    let kv = await new Kvm(await client([nats().url])).open(subjects.intentsBucket);
    const holds = async (w: string) => {
      const e = await kv.get(key(w));
      const v =
        e?.operation === 'PUT'
          ? (JSON.parse(e.string()) as { writer?: string; instances: unknown[] })
          : undefined;
      return v?.writer === 'leader' && v.instances.length === 2;
    };
    const restored = async (what: string) => {
      const t0 = Date.now();
      await waitFor(
        `${what}: restored`,
        async () => (await holds('a')) && (await holds('b')) && (await holds('c')) && watcher.trust().trusted,
        WAIT,
      );
      return Date.now() - t0;
    };
    const figures: Record<string, number> = {};

    // 1. Keys deleted behind our back.
    await kv.delete(key('a'));
    await kv.purge(key('b'));
    figures.keysDeletedRestoredMs = await restored('keys deleted');

    // 2. A value edited behind our back (another writer, no epoch).
    await kv.put(key('c'), encode(intent('c', ['h9'])));
    figures.valueEditedRestoredMs = await restored('value edited');

    // 3. The bucket deleted, and recreated empty (as by an operator) before the leader notices.
    resyncing = false;
    const reads = watcher.fullReads;
    const jsm = await jetstreamManager(await client([nats().url]));
    await jsm.streams.delete(`KV_${subjects.intentsBucket}`);
    kv = await new Kvm(await client([nats().url])).create(subjects.intentsBucket, { history: 1 });
    await waitFor('the agent read the recreated bucket', () => watcher.fullReads > reads, WAIT);
    // The agent holds: everything it ran stays, and it says why.
    expect(watcher.trust()).toMatchObject({ trusted: false, reason: expect.stringMatching(/no marker/) });
    expect(watcher.held().length).toBe(3);
    resyncing = true;
    figures.bucketRecreatedRestoredMs = await restored('bucket recreated');

    // 4. The store directory restored from an older copy: acknowledged writes lost.
    await nats().stop();
    const old = tempDir();
    fs.cpSync(nats().storeDir, old, { recursive: true });
    await nats().restart();
    // Acknowledged writes that the older copy will not have: d created and deleted, a changed twice.
    sampling = false;
    const write = (f: () => Promise<unknown>) =>
      waitFor(
        'a write after the restart',
        () =>
          f().then(
            () => true,
            () => false,
          ),
        WAIT,
      );
    await write(() => store.put(intent('d', ['h1', 'h2'])));
    await waitFor('the agent has d', () => names() === 'a,b,c,d', WAIT);
    await write(() => store.put(intent('a', ['h1', 'h2', 'h3'])));
    await write(() => store.delete(key('d')));
    await write(() => store.put(intent('a', ['h1', 'h2'])));
    await waitFor(
      'the agent dropped d',
      () => names() === 'a,b,c' && watcher.all()[0]!.instances.length === 2,
      WAIT,
    );
    sampling = true;
    const before = { repairs: store.repairs, reads: watcher.fullReads };
    await nats().stop();
    fs.rmSync(nats().storeDir, { recursive: true, force: true });
    fs.cpSync(old, nats().storeDir, { recursive: true });
    const t0 = Date.now();
    await nats().restart();
    kv = await new Kvm(await client([nats().url])).open(subjects.intentsBucket);
    await waitFor(
      'older copy: repaired, and the agent read it and trusts it again',
      async () =>
        store.repairs > before.repairs &&
        watcher.fullReads > before.reads &&
        (await holds('a')) &&
        watcher.trust().trusted,
      WAIT,
    );
    figures.olderCopyRestoredMs = Date.now() - t0;
    clearInterval(sampler);

    const passed = violations.length === 0;
    reportFigures({
      scenario: 'fencing/bucket-repair',
      passed,
      resyncMs: RESYNC_MS,
      ...figures,
      repairs: store.repairs,
      repairedKeys: store.repairedKeys,
      agentStaleIgnored: watcher.staleIntents,
    });
    expect(violations.slice(0, 5)).toEqual([]);
  }, 300_000);
});
