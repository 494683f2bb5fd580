/**
 * Autoscaling and ResourceQuotas on the whole stack (real kube-apiserver, coordinator, NATS, agents, runsc):
 * - an instance that burns CPU makes its Workload grow to maxReplicas; once every instance stops burning, it
 *   shrinks back to minReplicas after the (shortened) scale-down window; `kubectl scale` above the bound is
 *   corrected; the Events carry the figures and status.autoscaling the utilisation;
 * - a ResourceQuota on requests.cpu holds replicas back (QuotaGranted False naming quota, used, asked; a
 *   QuotaExceeded Event), and raising it lets them be placed.
 */
import { describe, expect, it } from 'vitest';
import { docker } from '../../deploy/stack/index.js';
import { useEdgeStack } from '../harness/edge.js';
import { appContainerIds, waitFor } from '../harness/index.js';

// The autoscaler looks every 2 s (default 15 s) so that the test is about the windows, not the sync period.
const stack = useEdgeStack({ coordinatorArgs: ['--autoscale-sync-period', '2'] });
const WINDOW_SECONDS = 20;

/** Busy until /tmp/stop exists, then idle. A 300m limit per instance keeps the machine usable. */
const BURN = 'while [ ! -e /tmp/stop ]; do :; done; while :; do sleep 3600; done';

const burner = (name: string) => `
apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: ${name}
spec:
  replicas: 1
  template:
    spec:
      image: nginx:latest
      command: [sh, -c, '${BURN}']
      resources:
        requests: { cpu: 100m, memory: 32Mi }
        limits: { cpu: 300m, memory: 64Mi }
  autoscaling:
    minReplicas: 1
    maxReplicas: 3
    metrics:
      - type: Resource
        resource: { name: cpu, target: { type: Utilization, averageUtilization: 50 } }
    behavior:
      scaleDown: { stabilizationWindowSeconds: ${WINDOW_SECONDS} }
`;

async function appContainers(namespace: string, workload: string): Promise<string[]> {
  const r = await docker([
    'ps',
    '--format',
    '{{.ID}} {{.Label "edgeplane.dev/role"}}',
    '--filter',
    `label=edgeplane.dev/namespace=${namespace}`,
    '--filter',
    `label=edgeplane.dev/workload=${workload}`,
  ]);
  const hosts = new Set(stack().hosts);
  const ids = appContainerIds(r.stdout);
  const mine: string[] = [];
  for (const id of ids) {
    const h = await docker(['inspect', '-f', '{{index .Config.Labels "edgeplane.dev/host"}}', id]);
    if (hosts.has(h.stdout.trim())) mine.push(id);
  }
  return mine;
}

async function eventsOf(namespace: string, name: string, reason: string): Promise<string[]> {
  const r = await stack().kubectl([
    'get',
    'events',
    '-n',
    namespace,
    '--field-selector',
    `involvedObject.name=${name},reason=${reason}`,
    '-o',
    'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
  ]);
  return r.stdout.split('\n').filter(Boolean);
}

