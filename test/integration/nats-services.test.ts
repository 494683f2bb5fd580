/**
 * The NATS services API and the monitoring feed on a real nats-server: the coordinator and agents answer
 * `$SRV.PING/INFO/STATS` and their status endpoints; the feed publisher sends only changes and its stream keeps
 * the last state per subject for late readers.
 */
import { Svcm } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { FeedPublisher } from '../../coordinator/feed/publisher.js';
import { HostRegistry } from '../../coordinator/hosts/registry.js';
import { IntentStore } from '../../coordinator/intents/store.js';
import { registerCoordinator } from '../../coordinator/services/status.js';
import { feedSnapshot } from '../../edgectl/feed.js';
import { createLogger } from '../../shared/log.js';
import { connectNats } from '../../shared/nats/connect.js';
import { decode, FeedMessage, type HostReport, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { AGENT_SERVICE, COORDINATOR_SERVICE, registerService } from '../../shared/nats/service.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup, useNats } from '../harness/index.js';

const log = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const subjects = new Subjects('edge');
const nats = useNats({ jetstream: true });

async function client(): Promise<NatsConnection> {
  const nc = await connectNats({ servers: [nats().url], name: 'test', reconnectForever: false });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

async function collect<T>(it: Promise<AsyncIterable<T>>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of await it) out.push(x);
  return out;
}

function hostEntry(host: string, state: 'Ready' | 'Lost', cpuMillis = 1000) {
  const report: HostReport = {
    v: MESSAGE_VERSION,
    host,
    location: 'loc',
    labels: {},
    capacity: { cpuMillis, memoryBytes: 2 ** 30 },
    allocatable: { cpuMillis, memoryBytes: 2 ** 30 },
    runtimes: ['gvisor'],
    agentVersion: 'x',
    startedAt: 't',
    seq: 1,
    heartbeatMs: 1000,
    instances: [],
    time: new Date().toISOString(),
  };
  return { report, lastSeen: Date.now(), heardAt: performance.now(), state, instances: new Map() };
}

describe('NATS services API', () => {
  it('discovers the coordinator and agents with $SRV.PING/INFO/STATS and answers their status endpoints', async () => {
    const nc = await client();
    const registry = new HostRegistry({ nc, subjects, log });
    const intents = new IntentStore({ nc, subjects, log });
    await intents.start();
    const coord = await registerCoordinator({ nc, subjects, registry, intents, startedAt: 'now', log });
    cleanup(() => coord.stop());
    const agentNc = await client();
    const agent = await registerService({
      nc: agentNc,
      name: AGENT_SERVICE,
      version: '0.1.0',
      description: 'test agent',
      metadata: { host: 'h1', location: 'loc' },
      statusSubject: subjects.agentStatus('h1'),
      status: () => ({ host: 'h1' }),
      stats: () => ({ malformedIntents: 2 }),
      log,
    });
    cleanup(() => agent.stop());

    const svc = new Svcm((await client()) as never).client();
    const pings = await collect(svc.ping());
    expect(pings.map((p) => p.name).sort()).toEqual([AGENT_SERVICE, COORDINATOR_SERVICE]);
    const infos = await collect(svc.info(AGENT_SERVICE));
    expect(infos).toHaveLength(1);
    expect(infos[0]!.metadata).toMatchObject({ host: 'h1', location: 'loc' });
    expect(infos[0]!.endpoints[0]!.subject).toBe(subjects.agentStatus('h1'));
    const stats = await collect(svc.stats(COORDINATOR_SERVICE));
    expect(stats[0]!.endpoints?.[0]?.data).toMatchObject({ intentWrites: 0, hostReportsMalformed: 0 });

    const status = (await nc.request(subjects.coordinatorStatus, '', { timeout: 2000 })).json<
      Record<string, unknown>
    >();
    expect(status).toMatchObject({
      hosts: { Ready: 0, Disconnected: 0, Lost: 0 },
      sealer: intents.sealerKey,
    });
    expect((await nc.request(subjects.agentStatus('h1'), '', { timeout: 2000 })).json()).toEqual({
      host: 'h1',
    });
  });
});

describe('monitoring feed', () => {
  it('publishes changes only, and keeps the last state per subject for readers that come later', async () => {
    const nc = await client();
    const feed = new FeedPublisher({ nc, subjects, log });
    await feed.start();
    const live: FeedMessage[] = [];
    const sub = (await client()).subscribe(subjects.allFeed, {
      callback: (_e, m) => {
        live.push(decode(FeedMessage, m.data));
      },
    });
    cleanup(() => sub.unsubscribe());
    await new Promise((r) => setTimeout(r, 100));

    feed.host(hostEntry('h1', 'Ready'));
    feed.host(hostEntry('h1', 'Ready')); // unchanged: not published again
    feed.host(hostEntry('h1', 'Ready', 2000));
    feed.host(hostEntry('h1', 'Lost', 2000));
    feed.host(hostEntry('h2', 'Ready'));
    const inst = {
      metadata: { name: 'w-0', namespace: 'ns' },
      spec: { workloadRef: { name: 'w' }, location: 'loc', host: 'h1' },
    };
    feed.instance({ ...inst, status: { phase: 'Running', ready: true } });
    feed.instance(inst, true);
    feed.workload({
      metadata: { name: 'w', namespace: 'ns' },
      spec: { replicas: 2 },
      status: { replicas: 2, readyReplicas: 1 },
    });
    await nc.flush();
    await new Promise((r) => setTimeout(r, 300));

    const hosts = live.filter((m) => m.kind === 'host');
    expect(
      hosts.map((m) => (m.kind === 'host' ? `${m.host}:${m.state}:${m.allocatable.cpuMillis}` : '')),
    ).toEqual(['h1:Ready:1000', 'h1:Ready:2000', 'h1:Lost:2000', 'h2:Ready:1000']);
    expect(
      live.filter((m) => m.kind === 'instance').map((m) => (m.kind === 'instance' ? m.phase : '')),
    ).toEqual(['Running', 'Deleted']);
    expect(live.find((m) => m.kind === 'workload')).toMatchObject({
      desired: 2,
      replicas: 2,
      readyReplicas: 1,
      phase: 'Pending',
    });

    const snapshot = await feedSnapshot(await client(), subjects, subjects.allFeedHosts);
    expect(snapshot.map((m) => (m.kind === 'host' ? `${m.host}:${m.state}` : '')).sort()).toEqual([
      'h1:Lost',
      'h2:Ready',
    ]);
    expect(await feedSnapshot(await client(), subjects, `${subjects.prefix}.feed.hosts.nobody`)).toEqual([]);
  });
});
