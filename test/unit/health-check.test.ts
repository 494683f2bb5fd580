/**
 * `edge-agent health`'s logic against a real local HTTP server: 200 → 0, 503 → 1 with the body as reason, no
 * server → 1, a server that never answers → 1 within the timeout, no address → 2; and where the address comes from.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkHealth, healthAddress } from '../../agent/health-check.js';
import { cleanup, tempDir } from '../harness/index.js';

async function server(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  cleanup(() => new Promise<void>((r) => s.close(() => r())));
  cleanup(() => s.closeAllConnections());
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe('edge-agent health', () => {
  it('maps /healthz and /readyz answers to exit codes with a one-line reason', async () => {
    let ready = false;
    const address = await server((req, res) => {
      if (req.url === '/healthz') res.writeHead(200).end('ok');
      else if (req.url === '/readyz')
        res.writeHead(ready ? 200 : 503).end(ready ? 'ok' : 'NATS not connected; intents not synced');
      else res.writeHead(404).end('not found');
    });
    expect(await checkHealth(address)).toEqual({ code: 0, reason: `http://${address}/healthz: 200 ok` });
    expect(await checkHealth(address, { ready: true })).toEqual({
      code: 1,
      reason: `http://${address}/readyz: 503 NATS not connected; intents not synced`,
    });
    ready = true;
    expect((await checkHealth(address, { ready: true })).code).toBe(0);
  });

  it('fails on no server and on a server that does not answer, and cannot check without an address', async () => {
    const hanging = await server(() => undefined); // accepts, never answers
    const t0 = performance.now();
    const r = await checkHealth(hanging, { timeoutMs: 300 });
    expect(r.code).toBe(1);
    expect(r.reason).toMatch(/no answer within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(3000);

    const s = http.createServer();
    await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((res) => s.close(() => res()));
    const refused = await checkHealth(`127.0.0.1:${port}`);
    expect(refused.code).toBe(1);
    expect(refused.reason).toMatch(/ECONNREFUSED/);

    expect(await checkHealth(undefined)).toEqual({
      code: 2,
      reason: expect.stringMatching(/no metricsAddress/),
    });
  });

  it('takes the address from --address, else the environment, else the config file', () => {
    const dir = tempDir('edgeplane-health-');
    const config = path.join(dir, 'agent.yaml');
    fs.writeFileSync(config, 'location: a\nmetricsAddress: 127.0.0.1:9465\n');
    const bare = path.join(dir, 'bare.yaml');
    fs.writeFileSync(bare, 'location: a\n#metricsAddress: 127.0.0.1:9465\n');
    expect(healthAddress({ config })).toBe('127.0.0.1:9465');
    expect(healthAddress({ config, env: { EDGE_METRICS_ADDRESS: '127.0.0.1:1' } })).toBe('127.0.0.1:1');
    expect(healthAddress({ config, address: '127.0.0.1:2', env: { EDGE_METRICS_ADDRESS: 'x' } })).toBe(
      '127.0.0.1:2',
    );
    expect(healthAddress({ config: bare })).toBeUndefined();
    expect(healthAddress({})).toBeUndefined();
  });
});