describe('autoscaling on runsc', () => {
  it('grows to maxReplicas while its instances burn CPU, shrinks to minReplicas after the window', async () => {
    const s = stack();
    await s.kubectl(['apply', '-f', '-'], { input: burner('burn') });
    const t0 = Date.now();
    // Up: one burning instance (about 300m of a 100m request) is far above 50 %: 1 → 3 (the bound).
    await s.waitForJsonPath(
      'workload.compute.datumapis.com burn',
      '{.spec.replicas}',
      (v) => v === '3',
      300_000,
    );
    const upAfter = (Date.now() - t0) / 1000;
    const util = Number(
      await s.waitForJsonPath(
        'workload.compute.datumapis.com burn',
        '{.status.autoscaling.currentCPUUtilizationPercentage}',
        (v) => Number(v) > 50,
      ),
    );
    const target = await s.waitForJsonPath(
      'workload.compute.datumapis.com burn',
      '{.status.autoscaling.targetCPUUtilizationPercentage}',
      (v) => v !== '',
    );
    expect(target).toBe('50');
    const ups = await eventsOf('default', 'burn', 'SuccessfulRescale');
    expect(
      ups.some((m) => /^New size: 3 \(from \d\); CPU utilisation \d+ % of request \(target 50 %/.test(m)),
    ).toBe(true);
    await s.waitForJsonPath(
      'workload.compute.datumapis.com burn',
      '{.status.readyReplicas}',
      (v) => v === '3',
      180_000,
    );

    // kubectl scale above the bound: the autoscaler owns the count and brings it back to maxReplicas.
    await s.kubectl(['scale', 'workload.compute.datumapis.com/burn', '--replicas=5']);
    await s.waitForJsonPath(
      'workload.compute.datumapis.com burn',
      '{.spec.replicas}',
      (v) => v === '3',
      60_000,
    );

    // Down: every instance stops burning; the count stays for the window, then goes to 1.
    // (Once the two extra replicas of the scale are gone: exactly the three app containers run.)
    const ids = await waitFor(
      'three app containers',
      async () => {
        const list = await appContainers('default', 'burn');
        return list.length === 3 ? list : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    for (const id of ids) expect((await docker(['exec', id, 'sh', '-c', ': > /tmp/stop'])).stderr).toBe('');
    const stopped = Date.now();
    await s.waitForJsonPath(
      'workload.compute.datumapis.com burn',
      '{.status.autoscaling.currentCPUUtilizationPercentage}',
      (v) => v !== '' && Number(v) < 45,
      120_000,
    );
    await s.waitForJsonPath(
      'workload.compute.datumapis.com burn',
      '{.spec.replicas}',
      (v) => v === '1',
      300_000,
    );
    const downAfter = (Date.now() - stopped) / 1000;
    // The window: no scale-down before the high proposals of the last WINDOW_SECONDS have aged out.
    expect(downAfter).toBeGreaterThanOrEqual(WINDOW_SECONDS);
    const downs = (await eventsOf('default', 'burn', 'SuccessfulRescale')).filter((m) =>
      m.startsWith('New size: 1'),
    );
    expect(downs.length).toBeGreaterThan(0);
    console.log(
      JSON.stringify({
        upToMaxSeconds: upAfter,
        utilizationAtMax: util,
        downToMinSecondsAfterStop: downAfter,
        downs,
      }),
    );
    await s.kubectl(['delete', 'workload.compute.datumapis.com', 'burn', '--timeout=120s']);
  }, 900_000);
});

describe('ResourceQuota', () => {
  const ns = 'quota-e2e';
  const workload = (replicas: number) => `
apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata: { name: capped, namespace: ${ns} }
spec:
  replicas: ${replicas}
  template:
    spec:
      image: nginx:latest
      resources: { requests: { cpu: 200m, memory: 32Mi } }
`;
  const quota = (cpu: string) => `
apiVersion: v1
kind: ResourceQuota
metadata: { name: compute, namespace: ${ns} }
spec:
  hard: { requests.cpu: ${cpu}, limits.memory: 1Gi }
`;

  it('places only the replicas within requests.cpu, says which quota, used and asked; more room places the rest', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', ns]);
    await s.kubectl(['apply', '-f', '-'], { input: quota('500m') });
    await s.kubectl(['apply', '-f', '-'], { input: workload(4) });
    const message = await s.waitForJsonPath(
      `-n ${ns} workload.compute.datumapis.com capped`,
      '{.status.conditions[?(@.type=="QuotaGranted")].message}',
      (v) => v.includes('admitted'),
      180_000,
    );
    expect(message).toBe(
      'ResourceQuota compute: requests.cpu used 400m of 500m, each replica asks 200m: 2 of 4 replicas admitted',
    );
    const status = await s.waitForJsonPath(
      `-n ${ns} workload.compute.datumapis.com capped`,
      '{.status.conditions[?(@.type=="QuotaGranted")].status}',
      (v) => v !== '',
    );
    expect(status).toBe('False');
    await s.waitForJsonPath(
      `-n ${ns} workload.compute.datumapis.com capped`,
      '{.status.readyReplicas}',
      (v) => v === '2',
    );
    const instances = await s.kubectl(['get', 'instances', '-n', ns, '-o', 'name']);
    expect(instances.stdout.trim().split('\n')).toHaveLength(2);
    expect(await eventsOf(ns, 'capped', 'QuotaExceeded')).toEqual([message]);

    await s.kubectl(['apply', '-f', '-'], { input: quota('1') });
    await s.waitForJsonPath(
      `-n ${ns} workload.compute.datumapis.com capped`,
      '{.status.conditions[?(@.type=="QuotaGranted")].status}',
      (v) => v === 'True',
      120_000,
    );
    await s.waitForJsonPath(
      `-n ${ns} workload.compute.datumapis.com capped`,
      '{.status.readyReplicas}',
      (v) => v === '4',
    );
    await s.kubectl(['delete', '-n', ns, 'workload.compute.datumapis.com', 'capped', '--timeout=120s']);
  }, 600_000);
});
