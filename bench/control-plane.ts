/**
 * Control-plane benchmark: the real coordinator (dist/, run `npm run build` first) against a real nats-server
 * and kube-apiserver, with many simulated hosts in this one process. Each simulated host heartbeats a complete
 * HostReport on its own timer and "runs" (reports Running and ready) whatever the intents place on it, as an
 * agent would. After everything is placed and running, the coordinator's CPU and memory are measured over a
 * steady window; then a batch of hosts dies (stops heartbeating) and the time until their instances run
 * elsewhere is measured.
 *
 * `npm run bench:control-plane` prints a summary; `-- --json` one JSON object:
 * `{ hosts, instances, heartbeatsPerSecond, coordinatorCpuCores, coordinatorRssBytes, replacementSeconds, … }`,
 * with `scrapeBytes`, `scrapeSeries`, `scrapeSeconds`: one GET of the coordinator's /metrics (median of 5).
 * Options: `--hosts N` (default 1000), `--instances N` (default 2000), `--workloads N` (default instances/10),
 * `--locations N` (default 10), `--heartbeat-ms N` (default 5000), `--lost-after S` (default 20),
 * `--measure-seconds S` (default 30), `--kill N` (hosts killed, default 5), `--profile DIR` (the coordinator
 * writes a V8 CPU profile there).
 *
 * `--heap-prof DIR` (a V8 heap profile too), `--ceiling-per-level N` (ConfigMaps created per parallelism level for
 * the write ceiling; default instances/4 within 200–4000; 0 skips it).
 *
 * Beside the coordinator: `apiserverCpuCores` (kube-apiserver + etcd over the steady window; `apiserverPlaceCpuCores`
 * while the instances were placed), their peak RSS; `instanceWritesPerSecond` (Instances created per second from the
 * first apply until every instance was in the intents), `writeCeilingPerSecond` (ConfigMaps of an Instance's size
 * created with the same Kubernetes client at its best parallelism, after the rest, in the same run); `allRunningSeconds`
 * (from the applies finishing until the Workloads' status counts every instance ready, read from the monitoring feed);
 * `lostWhileHeartbeating` (hosts the feed showed Lost or Disconnected before any host was killed: must be 0).
 *
 * `replacementSeconds` is measured from the moment the last of the dead hosts passed its loss deadline
 * (max(lostAfter, TTL + grace) after its last heartbeat) to every one of their instances being placed on and
 * reported running by another host; `replacementSinceDeathSeconds` counts from the death itself.
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { KubeClient } from '../coordinator/kube/client.js';
import { httpUrlOf, startCoordinator } from '../deploy/stack/edgeplane.js';
import { kubectl, REPO_DIR, startKubeApi, startNatsServer } from '../deploy/stack/index.js';
import { startProc } from '../deploy/stack/proc.js';
import { GROUP, InstanceKind } from '../shared/api/index.js';
import { connectNats } from '../shared/nats/connect.js';
import {
  DeploymentIntent,
  decode,
  encode,
  type HostReport,
  MESSAGE_VERSION,
} from '../shared/nats/messages.js';
import { Subjects } from '../shared/nats/subjects.js';
import { coresBetween, procStats, startRssSampler } from './lib/proc-stats.js';
import { measureWriteCeiling } from './lib/write-ceiling.js';

interface Options {
  hosts: number;
  instances: number;
  workloads: number;
  locations: number;
  heartbeatMs: number;
  lostAfter: number;
  measureSeconds: number;
  kill: number;
  json: boolean;
  /** Where the coordinator writes a V8 CPU profile (`--profile <dir>`), if anywhere. */
  profileDir?: string;
  /** Where the coordinator writes a V8 heap profile (`--heap-prof <dir>`), if anywhere. */
  heapProfileDir?: string;
  /** ConfigMaps per parallelism level for the write ceiling (0: not measured). */
  ceilingPerLevel: number;
}

