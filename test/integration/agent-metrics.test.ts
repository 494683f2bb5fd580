/**
 * The agent's optional metrics and health endpoint on the real parts (nats-server, the built agent):
 * `--metrics-address 127.0.0.1:0` serves /metrics that promtool accepts, /readyz answers 200 once connected and
 * synced and 503 naming NATS when the server goes away, while /healthz stays 200 (no restart for a NATS outage).
 */
import { spawnSync } from 'node:child_process';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { httpUrlOf, startAgent } from '../../deploy/stack/edgeplane.js';
import { waitFor } from '../../deploy/stack/index.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup, tempDir, useNats } from '../harness/index.js';

const nats = useNats();

const get = async (url: string) => {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.text() };
};

describe('agent --metrics-address', () => {
  it('serves metrics promtool accepts, and health that follows NATS without failing liveness', async () => {
    const nc = await connect({ servers: nats().url });
    await new Kvm(nc).create(new Subjects('edge').intentsBucket, { history: 1 });
    await nc.close();
    const agent = startAgent({
      host: `metrics-${process.pid}`,
      location: 'metrics',
      nats: [nats().url],
      dir: tempDir('edgeplane-agent-metrics-'),
      heartbeatMs: 500,
      args: ['--cpu', '2', '--memory', '2Gi', '--metrics-address', '127.0.0.1:0'],
    });
    cleanup(() => agent.stop());
    const base = await httpUrlOf(agent);
    expect(new URL(base).hostname).toBe('127.0.0.1');
    await waitFor('/readyz 200', async () => (await get(`${base}/readyz`)).status === 200, {
      timeoutMs: 30_000,
    });
    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: 'ok\n' });

    const metrics = (await get(`${base}/metrics`)).body;
    expect(metrics).toContain('edgeplane_agent_nats_connected 1');
    expect(metrics).toContain('edgeplane_agent_intents_synced 1');
    expect(metrics).toMatch(/edgeplane_agent_runtime_available\{runtime="gvisor"\} [01]/);
    expect(metrics).toMatch(/edgeplane_build_info\{component="agent",version="[^"]+"/);
    expect(metrics).toContain('# TYPE edgeplane_agent_instance_start_duration_seconds histogram');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);

    await nats().stop();
    const notReady = await waitFor(
      '/readyz 503 after NATS stopped',
      async () => {
        const r = await get(`${base}/readyz`);
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(notReady.body).toContain('NATS not connected');
    expect((await get(`${base}/healthz`)).status).toBe(200);
    expect((await get(`${base}/metrics`)).body).toContain('edgeplane_agent_nats_connected 0');
  });
});
