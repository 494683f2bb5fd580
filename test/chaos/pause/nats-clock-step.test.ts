/**
 * A daemon's NATS client when its host's wall clock steps by a day (issue 14, clock steps): the client process
 * (test/harness/fixtures/nats-client.ts: connectNats and the link doctor, as the agent and the coordinator use
 * them) runs under libfaketime, through a fault proxy this test owns, against a real nats-server with TLS that
 * verifies client certificates (certificates valid for 30 days from now).
 *
 * - Back a day, then the link drops: nats.js paces reconnects by the wall clock, and every server it had dialled
 *   lay a day in its future — it dialled nobody for a day (before the link doctor). Now it must reconnect at once
 *   if it can. Here it cannot: by its clock the server's certificate is not valid yet. It must say so, naming
 *   the clock, not retry silently.
 * - The clock corrected: it reconnects within seconds.
 * - Ahead a day: the certificates are still valid; it reconnects at once after a drop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_DIR } from '../../../deploy/stack/index.js';
import { startProc } from '../../../deploy/stack/proc.js';
import { makeCerts } from '../../harness/certs.js';
import { fakeClock } from '../../harness/clock.js';
import { startFaultProxy } from '../../harness/fault-proxy.js';
import { cleanup, startNatsForTest, tempDir, waitFor } from '../../harness/index.js';
import { reportFigures } from '../figures.js';

const DAY = 86_400;

/** The client fixture as its own process under `env` (libfaketime, TLS files), stopped after the test. */
function startClient(dir: string, url: string, env: Record<string, string>) {
  const client = startProc({
    dir,
    name: 'nats-client',
    command: path.join(REPO_DIR, 'node_modules/.bin/tsx'),
    args: [path.join(REPO_DIR, 'test/harness/fixtures/nats-client.ts'), url],
    env: { ...env, LOG_LEVEL: 'info' },
  });
  cleanup(() => client.stop());
  return client;
}

interface Line {
  msg?: string;
  status?: string;
  failures?: string[];
}

describe('a NATS client whose wall clock steps by a day', () => {
  it('reconnects after a step back, says why when TLS refuses the clock, and again once it is corrected', async () => {
    const dir = tempDir('edgeplane-clock-step-');
    const certs = makeCerts(dir, { days: 30 });
    const nats = await startNatsForTest({
      configExtra: `tls {\n  cert_file: "${certs.cert}"\n  key_file: "${certs.key}"\n  ca_file: "${certs.ca}"\n  verify: true\n  timeout: 5\n}`,
    });
    const proxy = await startFaultProxy(nats.port);
    const clock = fakeClock(dir);
    const client = startClient(dir, `nats://127.0.0.1:${proxy.port}`, {
      ...clock.env,
      EDGE_NATS_CA: certs.ca,
      EDGE_NATS_CERT: certs.clientCert,
      EDGE_NATS_KEY: certs.clientKey,
    });
    const lines = (): Line[] =>
      fs
        .readFileSync(client.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line);
    const count = (status: string) => lines().filter((l) => l.status === status).length;
    await waitFor('the client connected', () => count('connected') === 1, { timeoutMs: 60_000 });

    // Back a day, and the link drops: the client tries again at once, and says TLS refuses its clock.
    clock.step(-DAY);
    proxy.reset();
    const droppedAt = Date.now();
    const explained = await waitFor(
      'the client explaining why it cannot connect',
      () => lines().find((l) => l.msg === 'cannot connect to NATS'),
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const explainedMs = Date.now() - droppedAt;
    expect(explained.failures?.join(' ')).toMatch(/not valid yet: the host clock is likely behind/);
    // Clock corrected: back within seconds.
    clock.step(0);
    const correctedAt = Date.now();
    await waitFor('the client reconnected', () => count('reconnect') === 1, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const backMs = Date.now() - correctedAt;

    // Ahead a day (certificates still valid), and the link drops: back at once.
    clock.step(DAY);
    proxy.reset();
    const resetAt = Date.now();
    await waitFor('the client reconnected ahead', () => count('reconnect') === 2, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const aheadMs = Date.now() - resetAt;
    reportFigures({
      scenario: 'pause/agent-clock-1d-tls',
      passed: true,
      tlsRefusalExplainedS: +(explainedMs / 1000).toFixed(1),
      reconnectAfterCorrectionS: +(backMs / 1000).toFixed(1),
      reconnectAheadS: +(aheadMs / 1000).toFixed(1),
    });
    console.log(
      `clock −1 day + link drop: TLS refusal explained after ${(explainedMs / 1000).toFixed(1)} s ` +
        `(${explained.failures?.[0]}); clock corrected: reconnected after ${(backMs / 1000).toFixed(1)} s; ` +
        `+1 day + link drop: reconnected after ${(aheadMs / 1000).toFixed(1)} s`,
    );
  }, 300_000);

  it('without TLS, reconnects at once after a step back (nats.js alone waited out the step)', async () => {
    const dir = tempDir('edgeplane-clock-step-');
    const nats = await startNatsForTest();
    const proxy = await startFaultProxy(nats.port);
    const clock = fakeClock(dir);
    const client = startClient(dir, `nats://127.0.0.1:${proxy.port}`, clock.env);
    const reconnects = () => fs.readFileSync(client.logFile, 'utf8').split('"status":"reconnect"').length - 1;
    await waitFor(
      'the client connected',
      () => fs.readFileSync(client.logFile, 'utf8').includes('"connected"'),
      {
        timeoutMs: 60_000,
      },
    );
    clock.step(-DAY);
    proxy.reset();
    const resetAt = Date.now();
    await waitFor('the client reconnected', () => reconnects() === 1, { timeoutMs: 60_000, intervalMs: 100 });
    console.log(
      `clock −1 day + link drop, no TLS: reconnected after ${((Date.now() - resetAt) / 1000).toFixed(1)} s`,
    );
  }, 120_000);
});
