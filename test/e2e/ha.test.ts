/**
 * High availability: two coordinators against one kube-apiserver and NATS. A coordination.k8s.io Lease elects the
 * one that acts; the standby acts on nothing until the leader dies (SIGKILL, no release) and its Lease expires,
 * then takes over and keeps the Workload converging.
 */
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEV_LOCATIONS, startAgent, startCoordinator } from '../../deploy/stack/edgeplane.js';
import {
  docker,
  ensureDocker,
  ensureImage,
  HTTPD_CMD,
  type KubeApiHandle,
  kubectl,
  REPO_DIR,
  removeContainersByLabel,
  startKubeApi,
  startNatsServer,
} from '../../deploy/stack/index.js';
import type { Proc } from '../../deploy/stack/proc.js';
import { cleanup, tempDir, waitFor } from '../harness/index.js';
import { nginxWorkload } from '../harness/objects.js';

const LEASE_SECONDS = 4;
let kube: KubeApiHandle;
let coordinators: Proc[] = [];
let dir = '';
let host = '';

/** IDs of the running containers of the agent's host. */
async function containers(): Promise<string[]> {
  const r = await docker(['ps', '-q', '--filter', `label=edgeplane.dev/host=${host}`]);
  return r.stdout.split('\n').filter(Boolean).sort();
}

async function k(args: string[], input?: string): Promise<string> {
  const r = await kubectl(kube.kubeconfigPath, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** How long the waits of this file wait: a Lease expiry and a coordinator start. */
const WAIT = { timeoutMs: 120_000, intervalMs: 250 };

const holder = async () => {
  const r = await kubectl(kube.kubeconfigPath, [
    'get',
    'lease',
    'edge-coordinator',
    '-n',
    'kube-system',
    '-o',
    'jsonpath={.spec.holderIdentity}',
  ]);
  return r.code === 0 && r.stdout ? r.stdout : undefined;
};
const identityOf = (p: Proc) => `${os.hostname()}_${p.pid}_`;

beforeAll(async () => {
  await ensureDocker();
  await ensureImage('nginx:latest', { cmd: HTTPD_CMD, exposedPorts: [80] });
  dir = tempDir('edgeplane-ha-');
  const [nats, api] = await Promise.all([
    startNatsServer({ dir: path.join(dir, 'nats') }),
    startKubeApi({ dir: path.join(dir, 'kube'), crdDir: path.join(REPO_DIR, 'deploy/crds') }),
  ]);
  kube = api;
  cleanup(() => nats.stop());
  cleanup(() => kube.stop());
  for (const name of ['a', 'b']) {
    const c = startCoordinator({
      dir: path.join(dir, `coordinator-${name}`),
      kubeconfig: kube.kubeconfigPath,
      nats: [nats.url],
      args: ['--lease-duration', String(LEASE_SECONDS)],
    });
    coordinators.push(c);
    cleanup(() => c.stop());
  }
  const l = DEV_LOCATIONS[0];
  host = `ha-${crypto.randomBytes(3).toString('hex')}`;
  const agent = startAgent({
    dir: path.join(dir, 'agent'),
    host,
    ...l,
    nats: [nats.url],
    cpu: '8',
    memory: '16Gi',
  });
  cleanup(async () => {
    await agent.stop();
    await removeContainersByLabel(`edgeplane.dev/host=${host}`);
  });
}, 300_000);

describe('two coordinators', () => {
  it('one holds the Lease and acts; the other only waits', async () => {
    const first = await waitFor('a Lease holder', holder, WAIT);
    const leader = coordinators.find((c) => first.startsWith(identityOf(c)));
    expect(leader).toBeDefined();
    const standby = coordinators.find((c) => c !== leader)!;
    await k(['apply', '-f', '-'], nginxWorkload({ name: 'ha', replicas: 1, group: 'compute.datumapis.com' }));
    await waitFor(
      'ha ready',
      async () => (await k(['get', 'workload', 'ha', '-o', 'jsonpath={.status.readyReplicas}'])) === '1',
      WAIT,
    );
    const standbyLog = readFileSync(standby.logFile, 'utf8');
    expect(standbyLog).toContain('waiting to become leader');
    expect(standbyLog).not.toContain('coordinator started');
    expect(readFileSync(leader!.logFile, 'utf8')).toContain('became leader');
    coordinators = [leader!, standby];
  });

  it('the standby takes over when the leader dies, and acts', async () => {
    const [leader, standby] = coordinators as [Proc, Proc];
    const running = await containers();
    expect(running).toHaveLength(1);
    await leader.kill(); // no release: the standby must wait for the Lease to expire
    const killedAt = Date.now();
    const next = await waitFor(
      'a new Lease holder',
      async () => {
        const h = await holder();
        return h?.startsWith(identityOf(standby)) ? h : undefined;
      },
      WAIT,
    );
    expect(next).toContain(identityOf(standby));
    // Not before the Lease ran out (with a little slack for clocks and polling).
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual((LEASE_SECONDS - 1) * 1000);
    await waitFor(
      'standby started',
      () => readFileSync(standby.logFile, 'utf8').includes('coordinator started'),
      WAIT,
    );
    // The new leader acts: a scale converges, and nothing that was right changed.
    const before = await k([
      'get',
      'instances',
      '-l',
      'workload=ha',
      '-o',
      'jsonpath={.items[*].metadata.uid}',
    ]);
    // Taking over changed nothing that was right: the same container still runs.
    expect(await containers()).toEqual(running);
    await k(['scale', 'workload', 'ha', '--replicas=2']);
    await waitFor(
      'ha scaled',
      async () => (await k(['get', 'workload', 'ha', '-o', 'jsonpath={.status.readyReplicas}'])) === '2',
      WAIT,
    );
    const after = (
      await k(['get', 'instances', '-l', 'workload=ha', '-o', 'jsonpath={.items[*].metadata.uid}'])
    ).split(' ');
    expect(after).toContain(before);
    await kubectl(kube.kubeconfigPath, ['delete', 'workload', 'ha', '--timeout=60s'], { timeoutMs: 70_000 });
  });

  it('a leader that stops cleanly releases the Lease at once', async () => {
    const [, standby] = coordinators as [Proc, Proc];
    await standby.stop();
    const h = await holder();
    expect(h ?? '').toBe('');
  });
});
