/**
 * Two coordinators' enrollment stores racing for the uses of one join token on a three-member cluster with an R3
 * bucket (a leader change: the paused ex-leader wakes while the new one serves joins). The per-key
 * compare-and-set of nats.js could let both win on the nats-server we ship; the bucket-wide one must not.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { EnrollmentStore } from '../../coordinator/enroll/store.js';
import { createLogger } from '../../shared/log.js';
import { connectNats } from '../../shared/nats/connect.js';
import { MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup, useNatsCluster } from '../harness/index.js';

const cluster = useNatsCluster({ size: 3, jetstream: true });

async function store(subjects: Subjects, servers: string[]): Promise<EnrollmentStore> {
  const nc: NatsConnection = await connectNats({ servers, name: 'enroll-race' });
  cleanup(() => nc.close());
  const s = new EnrollmentStore({
    nc,
    subjects,
    log: createLogger({ name: 'test', level: 'silent' }),
    replicas: 3,
  });
  await s.start();
  return s;
}

describe('two enrollment stores on an R3 bucket', () => {
  it('never both spend the same use of a token: exactly one write per read revision lands', async () => {
    const subjects = new Subjects('enrollrace');
    const urls = cluster().urls;
    // Each talks to a different member first, so their writes reach the stream leader by two routes.
    const a = await store(subjects, urls);
    const b = await store(subjects, [...urls.slice(1), urls[0]!]);
    const USES = 40;
    await a.putToken(
      {
        v: MESSAGE_VERSION,
        id: 't1',
        location: 'us-central1-a',
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
        uses: USES,
        used: 0,
        bearerKey: 'UBEARER',
        createdAt: new Date().toISOString(),
      },
      0,
    );
    let landed = 0;
    let refused = 0;
    for (let round = 0; round < USES; round++) {
      // Both read the same revision and try to spend the next use on it.
      const [ta, tb] = await Promise.all([a.token('t1'), b.token('t1')]);
      expect(ta!.revision).toBe(tb!.revision);
      const spend = (s: EnrollmentStore, t: typeof ta) =>
        s.putToken({ ...t!.value, used: t!.value.used + 1 }, t!.revision).then(
          () => true,
          (err: Error) => {
            expect(err.message).toMatch(/wrong last sequence/);
            return false;
          },
        );
      const won = (await Promise.all([spend(a, ta), spend(b, tb)])).filter(Boolean).length;
      expect(won, `round ${round}`).toBe(1);
      landed += won;
      refused += 2 - won;
    }
    // The bucket agrees: as many uses spent as writes landed.
    expect((await a.token('t1'))!.value.used).toBe(landed);
    expect(refused).toBe(USES);
  });
});
