/**
 * A client on a NATS member whose routes are cut (issue 14, NATS; found by nats/stream-leader-isolated): the
 * member runs on and answers its clients' pings, so nats.js never leaves it, and nothing the client publishes
 * reaches the rest of the cluster — an agent there is heard by nobody and its host goes Lost. The link doctor
 * (shared/nats/link-doctor.ts), as every daemon runs it, must notice that the member has no JetStream leader and
 * move the link to another member; afterwards JetStream works for the client again. Three members through the
 * topology's route proxies; the client connects directly (its link is never cut, only the member's routes).
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/log.js';
import { connectNats } from '../../../shared/nats/connect.js';
import { startLinkDoctor } from '../../../shared/nats/link-doctor.js';
import { cleanup, waitFor } from '../../harness/index.js';
import { cut } from '../faults.js';
import { reportFigures } from '../figures.js';
import { startTopology } from '../topology.js';

const log = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });

describe('a client on a member cut off from the cluster', () => {
  it('is moved to another member by the link doctor, and JetStream works for it again', async () => {
    const t = await startTopology({ natsMembers: 3, coordinators: 0, locations: 0, images: false });
    const servers = t.nats.map((m) => m.server.url);
    const settings = { servers, name: 'cut-off-client' };
    const nc: NatsConnection = await connectNats(settings);
    cleanup(() => (nc.isClosed() ? undefined : nc.close()));
    cleanup(startLinkDoctor({ nc: () => nc, settings, log }));
    const kv = await new Kvm(nc).create('cutoff', { replicas: 3, history: 1 });
    await kv.put('k', 'before');
    const memberOf = () => t.nats.find((m) => nc.getServer().endsWith(`:${m.server.port}`));
    const first = memberOf()!;
    expect(first).toBeDefined();

    // The member's routes, both ways, to both other members; the client's own link stays up.
    const routes = t.nats.flatMap((m) =>
      m.index === first.index ? [...m.routeProxies.values()] : [m.routeProxies.get(first.index)!],
    );
    const cutAt = Date.now();
    const heal = cut(routes, 'blackhole');
    cleanup(heal);
    const moved = await waitFor(
      'the client on another member',
      () => {
        const m = memberOf();
        return m && m.index !== first.index ? m : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
    const movedMs = Date.now() - cutAt;
    const wrote = await waitFor(
      'a KV write through the new member',
      () =>
        kv.put('k', 'after').then(
          () => true,
          () => false,
        ),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const writtenMs = Date.now() - cutAt;
    await heal();
    reportFigures({
      scenario: 'nats/member-cut-off',
      passed: wrote,
      from: `n${first.index + 1}`,
      to: `n${moved.index + 1}`,
      movedS: +(movedMs / 1000).toFixed(1),
      jetStreamAgainS: +(writtenMs / 1000).toFixed(1),
    });
    expect((await kv.get('k'))?.string()).toBe('after');
  }, 300_000);
});
