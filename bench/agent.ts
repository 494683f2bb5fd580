/**
 * Agent benchmark on the real parts (nats-server, dockerd + runsc, the built agent in dist/; run `npm run build`
 * first). `npm run bench:agent` prints a summary; `-- --json` prints one JSON object:
 * - `idleRssBytes`: resident memory of an idle agent process (connected, reporting, no instances), 10 s after start;
 * - `startToReadyMs`: median over `--runs` (default 5) of the time from an intent written to the KV bucket to the
 *   agent's host report showing that gVisor instance (machineType e2-micro) Ready, its image present;
 * plus `startToReadyRunsMs` (every run) and `runs`.
 * Goals: idleRssBytes ≤ 60 MB, startToReadyMs < 1 s.
 * `--metrics` starts the agent with `--metrics-address 127.0.0.1:0` (prom-client loaded, /metrics scraped once
 * before the idle sample), to compare idle RSS with metrics on and off.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { httpUrlOf, startAgent } from '../deploy/stack/edgeplane.js';
import {
  BUSYBOX_IMAGE,
  ensureDocker,
  removeContainersByLabel,
  startNatsServer,
  waitFor,
} from '../deploy/stack/index.js';
import {
  type DeploymentIntent,
  decode,
  encode,
  HostReport,
  type IntentMarker,
} from '../shared/nats/messages.js';
import { Subjects } from '../shared/nats/subjects.js';
import { machineTypeResources } from '../shared/resources.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const runsArg = args.indexOf('--runs');
const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 5;
const metrics = args.includes('--metrics');
const say = (s: string) => {
  if (!json) process.stderr.write(`${s}\n`);
};

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

async function main(): Promise<void> {
  await ensureDocker();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-bench-agent-'));
  const host = `bench-${crypto.randomBytes(3).toString('hex')}`;
  const location = 'bench';
  const subjects = new Subjects('edge');
  const nats = await startNatsServer({ dir: path.join(dir, 'nats') });
  const agent = startAgent({
    host,
    location,
    nats: [nats.url],
    dir: path.join(dir, 'agent'),
    heartbeatMs: 5000,
    ...(metrics ? { args: ['--metrics-address', '127.0.0.1:0'] } : {}),
  });
  const nc = await connect({ servers: nats.url });
  try {
    const kv = await new Kvm(nc).create(subjects.intentsBucket, { history: 1 });
    // The coordinator's marker (shared/nats/messages.ts IntentMarker): without one the agent removes nothing.
    await kv.put(
      subjects.intentMarkerKey(location),
      encode({
        v: 1,
        installation: 'bench',
        epoch: 0,
        writer: 'bench',
        generation: 0,
        keys: [],
        updatedAt: new Date().toISOString(),
      } satisfies IntentMarker),
    );
    let last: HostReport | undefined;
    const sub = nc.subscribe(subjects.hostReport(host));
    void (async () => {
      for await (const m of sub) last = decode(HostReport, m.data);
    })();
    await waitFor('the first host report', () => last, { timeoutMs: 60_000 });
    if (metrics) {
      const url = await httpUrlOf(agent);
      const body = await (await fetch(`${url}/metrics`)).text();
      say(`metrics on: ${url}/metrics answered ${body.length} bytes`);
    }
    say('agent up; letting it settle for 10 s');
    await new Promise((r) => setTimeout(r, 10_000));
    const idleRssBytes = rssBytes(agent.pid);
    say(`idle RSS ${(idleRssBytes / 1024 / 1024).toFixed(1)} MiB`);

    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const workload = `bench-${i}`;
      // The docs' smallest machine type. (A 100m CPU limit throttles gVisor's own boot inside the container's
      // cgroup: such an instance takes ~0.5 s longer to start.)
      const limits = machineTypeResources('e2-micro');
      const template = { image: BUSYBOX_IMAGE, machineType: 'e2-micro', command: ['sleep', '3600'] };
      const intent: DeploymentIntent = {
        v: 1,
        location,
        namespace: 'bench',
        workload,
        templateHash: crypto.randomBytes(5).toString('hex'),
        template,
        limits,
        instances: [{ name: `${workload}-0`, host, ordinal: 0, labels: {} }],
        updatedAt: new Date().toISOString(),
      };
      const key = subjects.intentKey(location, 'bench', workload);
      const t0 = performance.now();
      await kv.put(key, encode(intent));
      await waitFor(
        'the instance Ready in a host report',
        () => last?.instances.some((s) => s.name === `${workload}-0` && s.ready),
        { timeoutMs: 60_000, intervalMs: 5 },
      );
      times.push(Math.round(performance.now() - t0));
      say(`run ${i + 1}: ${times.at(-1)} ms`);
      await kv.delete(key);
      await waitFor('the instance gone', () => !last?.instances.some((s) => s.name === `${workload}-0`), {
        timeoutMs: 60_000,
        intervalMs: 20,
      });
    }
    const result = { metrics, idleRssBytes, startToReadyMs: median(times), startToReadyRunsMs: times, runs };
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(
        `idle agent RSS: ${(idleRssBytes / 1e6).toFixed(1)} MB (goal ≤ 60 MB)\n` +
          `intent → Ready gVisor instance: median ${result.startToReadyMs} ms over ${runs} runs (goal < 1000 ms): ${times.join(', ')}\n`,
      );
    }
  } finally {
    await nc.close();
    await agent.stop();
    await removeContainersByLabel(`edgeplane.dev/host=${host}`);
    await nats.stop();
    if (process.env.EDGE_KEEP_TMP) process.stderr.write(`kept ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
