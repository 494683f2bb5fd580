/**
 * Host enrollment in operator mode on a real nats-server (JWTs, full resolver): a join token, `edge-agent join`
 * (the built CLI), the real agent running from what join wrote until its host is Ready, tokens that expire, are
 * used up and are revoked, the host's permissions identical to the static configuration's, reports bound to
 * the identity the credentials were issued for, and `hosts revoke` making the server close and refuse the host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decode as decodeJwt, parseCreds } from '@nats-io/jwt';
import { Kvm } from '@nats-io/kv';
import { connect, jwtAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { join, readToken } from '../../agent/enroll.js';
import { hostTags } from '../../coordinator/enroll/service.js';
import { createCoordinatorMetrics } from '../../coordinator/observability/metrics.js';
import type { FleetSource } from '../../coordinator/observability/source.js';
import {
  credsFile,
  enrollmentKeys,
  issueUserJwt,
  jwtPermissions,
  newUserCreds,
} from '../../shared/nats/accounts.js';
import { encode, type HostReport, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { agentPermissions } from '../../shared/nats/permissions.js';
import {
  type CoordinatorSide,
  clientFor,
  joinHost,
  log,
  operatorSetupForTest,
  startCoordinatorSide,
  startJoinedAgent,
  subjects,
} from '../harness/enrollment.js';
import { cleanup, startNatsForTest, tempDir, waitFor } from '../harness/index.js';
import { testHostReport } from '../harness/objects.js';

/** How long the waits of this file wait: a message or a server verdict, on one local server. */
const WAIT = { timeoutMs: 20_000, intervalMs: 25 };

function statusLog(nc: NatsConnection): string[] {
  const out: string[] = [];
  void (async () => {
    for await (const s of nc.status()) out.push(`${s.type} ${'error' in s ? String(s.error) : ''}`);
  })();
  return out;
}

/** Publishes a report as a request and returns the coordinator's answer ('' = accepted). */
async function send(nc: NatsConnection, subject: string, r: HostReport): Promise<string> {
  return (await nc.request(subject, encode(r), { timeout: 5000 })).string();
}

/** A fleet source of only the registry's hosts (no Kubernetes side in this test). */
function fleetOf(coord: CoordinatorSide): FleetSource {
  return {
    hosts: coord.registry,
    allocatedOf: () => ({ allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0 }),
    instances: () => [],
    workloads: () => [],
    queue: { length: 0, onPass: undefined },
    intents: { writes: 0, conflicts: 0 },
    nc: undefined as never,
    subjects,
    cachesSynced: () => true,
  };
}

async function fixture() {
  const { files, setup } = await operatorSetupForTest();
  const nats = await startNatsForTest({ operator: setup });
  const coord = await startCoordinatorSide([nats.url], files);
  return { files, setup, nats, coord };
}

async function createToken(coord: CoordinatorSide, location: string, extra: object = {}) {
  const r = await coord.admin('tokens.create', { location, ...extra });
  return { id: String(r.id), token: String(r.token) };
}

