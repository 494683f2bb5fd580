/**
 * Fuzzing the real message handlers on a real nats-server (issue 14, "Decoders"): arbitrary bytes and mutated
 * valid messages sent to the coordinator's host registry (host reports), the agent's intent watcher (intents in
 * the KV bucket) and the dashboard's feed follower. Each must never throw out of its handler (a throwing
 * nats.js callback closes the whole connection's reader: the process goes deaf), count every rejection, and
 * change no state on a message it rejects; the messages it accepts are exactly those the schema accepts.
 */
import { EventEmitter } from 'node:events';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntentWatcher, requestsFor } from '../../../agent/intents.js';
import { salvageIntent } from '../../../agent/malformed.js';
import { startAgentHttp } from '../../../agent/metrics.js';
import { EnrollmentService } from '../../../coordinator/enroll/service.js';
import { EnrollmentStore } from '../../../coordinator/enroll/store.js';
import { HostRegistry } from '../../../coordinator/hosts/registry.js';
import { IntentStore } from '../../../coordinator/intents/store.js';
import { DashboardFeed } from '../../../coordinator/observability/dashboard.js';
import { createCoordinatorMetrics } from '../../../coordinator/observability/metrics.js';
import type { FleetSource } from '../../../coordinator/observability/source.js';
import { createLogger } from '../../../shared/log.js';
import { createOperatorSetup, enrollmentKeys } from '../../../shared/nats/accounts.js';
import { connectNats } from '../../../shared/nats/connect.js';
import {
  DeploymentIntent,
  encode,
  FeedMessage,
  HostReport,
  MESSAGE_VERSION,
} from '../../../shared/nats/messages.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { cleanup, tempDir, useNats, waitFor } from '../../harness/index.js';
import { testHostReport, testIntent } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';
import { describeMutations, fuzzParams, hostileBytes, mutations } from './arbitraries.js';

const log = createLogger({ name: 'fuzz', level: process.env.LOG_LEVEL ?? 'silent' });
const subjects = new Subjects('edge');
const WAIT = { timeoutMs: 20_000, intervalMs: 5 };

