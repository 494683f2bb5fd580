/**
 * The conversion webhook with the real kube-apiserver calling it on loopback: the CRDs serve v1alpha1 and Datum's
 * v1alpha, stored as v1alpha1. Datum's released samples apply unchanged with kubectl and read back as v1alpha1 (what
 * the controller runs) and as v1alpha (what was applied, defaults added); invalid v1alpha manifests are refused
 * with field paths and nothing is created.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConversionWebhook } from '../../coordinator/conversion/server.js';
import { KubeClient } from '../../coordinator/kube/client.js';
import { REPO_DIR } from '../../deploy/stack/index.js';
import { kubectl } from '../../deploy/stack/kube.js';
import { createLogger } from '../../shared/log.js';
import { cleanup, tempDir, useKubeApi } from '../harness/index.js';

const kube = useKubeApi({ crdDir: path.join(REPO_DIR, 'deploy/crds') });
const log = createLogger({ name: 'test', level: 'warn' });
const V1 = 'workloads.v1alpha1.compute.datumapis.com';
const V1ALPHA = 'workloads.v1alpha.compute.datumapis.com';
const sample = (f: string) => readFileSync(path.join(REPO_DIR, 'examples/datum', f), 'utf8');

async function k(args: string[], input?: string) {
  return kubectl(kube().kubeconfigPath, args, input === undefined ? {} : { input });
}
async function getJson(resource: string, name: string) {
  const r = await k(['get', resource, name, '-o', 'json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as {
    metadata: { annotations?: Record<string, string> };
    spec: Record<string, unknown>;
  };
}

beforeAll(async () => {
  const hook = await ConversionWebhook.start(
    { address: '127.0.0.1:0', certDir: path.join(tempDir('edgeplane-webhook-'), 'certs') },
    new KubeClient(kube().kubeconfigPath),
    log,
  );
  cleanup(() => hook.close());
  await hook.registered;
  expect(hook.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/convert$/);
}, 180_000);

describe('conversion webhook on the real kube-apiserver', () => {
  it('serves both versions once the webhook took the CRDs over; re-applying the files undoes nothing', async () => {
    const crd = JSON.parse((await k(['get', 'crd', 'workloads.compute.datumapis.com', '-o', 'json'])).stdout);
    expect(crd.spec.conversion.strategy).toBe('Webhook');
    expect(crd.spec.conversion.webhook.clientConfig.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
    expect(Buffer.from(crd.spec.conversion.webhook.clientConfig.caBundle, 'base64').toString()).toContain(
      'BEGIN CERTIFICATE',
    );
    expect(
      crd.spec.versions.map((v: { name: string; storage: boolean; served: boolean }) => [
        v.name,
        v.storage,
        v.served,
      ]),
    ).toEqual([
      ['v1alpha1', true, true],
      ['v1alpha', false, true],
    ]);
    expect((await k(['get', V1ALPHA])).code).toBe(0);
    const again = await k(['apply', '-f', path.join(REPO_DIR, 'deploy/crds')]);
    expect(again.stderr).toBe('');
    const after = JSON.parse(
      (await k(['get', 'crd', 'workloads.compute.datumapis.com', '-o', 'json'])).stdout,
    );
    expect(after.spec.conversion).toEqual(crd.spec.conversion);
    expect(after.spec.versions[1].served).toBe(true);
  });

  it("applies Datum's sandbox sample unchanged, stores it as v1alpha1 and reads it back as applied", async () => {
    const applied = await k(['apply', '-f', '-'], sample('compute_v1alpha_workload-sandbox.yaml'));
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const stored = await getJson(V1, 'workload-sandbox-sample');
    expect(stored.spec).toMatchObject({
      replicas: 1,
      placement: { nodeSelector: { 'topology.datum.net/city-code': 'DFW' } },
      template: {
        metadata: { labels: { tier: 'app' } },
        spec: {
          resources: { requests: { cpu: '2', memory: '8Gi' } },
          containers: [{ name: 'netdata', image: 'docker.io/netdata/netdata:latest' }],
          networkInterfaces: [{ network: { name: 'default' } }],
        },
      },
    });
    expect(JSON.parse(stored.metadata.annotations!['compute.datumapis.com/placements']!)).toEqual([
      {
        name: 'us',
        cityCodes: ['DFW'],
        scaleSettings: { minReplicas: 1, instanceManagementPolicy: 'OrderedReady' },
      },
    ]);
    const read = await getJson(V1ALPHA, 'workload-sandbox-sample');
    expect(read.spec.placements).toEqual([
      {
        name: 'us',
        cityCodes: ['DFW'],
        scaleSettings: { minReplicas: 1, instanceManagementPolicy: 'OrderedReady' },
      },
    ]);
    expect((read.spec.template as { spec: { runtime: unknown } }).spec.runtime).toEqual({
      resources: { instanceType: 'datumcloud/d1-standard-2' },
      sandbox: {
        containers: [
          {
            name: 'netdata',
            image: 'docker.io/netdata/netdata:latest',
            volumeAttachments: [
              { name: 'secret', mountPath: '/secret' },
              { name: 'configmap', mountPath: '/configmap' },
            ],
          },
        ],
      },
    });
    expect(
      Object.keys(read.metadata.annotations ?? {}).filter((a) => a.startsWith('compute.datumapis.com/')),
    ).toEqual([]);
  });

  it('applies the multi-placement and VM samples; an edit through v1alpha changes the stored replicas', async () => {
    for (const f of ['multi-placement-sandbox.yaml', 'compute_v1alpha_workload-vm.yaml']) {
      const r = await k(['apply', '-f', '-'], sample(f));
      expect(r.stderr, f).toBe('');
    }
    expect((await getJson(V1, 'workload-sample')).spec.replicas).toBe(2);
    expect(
      ((await getJson(V1, 'workload-vm-sample')).spec.template as { spec: { image: string } }).spec.image,
    ).toBe('projects/datumcloud/global/images/ubuntu-2204-lts');
    const edited = sample('multi-placement-sandbox.yaml').replace(/minReplicas: 1/g, 'minReplicas: 3');
    expect((await k(['apply', '-f', '-'], edited)).code).toBe(0);
    expect((await getJson(V1, 'workload-sample')).spec.replicas).toBe(6);
    const list = await k(['get', V1ALPHA]);
    expect(list.stdout.split('\n')[0]).toMatch(
      /^NAME\s+AGE\s+AVAILABLE\s+REASON\s+DEPLOYMENTS\s+REPLICAS\s+READY\s+DESIRED\s+UP-TO-DATE/,
    );
  });

  it('reads a v1alpha1 Workload as v1alpha, and a v1alpha1 WorkloadDeployment too', async () => {
    expect((await k(['apply', '-f', path.join(REPO_DIR, 'examples/web-app.yaml')])).code).toBe(0);
    const v = await getJson(V1ALPHA, 'web-app');
    expect(v.spec.placements).toEqual([
      expect.objectContaining({
        name: 'default',
        scaleSettings: expect.objectContaining({ minReplicas: 3 }),
      }),
    ]);
    const wd = {
      apiVersion: 'compute.datumapis.com/v1alpha1',
      kind: 'WorkloadDeployment',
      metadata: { name: 'web-app-us-central1-a', namespace: 'default' },
      spec: {
        workloadRef: { name: 'web-app' },
        location: 'us-central1-a',
        replicas: 2,
        template: { spec: { image: 'nginx:latest' } },
      },
    };
    expect((await k(['apply', '-f', '-'], JSON.stringify(wd))).code).toBe(0);
    const got = JSON.parse(
      (
        await k([
          'get',
          'workloaddeployments.v1alpha.compute.datumapis.com',
          'web-app-us-central1-a',
          '-o',
          'json',
        ])
      ).stdout,
    );
    expect(got.spec.scaleSettings.minReplicas).toBe(2);
    expect(got.status.location).toEqual({ name: 'us-central1-a' });
  });

  const base = () => sample('multi-placement-sandbox.yaml').replace('name: workload-sample', 'name: bad');
  it.each([
    [
      'no placements',
      (s: string) => s.replace(/ {2}placements:[\s\S]*$/, ''),
      'spec.placements: Required value',
    ],
    [
      'a minReplicas of 0',
      (s: string) => s.replace('minReplicas: 1', 'minReplicas: 0'),
      'spec.placements[0].scaleSettings.minReplicas: Invalid value: 0',
    ],
    [
      'maxReplicas without metrics',
      (s: string) => s.replace('minReplicas: 1', 'minReplicas: 1\n      maxReplicas: 3'),
      'spec.placements[0].scaleSettings.metrics: Invalid value',
    ],
    [
      'an unknown instance type',
      (s: string) => s.replace('datumcloud/d1-standard-2', 'datumcloud/x9-huge'),
      'spec.template.spec.runtime.resources.instanceType: Invalid value',
    ],
    [
      'a sandbox and a virtual machine',
      (s: string) =>
        s.replace(
          '        sandbox:',
          '        virtualMachine:\n          volumeAttachments: [{name: boot}]\n        sandbox:',
        ),
      'spec.template.spec.runtime: Invalid value: "object": a runtime needs exactly one of sandbox or virtualMachine',
    ],
    [
      'an attachment of a volume that does not exist',
      (s: string) =>
        s.replace(
          'image: docker.io/netdata/netdata:latest',
          'image: docker.io/netdata/netdata:latest\n              volumeAttachments: [{name: nope, mountPath: /x}]',
        ),
      'spec.template.spec.runtime.sandbox.containers: Invalid value',
    ],
    [
      'a lower-case city code',
      (s: string) => s.replace('- DFW', '- dfw'),
      'spec.placements[0].cityCodes[0]: Invalid value: "dfw"',
    ],
    [
      'no network interface',
      (s: string) => s.replace(/ {6}networkInterfaces:[\s\S]*?(?= {2}placements:)/, ''),
      'spec.template.spec.networkInterfaces: Required value',
    ],
  ])('refuses %s with the field path, creating nothing', async (_what, edit, message) => {
    const manifest = edit(base());
    expect(manifest).not.toBe(base());
    const r = await k(['apply', '-f', '-'], manifest);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
    expect((await k(['get', V1, 'bad'])).code).not.toBe(0);
  });
});
