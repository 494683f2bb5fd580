/**
 * The intents bucket's stream leader isolated (issue 14, NATS): three members, every route through the
 * topology's fault proxies. We find the leader of `KV_<intents bucket>` ($JS.API.STREAM.INFO), make sure the
 * coordinator is connected to another member (stepping the stream leader down until it is, so the scenario is the
 * same every run), and cut the leader's routes both ways: the member keeps running and keeps its clients, but
 * can reach neither other member. Meanwhile a Workload is scaled up, so the coordinator must write intents.
 *
 * What must hold: the other two elect a new stream leader and the coordinator's writes land there during the cut;
 * no write that any consumer saw (a committed, acknowledged write) is lost or applied twice — read back from the
 * majority after healing, and the three replicas agree key by key (direct gets from each member); agents keep
 * their instances (the same containers, whichever member they are on); after healing the change converges and
 * then nothing moves (no intent write, no container, no Instance changes; no HostLost, no Rescheduled).
 * Figures: the election time, the first write after the cut, the convergence, the writes seen.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { httpGet, sleep } from '../../../deploy/stack/proc.js';
import { connectNats } from '../../../shared/nats/connect.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { runningContainers } from '../../harness/fleet-watch.js';
import { cleanup, waitFor } from '../../harness/index.js';
import { nginxWorkload } from '../../harness/objects.js';
import { cut } from '../faults.js';
import { reportFigures } from '../figures.js';
import { chaosLevel } from '../settings.js';
import { startTopology, type Topology } from '../topology.js';

const NS = 'leader-cut';
const WORKLOAD = 'sl';
/** How long the cut is held after the new leader was elected. */
const HOLD_MS = chaosLevel({ test: 20_000, chaos: 50_000 });
/** How long nothing may move once healed and converged. */
const QUIET_MS = chaosLevel({ test: 15_000, chaos: 60_000 });
const subjects = new Subjects();
const STREAM = `KV_${subjects.intentsBucket}`;

async function client(url: string, name: string): Promise<NatsConnection> {
  const nc = await connectNats({ servers: [url], name });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

/** The stream's leader (server_name) as the member behind `nc` sees it; undefined while none. */
async function streamLeader(nc: NatsConnection): Promise<string | undefined> {
  try {
    const jsm = await jetstreamManager(nc, { timeout: 2000 });
    return (await jsm.streams.info(STREAM)).cluster?.leader || undefined;
  } catch {
    return undefined;
  }
}

/** Which member each named client is connected to (from every member's /connz). */
async function connections(t: Topology): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of t.nats) {
    const body = JSON.parse((await httpGet(`${m.server.monitorUrl}/connz?limit=1000`)).body) as {
      connections?: { name?: string }[];
    };
    for (const c of body.connections ?? []) if (c.name) out.set(c.name, `n${m.index + 1}`);
  }
  return out;
}

async function jsonPath(t: Topology, args: string[], path: string): Promise<string> {
  const r = await t.kubectl(['get', ...args, '-o', `jsonpath=${path}`], { allowFail: true });
  return r.code === 0 ? r.stdout : '';
}

/** Instance name → host. */
async function placements(t: Topology): Promise<string> {
  return jsonPath(t, ['instances', '-n', NS], '{range .items[*]}{.metadata.name}@{.spec.host} {end}');
}

/** `fn`, retried for a minute (JetStream is "temporarily unavailable" for a while after the member rejoins). */
function retried<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return waitFor(
    what,
    () =>
      fn().then(
        (value) => ({ value }),
        () => undefined,
      ),
    {
      timeoutMs: 60_000,
      intervalMs: 500,
    },
  ).then((r) => r.value);
}

/** One write seen by the watcher. */
interface Seen {
  key: string;
  revision: number;
  operation: string;
  /** writer/epoch/generation of a value; '' for deletes. */
  stamp: string;
  at: number;
}

