/**
 * The operator identity in NATS operator mode (JWTs, full resolver) on a real nats-server: `edgectl credentials
 * operator alice --enroll-keys …` signs a user JWT with the same permissions as the static nkey entry, so alice may
 * ask any host's logs/exec endpoints as alice only; the monitor identity may not ask them at all.
 */

import fs from 'node:fs';
import { parseCreds } from '@nats-io/jwt';
import { expect, it } from 'vitest';
import { writeOperatorCreds } from '../../edgectl/credentials.js';
import { operatorName } from '../../edgectl/ops-commands.js';
import { clientFor, operatorSetupForTest, subjects } from '../harness/enrollment.js';
import { startNatsForTest, tempDir } from '../harness/index.js';

it('lets operator alice request as alice on any host, and refuses alice posing as bob and the monitor', async () => {
  const { files, setup } = await operatorSetupForTest();
  const nats = await startNatsForTest({ operator: setup });
  const alice = await writeOperatorCreds(tempDir('edgeplane-alice-'), files.enrollKeys, subjects, 'alice');
  expect(fs.statSync(alice).mode & 0o777).toBe(0o600);
  expect(operatorName(undefined, alice)).toBe('alice');
  const { uc } = await parseCreds(fs.readFileSync(alice));
  expect(uc.name).toBe('alice');
  expect(uc.nats.pub?.allow).toContain('edge.ops.*.exec.alice');

  // Something answering the endpoints of host h1, as an agent does (here with the coordinator's identity).
  const responder = await clientFor([nats.url], { creds: files.coordinatorCreds });
  responder.subscribe(subjects.opsEndpoint('h1', 'logs'), {
    callback: (_err, msg) => {
      msg.respond(msg.subject);
    },
  });
  await responder.flush();

  const nc = await clientFor([nats.url], { creds: alice });
  const ok = await nc.request(subjects.opsRequest('h1', 'logs', 'alice'), '{}', { timeout: 5000 });
  expect(ok.string()).toBe('edge.ops.h1.logs.alice');
  await expect(nc.request(subjects.opsRequest('h1', 'logs', 'bob'), '{}', { timeout: 5000 })).rejects.toThrow(
    /permission/i,
  );

  const monitor = await clientFor([nats.url], { creds: files.monitorCreds });
  await expect(
    monitor.request(subjects.opsRequest('h1', 'logs', 'monitor'), '{}', { timeout: 5000 }),
  ).rejects.toThrow(/permission/i);
});