describe('edge-agent join', () => {
  it('enrolls a host with a token; the agent runs from what join wrote and its host is Ready', async () => {
    const { nats, coord, setup } = await fixture();
    // Anonymous clients are refused in operator mode.
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/authorization/i);
    const { token } = await createToken(coord, 'loc-a', { ttlSeconds: 600 });
    expect(readToken(token).prefix).toBe('edge');

    const configDir = tempDir('edgeplane-agent-config-');
    const t0 = performance.now();
    const joinMs = await joinHost({ nats: nats.url, token, host: 'host-a', configDir });
    const creds = path.join(configDir, 'nats.creds');
    expect(fs.statSync(creds).mode & 0o777).toBe(0o600);
    const yaml = fs.readFileSync(path.join(configDir, 'agent.yaml'), 'utf8');
    expect(yaml).toContain('host: host-a');
    expect(yaml).toContain('location: loc-a');
    expect(yaml).toContain(`natsCreds: ${creds}`);

    // The seed stayed on the host: the coordinator recorded only the public key of the creds' seed.
    const parsed = await parseCreds(fs.readFileSync(creds));
    const enrolled = coord.enrollment.identityOf('host-a');
    expect(enrolled).toEqual({ location: 'loc-a', revoked: false });
    const listed = (await coord.admin('hosts.list')).hosts as Array<{ host: string; publicKey: string }>;
    expect(listed.find((h) => h.host === 'host-a')?.publicKey).toBe(parsed.uc.sub);
    expect(JSON.stringify(listed)).not.toContain('SU');
    // The JWT carries exactly the static configuration's permissions for this host and location.
    expect(parsed.uc.nats).toMatchObject(jwtPermissions(agentPermissions(subjects, 'host-a', 'loc-a')));
    expect(parsed.uc.nats.tags).toEqual(hostTags('host-a', 'loc-a'));
    // Enrollment issues host JWTs without `exp`; to see the credentials expiry travel from the agent to the
    // coordinator's series, this test re-signs the same user, permissions and tags with one (whole seconds).
    expect(parsed.uc.exp).toBeUndefined();
    const expiresAt = (Math.floor(Date.now() / 1000) + 7 * 86_400) * 1000;
    const jwtWithExp = await issueUserJwt(enrollmentKeys(setup), {
      name: 'host-a',
      publicKey: parsed.uc.sub,
      permissions: agentPermissions(subjects, 'host-a', 'loc-a'),
      tags: hostTags('host-a', 'loc-a'),
      expiresAt,
    });
    fs.writeFileSync(creds, credsFile(jwtWithExp, parsed.key), { mode: 0o600 });

    // The real agent, configured only by the file join wrote.
    const agent = startJoinedAgent('host-a', configDir);
    await waitFor('host-a Ready', () => coord.registry.get('host-a')?.state === 'Ready', {
      ...WAIT,
      timeoutMs: 60_000,
    });
    const readyMs = performance.now() - t0;
    console.log(
      `edge-agent join took ${Math.round(joinMs)} ms; from join to host Ready ${Math.round(readyMs)} ms`,
    );
    expect(coord.registry.get('host-a')?.report.location).toBe('loc-a');
    // The agent reports its credentials' expiry, and the coordinator exports it as the alert's series.
    expect(coord.registry.get('host-a')?.report.credentialsExpireAt).toBe(new Date(expiresAt).toISOString());
    const metrics = createCoordinatorMetrics({ version: 'test', processMetrics: false });
    metrics.setSource(fleetOf(coord));
    expect(await metrics.registry.metrics()).toContain(
      `edgeplane_host_credentials_expiry_timestamp_seconds{host="host-a",location="loc-a"} ${expiresAt / 1000}`,
    );

    // `edgectl hosts revoke`: the server closes the agent's connection and refuses it from then on.
    const watcher = await clientFor([nats.url], { creds, name: 'host-a-second-connection' });
    const events = statusLog(watcher);
    const revokedAt = performance.now();
    await coord.admin('hosts.revoke', { host: 'host-a' });
    await waitFor('the server revokes the connection', () => events.some((e) => /revoked/i.test(e)), WAIT);
    console.log(
      `the server revoked the host's connection ${Math.round(performance.now() - revokedAt)} ms after edgectl hosts revoke`,
    );
    await watcher.closed();
    await expect(clientFor([nats.url], { creds })).rejects.toThrow(/authorization/i);
    await waitFor(
      'the agent logs the refusal',
      () => /revoked|authorization/i.test(fs.readFileSync(agent.logFile, 'utf8')),
      WAIT,
    );
    expect(coord.enrollment.identityOf('host-a')?.revoked).toBe(true);
    // The host goes silent, then Disconnected: nothing of it is accepted any more.
    await waitFor('host-a no longer Ready', () => coord.registry.get('host-a')?.state !== 'Ready', {
      ...WAIT,
      timeoutMs: 30_000,
    });
  });

  it('refuses used-up, mismatched, revoked and expired tokens; the server refuses revoked and expired ones', async () => {
    const { nats, coord } = await fixture();
    const common = (configDir: string) => ({ nats: [nats.url], configDir, start: false, log });

    const once = await createToken(coord, 'loc-a');
    await join({ ...common(tempDir()), token: once.token, host: 'h1' });
    const dir2 = tempDir();
    await expect(join({ ...common(dir2), token: once.token, host: 'h2' })).rejects.toThrow(/used up/);
    expect(fs.readdirSync(dir2)).toEqual([]); // nothing half-made

    const twice = await createToken(coord, 'loc-a', { uses: 2 });
    await expect(
      join({ ...common(tempDir()), token: twice.token, host: 'h3', location: 'loc-b' }),
    ).rejects.toThrow(/for location loc-a, not loc-b/);
    // A host name already enrolled is not taken over by another key.
    await expect(join({ ...common(tempDir()), token: twice.token, host: 'h1' })).rejects.toThrow(
      /already enrolled/,
    );
    await join({ ...common(tempDir()), token: twice.token, host: 'h3', location: 'loc-a' });

    const revoked = await createToken(coord, 'loc-a');
    await coord.admin('tokens.revoke', { id: revoked.id });
    await expect(join({ ...common(tempDir()), token: revoked.token, host: 'h4' })).rejects.toThrow(
      /authorization/i,
    );
    const list = (await coord.admin('tokens.list')).tokens as Array<{ id: string; state: string }>;
    expect(Object.fromEntries(list.map((t) => [t.id, t.state]))).toMatchObject({
      [once.id]: 'used',
      [twice.id]: 'active', // h1 (already enrolled) and loc-b did not use it up
      [revoked.id]: 'revoked',
    });

    const short = await createToken(coord, 'loc-a', { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    await expect(join({ ...common(tempDir()), token: short.token, host: 'h5' })).rejects.toThrow(/expired/);
    // The server itself refuses the expired bearer JWT, whatever the client checks.
    await expect(
      connect({ servers: nats.url, authenticator: jwtAuthenticator(short.token), reconnect: false }),
    ).rejects.toThrow(/authorization|expired/i);

    // A token's bearer may do nothing but ask under its own id.
    const live = await createToken(coord, 'loc-a');
    const nc = await connect({
      servers: nats.url,
      authenticator: jwtAuthenticator(live.token),
      inboxPrefix: subjects.joinInbox(live.id),
    });
    cleanup(() => nc.close());
    const events = statusLog(nc);
    nc.publish(subjects.hostReport('h1'), encode(testHostReport('h1', 'loc-a')));
    nc.publish(subjects.join(once.id), '{}');
    await waitFor(
      'two permission violations',
      () => events.filter((e) => /permissions violation/i.test(e)).length >= 2,
      WAIT,
    );
  });
});

describe('identity is bound, not declared', () => {
  it("accepts a host's reports only for the host and location its credentials were issued for", async () => {
    const { nats, coord, files } = await fixture();
    const { token } = await createToken(coord, 'loc-a');
    const configDir = tempDir();
    await join({ nats: [nats.url], token, host: 'host-b', configDir, start: false, log });
    const nc = await clientFor([nats.url], { creds: path.join(configDir, 'nats.creds') });
    const events = statusLog(nc);
    const subject = subjects.hostReport('host-b');

    expect(await send(nc, subject, testHostReport('host-b', 'loc-a'))).toBe('');
    expect(coord.registry.get('host-b')?.report.location).toBe('loc-a');

    // Another location than its credentials', on its own subject: refused, counted, answered with the reason.
    expect(await send(nc, subject, testHostReport('host-b', 'loc-z'))).toMatch(
      /claims location loc-z.*for loc-a/,
    );
    // Another host's name in the body of its own subject.
    expect(await send(nc, subject, testHostReport('host-c', 'loc-a'))).toMatch(/another host's subject/);
    // A heartbeat interval that would keep a dead host Ready for an hour.
    expect(await send(nc, subject, testHostReport('host-b', 'loc-a', { heartbeatMs: 3_600_000 }))).toMatch(
      /heartbeatMs 3600000 is outside/,
    );
    // Another host's subject: the server refuses it before the coordinator sees it.
    nc.publish(subjects.hostReport('host-c'), encode(testHostReport('host-c', 'loc-a')));
    await waitFor(
      'a permissions violation',
      () => events.some((e) => /permissions violation/i.test(e)),
      WAIT,
    );

    // A user validly signed by the account but never enrolled (e.g. a leaked signing key's user): refused.
    const ghostCreds = path.join(tempDir(), 'ghost.creds');
    const keys = JSON.parse(fs.readFileSync(files.enrollKeys, 'utf8'));
    fs.writeFileSync(
      ghostCreds,
      await newUserCreds(keys, 'ghost', agentPermissions(subjects, 'ghost', 'loc-a')),
    );
    const ghost = await clientFor([nats.url], { creds: ghostCreds });
    expect(await send(ghost, subjects.hostReport('ghost'), testHostReport('ghost', 'loc-a'))).toMatch(
      /not enrolled/,
    );

    expect(coord.registry.get('host-b')?.report.location).toBe('loc-a');
    expect(coord.registry.get('ghost')).toBeUndefined();
    expect(coord.registry.refused).toMatchObject({
      'location-mismatch': 1,
      'subject-mismatch': 1,
      'heartbeat-out-of-bounds': 1,
      'not-enrolled': 1,
    });

    // Its own location's intents, and only those, as with the static configuration.
    await coord.intents.put({
      v: MESSAGE_VERSION,
      location: 'loc-z',
      namespace: 'default',
      workload: 'web',
      templateHash: 'h',
      template: { image: 'nginx:latest' } as never,
      limits: { cpuMillis: 100, memoryBytes: 2 ** 27 },
      instances: [],
      updatedAt: new Date().toISOString(),
    });
    const kv = await new Kvm(nc).open(subjects.intentsBucket, { allow_direct: true });
    await expect(kv.get(subjects.intentKey('loc-z', 'default', 'web'))).rejects.toThrow();
    expect(decodeJwt(fs.readFileSync(path.join(configDir, 'nats.creds'), 'utf8').split('\n')[1]!).name).toBe(
      'host-b',
    );
  });
});
