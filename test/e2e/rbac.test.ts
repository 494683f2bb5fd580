/**
 * The coordinator with exactly the rights deploy/kubernetes grants: the manifests are applied to a real
 * kube-apiserver (RBAC authorization, OwnerReferencesPermissionEnforcement on) the way the README says, and the
 * coordinator runs with a token of its ServiceAccount, never an admin identity, beside a real nats-server and an
 * agent with dockerd + runsc. It drives Workloads to READY and deletes them through its finalizer; with one
 * permission taken away it names the forbidden request, keeps running, and recovers once the permission is back.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCoordinatorImage } from '../../deploy/image/coordinator.js';
import { DEV_LOCATIONS, httpUrlOf, startCoordinator } from '../../deploy/stack/edgeplane.js';
import {
  docker,
  ensureDocker,
  ensureImage,
  freePort,
  HTTPD_CMD,
  type KubeApiHandle,
  kubeconfigYaml,
  kubectl,
  type NatsServerHandle,
  REPO_DIR,
  waitFor,
} from '../../deploy/stack/index.js';
import type { Proc } from '../../deploy/stack/proc.js';
import { startAgentForTest, startNatsAndKube } from '../harness/edge.js';
import { cleanup, tempDir } from '../harness/index.js';
import { netnsPrefix, useStandInHosts } from '../harness/network.js';
import { runDeploymentContainer } from '../harness/pod.js';

const NS = 'edgeplane-system';
const SA = `system:serviceaccount:${NS}:edge-coordinator`;
const KUSTOMIZATION = path.join(REPO_DIR, 'deploy/kubernetes');
/** The coordinator's NATS credentials (an nkey seed; the test's nats-server does not ask for them). */
const CREDS = `${new TextDecoder().decode(createUser().getSeed())}\n`;

let kube: KubeApiHandle;
let nats: NatsServerHandle;
let coordinator: Proc;
let dir: string;
let saKubeconfig: string;

