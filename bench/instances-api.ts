/**
 * Where Instances live, measured (docs/scale.md, "Where Instances live"): the same N Instance-sized objects written
 * both ways in one run, on this machine's real nats-server, etcd and kube-apiserver.
 *
 * - `crd`: Instances as custom objects through kube-apiserver into etcd (a create, then a status write each, as
 *   the coordinator does), at parallelism 16 and 64 over keep-alive connections;
 * - `plain`: ConfigMaps of the same byte size (kube-apiserver's own built-in type: the write ceiling of the
 *   API server itself, without CRD handling), at the same parallelism;
 * - `aggregated`: the coordinator's InstanceStore (JetStream KV, coordinator/apiserver/store.ts), the same
 *   creates and status writes, at the same parallelism;
 * then one `list` of all N through kube-apiserver, each way (the aggregated one served by InstancesApiServer
 * behind an APIService).
 *
 * `npx tsx bench/instances-api.ts [--n 5000] [--json]`.
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseRequestHeaderAuth } from '../coordinator/apiserver/auth.js';
import { InstancesApiServer } from '../coordinator/apiserver/server.js';
import { InstanceStore } from '../coordinator/apiserver/store.js';
import { KubeClient } from '../coordinator/kube/client.js';
import { INSTANCES, instanceObject } from '../coordinator/workloads/objects.js';
import type { InstanceObject } from '../coordinator/workloads/types.js';
import { REPO_DIR, startKubeApi, startNatsServer } from '../deploy/stack/index.js';
import { instancesApiCerts, registerInstancesApi } from '../deploy/stack/instances-api.js';
import { createLogger } from '../shared/log.js';
import { connectNats } from '../shared/nats/connect.js';
import { freePort } from '../shared/os.js';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--n') + 1] ?? 0) || 5000;
const json = argv.includes('--json');
const say = (s: string) => json || console.error(s);

function body(i: number, ns: string): InstanceObject {
  return instanceObject({
    name: `bench-wl-${Math.floor(i / 10)}-loc-${i % 10}-${i}`,
    namespace: ns,
    workloadUid: '6f1c2a50-8a3e-4d0b-9d0e-2b4c7e1f9a10',
    labels: { workload: `bench-wl-${Math.floor(i / 10)}`, app: 'bench' },
    owner: {
      metadata: {
        name: `bench-wl-${Math.floor(i / 10)}-loc-${i % 10}`,
        uid: '0e4b38e6-e451-4671-8285-7c453bab38ca',
      },
    } as never,
    spec: {
      workloadRef: { name: `bench-wl-${Math.floor(i / 10)}` },
      location: `loc-${i % 10}`,
      host: `sim-${String(i % 2000).padStart(5, '0')}`,
      ordinal: i,
      runtime: 'gvisor',
      templateHash: '6d79919847',
      resources: { cpuMillis: 2000, memoryBytes: 1073741824 },
    },
  });
}

const status = (host: string) => ({
  phase: 'Running',
  ready: true,
  host,
  runtime: 'runsc',
  conditions: [
    { type: 'Ready', status: 'True', reason: 'InstanceReady', lastTransitionTime: new Date().toISOString() },
    {
      type: 'Scheduled',
      status: 'True',
      reason: 'Placed',
      message: `placed on host ${host}`,
      lastTransitionTime: new Date().toISOString(),
    },
  ],
});

/** Runs `fn(i)` for i < n with `parallel` in flight; returns operations per second. */
async function rate(n: number, parallel: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
  return Math.round((n / (performance.now() - t0)) * 1000);
}

