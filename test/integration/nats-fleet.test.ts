/**
 * The production NATS configuration of deploy/nats/, rendered for three servers on loopback ports: a JetStream
 * cluster in operator mode (full resolver), TLS for clients and mutual TLS for routes, the coordinator's buckets
 * with three replicas. An agent enrolls with `edge-agent join` over TLS, runs, survives the loss of a server,
 * and is cut off cluster-wide by `hosts revoke`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { renderServerConfig } from '../../deploy/nats/render.js';
import { operatorModeConfig } from '../../shared/nats/accounts.js';
import { makeCerts } from '../harness/certs.js';
import {
  clientFor,
  joinHost,
  operatorSetupForTest,
  startCoordinatorSide,
  startJoinedAgent,
  subjects,
} from '../harness/enrollment.js';
import { startNatsClusterForTest, tempDir, waitFor } from '../harness/index.js';

/** How long the waits of this file wait (unless they say): a message on the cluster. */
const WAIT = { timeoutMs: 30_000, intervalMs: 50 };

describe('deploy/nats: the production cluster', () => {
  it('runs three TLS servers in operator mode with R3 buckets, and an enrolled agent on them', async () => {
    const tlsDir = tempDir('edgeplane-nats-tls-');
    const certs = makeCerts(tlsDir);
    const { files, setup } = await operatorSetupForTest();
    const cluster = await startNatsClusterForTest({
      renderConfig: (s) => {
        // Each server keeps its own resolver directory (one machine here; one per server in production).
        fs.mkdirSync(s.dir, { recursive: true });
        // nats-operator.conf goes next to the server's config (the template includes it by a relative path).
        fs.writeFileSync(
          path.join(s.dir, 'nats-operator.conf'),
          operatorModeConfig(setup, path.join(s.dir, 'jwt')),
        );
        return renderServerConfig({
          serverName: s.serverName,
          clientListen: `127.0.0.1:${s.port}`,
          monitorListen: `127.0.0.1:${s.httpPort}`,
          routeListen: `127.0.0.1:${s.routePort}`,
          routes: s.otherRoutePorts.map((p) => `nats-route://127.0.0.1:${p}`),
          tlsDir,
          storeDir: path.join(s.dir, 'jetstream'),
        });
      },
    });
    const urls = cluster.urls;
    // TLS is required: a client that does not trust the CA is refused.
    await expect(
      connect({ servers: urls[0], reconnect: false, tls: { caFile: certs.otherCa } }),
    ).rejects.toThrow();
    const coord = await startCoordinatorSide(urls, files, { replicas: 3, ca: certs.ca });
    const jsm = await jetstreamManager(coord.nc);
    for (const stream of [`KV_${subjects.intentsBucket}`, `KV_${subjects.enrollBucket}`]) {
      const info = await jsm.streams.info(stream);
      expect(info.config.num_replicas, stream).toBe(3);
      expect(info.cluster?.replicas?.length, stream).toBe(2);
    }
    const { token } = await coord.admin('tokens.create', { location: 'loc-f' });
    const configDir = tempDir('edgeplane-agent-config-');
    const t0 = performance.now();
    await joinHost({
      nats: urls.join(','),
      token: String(token),
      host: 'fleet-1',
      configDir,
      extraArgs: ['--nats-ca', certs.ca],
    });
    expect(fs.readFileSync(path.join(configDir, 'agent.yaml'), 'utf8')).toContain(`natsCa: ${certs.ca}`);
    startJoinedAgent('fleet-1', configDir, { heartbeatMs: 500 });
    await waitFor('fleet-1 Ready', () => coord.registry.get('fleet-1')?.state === 'Ready', {
      ...WAIT,
      timeoutMs: 60_000,
    });
    console.log(`TLS cluster: from join to host Ready ${Math.round(performance.now() - t0)} ms`);

    // One server dies: the agent and the coordinator carry on through the other two.
    await cluster.servers[0]!.kill();
    const killedAt = Date.now();
    await waitFor(
      'a report after the loss of a server',
      () => (coord.registry.get('fleet-1')?.lastSeen ?? 0) > killedAt + 1000,
      WAIT,
    );
    expect(coord.registry.get('fleet-1')?.state).toBe('Ready');

    // Revocation reaches every server: a connection to any survivor is closed and refused.
    const creds = path.join(configDir, 'nats.creds');
    const onOther = await clientFor([urls[2]!], { creds, ca: certs.ca, name: 'fleet-1-probe' });
    const events: string[] = [];
    void (async () => {
      for await (const s of onOther.status()) events.push(`${s.type} ${'error' in s ? String(s.error) : ''}`);
    })();
    // Right after the kill the enrollment bucket may still be electing a stream leader: the operator's revoke
    // fails with a clear error then, and is retried (it is idempotent).
    await waitFor(
      'the revocation accepted',
      () => coord.admin('hosts.revoke', { host: 'fleet-1' }).then(() => true),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    await waitFor('the survivor revokes the connection', () => events.some((e) => /revoked/i.test(e)), WAIT);
    await expect(clientFor([urls[1]!], { creds, ca: certs.ca })).rejects.toThrow(/authorization/i);
  });
});
