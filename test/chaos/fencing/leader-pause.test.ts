/**
 * A leader paused past `lostAfter` and past its Lease (issue 14, "no fencing between coordinators"): two
 * coordinators on a real kube-apiserver Lease and a real NATS, two agents. The leader is SIGSTOPped; the
 * standby takes the Lease and the intents bucket (a higher epoch in the fence) and the Workload is scaled
 * meanwhile, so the paused one has work queued when it wakes. After SIGCONT: no host is declared Lost, and —
 * read from every write to the bucket, each stamped with its writer and epoch — the old leader writes nothing
 * after the new leader's first write. Before the fix a compare-and-set conflict re-read the revision and
 * rewrote the whole intent, so an ex-leader waking up could overwrite the new leader's intents (client-go's
 * leader election gives no fencing).
 */
import { Kvm } from '@nats-io/kv';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../deploy/stack/proc.js';
import { connectNats } from '../../../shared/nats/connect.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { cleanup, waitFor } from '../../harness/index.js';
import { nginxWorkload } from '../../harness/objects.js';
import { pauseProcess } from '../faults.js';
import { reportFigures } from '../figures.js';
import { chaosLevel } from '../settings.js';
import { startTopology } from '../topology.js';

const LOST_AFTER_SECONDS = 10;
const LEASE_SECONDS = 6;
const PAUSE_SECONDS = chaosLevel({ test: 20, chaos: 40 });
const WAIT = { timeoutMs: 180_000, intervalMs: 500 };

describe('the leader paused past lostAfter and its Lease', () => {
  it('loses no host, and the old leader writes nothing after the new leader’s first write', async () => {
    const t = await startTopology({
      natsMembers: 1,
      coordinators: 2,
      locations: 1,
      agentsPerLocation: 2,
      lostAfterSeconds: LOST_AFTER_SECONDS,
      leaseSeconds: LEASE_SECONDS,
    });
    await t.waitForHostsReady();
    await t.kubectl(['create', 'namespace', 'fence']);
    await t.kubectl(['apply', '-n', 'fence', '-f', '-'], {
      input: nginxWorkload({ name: 'steady', replicas: 2 }),
    });
    const ready = async (n: number) =>
      (
        await t.kubectl([
          'get',
          'workload.compute.miloapis.com',
          'steady',
          '-n',
          'fence',
          '-o',
          'jsonpath={.status.readyReplicas}',
        ])
      ).stdout === String(n);
    await waitFor('steady ready', () => ready(2), WAIT);
    const holder = async () =>
      (
        await t.kubectl(
          ['get', 'lease', 'edge-coordinator', '-n', 'kube-system', '-o', 'jsonpath={.spec.holderIdentity}'],
          { allowFail: true },
        )
      ).stdout;
    const oldIdentity = await holder();
    const old = await t.leader();
    expect(old).toBeDefined();

    // Every write to the intents bucket from now on, in order, with its writer and epoch.
    const subjects = new Subjects('edge');
    const nc = await connectNats({ servers: t.natsUrls, name: 'test-history' });
    cleanup(() => nc.close());
    const kv = await new Kvm(nc).open(subjects.intentsBucket);
    const history: Array<{ key: string; op: string; writer?: string; epoch?: number; revision: number }> = [];
    const watch = await kv.watch({ key: '>' });
    cleanup(() => watch.stop());
    void (async () => {
      for await (const e of watch) {
        let stamp: { writer?: string; epoch?: number } = {};
        try {
          if (e.operation === 'PUT') stamp = JSON.parse(e.string()) as typeof stamp;
        } catch {}
        history.push({
          key: e.key,
          op: e.operation,
          writer: stamp.writer,
          epoch: stamp.epoch,
          revision: e.revision,
        });
      }
    })();

    const states = new Set<string>();
    const sampleHosts = async () => {
      const r = await t.kubectl(['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}'], {
        allowFail: true,
      });
      for (const s of r.stdout.split(' ').filter(Boolean)) states.add(s);
    };

    const heal = pauseProcess(old!);
    const pausedAt = Date.now();
    let newIdentity = '';
    try {
      newIdentity = await waitFor(
        'the standby holds the Lease',
        async () => {
          const h = await holder();
          return h && h !== oldIdentity ? h : undefined;
        },
        WAIT,
      );
      // Work for both: the new leader scales; the paused one finds the change queued when it wakes.
      await t.kubectl(['scale', 'workload.compute.miloapis.com', 'steady', '-n', 'fence', '--replicas', '3']);
      while (Date.now() - pausedAt < PAUSE_SECONDS * 1000) {
        await sampleHosts();
        await sleep(1000);
      }
    } finally {
      heal();
    }
    const resumedAt = Date.now();
    // Watch past lostAfter after the pause.
    for (let i = 0; i < LOST_AFTER_SECONDS + 8; i++) {
      await sampleHosts();
      await sleep(1000);
    }
    await waitFor('steady at 3 ready', () => ready(3), WAIT);
    const events = await t.kubectl(['get', 'events', '-A', '-o', 'jsonpath={.items[*].reason}']);

    const firstOfNew = history.findIndex((h) => h.writer === newIdentity);
    const oldAfter = history.slice(firstOfNew).filter((h) => h.writer === oldIdentity);
    const oldLog = await import('node:fs').then((fs) => fs.readFileSync(old!.proc.logFile, 'utf8'));
    const stoodDown = /a newer coordinator took the intents bucket|lost the lease/.test(oldLog);
    const passed = firstOfNew >= 0 && oldAfter.length === 0 && !states.has('Lost');
    reportFigures({
      scenario: 'fencing/leader-pause',
      passed,
      pauseSeconds: PAUSE_SECONDS,
      lostAfterSeconds: LOST_AFTER_SECONDS,
      leaseSeconds: LEASE_SECONDS,
      writesSeen: history.length,
      writesByNewLeader: history.filter((h) => h.writer === newIdentity).length,
      writesByOldLeaderAfterNewFirst: oldAfter.length,
      hostStatesSeen: [...states].join(','),
      observedAfterResumeS: Math.round((Date.now() - resumedAt) / 1000),
      oldLeaderStoodDown: stoodDown,
    });
    expect(firstOfNew).toBeGreaterThanOrEqual(0);
    expect(oldAfter).toEqual([]);
    expect(states.has('Lost')).toBe(false);
    expect(events.stdout).not.toContain('HostLost');
    expect(stoodDown).toBe(true);
  }, 600_000);
});
