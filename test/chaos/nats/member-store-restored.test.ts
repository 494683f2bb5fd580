/**
 * Acknowledged writes lost on one member (issue 14, NATS): three members, the intents bucket (R3) written by the
 * real IntentStore. The stream leader's store directory is copied, more intent writes are acknowledged, then the
 * member is stopped and its older copy put back (a disk restored from a backup, or the writes its lazy fsync never
 * made durable before a power cut) and it is started again; the stream leader is then stepped down until the
 * restored member leads, if the others let it.
 *
 * What must hold: raft brings the restored member up to date instead of letting it win with its older log — every
 * acknowledged write is still there, the three replicas agree key by key (direct gets from each member), and the
 * store needs no repair (a repair here would mean NATS lost acknowledged writes). The whole cluster losing them (a
 * single server restored, or every member) is fencing/bucket-repair.test.ts: the leader restores the bucket.
 */
import fs from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { IntentStore } from '../../../coordinator/intents/store.js';
import { createLogger } from '../../../shared/log.js';
import { connectNats } from '../../../shared/nats/connect.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { cleanup, startNatsClusterForTest, tempDir, waitFor } from '../../harness/index.js';
import { testIntent } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';
import { chaosLevel } from '../settings.js';

const log = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const subjects = new Subjects('edge');
const STREAM = `KV_${subjects.intentsBucket}`;
const LOCATION = 'loc-restore';
const WORKLOADS = 8;
/** Acknowledged writes made after the copy. */
const WRITES = chaosLevel({ test: 60, chaos: 400 });
const WAIT = { timeoutMs: 90_000, intervalMs: 250 };

async function client(servers: string[], name = 'test'): Promise<NatsConnection> {
  const nc = await connectNats({ servers, name });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

async function leaderOf(nc: NatsConnection): Promise<string | undefined> {
  try {
    return (
      (await (await jetstreamManager(nc, { timeout: 2000 })).streams.info(STREAM)).cluster?.leader ||
      undefined
    );
  } catch {
    return undefined;
  }
}

const intent = (w: number, replicas: number) =>
  testIntent({
    location: LOCATION,
    namespace: 'default',
    workload: `w${w}`,
    hosts: Array.from({ length: replicas }, (_, i) => `h${i}`),
  });

describe('one member restored from an older copy of its store', () => {
  it('loses no acknowledged intent write: raft catches it up, the replicas agree, no repair needed', async () => {
    const cluster = await startNatsClusterForTest({ size: 3, jetstream: true });
    const nc = await client(cluster.urls);
    const store = new IntentStore({ nc, subjects, log, writer: 'leader', replicas: 3, resyncMs: 0 });
    await store.start();
    for (let w = 0; w < WORKLOADS; w++) await store.put(intent(w, 1));
    const leader = await waitFor('a stream leader', () => leaderOf(nc), WAIT);
    const victim = cluster.servers.find((s) => s.serverName === leader)!;

    // The copy: the leader stopped cleanly, its store copied, started again and caught up.
    await victim.stop();
    const old = tempDir('edgeplane-nats-old-');
    fs.cpSync(victim.storeDir, old, { recursive: true });
    await victim.restart();
    await cluster.waitForMetaLeader();

    // Acknowledged writes the copy does not have; what each key must hold at the end.
    const expected = new Map<string, number>();
    let acknowledged = 0;
    for (let i = 0; i < WRITES; i++) {
      const w = i % WORKLOADS;
      const replicas = 2 + (i % 5);
      await waitFor(
        'an acknowledged write',
        () =>
          store.put(intent(w, replicas)).then(
            () => true,
            () => false,
          ),
        WAIT,
      );
      acknowledged++;
      expected.set(subjects.intentKey(LOCATION, 'default', `w${w}`), replicas);
    }
    const jsm = await jetstreamManager(nc);
    const lastSeq = (await jsm.streams.info(STREAM)).state.last_seq;

    // The older copy put back, the member started again.
    await victim.stop();
    fs.rmSync(victim.storeDir, { recursive: true, force: true });
    fs.cpSync(old, victim.storeDir, { recursive: true });
    const restartedAt = Date.now();
    await victim.restart();
    await cluster.waitForMetaLeader();
    // Try to make the restored member the stream leader.
    let restoredLed = false;
    for (let i = 0; i < 6 && !restoredLed; i++) {
      await nc
        .request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`, '', { timeout: 5000 })
        .catch(() => undefined);
      const l = await waitFor('a stream leader after the step-down', () => leaderOf(nc), WAIT);
      restoredLed = l === victim.serverName;
    }

    // Every member's view of every key, by direct get (any replica answers for itself).
    const direct = await Promise.all(cluster.servers.map((s) => client([s.url], `direct-${s.serverName}`)));
    const views = await waitFor(
      'the three replicas agree',
      async () => {
        const out: string[] = [];
        for (const d of direct) {
          const m = await jetstreamManager(d);
          const parts: string[] = [];
          for (const key of [...expected.keys()].sort()) {
            const msg = await m.direct
              .getMessage(STREAM, { last_by_subj: `$KV.${subjects.intentsBucket}.${key}` })
              .catch(() => undefined);
            const n = msg ? (JSON.parse(msg.string()) as { instances: unknown[] }).instances.length : -1;
            parts.push(`${key}=${n}@${msg?.seq ?? '-'}`);
          }
          out.push(parts.join(' '));
        }
        return new Set(out).size === 1 ? out : undefined;
      },
      WAIT,
    ).catch(() => undefined);
    const caughtUpMs = Date.now() - restartedAt;
    const kv = await new Kvm(nc).open(subjects.intentsBucket);
    const lost: string[] = [];
    for (const [key, replicas] of expected) {
      const e = await kv.get(key);
      const n =
        e?.operation === 'PUT' ? (JSON.parse(e.string()) as { instances: unknown[] }).instances.length : -1;
      if (n !== replicas) lost.push(`${key}: ${n} instead of ${replicas}`);
    }
    const lastSeqAfter = (await jsm.streams.info(STREAM)).state.last_seq;
    const repair = await store.repair();
    reportFigures({
      scenario: 'nats/member-store-restored',
      passed: lost.length === 0 && !!views && repair.rewritten.length === 0 && lastSeqAfter >= lastSeq,
      acknowledgedAfterCopy: acknowledged,
      restoredMemberLed: restoredLed,
      replicasAgreeAfterS: +(caughtUpMs / 1000).toFixed(1),
      lost: lost.length,
      streamWentBack: lastSeqAfter < lastSeq,
      repairedKeys: repair.rewritten.length + repair.deleted.length,
    });
    expect(lost).toEqual([]);
    expect(views, 'the three replicas agree').toBeDefined();
    expect(lastSeqAfter).toBeGreaterThanOrEqual(lastSeq);
    expect(repair.rewritten).toEqual([]);
    expect(repair.deleted).toEqual([]);
    store.stop();
  }, 600_000);
});