async function client(url: string): Promise<NatsConnection> {
  const nc = await connectNats({ servers: [url], name: 'fuzz' });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

/** A message as the fuzzer sends it: bytes, and a label for the failure report. */
interface Sample {
  bytes: Uint8Array;
  what: string;
}

/** Arbitrary bytes and mutations of `valid`, as samples. */
function samples(valid: unknown): fc.Arbitrary<Sample> {
  return fc.oneof(
    { weight: 1, arbitrary: hostileBytes(valid).map((bytes) => ({ bytes, what: `bytes(${bytes.length})` })) },
    {
      weight: 2,
      arbitrary: mutations(valid).map(({ doc, applied }) => ({
        bytes: encode(doc),
        what: `mutated: ${describeMutations(applied)}`,
      })),
    },
  );
}

/** Whether `bytes` is a JSON document the schema accepts. */
function schemaAccepts(schema: { safeParse(v: unknown): { success: boolean } }, bytes: Uint8Array): boolean {
  try {
    return schema.safeParse(JSON.parse(new TextDecoder().decode(bytes))).success;
  } catch {
    return false;
  }
}

describe('decoders under fuzzing (real handlers, real nats-server)', () => {
  const nats = useNats({ jetstream: true });

  it("the coordinator's host registry: never throws, counts every refusal, changes nothing on a refused report", async () => {
    const nc = await client(nats().url);
    const registry = new HostRegistry({ nc, subjects, log, checkMs: 3_600_000 });
    registry.start();
    cleanup(() => registry.stop());
    const agent = await client(nats().url);
    const host = 'fz-1';
    const valid = testHostReport(host, 'loc-a', {
      labels: { zone: 'a' },
      runtimes: ['gvisor'],
      instances: [
        {
          namespace: 'default',
          name: 'web-loc-a-0',
          workload: 'web',
          phase: 'Running',
          ready: true,
          ports: [{ containerPort: 80, hostPort: 30080 }],
        },
      ],
    });
    // Sent as requests: the registry answers every report (empty: accepted; text: why refused), so each step
    // knows its report was handled. No answer within the timeout means the handler died.
    await agent.request(subjects.hostReport(host), encode(valid), { timeout: 10_000 });
    expect(registry.get(host)).toBeDefined();

    const state = () => JSON.stringify(registry.all().map((e) => [e.report, e.state, e.lastSeen]));
    const refusals = () => Object.values(registry.refused).reduce((a, b) => a + b, 0);
    let refused = 0;
    let acceptedN = 0;
    const registryRuns = fuzzParams(1000, 20_000);
    await fc.assert(
      fc.asyncProperty(
        samples(valid),
        fc.constantFrom(host, 'fz-2', 'other'),
        async (sample, subjectHost) => {
          const before = { state: state(), refusals: refusals(), accepted: registry.accepted };
          const reply = await agent.request(subjects.hostReport(subjectHost), sample.bytes, {
            timeout: 10_000,
          });
          const answer = reply.string();
          if (answer === '') {
            // Accepted: only a report the schema accepts, about the host of its subject.
            acceptedN++;
            expect(
              schemaAccepts(HostReport, sample.bytes),
              `accepted a malformed report: ${sample.what}`,
            ).toBe(true);
            expect((JSON.parse(new TextDecoder().decode(sample.bytes)) as { host: string }).host).toBe(
              subjectHost,
            );
            expect(refusals()).toBe(before.refusals);
          } else {
            refused++;
            expect(refusals(), `refusal not counted: ${sample.what}`).toBe(before.refusals + 1);
            expect(registry.accepted).toBe(before.accepted);
            expect(state(), `state changed by a refused report: ${sample.what}`).toBe(before.state);
            if (!schemaAccepts(HostReport, sample.bytes)) expect(answer).toMatch(/malformed message/);
          }
        },
      ),
      registryRuns,
    );
    reportFigures({
      scenario: 'fuzz/host-report-decoder',
      passed: true,
      runs: registryRuns.numRuns,
      seed: registryRuns.seed,
      refused,
      accepted: acceptedN,
    });
    // Both kinds were exercised, and the registry still hears valid reports.
    expect(refused).toBeGreaterThan(0);
    expect(acceptedN).toBeGreaterThan(0);
    const fresh = { ...valid, host: 'fz-3', seq: 99 };
    await agent.request(subjects.hostReport('fz-3'), encode(fresh), { timeout: 10_000 });
    expect(registry.get('fz-3')?.report.seq).toBe(99);
  });

  it("the agent's intent watcher: never stops following, counts every malformed intent, keeps the last good one", async () => {
    const nc = await client(nats().url);
    const store = new IntentStore({ nc, subjects, log });
    await store.start();
    const kv = await new Kvm(nc).open(subjects.intentsBucket);
    const location = 'loc-fz';
    const host = 'fz-host';
    const valid = testIntent({
      location,
      namespace: 'default',
      workload: 'web',
      hosts: [host, 'fz-other'],
      template: { image: 'nginx:latest', ports: [{ containerPort: 80 }] } as never,
    });
    const key = subjects.intentKey(location, 'default', 'web');
    const keep = subjects.intentKey(location, 'default', 'keep');
    await kv.put(key, encode(valid));
    await kv.put(keep, encode({ ...valid, workload: 'keep' }));
    const watcher = new IntentWatcher({
      nc: await client(nats().url),
      subjects,
      location,
      stateDir: tempDir(),
      log,
    });
    cleanup(() => watcher.stop());
    await watcher.start();
    await waitFor('both intents', () => watcher.all().length === 2, WAIT);

    const state = () => JSON.stringify(watcher.all().sort((a, b) => a.workload.localeCompare(b.workload)));
    let malformed = 0;
    const intentRuns = fuzzParams(150, 3000);
    await fc.assert(
      fc.asyncProperty(samples(valid), async (sample) => {
        const before = { state: state(), malformed: watcher.malformed };
        const revision = await kv.put(key, sample.bytes);
        await waitFor(
          `the watcher to see revision ${revision}`,
          () => watcher.lastRevision >= revision,
          WAIT,
        );
        if (schemaAccepts(DeploymentIntent, sample.bytes)) {
          // Taken as the schema reads it; the other intent untouched.
          const expected = DeploymentIntent.parse(JSON.parse(new TextDecoder().decode(sample.bytes)));
          const all = watcher.all().map((i) => JSON.stringify(i));
          expect(all).toContain(JSON.stringify(expected));
          expect(all).toContain(JSON.stringify(DeploymentIntent.parse({ ...valid, workload: 'keep' })));
          expect(watcher.malformed).toBe(before.malformed);
          // What the agent makes of a valid intent never throws either.
          requestsFor(host, watcher.all(), log);
        } else {
          malformed++;
          expect(watcher.malformed, `not counted: ${sample.what}`).toBe(before.malformed + 1);
          expect(state(), `state changed by a malformed intent: ${sample.what}`).toBe(before.state);
          salvageIntent(key, sample.bytes, 'x');
        }
      }),
      intentRuns,
    );
    reportFigures({
      scenario: 'fuzz/intent-decoder',
      passed: true,
      runs: intentRuns.numRuns,
      seed: intentRuns.seed,
      malformed,
    });
    expect(malformed).toBeGreaterThan(0);
    // Still following: a good intent after all that is taken.
    const rev = await kv.put(key, encode({ ...valid, templateHash: 'after-fuzz' }));
    await waitFor('the good intent after fuzzing', () => watcher.lastRevision >= rev, WAIT);
    expect(watcher.all().find((i) => i.workload === 'web')?.templateHash).toBe('after-fuzz');
    expect(watcher.all().find((i) => i.workload === 'keep')?.templateHash).toBe(valid.templateHash);
    // Every rejection is on the agent's metrics.
    const http = await startAgentHttp({
      address: '127.0.0.1:0',
      version: 'test',
      log,
      source: {
        nc: Promise.resolve(nc),
        synced: () => watcher.synced,
        runtimes: [],
        usable: () => [],
        instances: () => [],
        reconciler: new EventEmitter(),
        rejectedIntents: () => watcher.malformed,
      },
    });
    cleanup(() => http.close());
    const text = await (await fetch(`${http.url}/metrics`)).text();
    expect(text).toContain(`edgeplane_agent_intents_rejected_total ${malformed}`);
  });

  it("the dashboard's feed follower: never throws, counts what it skips, forwards only valid messages", async () => {
    const nc = await client(nats().url);
    const feed = new DashboardFeed(log);
    cleanup(() => feed.close());
    const source = {
      nc,
      subjects,
      hosts: { all: () => [], get: () => undefined },
      workloads: () => [],
      instances: () => [],
      allocatedOf: () => ({ allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0 }),
    } as unknown as FleetSource;
    feed.attach(source, 'leader');
    const pub = await client(nats().url);
    const now = new Date().toISOString();
    const validEvent = {
      v: MESSAGE_VERSION,
      kind: 'event',
      type: 'Normal',
      reason: 'Placed',
      message: 'placed',
      object: { kind: 'Workload', name: 'web', namespace: 'default' },
      count: 1,
      time: now,
    };
    // A sentinel after every sample: once it is seen, the sample before it was handled.
    let sentinel = 0;
    const feedRuns = fuzzParams(150, 3000);
    await fc.assert(
      fc.asyncProperty(samples(validEvent), async (sample) => {
        const before = { events: feed.snapshot().events.length, skipped: feed.malformed };
        pub.publish(subjects.feedEvent('default', 'Workload', 'web'), sample.bytes);
        const mark = { ...validEvent, reason: `Sentinel${++sentinel}` };
        pub.publish(subjects.feedEvent('default', 'Workload', 'web'), encode(mark));
        await waitFor('the sentinel', () => feed.snapshot().events.at(-1)?.reason === mark.reason, WAIT);
        const after = feed.snapshot().events;
        if (schemaAccepts(FeedMessage, sample.bytes)) {
          expect(feed.malformed).toBe(before.skipped);
        } else {
          expect(feed.malformed, `not counted: ${sample.what}`).toBe(before.skipped + 1);
          // Only the sentinel was added.
          expect(Math.min(after.length, 300)).toBe(Math.min(before.events + 1, 300));
        }
      }),
      feedRuns,
    );
    reportFigures({
      scenario: 'fuzz/feed-decoder',
      passed: true,
      runs: feedRuns.numRuns,
      seed: feedRuns.seed,
      malformed: feed.malformed,
    });
    expect(feed.malformed).toBeGreaterThan(0);
    const metrics = createCoordinatorMetrics({
      version: 'test',
      processMetrics: false,
      feedRejected: () => feed.malformed,
    });
    expect(await metrics.registry.metrics()).toContain(
      `edgeplane_feed_messages_rejected_total ${feed.malformed}`,
    );
  });

  it('the enrollment service: answers every request, however malformed, and keeps serving', async () => {
    const nc = await client(nats().url);
    const store = new EnrollmentStore({ nc, subjects, log });
    await store.start();
    const service = new EnrollmentService({
      nc,
      sys: nc,
      subjects,
      keys: enrollmentKeys(await createOperatorSetup()),
      store,
      log,
    });
    service.start();
    cleanup(() => service.stop());
    const admin = await client(nats().url);
    const requests: Array<[string, unknown]> = [
      [subjects.admin('tokens.create'), { location: 'loc-a', ttlSeconds: 60, uses: 1 }],
      [subjects.admin('tokens.revoke'), { id: 'no-such-token' }],
      [subjects.admin('hosts.revoke'), { host: 'no-such-host' }],
      [subjects.join('no-such-token'), { v: 1, host: 'h-1', publicKey: `U${'A'.repeat(55)}` }],
    ];
    const enrollRuns = fuzzParams(100, 2000);
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(...requests)
          .chain(([subject, valid]) => samples(valid).map((sample) => ({ subject, sample }))),
        async ({ subject, sample }) => {
          // No answer within the timeout means the handler threw out of its callback.
          const reply = await admin.request(subject, sample.bytes, { timeout: 10_000 });
          const answer = JSON.parse(reply.string()) as { ok?: boolean; error?: string; jwt?: string };
          expect(answer.ok === true || typeof answer.error === 'string', sample.what).toBe(true);
        },
      ),
      enrollRuns,
    );
    reportFigures({
      scenario: 'fuzz/enrollment-decoder',
      passed: true,
      runs: enrollRuns.numRuns,
      seed: enrollRuns.seed,
    });
    const listed = await admin.request(subjects.admin('tokens.list'), encode({}), { timeout: 10_000 });
    expect(JSON.parse(listed.string())).toMatchObject({ ok: true });
  });
});
