/**
 * Datum's released compute API on the dev stack's code (useEdgeStack with the conversion webhook: real
 * nats-server, kube-apiserver, coordinator and three agents in DFW, DLS and LHR). Datum's sandbox and
 * multi-placement samples (examples/datum/, unchanged) apply with kubectl at compute.datumapis.com/v1alpha and
 * reach Ready in their city; Locations carry their city codes; an invalid v1alpha manifest is refused with its
 * field path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureImage, REPO_DIR } from '../../deploy/stack/index.js';
import { useEdgeStack } from '../harness/edge.js';

const stack = useEdgeStack({ webhook: true });
const sample = (f: string) => readFileSync(path.join(REPO_DIR, 'examples/datum', f), 'utf8');

/** The Network the samples attach to (Datum projects have one named default). */
const DEFAULT_NETWORK = `apiVersion: compute.datumapis.com/v1alpha1
kind: Network
metadata:
  name: default
spec:
  ipv4Cidr: 10.40.0.0/16
`;

beforeAll(async () => {
  // No registry is reachable here: the samples' image, built locally from busybox, serves netdata's port.
  await ensureImage('docker.io/netdata/netdata:latest', {
    cmd: ['/bin/httpd', '-f', '-p', '19999', '-h', '/var/www'],
    exposedPorts: [19999],
  });
}, 300_000);

describe("Datum's v1alpha samples on the dev stack", () => {
  it('Locations carry their city codes', async () => {
    const s = stack();
    const cities = await s.waitForJsonPath(
      'locations',
      '{range .items[*]}{.metadata.name}={.status.cityCode} {end}',
      (v) => v.trim().split(' ').length === 3 && !v.includes('= '),
    );
    expect(cities.trim().split(' ').sort()).toEqual([
      'eu-west-1a=LHR',
      'us-central1-a=DFW',
      'us-central1-b=DLS',
    ]);
  });

  it('the sandbox and multi-placement samples apply unchanged and reach Ready in DFW', async () => {
    const s = stack();
    await s.kubectl(['apply', '-f', '-'], { input: DEFAULT_NETWORK });
    for (const f of ['compute_v1alpha_workload-sandbox.yaml', 'multi-placement-sandbox.yaml'])
      await s.kubectl(['apply', '-f', '-'], { input: sample(f) });
    for (const [name, replicas] of [
      ['workload-sandbox-sample', '1'],
      ['workload-sample', '2'],
    ] as const) {
      await s.waitForJsonPath(
        `workloads.v1alpha1.compute.datumapis.com ${name}`,
        '{.status.readyReplicas}',
        (v) => v === replicas,
        300_000,
      );
      const hosts = await s.waitForJsonPath(
        `instances -l workload=${name}`,
        '{.items[*].spec.host}',
        (v) => v.trim().split(' ').length === Number(replicas),
      );
      // DFW is us-central1-a's city: every instance runs there.
      for (const h of hosts.trim().split(' ')) expect(h).toContain('us-central1-a');
      // Status as Datum writes it: Available with Datum's reason, counts, one entry per placement.
      const available = await s.waitForJsonPath(
        `workloads.v1alpha.compute.datumapis.com ${name}`,
        '{.status.conditions[?(@.type=="Available")].status} {.status.conditions[?(@.type=="Available")].reason} {.status.readyReplicas} {.status.desiredReplicas} {.status.placements[*].name}',
        (v) => v.startsWith(`True AvailablePlacementFound ${replicas} ${replicas}`),
      );
      expect(available).toBe(
        `True AvailablePlacementFound ${replicas} ${replicas} ${name === 'workload-sample' ? 'us-south us-south2' : 'us'}`,
      );
    }
    const table = await s.kubectl(['get', 'workloads.v1alpha.compute.datumapis.com']);
    expect(table.stdout).toMatch(/^NAME\s+AGE\s+AVAILABLE\s+REASON\s+DEPLOYMENTS\s+REPLICAS\s+READY/);
  });

  it('refuses an invalid v1alpha manifest with the field path, and creates nothing', async () => {
    const s = stack();
    const bad = sample('multi-placement-sandbox.yaml')
      .replace('name: workload-sample', 'name: bad-sample')
      .replace('datumcloud/d1-standard-2', 'datumcloud/d9-gigantic');
    const r = await s.kubectl(['apply', '-f', '-'], { input: bad, allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.template.spec.runtime.resources.instanceType: Invalid value');
    expect((await s.kubectl(['get', 'workload', 'bad-sample'], { allowFail: true })).code).not.toBe(0);
  });
});
