/**
 * Chaos, hostile: a host with real credentials (enrolled with a join token, operator mode) that lies. Its
 * reports claim another location, absurd heartbeat intervals (0, negative, 10^12), another host's instances, and
 * come as 1 MiB payloads. The coordinator's registry (with identities bound by the enrollment) must not be
 * fooled, must not crash (an honest report right after is accepted), must count every refusal, and the honest
 * host's state must stay exactly what it reported. (test/integration/nats-enroll.test.ts covers the basic
 * refusals: a location mismatch, another host's name or subject, an hour-long heartbeat, a never-enrolled user.)
 */
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { join } from '../../../agent/enroll.js';
import { encode, type HostReport } from '../../../shared/nats/messages.js';
import {
  type CoordinatorSide,
  clientFor,
  log,
  operatorSetupForTest,
  startCoordinatorSide,
  subjects,
} from '../../harness/enrollment.js';
import { startNatsForTest, tempDir } from '../../harness/index.js';
import { testHostReport } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';

/** Publishes raw bytes as a request; the coordinator's answer ('' = accepted), or the client's error. */
async function sendRaw(nc: NatsConnection, subject: string, data: Uint8Array): Promise<string> {
  try {
    return (await nc.request(subject, data, { timeout: 5000 })).string();
  } catch (err) {
    return `client error: ${(err as Error).message}`;
  }
}

const send = (nc: NatsConnection, subject: string, r: HostReport) => sendRaw(nc, subject, encode(r));

async function enrolled(coord: CoordinatorSide, url: string, host: string, location: string) {
  const r = await coord.admin('tokens.create', { location });
  const configDir = tempDir();
  await join({ nats: [url], token: String(r.token), host, configDir, start: false, log });
  return clientFor([url], { creds: path.join(configDir, 'nats.creds') });
}

const instance = (name: string) => ({
  namespace: 'ns',
  name,
  workload: 'web',
  templateHash: 'h1',
  phase: 'Running' as const,
  ready: true,
  runtime: 'runsc',
  ports: [],
  ips: [],
  containers: [],
});

describe('chaos: a hostile host with real credentials', () => {
  it('is refused and counted for every lie; the coordinator keeps serving and the honest host is untouched', async () => {
    const { files, setup } = await operatorSetupForTest();
    const nats = await startNatsForTest({ operator: setup });
    const coord = await startCoordinatorSide([nats.url], files);
    const honest = await enrolled(coord, nats.url, 'honest', 'loc-a');
    const evil = await enrolled(coord, nats.url, 'evil', 'loc-b');
    const honestReport = testHostReport('honest', 'loc-a', { instances: [instance('web-0')] });
    expect(await send(honest, subjects.hostReport('honest'), honestReport)).toBe('');
    expect(await send(evil, subjects.hostReport('evil'), testHostReport('evil', 'loc-b'))).toBe('');
    const honestBefore = JSON.stringify(coord.registry.get('honest')?.report);
    const evilSubject = subjects.hostReport('evil');

    const answers: Record<string, string> = {};
    // Another location than its credentials'.
    answers.location = await send(evil, evilSubject, testHostReport('evil', 'loc-a'));
    // Absurd heartbeat intervals.
    for (const hb of [0, -1, 1e12])
      answers[`heartbeat ${hb}`] = await send(
        evil,
        evilSubject,
        testHostReport('evil', 'loc-b', { heartbeatMs: hb }),
      );
    // The honest host's instance, as if it ran here: accepted as this host's own claim only.
    answers.stolenInstance = await send(
      evil,
      evilSubject,
      testHostReport('evil', 'loc-b', {
        instances: [{ ...instance('web-0'), phase: 'Failed', ready: false }],
      }),
    );
    // 1 MiB payloads: a report with a huge label, and 1 MiB of garbage.
    const big = testHostReport('evil', 'loc-b', { labels: { junk: 'x'.repeat(1024 * 1024) } });
    answers.hugeReport = await send(evil, evilSubject, big);
    answers.hugeGarbage = await sendRaw(evil, evilSubject, new Uint8Array(1024 * 1024).fill(0x7b));
    answers.garbage = await sendRaw(evil, evilSubject, new TextEncoder().encode('{"v":1,"host":'));

    // Not fooled: the location and the heartbeat it is judged by are its credentials' and the last sane ones.
    const evilEntry = coord.registry.get('evil')!;
    expect(evilEntry.report.location).toBe('loc-b');
    expect(evilEntry.report.heartbeatMs).toBeGreaterThan(0);
    expect(evilEntry.report.heartbeatMs).toBeLessThanOrEqual(30_000);
    expect(answers.location).toMatch(/claims location loc-a.*for loc-b/);
    for (const hb of [0, -1, 1e12]) expect(answers[`heartbeat ${hb}`]).not.toBe('');
    expect(answers.hugeGarbage).not.toBe('');
    expect(answers.garbage).not.toBe('');
    // Another host's instance is never attributed to that host: the honest host's view is what it said.
    expect(coord.registry.reported('honest', 'ns', 'web-0')).toMatchObject({ phase: 'Running', ready: true });
    expect(JSON.stringify(coord.registry.get('honest')?.report)).toBe(honestBefore);
    // Still serving: an honest report right after is accepted.
    expect(await send(honest, subjects.hostReport('honest'), { ...honestReport, seq: 2 })).toBe('');
    const refused = { ...coord.registry.refused };
    reportFigures({
      scenario: 'hostile/host-reports',
      passed: true,
      ...Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, v.slice(0, 100) || 'accepted'])),
      refused: JSON.stringify(refused),
    });
    expect(refused['location-mismatch']).toBeGreaterThanOrEqual(1);
    expect(refused['heartbeat-out-of-bounds'] + refused.malformed).toBeGreaterThanOrEqual(3 + 1);
  }, 300_000);
});