/** kubectl as the cluster's admin; throws with stderr on failure. */
async function admin(args: string[], input?: string): Promise<string> {
  const r = await kubectl(kube.kubeconfigPath, args, { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

async function jsonpath(resource: string, jp: string): Promise<string> {
  const r = await kubectl(kube.kubeconfigPath, ['get', ...resource.split(' '), '-o', `jsonpath=${jp}`]);
  return r.code === 0 ? r.stdout : '';
}

/** A coordinator's JSON log lines so far. */
function coordinatorLog(proc = coordinator): Array<Record<string, unknown>> {
  return fs
    .readFileSync(proc.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function workload(name: string): string {
  return [
    'apiVersion: compute.datumapis.com/v1alpha1',
    'kind: Workload',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  replicas: 1',
    '  template:',
    '    spec:',
    '      image: nginx:latest',
    '      env:',
    '        - name: GREETING',
    '          valueFrom: { configMapKeyRef: { name: settings, key: greeting } }',
    '      networkInterfaces:',
    '        - networkRef: { name: default }',
    '',
  ].join('\n');
}

beforeAll(async () => {
  await ensureDocker();
  await ensureImage('nginx:latest', { cmd: HTTPD_CMD, exposedPorts: [80] });
  dir = tempDir('edgeplane-rbac-');
  ({ nats, kube } = await startNatsAndKube(dir, {
    kube: { extraArgs: ['--enable-admission-plugins=OwnerReferencesPermissionEnforcement'] },
  }));

  // README, "Install the coordinator on a cluster": the namespace and the NATS Secret, then the kustomization.
  const creds = path.join(dir, 'coordinator.creds');
  fs.writeFileSync(creds, CREDS, { mode: 0o600 });
  await admin(['apply', '-f', path.join(KUSTOMIZATION, 'namespace.yaml')]);
  await admin([
    '-n',
    NS,
    'create',
    'secret',
    'generic',
    'edge-coordinator-nats',
    `--from-file=nats.creds=${creds}`,
  ]);
  const applied = await kubectl(kube.kubeconfigPath, ['apply', '-k', KUSTOMIZATION]);
  expect(applied.code, applied.stderr).toBe(0);
  // The one warning the README announces: apply takes over the Secret made by `kubectl create`.
  expect(applied.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(
      /^Warning: resource secrets\/edge-coordinator-nats is missing the kubectl.kubernetes.io\/last-applied-configuration annotation/,
    ),
  ]);
  await admin(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);

  // Its ServiceAccount's token, in a kubeconfig of its own: no admin identity from here on.
  const token = (await admin(['-n', NS, 'create', 'token', 'edge-coordinator', '--duration=2h'])).trim();
  saKubeconfig = path.join(dir, 'coordinator.kubeconfig');
  fs.writeFileSync(saKubeconfig, kubeconfigYaml(kube.server, token, kube.caPem, 'edge-coordinator'), {
    mode: 0o600,
  });
  const whoami = await kubectl(saKubeconfig, [
    'auth',
    'whoami',
    '-o',
    'jsonpath={.status.userInfo.username}',
  ]);
  expect(whoami.stdout).toBe(SA);

  coordinator = startCoordinator({
    dir: path.join(dir, 'coordinator'),
    kubeconfig: saKubeconfig,
    nats: [nats.url],
    args: ['--lease-namespace', NS],
  });
  cleanup(() => coordinator.stop());
  const location = DEV_LOCATIONS[0];
  const host = `rbac-${path.basename(dir).slice(-6).toLowerCase()}`;
  // A network host (its own namespace and overlay address), as every host that runs Network-attached instances.
  const netHost = useStandInHosts(netnsPrefix('r'), 1).hosts[0]!;
  startAgentForTest({
    dir: path.join(dir, 'agent'),
    host,
    ...location,
    nats: [nats.url],
    cpu: '8',
    overlay: { namespace: netHost.name, address: netHost.address },
  });
  // The coordinator creates the Host and writes its status with the ServiceAccount's rights.
  await waitFor(
    'the host Ready',
    async () => (await jsonpath(`host ${host}`, '{.status.state}')) === 'Ready',
    {
      timeoutMs: 120_000,
      abort: () => (coordinator.exit ? `coordinator exited: ${JSON.stringify(coordinator.exit)}` : undefined),
    },
  );
  await admin(['create', 'namespace', 'shop']);
  await admin(['-n', 'shop', 'create', 'configmap', 'settings', '--from-literal=greeting=hello']);
  await admin(
    ['-n', 'shop', 'apply', '-f', '-'],
    'apiVersion: compute.datumapis.com/v1alpha1\nkind: Network\nmetadata:\n  name: default\n',
  );
}, 600_000);

describe('deploy/kubernetes applied as the README says', () => {
  it('installs the Deployment, and a second apply keeps the NATS credentials the operator put in', async () => {
    expect(await jsonpath(`deployment edge-coordinator -n ${NS}`, '{.spec.replicas}')).toBe('2');
    await admin(['apply', '-k', KUSTOMIZATION]);
    const data = await jsonpath(`secret edge-coordinator-nats -n ${NS}`, '{.data.nats\\.creds}');
    expect(Buffer.from(data, 'base64').toString()).toBe(CREDS);
  });

  it('grants the ServiceAccount what the coordinator needs and no more', async () => {
    const can = async (verb: string, resource: string, ns?: string) => {
      const r = await kubectl(kube.kubeconfigPath, [
        'auth',
        'can-i',
        verb,
        resource,
        `--as=${SA}`,
        ...(ns ? ['-n', ns] : ['--all-namespaces']),
      ]);
      return r.stdout.trim() === 'yes';
    };
    expect(await can('watch', 'secrets')).toBe(true);
    expect(await can('patch', 'workloads.compute.miloapis.com', 'shop')).toBe(true);
    expect(await can('update', 'leases/edge-coordinator', NS)).toBe(true);
    for (const [verb, resource, ns] of [
      ['get', 'secrets', 'shop'],
      ['create', 'secrets', 'shop'],
      ['delete', 'workloads.compute.datumapis.com', 'shop'],
      ['update', 'leases/edge-coordinator', 'kube-system'],
      ['update', 'leases/some-other-lease', NS],
      ['create', 'pods', 'shop'],
    ] as const)
      expect(await can(verb, resource, ns), `${verb} ${resource} in ${ns}`).toBe(false);
  });
});

describe('the coordinator on its ServiceAccount token', () => {
  it('holds the Lease in edgeplane-system and drives a Workload to READY', async () => {
    expect(await jsonpath(`lease edge-coordinator -n ${NS}`, '{.spec.holderIdentity}')).not.toBe('');
    await admin(['-n', 'shop', 'apply', '-f', '-'], workload('web'));
    await waitFor(
      'web READY',
      async () => (await jsonpath('workload web -n shop', '{.status.readyReplicas}')) === '1',
      {
        timeoutMs: 120_000,
      },
    );
    expect(await jsonpath('instance web-us-central1-a-0 -n shop', '{.status.phase}')).toBe('Running');
    const events = JSON.parse(await admin(['-n', 'shop', 'get', 'events', '-o', 'json'])).items;
    expect(
      events.some((e: { source?: { component?: string } }) => e.source?.component === 'edge-coordinator'),
    ).toBe(true);
    const forbidden = coordinatorLog().filter((l) => JSON.stringify(l).includes('Forbidden'));
    expect(forbidden).toEqual([]);
  });

  it('names a forbidden request, keeps running, and recovers when the permission is back', async () => {
    // Take away `patch` on workloads/status (its own rule in rbac.yaml).
    const role = JSON.parse(await admin(['get', 'clusterrole', 'edgeplane:edge-coordinator', '-o', 'json']));
    const before = role.rules.length;
    role.rules = role.rules.filter((r: { resources: string[] }) => !r.resources.includes('workloads/status'));
    expect(role.rules).toHaveLength(before - 1);
    await admin(['replace', '-f', '-'], JSON.stringify(role));
    await waitFor('the permission gone', async () => {
      const r = await kubectl(kube.kubeconfigPath, [
        'auth',
        'can-i',
        'patch',
        'workloads.compute.datumapis.com',
        '--subresource=status',
        `--as=${SA}`,
        '-n',
        'shop',
      ]);
      return r.stdout.trim() === 'no';
    });

    await admin(['-n', 'shop', 'apply', '-f', '-'], workload('api'));
    const line = await waitFor(
      'the coordinator to log the forbidden request',
      async () =>
        coordinatorLog().find(
          (l) => l.key === 'compute.datumapis.com|shop|api' && String(l.err ?? '').includes('403 Forbidden'),
        ),
      { timeoutMs: 60_000 },
    );
    // Which request: identity, verb, resource, group and namespace, in one line.
    expect(line.err).toContain(`User "${SA}" cannot patch resource "workloads/status"`);
    expect(line.err).toContain('in API group "compute.datumapis.com" in the namespace "shop"');
    expect(line.msg).toBe('reconcile failed');
    expect(line.level).toBe(40); // warn: the coordinator goes on
    await new Promise((r) => setTimeout(r, 3000));
    expect(coordinator.exit).toBeUndefined();
    expect(await jsonpath('workload api -n shop', '{.status.readyReplicas}')).toBe('');

    // Applying the kustomization again restores the rule; the retry (backoff) then writes the status.
    await admin(['apply', '-k', KUSTOMIZATION]);
    await waitFor(
      'api READY',
      async () => (await jsonpath('workload api -n shop', '{.status.readyReplicas}')) === '1',
      {
        timeoutMs: 120_000,
      },
    );
    expect(coordinator.exit).toBeUndefined();
  });

  it('deletes the Workloads through its finalizer: Instances and WorkloadDeployments go too', async () => {
    await admin(['-n', 'shop', 'delete', 'workload', 'web', 'api', '--timeout=120s']);
    expect(await admin(['-n', 'shop', 'get', 'instances,workloaddeployments', '-o', 'name'])).toBe('');
    expect(coordinator.exit).toBeUndefined();
  });
});

describe('the image of `npm run image`, run as the installed Deployment says', () => {
  it('stands by beside the leader, takes over when it stops, and drives a Workload to READY', async () => {
    const run = crypto.randomBytes(3).toString('hex');
    const tag = `edgeplane/coordinator:e2e-${run}`;
    await buildCoordinatorImage({ tag });
    cleanup(() => docker(['rmi', '-f', tag]));
    const help = await docker(['run', '--rm', tag, '--help']);
    expect(help.stdout).toContain('--lease-namespace');
    const metrics = `127.0.0.1:${await freePort()}`;
    const id = await runDeploymentContainer({
      kube,
      namespace: NS,
      deployment: 'edge-coordinator',
      image: tag,
      envOverrides: { EDGE_NATS_URL: nats.url, EDGE_NATS_CA: '' },
      // The conversion webhook likewise on a loopback port, not the Deployment's 0.0.0.0:9443.
      extraArgs: ['--metrics-address', metrics, '--webhook-address', `127.0.0.1:${await freePort()}`],
      dir: path.join(dir, 'pod'),
      label: `edgeplane.test=rbac-${run}`,
    });
    const logs = async () => {
      const r = await docker(['logs', id]);
      return r.stdout + r.stderr;
    };
    const running = async () =>
      (await docker(['inspect', '-f', '{{.State.Running}}', id])).stdout.trim() === 'true';
    const standby = await waitFor(
      'the container to stand by',
      async () => (await logs()).split('\n').find((l) => l.includes('waiting to become leader')),
      { timeoutMs: 30_000 },
    );
    const identity = JSON.parse(standby).identity as string;
    // On the host's network the HTTP server must not take 0.0.0.0:9464, hence the loopback port given above.
    await waitFor('its HTTP server', async () => (await fetch(`http://${metrics}/readyz`)).status === 200);
    expect(await (await fetch(`http://${metrics}/readyz`)).text()).toContain('standby');
    expect(await jsonpath(`lease edge-coordinator -n ${NS}`, '{.spec.holderIdentity}')).not.toBe(identity);

    await coordinator.stop(); // releases the Lease
    await waitFor('the container to lead', async () => (await logs()).includes('became leader'), {
      timeoutMs: 60_000,
    });
    expect(await jsonpath(`lease edge-coordinator -n ${NS}`, '{.spec.holderIdentity}')).toBe(identity);
    await admin(['-n', 'shop', 'apply', '-f', '-'], workload('img'));
    await waitFor(
      'img READY',
      async () => (await jsonpath('workload img -n shop', '{.status.readyReplicas}')) === '1',
      { timeoutMs: 120_000 },
    );
    const probe = async (p: string) => {
      const r = await fetch(`http://${metrics}${p}`);
      return `${r.status} ${(await r.text()).trim()}`;
    };
    expect(await probe('/healthz')).toBe('200 ok');
    expect(await probe('/readyz')).toBe('200 ok');
    expect(await probe('/metrics')).toMatch(/^edgeplane_coordinator_leader 1$/m);
    expect(await running()).toBe(true);
    expect(await logs()).not.toMatch(/Forbidden|"level":50|"level":60/);
  });
});

describe('a coordinator that may not list Instances', () => {
  it('waits, naming the forbidden list, instead of acting on an empty cache; it starts once it may', async () => {
    const role = JSON.parse(await admin(['get', 'clusterrole', 'edgeplane:edge-coordinator', '-o', 'json']));
    const rule = role.rules.find((r: { resources: string[] }) => r.resources.includes('instances'));
    rule.verbs = rule.verbs.filter((v: string) => v !== 'list');
    await admin(['replace', '-f', '-'], JSON.stringify(role));
    const instancesBefore = await admin(['get', 'instances', '-A', '-o', 'name']);
    // Beside the image's coordinator, which leads: without a Lease, so that only its caches hold it back.
    const second = startCoordinator({
      dir: path.join(dir, 'second'),
      kubeconfig: saKubeconfig,
      nats: [nats.url],
      args: ['--no-leader-elect'],
    });
    cleanup(() => second.stop());
    const line = await waitFor(
      'the forbidden list in the log',
      () => coordinatorLog(second).find((l) => String(l.err ?? '').includes('403 Forbidden')),
      { timeoutMs: 60_000 },
    );
    expect(line.err).toContain(`User "${SA}" cannot list resource`);
    // The rule held Instances and WorkloadDeployments; whichever cache asked first is named.
    expect(line.err).toMatch(
      /"(instances|workloaddeployments)" in API group "compute.datumapis.com" at the cluster/,
    );
    await new Promise((r) => setTimeout(r, 5000));
    expect(second.exit).toBeUndefined();
    expect(coordinatorLog(second).some((l) => l.msg === 'coordinator started')).toBe(false);
    const readyz = await fetch(`${await httpUrlOf(second)}/readyz`);
    expect(`${readyz.status} ${await readyz.text()}`).toMatch(/^503 .*caches not synced/);
    expect(await admin(['get', 'instances', '-A', '-o', 'name'])).toBe(instancesBefore);

    await admin(['apply', '-k', KUSTOMIZATION]);
    await waitFor('it to start', () => coordinatorLog(second).some((l) => l.msg === 'coordinator started'), {
      timeoutMs: 60_000,
    });
    await second.stop();
    expect(await admin(['get', 'instances', '-A', '-o', 'name'])).toBe(instancesBefore);
  });
});