function parseOptions(argv: string[]): Options {
  const get = (name: string, def: number, min = 1) => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return def;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v < min)
      throw new Error(`--${name}: expected a positive number, got ${argv[i + 1]}`);
    return v;
  };
  const instances = get('instances', 2000);
  return {
    hosts: get('hosts', 1000),
    instances,
    workloads: get('workloads', Math.max(1, Math.round(instances / 10))),
    locations: get('locations', 10),
    heartbeatMs: get('heartbeat-ms', 5000),
    lostAfter: get('lost-after', 20),
    measureSeconds: get('measure-seconds', 30),
    kill: get('kill', 5),
    json: argv.includes('--json'),
    ceilingPerLevel: get('ceiling-per-level', Math.min(4000, Math.max(200, Math.round(instances / 4))), 0),
    ...(argv.includes('--heap-prof')
      ? { heapProfileDir: path.resolve(argv[argv.indexOf('--heap-prof') + 1] ?? 'profile') }
      : {}),
    ...(argv.includes('--profile')
      ? { profileDir: path.resolve(argv[argv.indexOf('--profile') + 1] ?? 'profile') }
      : {}),
  };
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const dir = path.join(os.tmpdir(), `edgeplane-bench-${process.pid}`);
  const stops: Array<() => Promise<unknown>> = [async () => rmSync(dir, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    log(`starting nats-server and kube-apiserver in ${dir}`);
    const [nats, kube] = await Promise.all([
      startNatsServer({ dir: path.join(dir, 'nats') }),
      startKubeApi({ dir: path.join(dir, 'kube'), crdDir: path.join(REPO_DIR, 'deploy/crds') }),
    ]);
    stops.push(
      () => nats.stop(),
      () => kube.stop(),
    );
    const nodeFlags = [
      ...(o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir] : []),
      ...(o.heapProfileDir ? ['--heap-prof', '--heap-prof-dir', o.heapProfileDir] : []),
    ];
    const coordinator = nodeFlags.length
      ? // Same flags as startCoordinator, with V8 profiles written to their directories at exit.
        startProc({
          name: 'coordinator',
          dir: path.join(dir, 'coordinator'),
          command: process.execPath,
          args: [
            ...nodeFlags,
            path.join(REPO_DIR, 'dist/coordinator/main.js'),
            '--kubeconfig',
            kube.kubeconfigPath,
            '--nats',
            nats.url,
            '--lost-after',
            String(o.lostAfter),
            '--metrics-address',
            '127.0.0.1:0',
          ],
          env: { LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
        })
      : startCoordinator({
          dir: path.join(dir, 'coordinator'),
          kubeconfig: kube.kubeconfigPath,
          nats: [nats.url],
          lostAfterSeconds: o.lostAfter,
        });
    stops.push(() => coordinator.stop());

    const subjects = new Subjects();
    const nc = await connectNats({ servers: [nats.url], name: 'bench-hosts' });
    stops.push(() => nc.close());
    const apiPids = [kube.pid, kube.etcdPid];
    const apiRss = startRssSampler(apiPids);
    stops.push(async () => apiRss.stop());

    // The monitoring feed: host states (none may go Lost or Disconnected while it heartbeats) and each
    // Workload's ready count (every instance Running). Its own connection, so the hosts' traffic does not delay it.
    const feedNc = await connectNats({ servers: [nats.url], name: 'bench-feed' });
    stops.push(() => feedNc.close());
    const hostStates = new Map<string, string>();
    const falselyLost = new Set<string>();
    let killing = false;
    const readyBy = new Map<string, number>();
    let readyTotal = 0;
    feedNc.subscribe(`${subjects.feedHost('x').slice(0, -2)}.*`, {
      callback: (_err, msg) => {
        const m = JSON.parse(new TextDecoder().decode(msg.data)) as { host: string; state: string };
        hostStates.set(m.host, m.state);
        if (m.state !== 'Ready' && !killing) falselyLost.add(m.host);
      },
    });
    feedNc.subscribe(`${subjects.feedWorkload('bench', 'x').slice(0, -2)}.*`, {
      callback: (_err, msg) => {
        const m = JSON.parse(new TextDecoder().decode(msg.data)) as { name: string; readyReplicas: number };
        readyTotal += m.readyReplicas - (readyBy.get(m.name) ?? 0);
        readyBy.set(m.name, m.readyReplicas);
      },
    });

    // What the intents place on each host, from one watch of the whole bucket (the simulated agents' view).
    const placed = new Map<
      string,
      Map<string, { namespace: string; workload: string; templateHash: string }>
    >();
    const byKey = new Map<string, DeploymentIntent>();
    let intentInstances = 0;
    const kv = await (async () => {
      for (;;) {
        try {
          const b = await new Kvm(nc).open(subjects.intentsBucket);
          await b.status(); // the coordinator has created it
          return b;
        } catch {
          await sleep(500);
        }
      }
    })();
    const dirty = new Set<string>();
    // Kept in step per event (a rebuild of every intent per event was quadratic at 100,000 instances).
    const withdraw = (intent: DeploymentIntent | undefined) => {
      for (const i of intent?.instances ?? []) {
        const m = placed.get(i.host);
        if (m?.delete(i.name)) intentInstances--;
        dirty.add(i.host);
      }
    };
    const place = (intent: DeploymentIntent) => {
      for (const i of intent.instances) {
        let m = placed.get(i.host);
        if (!m) {
          m = new Map();
          placed.set(i.host, m);
        }
        if (!m.has(i.name)) intentInstances++;
        m.set(i.name, {
          namespace: intent.namespace,
          workload: intent.workload,
          templateHash: intent.templateHash,
        });
        dirty.add(i.host);
      }
    };
    void (async () => {
      for await (const e of await kv.watch({ key: '>' })) {
        // Markers and the writers' fence share the bucket: they are not intents.
        if (!subjects.isIntentKey(e.key)) continue;
        withdraw(byKey.get(e.key));
        if (e.operation === 'PUT') {
          const intent = decode(DeploymentIntent, e.value);
          byKey.set(e.key, intent);
          place(intent);
        } else byKey.delete(e.key);
      }
    })();

    // Simulated hosts.
    const startedAt = new Date().toISOString();
    const dead = new Set<string>();
    const seq = new Map<string, number>();
    let heartbeats = 0;
    const hostNames = Array.from({ length: o.hosts }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
    const report = (host: string, i: number): HostReport => {
      const location = `sim-loc-${i % o.locations}`;
      const now = new Date().toISOString();
      const s = (seq.get(host) ?? 0) + 1;
      seq.set(host, s);
      return {
        v: MESSAGE_VERSION,
        host,
        location,
        labels: {
          'kubernetes.io/hostname': host,
          'edgeplane.dev/location': location,
          'topology.kubernetes.io/region': `sim-region-${i % Math.max(1, Math.floor(o.locations / 2))}`,
          'topology.kubernetes.io/zone': location,
          provider: 'sim',
        },
        capacity: { cpuMillis: 64_000, memoryBytes: 256 * 2 ** 30 },
        allocatable: { cpuMillis: 64_000, memoryBytes: 256 * 2 ** 30 },
        runtimes: ['gvisor'],
        agentVersion: 'bench',
        startedAt,
        seq: s,
        heartbeatMs: o.heartbeatMs,
        instances: [...(placed.get(host) ?? new Map()).entries()].map(([name, p]) => ({
          namespace: p.namespace,
          name,
          workload: p.workload,
          templateHash: p.templateHash,
          phase: 'Running' as const,
          ready: true,
          runtime: 'runsc',
        })),
        time: now,
      };
    };
    const lastBeat = new Map<string, number>();
    const publish = (host: string, i: number) => {
      if (dead.has(host)) return;
      nc.publish(subjects.hostReport(host), encode(report(host, i)));
      lastBeat.set(host, Date.now());
      heartbeats++;
    };
    const index = new Map(hostNames.map((h, i) => [h, i]));
    const timers: NodeJS.Timeout[] = [];
    hostNames.forEach((h, i) => {
      // Spread the first heartbeats over one interval, as real hosts would be.
      setTimeout(() => {
        publish(h, i);
        timers.push(setInterval(() => publish(h, i), o.heartbeatMs));
      }, Math.random() * o.heartbeatMs);
    });
    stops.push(async () => timers.forEach(clearInterval));
    // An agent reports at once when what it runs changes.
    const changeTimer = setInterval(() => {
      for (const h of dirty) publish(h, index.get(h) ?? 0);
      dirty.clear();
    }, 100);
    stops.push(async () => clearInterval(changeTimer));

    log(`${o.hosts} simulated hosts heartbeating every ${o.heartbeatMs} ms; waiting for them to register`);
    await kubectl(kube.kubeconfigPath, ['create', 'namespace', 'bench']);
    const perWorkload = Math.ceil(o.instances / o.workloads);
    const docs: string[] = [];
    for (let w = 0; w < o.workloads; w++) {
      const replicas = Math.min(perWorkload, o.instances - w * perWorkload);
      if (replicas <= 0) break;
      docs.push(`apiVersion: compute.miloapis.com/v1alpha1
kind: Workload
metadata:
  name: bench-${w}
  namespace: bench
spec:
  replicas: ${replicas}
  template:
    spec:
      containers:
      - name: app
        image: nginx:latest
        resources:
          requests:
            cpu: 10m
            memory: 16Mi
`);
    }
    await sleep(o.heartbeatMs + 2000);
    log(`creating ${docs.length} Workloads with ${o.instances} instances`);
    const t0 = Date.now();
    const api0 = apiPids.map(procStats);
    for (let i = 0; i < docs.length; i += 200) {
      const r = await kubectl(kube.kubeconfigPath, ['apply', '-f', '-'], {
        input: docs.slice(i, i + 200).join('---\n'),
        timeoutMs: 300_000,
      });
      if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
    }
    const appliedAt = Date.now();
    log(`applies done in ${((appliedAt - t0) / 1000).toFixed(1)} s`);
    let lastLog = Date.now();
    for (;;) {
      if (Date.now() - lastLog > 30_000) {
        lastLog = Date.now();
        log(`${intentInstances} instances placed, ${readyTotal} ready, ${falselyLost.size} hosts not Ready`);
      }
      if (intentInstances >= o.instances) break;
      if (Date.now() - t0 > 1_800_000)
        throw new Error(`only ${intentInstances} of ${o.instances} instances placed after 30 min`);
      await sleep(1000);
    }
    const placeSeconds = (Date.now() - t0) / 1000;
    const apiPlaceCpuCores = coresBetween(api0, apiPids.map(procStats), placeSeconds);
    log(
      `all ${intentInstances} instances placed in ${placeSeconds.toFixed(1)} s; waiting until all are ready`,
    );
    for (;;) {
      if (readyTotal >= o.instances) break;
      if (Date.now() - t0 > 1_800_000)
        throw new Error(`only ${readyTotal} of ${o.instances} instances ready after 30 min`);
      if (Date.now() - lastLog > 30_000) {
        lastLog = Date.now();
        log(`${readyTotal} of ${o.instances} instances ready`);
      }
      await sleep(250);
    }
    const allRunningSeconds = (Date.now() - appliedAt) / 1000;
    log(`all ${readyTotal} instances ready ${allRunningSeconds.toFixed(1)} s after the applies; settling`);
    await sleep(Math.max(10_000, o.heartbeatMs * 2));

    log(`measuring the coordinator for ${o.measureSeconds} s`);
    const a = procStats(coordinator.pid);
    const apiA = apiPids.map(procStats);
    const hb0 = heartbeats;
    const m0 = Date.now();
    await sleep(o.measureSeconds * 1000);
    const b = procStats(coordinator.pid);
    const apiB = apiPids.map(procStats);
    const window = (Date.now() - m0) / 1000;
    const coordinatorCpuCores = (b.cpuSeconds - a.cpuSeconds) / window;
    const apiserverCpuCores = coresBetween(apiA.slice(0, 1), apiB.slice(0, 1), window);
    const etcdCpuCores = coresBetween(apiA.slice(1), apiB.slice(1), window);
    const heartbeatsPerSecond = (heartbeats - hb0) / window;

    // What a Prometheus scrape of the coordinator costs with every host's series in it (median of 5).
    const metricsUrl = `${await httpUrlOf(coordinator)}/metrics`;
    const scrapes: Array<{ ms: number; bytes: number; series: number }> = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const body = await (await fetch(metricsUrl)).text();
      const ms = performance.now() - t;
      const series = body.split('\n').filter((l) => l && !l.startsWith('#')).length;
      scrapes.push({ ms, bytes: Buffer.byteLength(body), series });
      await sleep(200);
    }
    const scrape = scrapes.sort((x, y) => x.ms - y.ms)[2]!;
    log(`/metrics: ${scrape.bytes} bytes, ${scrape.series} series, ${scrape.ms.toFixed(0)} ms (median of 5)`);

    // Kill a batch of hosts that run instances.
    const victims = hostNames.filter((h) => (placed.get(h)?.size ?? 0) > 0).slice(0, o.kill);
    const victimInstances = victims.reduce((n, h) => n + (placed.get(h)?.size ?? 0), 0);
    log(`killing ${victims.length} hosts running ${victimInstances} instances`);
    killing = true;
    const killedAt = Date.now();
    for (const v of victims) dead.add(v);
    for (;;) {
      const onDead = victims.some((v) => (placed.get(v)?.size ?? 0) > 0);
      if (!onDead && intentInstances >= o.instances && dirty.size === 0) break;
      if (Date.now() - killedAt > 600_000)
        throw new Error('instances of the dead hosts not replaced within 10 min');
      await sleep(100);
    }
    // The replacements are reported running by their hosts in the next change flush (≤ 100 ms).
    await sleep(150);
    const replacedAt = Date.now();
    const replacementSinceDeathSeconds = (replacedAt - killedAt) / 1000;
    // The coordinator's loss deadline: max(lostAfter, TTL + grace) after each dead host's last heartbeat.
    const lossMs = Math.max(o.lostAfter * 1000, o.heartbeatMs * 3 + 5000);
    const deadline = Math.max(...victims.map((v) => (lastBeat.get(v) ?? killedAt) + lossMs));
    const replacementSeconds = (replacedAt - deadline) / 1000;
    const final = procStats(coordinator.pid);

    // The write ceiling, in the same run (hosts still heartbeating): ConfigMaps of an Instance's size.
    const kc = new KubeClient(kube.kubeconfigPath);
    const sample = (await kc.list({ kind: InstanceKind, group: GROUP })).items[0];
    const instanceBytes = Buffer.byteLength(JSON.stringify(sample ?? {}));
    const ceiling = o.ceilingPerLevel
      ? await measureWriteCeiling(kc, {
          namespace: 'bench-ceiling',
          objectBytes: instanceBytes,
          perLevel: o.ceilingPerLevel,
        })
      : undefined;
    if (ceiling) log(`write ceiling: ${JSON.stringify(ceiling)}`);

    const result = {
      hosts: o.hosts,
      instances: intentInstances,
      workloads: docs.length,
      heartbeatsPerSecond: Math.round(heartbeatsPerSecond),
      coordinatorCpuCores: Number(coordinatorCpuCores.toFixed(3)),
      coordinatorRssBytes: final.peakRss,
      replacementSeconds: Number(replacementSeconds.toFixed(2)),
      allRunningSeconds: Number(allRunningSeconds.toFixed(1)),
      apiserverCpuCores: Number(apiserverCpuCores.toFixed(3)),
      etcdCpuCores: Number(etcdCpuCores.toFixed(3)),
      apiserverPlaceCpuCores: Number(apiPlaceCpuCores.toFixed(3)),
      apiserverEtcdPeakRssBytes: apiRss.peak(),
      instanceWritesPerSecond: Number((intentInstances / placeSeconds).toFixed(1)),
      writeCeilingPerSecond: ceiling?.perSecond ?? null,
      writeCeilingParallelism: ceiling?.parallelism ?? null,
      instanceObjectBytes: instanceBytes,
      lostWhileHeartbeating: falselyLost.size,
      replacementSinceDeathSeconds: Number(replacementSinceDeathSeconds.toFixed(2)),
      lossDeadlineSeconds: lossMs / 1000,
      heartbeatMs: o.heartbeatMs,
      replacedInstances: victimInstances,
      placeSeconds: Number(placeSeconds.toFixed(1)),
      scrapeBytes: scrape.bytes,
      scrapeSeries: scrape.series,
      scrapeSeconds: Number((scrape.ms / 1000).toFixed(3)),
    };
    if (o.json) console.log(JSON.stringify(result));
    else {
      console.log(
        `hosts ${result.hosts}, instances ${result.instances} in ${result.workloads} Workloads (placed in ${result.placeSeconds} s)`,
      );
      console.log(
        `heartbeats/s ${result.heartbeatsPerSecond}; coordinator ${result.coordinatorCpuCores} cores, peak RSS ${(result.coordinatorRssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      console.log(
        `replacement of ${victimInstances} instances: ${result.replacementSeconds} s after their hosts' loss deadline (${result.replacementSinceDeathSeconds} s after death; deadline ${result.lossDeadlineSeconds} s after the last heartbeat)`,
      );
      console.log(
        `all running ${result.allRunningSeconds} s after the applies; ${result.instanceWritesPerSecond} Instances/s vs a write ceiling of ${result.writeCeilingPerSecond}/s; kube-apiserver ${result.apiserverCpuCores} + etcd ${result.etcdCpuCores} cores (${result.apiserverPlaceCpuCores} while placing), peak RSS ${(result.apiserverEtcdPeakRssBytes / 2 ** 20).toFixed(0)} MiB; ${result.lostWhileHeartbeating} hosts not Ready while heartbeating`,
      );
      console.log(
        `/metrics: ${result.scrapeBytes} bytes, ${result.scrapeSeries} series, ${result.scrapeSeconds} s per scrape`,
      );
    }
  } finally {
    await stopAll();
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(`bench:control-plane: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
