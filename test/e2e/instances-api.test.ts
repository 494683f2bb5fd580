/**
 * Instances served by the coordinator itself (`--instances-api=aggregated`, coordinator/apiserver/): the real
 * kube-apiserver (aggregation layer on, front-proxy certificates) calls the real coordinator on loopback through
 * an APIService, the Instances live in the real NATS KV, and simulated hosts report over NATS what the intents
 * place on them. Every kubectl workflow on Instances: discovery, get, -l, -o yaml, custom columns, -w (and a watch
 * from an old resourceVersion), describe with events, explain; callers other than kube-apiserver's front proxy
 * are refused; deleting the Workload removes its Instances (the coordinator's own garbage collection).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_LOCATIONS, startCoordinator } from '../../deploy/stack/edgeplane.js';
import { kubectl } from '../../deploy/stack/index.js';
import {
  instancesApiArgs,
  instancesApiCerts,
  registerInstancesApi,
} from '../../deploy/stack/instances-api.js';
import { freePort } from '../../shared/os.js';
import { startNatsAndKube } from '../harness/edge.js';
import { cleanup, tempDir, waitFor } from '../harness/index.js';
import { type SimHosts, startSimHosts } from '../harness/sim-hosts.js';

const GROUP = 'fleet.compute.datumapis.com';
let kubeconfig = '';
let port = 0;
let hosts: SimHosts | undefined;

const k = async (args: string[], o: { input?: string; allowFail?: boolean } = {}) => {
  const r = await kubectl(kubeconfig, args, o);
  if (r.code !== 0 && !o.allowFail)
    throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r;
};

const workload = (replicas: number) => `apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: web
  namespace: default
spec:
  replicas: ${replicas}
  template:
    metadata:
      labels:
        app: web
    spec:
      machineType: e2-micro
      image: nginx:latest
`;

/** Phases of the Instances of Workload web, by name. */
async function phases(): Promise<Record<string, string>> {
  const r = await k(['get', 'instances', '-l', 'workload=web', '-o', 'json'], { allowFail: true });
  if (r.code !== 0) return {};
  const items = JSON.parse(r.stdout).items as Array<{
    metadata: { name: string };
    status?: { phase?: string };
  }>;
  return Object.fromEntries(items.map((i) => [i.metadata.name, i.status?.phase ?? '']));
}

