/**
 * A half-open NATS link is noticed in seconds, not minutes (issue 14, "dead connections noticed in minutes"): a
 * real agent connected to a real nats-server through a fault proxy this test owns. The proxy blackholes both
 * directions without closing anything — the link of a peer that vanished — so only the client's pings can tell.
 * With the defaults of shared/nats/connect.ts the agent must notice (disconnect, then reconnect) within
 * (maxPingsOut + 1) × pingInterval, under a host's default Disconnected bound (20 s), and report again after the
 * link heals. nats.js's own defaults (2 min × 2) took 4–6 min (run with EDGE_NATS_PING_MS=120000 to see it fail).
 */
import fs from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../deploy/stack/edgeplane.js';
import { DEFAULT_MAX_PINGS_OUT, DEFAULT_PING_INTERVAL_MS } from '../../shared/nats/connect.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { cleanup, tempDir, useNats, waitFor } from '../harness/index.js';

const nats = useNats();

/** Default heartbeat 5 s × 3 + 5 s grace: when the coordinator calls a silent host Disconnected. */
const DISCONNECTED_BOUND_MS = 20_000;

function logLines(file: string): { msg?: string; status?: string }[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; status?: string });
}

describe('a half-open NATS link', () => {
  it('is noticed by an agent within its ping bound, and the agent reports again once it heals', async () => {
    const proxy = await startFaultProxy(nats().port);
    const agent = startAgent({
      dir: tempDir('edgeplane-dead-link-'),
      host: 'dead-link-1',
      location: 'us-central1-a',
      nats: [`nats://127.0.0.1:${proxy.port}`],
      heartbeatMs: 1000,
    });
    cleanup(() => agent.stop());

    const nc = await connect({ servers: nats().url });
    cleanup(() => nc.close());
    let reports = 0;
    nc.subscribe(new Subjects().hostReport('dead-link-1'), { callback: () => void reports++ });
    await waitFor('first report of the agent', () => reports > 0, { timeoutMs: 60_000 });

    // The link goes dead without a FIN or RST: both sockets stay open, nothing passes.
    proxy.set('both', { mode: 'blackhole' });
    const deadAt = Date.now();
    await waitFor(
      'the agent noticing the dead link',
      () => logLines(agent.logFile).some((l) => l.status === 'disconnect'),
      {
        timeoutMs: 400_000,
        intervalMs: 100,
      },
    );
    const noticedMs = Date.now() - deadAt;
    console.log(`half-open link noticed after ${(noticedMs / 1000).toFixed(1)} s`);
    expect(noticedMs).toBeLessThan(DISCONNECTED_BOUND_MS);
    expect(noticedMs).toBeLessThan((DEFAULT_MAX_PINGS_OUT + 1) * DEFAULT_PING_INTERVAL_MS + 3000);

    // Healed: the agent reconnects (a new connection through the proxy) and its reports arrive again.
    proxy.heal();
    const before = reports;
    await waitFor('reports after healing', () => reports > before, { timeoutMs: 60_000 });
    expect(logLines(agent.logFile).some((l) => l.status === 'reconnect')).toBe(true);
  }, 480_000);
});
