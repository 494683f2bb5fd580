/**
 * A half-open link to one of three NATS members (issue 14, partitions): a real three-member cluster, a real agent
 * given all three members, each through a fault proxy this test owns, and the coordinator's real host registry on
 * another member. The agent is made to connect to member 1 (the other two refuse at first), then its link to
 * member 1 is blackholed — nothing passes, nothing closes — while members 2 and 3 are healthy. The client must
 * notice by its pings and fail over, and the host must stay Ready all along: its silence, measured where the
 * coordinator measures it, stays under the Disconnected bound (TTL = 3 × the default 5 s heartbeat, plus 5 s),
 * even when the link dies just before a heartbeat is due (silence = one interval + detection + fail-over).
 */
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { HostRegistry, type HostState } from '../../../coordinator/hosts/registry.js';
import { startAgent } from '../../../deploy/stack/edgeplane.js';
import { createLogger } from '../../../shared/log.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { startFaultProxy } from '../../harness/fault-proxy.js';
import { watchFleet } from '../../harness/fleet-watch.js';
import { cleanup, tempDir, useNatsCluster, waitFor } from '../../harness/index.js';
import { reportFigures } from '../figures.js';

const cluster = useNatsCluster();
/** The agent's production heartbeat. */
const HEARTBEAT_MS = 5000;
const HOST = 'half-open-1';

describe('a half-open link to one of three NATS members', () => {
  it('is noticed, the agent fails over to another member, and its host stays Ready', async () => {
    const members = cluster().servers;
    const proxies = await Promise.all(members.map((m) => startFaultProxy(m.port)));
    proxies[1]!.refuse(true);
    proxies[2]!.refuse(true);

    // The coordinator's registry (its real code) on member 3, and a raw watch of the reports on member 2.
    const nc = await connect({ servers: members[2]!.url });
    cleanup(() => nc.close());
    const registry = new HostRegistry({
      nc,
      subjects: new Subjects(),
      log: createLogger({ name: 'registry', level: 'silent' }),
      lostAfterMs: 30_000,
    });
    const states = new Set<HostState>();
    registry.on('state', (e: { report: { host: string }; state: HostState }) => {
      if (e.report.host === HOST) states.add(e.state);
    });
    registry.start();
    cleanup(() => registry.stop());
    const fleet = await watchFleet(members[1]!.url);

    const agent = startAgent({
      dir: tempDir('edgeplane-half-open-'),
      host: HOST,
      location: 'us-central1-a',
      nats: proxies.map((p) => `nats://127.0.0.1:${p.port}`),
      heartbeatMs: HEARTBEAT_MS,
    });
    cleanup(() => agent.stop());
    await waitFor('the agent reporting', () => registry.get(HOST)?.state === 'Ready', { timeoutMs: 60_000 });
    expect(proxies[0]!.connections).toBe(1);
    proxies[1]!.heal();
    proxies[2]!.heal();
    // Two heartbeats on member 1 before the fault, so the gaps measured are the fault's.
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
    fleet.resetGaps();

    // The worst moment: just before the next heartbeat, so the silence is a whole interval plus the detection.
    const seen = fleet.hosts.get(HOST)!.lastAt;
    await waitFor('a fresh report', () => fleet.hosts.get(HOST)!.lastAt > seen, {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS - 300));
    proxies[0]!.set('both', { mode: 'blackhole' });
    const cutAt = Date.now();
    const lastBefore = fleet.hosts.get(HOST)!.lastAt;
    await waitFor('a report after the fail-over', () => (fleet.hosts.get(HOST)?.lastAt ?? 0) > cutAt + 1000, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    const failedOverMs = fleet.hosts.get(HOST)!.lastAt - cutAt;
    // Watch a while on the new member.
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    const silenceMs = fleet.maxGapMs(HOST);
    const bound = registry.disconnectAfterMs({ heartbeatMs: HEARTBEAT_MS });
    console.log(
      `half-open link to 1 of 3 members: reports again ${(failedOverMs / 1000).toFixed(1)} s after the cut ` +
        `(last report ${((cutAt - lastBefore) / 1000).toFixed(1)} s before it); longest silence ` +
        `${(silenceMs / 1000).toFixed(1)} s (Disconnected bound ${bound / 1000} s); host states ${[...states].join(',')}`,
    );
    reportFigures({
      scenario: 'partition/nats-member-half-open',
      passed: silenceMs < bound && [...states].join() === 'Ready',
      heartbeatMs: HEARTBEAT_MS,
      reportingAgainS: +(failedOverMs / 1000).toFixed(1),
      longestSilenceS: +(silenceMs / 1000).toFixed(1),
      disconnectedBoundS: bound / 1000,
      hostStates: [...states].join(','),
    });
    expect(silenceMs).toBeLessThan(bound);
    expect([...states]).toEqual(['Ready']);
    expect(registry.get(HOST)?.state).toBe('Ready');
  }, 300_000);
});