beforeAll(async () => {
  const dir = tempDir('edgeplane-iapi-');
  const { nats, kube } = await startNatsAndKube(dir);
  kubeconfig = kube.kubeconfigPath;
  const certs = instancesApiCerts(path.join(dir, 'certs'));
  port = await freePort();
  const coordinator = startCoordinator({
    dir: path.join(dir, 'coordinator'),
    kubeconfig,
    nats: [nats.url],
    args: [...instancesApiArgs(certs, port), '--no-leader-elect'],
  });
  cleanup(() => coordinator.stop());
  await registerInstancesApi(kubeconfig, certs.ca, port);
  hosts = await startSimHosts(
    nats.url,
    DEV_LOCATIONS.map((l) => l.location),
  );
  await k(['apply', '-f', '-'], { input: workload(3) });
  await waitFor(
    'three Running instances',
    async () => {
      const p = Object.values(await phases());
      return p.length === 3 && p.every((x) => x === 'Running');
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}, 300_000);

afterAll(async () => {
  await hosts?.stop();
});

describe('instances served by the coordinator through an APIService', () => {
  it('discovery lists instances in the aggregated group, read-only, with its short name', async () => {
    const r = await k(['api-resources', `--api-group=${GROUP}`, '-o', 'wide']);
    expect(r.stdout).toMatch(
      /^instances\s+inst\s+fleet\.compute\.datumapis\.com\/v1alpha1\s+true\s+Instance\s+get,list,watch/m,
    );
    // The Instance CRD is gone: `instances` means the aggregated resource.
    expect((await k(['get', 'crd', 'instances.compute.datumapis.com'], { allowFail: true })).code).not.toBe(
      0,
    );
  });

  it('get and get -l print the printer columns from a server-side Table', async () => {
    const table = (await k(['get', 'instances', '-l', 'workload=web'])).stdout;
    const lines = table.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+WORKLOAD\s+LOCATION\s+HOST\s+PHASE\s+NETWORK IP\s+AGE$/);
    expect(lines).toHaveLength(4);
    for (const l of lines.slice(1)) expect(l).toMatch(/^web-\S+\s+web\s+\S+\s+sim-\S+\s+Running\s+\d+[smh]/);
    const wide = (await k(['get', 'inst', '-o', 'wide'])).stdout;
    expect(wide.split('\n')[0]).toMatch(/READY\s+RUNTIME/);
    expect((await k(['get', 'instances', '-l', 'workload=nothing'], { allowFail: true })).stderr).toMatch(
      /No resources found/,
    );
    expect(
      (await k(['get', 'instances', '-l', 'workload in (web)', '-o', 'name'])).stdout.trim().split('\n'),
    ).toHaveLength(3);
    const bad = await k(['get', 'instances', '-l', 'workload in web'], { allowFail: true });
    expect(bad.code).not.toBe(0);
  });

  it('-o yaml and custom columns read the whole object', async () => {
    const name = Object.keys(await phases())[0]!;
    const yaml = (await k(['get', 'instance', name, '-o', 'yaml'])).stdout;
    expect(yaml).toContain(`apiVersion: ${GROUP}/v1alpha1`);
    expect(yaml).toContain('kind: Instance');
    expect(yaml).toMatch(/resourceVersion: "\d+"/);
    expect(yaml).toMatch(/uid: [0-9a-f-]{36}/);
    expect(yaml).toMatch(/workloadRef:\n\s+name: web/);
    expect(yaml).toContain('phase: Running');
    const cols = (
      await k([
        'get',
        'instances',
        '-l',
        'workload=web',
        '-o',
        'custom-columns=NAME:.metadata.name,HOST:.spec.host,PHASE:.status.phase,READY:.status.ready',
        '--sort-by=.metadata.name',
      ])
    ).stdout;
    expect(cols.trim().split('\n')).toHaveLength(4);
    expect(cols).toMatch(/^web-\S+\s+sim-\S+\s+Running\s+true$/m);
    const missing = await k(['get', 'instance', 'no-such-instance'], { allowFail: true });
    expect(missing.stderr).toContain('"no-such-instance" not found');
  });

  it('describe shows the Instance and its events (involvedObject is the aggregated Instance)', async () => {
    const name = Object.keys(await phases())[0]!;
    const d = (await k(['describe', 'instance', name])).stdout;
    expect(d).toMatch(new RegExp(`^Name:\\s+${name}$`, 'm'));
    expect(d).toMatch(/^API Version:\s+fleet\.compute\.datumapis\.com\/v1alpha1$/m);
    expect(d).toMatch(/Started\s+.*running on host sim-/);
    const ev = (
      await k([
        'get',
        'events',
        '--field-selector',
        `involvedObject.name=${name},involvedObject.kind=Instance`,
        '-o',
        'jsonpath={.items[*].involvedObject.apiVersion}',
      ])
    ).stdout;
    expect(ev).toContain(`${GROUP}/v1alpha1`);
  });

  it('explain reads the schema the coordinator serves (OpenAPI v3, and v2)', async () => {
    const spec = (await k(['explain', 'instances.spec'])).stdout;
    expect(spec).toMatch(/GROUP:\s+fleet\.compute\.datumapis\.com/);
    expect(spec).toContain('The host the instance is placed on.');
    const status = (await k(['explain', 'instances.status.phase'])).stdout;
    expect(status).toContain('The lifecycle phase.');
    expect(status).toMatch(/ENUM:\s+Pending\s+Starting\s+Running/);
    const v2 = (await k(['get', '--raw', '/openapi/v2'])).stdout;
    expect(v2).toContain('com.datumapis.compute.fleet.v1alpha1.Instance');
  });

  it('get -w follows additions and removals; a watch from an old resourceVersion replays the history', async () => {
    const lines: string[] = [];
    const w: ChildProcess = spawn(
      'kubectl',
      ['--kubeconfig', kubeconfig, 'get', 'instances', '-l', 'workload=web', '-w', '--output-watch-events'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let buf = '';
    w.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
    });
    try {
      await waitFor('the first three', async () => lines.filter((l) => /^ADDED/.test(l)).length >= 3, {
        timeoutMs: 30_000,
      });
      await k(['scale', 'workload', 'web', '--replicas=4']);
      await waitFor(
        'a fourth instance, Running',
        async () =>
          lines.some((l) => /^(ADDED|MODIFIED)\s+web-\S+.*Running/.test(l)) &&
          lines.filter((l) => /^ADDED/.test(l)).length >= 4,
        { timeoutMs: 60_000 },
      );
      await k(['scale', 'workload', 'web', '--replicas=3']);
      await waitFor('one instance DELETED', async () => lines.some((l) => /^DELETED\s+web-/.test(l)), {
        timeoutMs: 60_000,
      });
      // Headers once, then one line per event.
      expect(lines.filter((l) => /^EVENT\s+NAME/.test(l))).toHaveLength(1);
    } finally {
      w.kill();
    }
    // From an old resourceVersion: the history since then, the first creations first.
    const replay = await k([
      'get',
      '--raw',
      `/apis/${GROUP}/v1alpha1/namespaces/default/instances?watch=1&resourceVersion=1&timeoutSeconds=1`,
    ]);
    const first = JSON.parse(replay.stdout.trim().split('\n')[0]!);
    expect(first.type).toBe('ADDED');
    expect(Number(first.object.metadata.resourceVersion)).toBeGreaterThan(1);
  });

  it('refuses writes through kube-apiserver and callers without the front-proxy certificate', async () => {
    const name = Object.keys(await phases())[0]!;
    const del = await k(['delete', 'instance', name], { allowFail: true });
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/not allowed|MethodNotAllowed|written by the coordinator/i);
    const direct = await new Promise<number>((resolve, reject) => {
      https
        .get(
          `https://127.0.0.1:${port}/apis/${GROUP}/v1alpha1/instances`,
          { rejectUnauthorized: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on('error', reject);
    });
    expect(direct).toBe(401);
  });

  it('deleting the Workload removes its Instances (the coordinator, not the garbage collector)', async () => {
    await k(['delete', 'workload', 'web', '--timeout=120s']);
    expect((await k(['get', 'instances', '-A', '-o', 'name'])).stdout.trim()).toBe('');
  });
});