async function main(): Promise<void> {
  const dir = path.join(os.tmpdir(), `edgeplane-bench-iapi-${process.pid}`);
  const [nats, kube] = await Promise.all([
    startNatsServer({ dir: path.join(dir, 'nats') }),
    startKubeApi({ dir: path.join(dir, 'kube'), crdDir: path.join(REPO_DIR, 'deploy/crds') }),
  ]);
  const log = createLogger({ name: 'bench' });
  log.level = 'warn';
  const client = new KubeClient(kube.kubeconfigPath);
  const nc = await connectNats({ servers: [nats.url], name: 'bench' });
  const out: Record<string, unknown> = { n: N, cpus: os.cpus().length };
  let server: InstancesApiServer | undefined;
  let store: InstanceStore | undefined;
  try {
    const bytes = JSON.stringify({ ...body(0, 'x'), status: status('sim-00000') }).length;
    out.objectBytes = bytes;
    for (const p of [16, 64]) {
      const ns = `crd-${p}`;
      await client.core.createNamespace({ body: { metadata: { name: ns } } });
      const c = await rate(N, p, (i) => client.create(INSTANCES, body(i, ns)));
      const s = await rate(N, p, (i) => {
        const b = body(i, ns);
        return client.patchStatus(INSTANCES, ns, b.metadata.name, status(b.spec.host));
      });
      out[`crdCreatesPerSecond_p${p}`] = c;
      out[`crdStatusWritesPerSecond_p${p}`] = s;
      say(`crd p=${p}: ${c} creates/s, ${s} status writes/s`);
      const cmNs = `plain-${p}`;
      await client.core.createNamespace({ body: { metadata: { name: cmNs } } });
      const filler = 'x'.repeat(bytes - 120);
      const pc = await rate(N, p, (i) =>
        client.core.createNamespacedConfigMap({
          namespace: cmNs,
          body: { metadata: { name: `cm-${i}`, labels: { app: 'bench' } }, data: { v: filler } },
        }),
      );
      out[`plainCreatesPerSecond_p${p}`] = pc;
      say(`plain ConfigMaps p=${p}: ${pc} creates/s`);
    }
    store = new InstanceStore({ nc, bucket: 'bench-instances', replicas: 1, log, historyLimit: 10_000 });
    await store.start();
    for (const p of [16, 64]) {
      const ns = `agg-${p}`;
      const c = await rate(N, p, (i) => store!.create(body(i, ns)));
      const s = await rate(N, p, (i) => {
        const b = body(i, ns);
        return store!.patchStatus(ns, b.metadata.name, status(b.spec.host));
      });
      out[`aggregatedCreatesPerSecond_p${p}`] = c;
      out[`aggregatedStatusWritesPerSecond_p${p}`] = s;
      say(`aggregated p=${p}: ${c} creates/s, ${s} status writes/s`);
    }
    // Lists of N through kube-apiserver, both ways.
    const certs = instancesApiCerts(path.join(dir, 'certs'));
    const port = await freePort();
    const cm = await client.core.readNamespacedConfigMap({
      namespace: 'kube-system',
      name: 'extension-apiserver-authentication',
    });
    server = new InstancesApiServer({
      address: `127.0.0.1:${port}`,
      certFile: certs.cert,
      keyFile: certs.key,
      ...parseRequestHeaderAuth(cm.data),
      store,
      log,
    });
    await server.start();
    // The CRD list first (registering removes the Instance CRD).
    const timeList = async (url: string) => {
      const t0 = performance.now();
      const r = (await client.custom.listNamespacedCustomObject({
        group: url.split('/')[0]!,
        version: 'v1alpha1',
        namespace: url.split('/')[1]!,
        plural: 'instances',
      })) as { items: unknown[] };
      return { ms: Math.round(performance.now() - t0), items: r.items.length };
    };
    const crdList = await timeList('compute.datumapis.com/crd-64');
    await registerInstancesApi(kube.kubeconfigPath, certs.ca, port);
    const aggList = await timeList('fleet.compute.datumapis.com/agg-64');
    out.crdListMs = crdList.ms;
    out.aggregatedListMs = aggList.ms;
    say(
      `list of ${N} through kube-apiserver: crd ${crdList.ms} ms (${crdList.items}), aggregated ${aggList.ms} ms (${aggList.items})`,
    );
  } finally {
    await server?.stop();
    await store?.stop();
    await nc.close();
    await kube.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (json) console.log(JSON.stringify(out));
  else console.log(out);
}

await main();
