/**
 * The first slice, end to end on the real parts: kubectl applies a Workload; the coordinator places it and
 * publishes intents over NATS; agents start gVisor containers; status comes back to `kubectl get`; deletion
 * removes every container before it returns.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { docker, REPO_DIR } from '../../deploy/stack/index.js';
import { useEdgeStack } from '../harness/edge.js';
import { appContainerIds } from '../harness/index.js';
import { nginxWorkload } from '../harness/objects.js';

const stack = useEdgeStack();

/** IDs of the app containers (running or not) the agents of these hosts created, holders left out. */
async function containersOf(hosts: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const host of hosts) {
    const r = await docker([
      'ps',
      '-a',
      '--format',
      '{{.ID}} {{.Label "edgeplane.dev/role"}}',
      '--filter',
      `label=edgeplane.dev/host=${host}`,
    ]);
    out.push(...appContainerIds(r.stdout));
  }
  return out;
}

describe('the first slice', () => {
  it('applies the basic example and reaches READY 3 on gVisor containers spread over three locations', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', 'slice']);
    // The example attaches to production-network; until that Network exists the Workload waits (kubectl.test.ts).
    await s.kubectl(['apply', '-n', 'slice', '-f', '-'], {
      input:
        'apiVersion: compute.datumapis.com/v1alpha1\nkind: Network\nmetadata:\n  name: production-network\n',
    });
    const manifest = readFileSync(path.join(REPO_DIR, 'examples/web-app.yaml'), 'utf8');
    await s.kubectl(['apply', '-n', 'slice', '-f', '-'], { input: manifest });
    await s.waitForJsonPath('workload web-app -n slice', '{.status.readyReplicas}', (v) => v === '3');

    const get = await s.kubectl(['get', 'workload', 'web-app', '-n', 'slice']);
    expect(get.stdout).toMatch(/^NAME\s+REPLICAS\s+READY\s+PHASE\s+AGE/);
    expect(get.stdout).toMatch(/web-app\s+3\s+3\s+Running\s+\d+s/);

    const instances = await s.kubectl([
      'get',
      'instances',
      '-n',
      'slice',
      '-l',
      'workload=web-app',
      '-o',
      'json',
    ]);
    const items = JSON.parse(instances.stdout).items as Array<{
      metadata: { name: string };
      spec: { location: string; host: string };
    }>;
    expect(items.map((i) => i.metadata.name).sort()).toEqual([
      'web-app-eu-west-1a-0',
      'web-app-us-central1-a-0',
      'web-app-us-central1-b-0',
    ]);
    expect(new Set(items.map((i) => i.spec.host))).toEqual(new Set(s.hosts));

    const ids = await containersOf(s.hosts);
    expect(ids).toHaveLength(3);
    for (const id of ids) {
      const r = await docker(['inspect', '--format', '{{.HostConfig.Runtime}} {{.State.Running}}', id]);
      expect(r.stdout.trim()).toBe('runsc true');
    }

    const status = JSON.parse(
      (await s.kubectl(['get', 'workload', 'web-app', '-n', 'slice', '-o', 'jsonpath={.status}'])).stdout,
    );
    expect(status).toMatchObject({ phase: 'Running', replicas: 3, readyReplicas: 3, availableReplicas: 3 });
    expect(status.conditions.find((c: { type: string }) => c.type === 'Available')).toMatchObject({
      status: 'True',
    });
  });

  it('publishes container ports on 127.0.0.1 and the instance answers there', async () => {
    const s = stack();
    await s.kubectl(['apply', '-n', 'slice', '-f', '-'], {
      input: nginxWorkload({
        name: 'web-ports',
        replicas: 1,
        labels: { app: 'web-ports' },
        ports: [{ containerPort: 80, name: 'http' }],
        memory: '128Mi',
      }),
    });
    const port = await s.waitForJsonPath(
      'instances -n slice -l workload=web-ports',
      '{.items[0].status.ports[0].hostPort}',
      (v) => Number(v) > 0,
    );
    const ip = (
      await s.kubectl([
        'get',
        'instances',
        '-n',
        'slice',
        '-l',
        'workload=web-ports',
        '-o',
        'jsonpath={.items[0].status.ports[0].hostIP}',
      ])
    ).stdout;
    expect(ip).toBe('127.0.0.1');
    let body = '';
    for (let i = 0; i < 50 && !body; i++) {
      body = await fetch(`http://127.0.0.1:${port}/`).then(
        (r) => r.text(),
        () => '',
      );
      if (!body) await new Promise((r) => setTimeout(r, 200));
    }
    expect(body.length).toBeGreaterThan(0);
    await s.kubectl(['delete', 'workload.compute.miloapis.com', 'web-ports', '-n', 'slice', '--timeout=60s']);
  });

  it('scales up and down, adding and removing only what it must', async () => {
    const s = stack();
    const before = (
      await s.kubectl([
        'get',
        'instances',
        '-n',
        'slice',
        '-l',
        'workload=web-app',
        '-o',
        'jsonpath={.items[*].metadata.uid}',
      ])
    ).stdout.split(' ');
    await s.kubectl(['scale', 'workload', 'web-app', '-n', 'slice', '--replicas=5']);
    await s.waitForJsonPath('workload web-app -n slice', '{.status.readyReplicas}', (v) => v === '5');
    const after = (
      await s.kubectl([
        'get',
        'instances',
        '-n',
        'slice',
        '-l',
        'workload=web-app',
        '-o',
        'jsonpath={.items[*].metadata.uid}',
      ])
    ).stdout.split(' ');
    expect(after).toHaveLength(5);
    for (const uid of before) expect(after).toContain(uid);

    await s.kubectl([
      'patch',
      'workload',
      'web-app',
      '-n',
      'slice',
      '--type=merge',
      '-p',
      '{"spec":{"replicas":2}}',
    ]);
    await s.waitForJsonPath('workload web-app -n slice', '{.status.replicas}', (v) => v === '2');
    await s.waitForJsonPath('workload web-app -n slice', '{.status.readyReplicas}', (v) => v === '2');
    // The agents remove the containers of the removed instances.
    for (let i = 0; i < 60 && (await containersOf(s.hosts)).length !== 2; i++)
      await new Promise((r) => setTimeout(r, 500));
    expect(await containersOf(s.hosts)).toHaveLength(2);
  });

  it('rejects an invalid Workload at apply time, naming the field', async () => {
    const s = stack();
    const r = await s.kubectl(['apply', '-n', 'slice', '-f', '-'], {
      allowFail: true,
      input: `apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: bad
spec:
  replicas: -1
  template:
    spec:
      machineType: e2-micro
`,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.replicas');
    expect(r.stderr).toContain('template.spec needs image or containers');
  });

  it('deletes: kubectl delete returns once every container is gone', async () => {
    const s = stack();
    await s.kubectl(['delete', 'workload', 'web-app', '-n', 'slice', '--timeout=90s'], {
      timeoutMs: 100_000,
    });
    expect(await containersOf(s.hosts)).toEqual([]);
    const left = await s.kubectl(['get', 'instances,workloaddeployments', '-n', 'slice', '-o', 'name']);
    expect(left.stdout.trim()).toBe('');
  });
});
