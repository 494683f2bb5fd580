/**
 * Enrollment end to end with the real coordinator process (operator mode: --enroll-keys, --nats-sys-creds),
 * kube-apiserver and nats-server: `edgectl hosts token create` → `edge-agent join` → the agent runs → the Host
 * object is Ready in Kubernetes; `edgectl hosts revoke` → the host is cut off and its Host leaves Ready.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startCoordinator } from '../../deploy/stack/edgeplane.js';
import { kubectl, REPO_DIR } from '../../deploy/stack/index.js';
import { joinHost, operatorSetupForTest, startJoinedAgent } from '../harness/enrollment.js';
import { cleanup, startKubeApiForTest, startNatsForTest, tempDir, waitFor } from '../harness/index.js';

const EDGECTL = path.join(REPO_DIR, 'dist/edgectl/main.js');

describe('enrollment with the real coordinator', () => {
  it('takes a host from a join token to a Ready Host object, and revokes it', async () => {
    const { files, setup } = await operatorSetupForTest();
    const [nats, kube] = await Promise.all([
      startNatsForTest({ operator: setup }),
      startKubeApiForTest({ crdDir: path.join(REPO_DIR, 'deploy/crds') }),
    ]);
    const dir = tempDir('edgeplane-e2e-enroll-');
    const coordinator = startCoordinator({
      dir: path.join(dir, 'coordinator'),
      kubeconfig: kube.kubeconfigPath,
      nats: [nats.url],
      args: ['--enroll-keys', files.enrollKeys, '--nats-sys-creds', files.coordinatorSysCreds],
      env: { EDGE_NATS_CREDS: files.coordinatorCreds },
    });
    cleanup(() => coordinator.stop());
    const edgectl = async (...args: string[]) =>
      (
        await promisify(execFile)(
          process.execPath,
          [EDGECTL, '--nats', nats.url, '--creds', files.adminCreds, ...args],
          { timeout: 30_000 },
        )
      ).stdout.trim();

    // The coordinator answers once it has started ("no enrollment service answers" until then).
    const token = await waitFor(
      'the enrollment service',
      () => edgectl('hosts', 'token', 'create', '--location', 'e2e-enroll', '--ttl', '10m'),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const host = `e2e-enroll-${process.pid}`;
    const configDir = path.join(dir, 'host');
    const t0 = performance.now();
    await joinHost({ nats: nats.url, token, host, configDir });
    startJoinedAgent(host, configDir);
    const state = async () =>
      (await kubectl(kube.kubeconfigPath, ['get', 'host', host, '-o', 'jsonpath={.status.state}'])).stdout;
    await waitFor('the Host object Ready', async () => (await state()) === 'Ready', {
      timeoutMs: 90_000,
      intervalMs: 200,
    });
    console.log(`from edge-agent join to Host Ready in Kubernetes: ${Math.round(performance.now() - t0)} ms`);
    expect(await edgectl('hosts', 'enrolled')).toMatch(new RegExp(`${host}\\s+e2e-enroll`));
    expect(await edgectl('hosts', 'token', 'list')).toMatch(/e2e-enroll\s+used\s+1\/1/);

    await edgectl('hosts', 'revoke', host);
    await waitFor('the Host object to leave Ready', async () => (await state()) !== 'Ready', {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(await edgectl('hosts', 'enrolled')).toMatch(new RegExp(`${host}\\s+e2e-enroll\\s+\\S+\\s+20`));
  });
});