describe('the intents stream leader isolated', () => {
  it('a new leader takes the writes; nothing acknowledged is lost or doubled; nothing moves after healing', async () => {
    // Hosts whose agent is on the isolated member are silent to the coordinator for the whole cut (see the
    // figures): lostAfter is kept above it, so that what the scenario judges is the stream, not host loss.
    const t = await startTopology({
      natsMembers: 3,
      coordinators: 1,
      locations: 3,
      lostAfterSeconds: Math.round(HOLD_MS / 1000) + 60,
    });
    console.log(`topology in ${t.dir}`);
    await t.waitForHostsReady();
    await t.kubectl(['create', 'namespace', NS]);
    await t.kubectl(['apply', '-n', NS, '-f', '-'], {
      input: nginxWorkload({ name: WORKLOAD, replicas: 3 }),
    });
    const ready = () =>
      jsonPath(t, [`workload.compute.miloapis.com`, WORKLOAD, '-n', NS], '{.status.readyReplicas}');
    await waitFor('3 ready', async () => (await ready()) === '3', { timeoutMs: 240_000, intervalMs: 1000 });

    // A client on every member, direct (never through a proxy).
    const direct = await Promise.all(t.nats.map((m, i) => client(m.server.url, `test-n${i + 1}`)));
    const names = t.nats.map((m) => `n${m.index + 1}`);
    const coordinatorName = 'edge-coordinator';
    let conns = await connections(t);
    const coordinatorOn = conns.get(coordinatorName);
    expect(coordinatorOn, 'the coordinator is connected somewhere').toBeDefined();
    // The stream leader must not be the coordinator's member: step it down until so.
    let leader = await waitFor('a stream leader', () => streamLeader(direct[0]!), { timeoutMs: 60_000 });
    for (let i = 0; leader === coordinatorOn && i < 10; i++) {
      await direct[0]!
        .request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`, '', { timeout: 5000 })
        .catch(() => undefined);
      leader = await waitFor(
        'a stream leader after the step-down',
        async () => {
          const l = await streamLeader(direct[0]!);
          return l && l !== leader ? l : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    }
    expect(leader).not.toBe(coordinatorOn);
    const isolated = names.indexOf(leader!);
    const majority = direct.filter((_, i) => i !== isolated);
    conns = await connections(t);
    const agentsOnIsolated = t.agents
      .filter((a) => conns.get(`edge-agent ${a.host}`) === leader)
      .map((a) => a.host);

    // Every committed write, read from a majority member's replica (direct gets by sequence: no consumer, which
    // would live on the stream leader and be cut off with it).
    const seen: Seen[] = [];
    const reader = await jetstreamManager(majority[0]!);
    let reading = true;
    const readAll = (async () => {
      let next = 1;
      while (reading) {
        const m = await reader.direct
          .getMessage(STREAM, { seq: next, next_by_subj: `$KV.${subjects.intentsBucket}.>` })
          .catch(() => undefined);
        if (!m) {
          await sleep(100);
          continue;
        }
        const operation = m.header?.get('KV-Operation') || 'PUT';
        let stamp = '';
        if (operation === 'PUT') {
          const v = JSON.parse(m.string()) as { writer?: string; epoch?: number; generation?: number };
          stamp = `${v.writer}/${v.epoch}/${v.generation}`;
        }
        const key = m.subject.slice(`$KV.${subjects.intentsBucket}.`.length);
        seen.push({ key, revision: m.seq, operation, stamp, at: Date.now() });
        next = m.seq + 1;
      }
    })();
    cleanup(() => {
      reading = false;
    });
    await waitFor(
      'the reader caught up',
      async () => {
        const last = (await reader.streams.info(STREAM).catch(() => undefined))?.state.last_seq;
        return last !== undefined && (seen.at(-1)?.revision ?? 0) >= last;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const containers = new Map<string, string[]>();
    for (const a of t.agents) containers.set(a.host, await runningContainers(a.host));

    // The cut: the leader's routes, both ways, to both other members.
    const routes = t.nats.flatMap((m) =>
      m.index === isolated ? [...m.routeProxies.values()] : [m.routeProxies.get(isolated)!],
    );
    const cutAt = Date.now();
    const heal = cut(routes, 'blackhole');
    cleanup(heal);
    const newLeader = await waitFor(
      'a new stream leader on the majority',
      async () => {
        const l = await streamLeader(majority[0]!);
        return l && l !== leader ? l : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
    const electedMs = Date.now() - cutAt;
    const scaledAt = Date.now();
    await t.kubectl(['scale', 'workload.compute.miloapis.com', WORKLOAD, '-n', NS, '--replicas=5']);
    await waitFor('an intent write during the cut', () => seen.some((s) => s.at >= scaledAt), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    const firstWriteMs = Date.now() - scaledAt;
    // Hold the cut, sampling the hosts' states (an agent on the isolated member is heard by nobody).
    const statesInCut = new Map<string, Set<string>>();
    while (Date.now() - scaledAt < HOLD_MS) {
      const r = await jsonPath(t, ['hosts'], '{range .items[*]}{.metadata.name}={.status.state} {end}');
      for (const pair of r.split(' ').filter(Boolean)) {
        const [host, state] = pair.split('=') as [string, string];
        statesInCut.set(host, (statesInCut.get(host) ?? new Set()).add(state));
      }
      await sleep(1000);
    }
    const isolatedHostStates = agentsOnIsolated
      .map((h) => [...(statesInCut.get(h) ?? [])].join('/'))
      .join(',');
    const otherHostsLeftReady = [...statesInCut]
      .filter(([h]) => !agentsOnIsolated.includes(h))
      .some(([, states]) => [...states].some((x) => x !== 'Ready'));
    // Agents on the isolated member are moved to another member by their link doctor (shared/nats/link-doctor.ts:
    // the member has no JetStream leader) and heard again while the cut lasts.
    const allReadyInCut = await waitFor(
      'every host Ready again, the cut still in force',
      async () => {
        const states: string | undefined = await jsonPath(t, ['hosts'], '{.items[*].status.state}');
        return states?.split(' ').every((x) => x === 'Ready') ? Date.now() - cutAt : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    ).catch(() => -1);
    conns = await connections(t);
    const stillOnIsolated = t.agents.filter((a) => conns.get(`edge-agent ${a.host}`) === leader).length;
    const writesInCut = seen.filter((s) => s.at >= cutAt).length;
    const readyInCut = await ready();
    // Agents keep what they ran, whichever member they are on.
    for (const a of t.agents)
      expect(await runningContainers(a.host), `${a.host} kept its containers`).toEqual(
        expect.arrayContaining(containers.get(a.host)!),
      );
    await heal();
    const healedAt = Date.now();
    await waitFor('5 ready after healing', async () => (await ready()) === '5', {
      timeoutMs: 180_000,
      intervalMs: 500,
    });
    const convergedMs = Date.now() - healedAt;
    await t.waitForHostsReady();

    // Nothing lost or doubled: the last write seen of every key is what the majority holds now, no (writer,
    // epoch, generation) applied twice, and the three replicas agree.
    await sleep(3000);
    reading = false;
    await readAll;
    const kv = await retried('open the bucket', () => new Kvm(majority[0]!).open(subjects.intentsBucket));
    const lastSeen = new Map<string, Seen>();
    for (const s of seen) lastSeen.set(s.key, s);
    const lost: string[] = [];
    for (const [key, s] of lastSeen) {
      const e = await retried(`get ${key}`, () => kv.get(key));
      if (!e || e.revision < s.revision) lost.push(`${key}@${s.revision} (now ${e?.revision})`);
    }
    const stamps = seen.filter((x) => x.stamp).map((x) => `${x.key}:${x.stamp}`);
    const doubled = stamps.filter((s, i) => stamps.indexOf(s) !== i);
    const keys: string[] = [];
    for await (const k of await retried('keys', () => kv.keys())) keys.push(k);
    keys.sort();
    const replicaViews = await waitFor(
      'the three replicas agree',
      async () => {
        const views: string[] = [];
        for (const nc of direct) {
          const jsm = await jetstreamManager(nc);
          const parts: string[] = [];
          for (const key of keys) {
            const m = await jsm.direct
              .getMessage(STREAM, { last_by_subj: `$KV.${subjects.intentsBucket}.${key}` })
              .catch(() => undefined);
            parts.push(`${key}@${m?.seq ?? '-'}`);
          }
          views.push(parts.join(' '));
        }
        return new Set(views).size === 1 ? views : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );

    // Healed and converged: then nothing moves.
    const jsm = await jetstreamManager(majority[0]!);
    const seq0 = (await retried('stream info', () => jsm.streams.info(STREAM))).state.last_seq;
    const placed0 = await placements(t);
    const containers0 = new Map<string, string[]>();
    for (const a of t.agents) containers0.set(a.host, await runningContainers(a.host));
    await sleep(QUIET_MS);
    const seq1 = (await retried('stream info', () => jsm.streams.info(STREAM))).state.last_seq;
    const placed1 = await placements(t);
    const moved: string[] = [];
    for (const a of t.agents)
      if ((await runningContainers(a.host)).join() !== containers0.get(a.host)!.join()) moved.push(a.host);
    const events = await jsonPath(t, ['events', '-A'], '{.items[*].reason}');
    const badEvents = events.split(' ').filter((r) => r === 'HostLost' || r === 'Rescheduled');

    const passed =
      lost.length === 0 &&
      doubled.length === 0 &&
      allReadyInCut > 0 &&
      stillOnIsolated === 0 &&
      seq1 === seq0 &&
      placed1 === placed0 &&
      !moved.length &&
      !badEvents.length;
    reportFigures({
      scenario: 'nats/stream-leader-isolated',
      passed,
      isolated: leader!,
      newLeader,
      coordinatorOn: coordinatorOn!,
      agentsOnIsolated: agentsOnIsolated.length,
      isolatedHostStates,
      otherHostsLeftReady,
      allReadyInCutS: +(allReadyInCut / 1000).toFixed(1),
      agentsStillOnIsolated: stillOnIsolated,
      electedS: +(electedMs / 1000).toFixed(1),
      firstWriteAfterScaleS: +(firstWriteMs / 1000).toFixed(1),
      writesInCut,
      readyInCut: Number(readyInCut || 0),
      convergedAfterHealS: +(convergedMs / 1000).toFixed(1),
      writesSeen: seen.length,
      lost: lost.length,
      doubled: doubled.length,
      replicasAgree: replicaViews.length === 3,
      quietS: QUIET_MS / 1000,
      writesWhileQuiet: seq1 - seq0,
      badEvents: badEvents.length,
    });
    expect(lost).toEqual([]);
    expect(doubled).toEqual([]);
    expect(allReadyInCut, 'every host Ready again during the cut').toBeGreaterThan(0);
    expect(stillOnIsolated).toBe(0);
    expect(writesInCut).toBeGreaterThan(0);
    expect(seq1 - seq0, 'intent writes once healed and converged').toBe(0);
    expect(placed1).toBe(placed0);
    expect(moved).toEqual([]);
    expect(badEvents).toEqual([]);
  }, 900_000);
});
