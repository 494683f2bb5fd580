/**
 * Apply → Ready on the dev stack's real parts: kube-apiserver, nats-server, the coordinator and three agents
 * running gVisor (runsc) instances, started the way `npm run dev` starts them (deploy/stack/local.ts) under a
 * temporary directory, with their own host names and network namespaces, daemons logging at debug; stopped and
 * cleaned up at the end. `--dev` measures the running dev stack (.edge/dev) instead; its daemons must have been
 * started with `LOG_LEVEL=debug npm run dev` for the breakdown (the totals need nothing).
 *
 * It applies a fresh one-replica Workload `--runs` times (default 20), one after the other, each deleted (and its
 * container gone) before the next, and measures from `kubectl apply` spawned until `kubectl get -w` (one watch
 * running throughout) prints it READY. Then `--fleet` replicas (default 100) spread over the three locations,
 * `--fleet-runs` times (default 3): the time until READY = replicas.
 *
 * Where the time goes comes from the daemons' own log lines (bench/apply-stages.ts), never from guesses.
 * `npm run bench:apply` prints a table; `-- --json` one JSON object:
 * `{ runs, p50Ms, p99Ms, maxMs, stages: { <stage>: { p50Ms, p99Ms } }, detail: {...}, fleet: {...} }`.
 * `--logs DIR` keeps a copy of the daemons' logs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEV_LOCATIONS } from '../deploy/stack/edgeplane.js';
import { kubectl, REPO_DIR, removeContainersByLabel } from '../deploy/stack/index.js';
import { type LocalStack, startLocalStack } from '../deploy/stack/local.js';
import {
  type ApplyOptions,
  fleetTimelineOf,
  type LogLine,
  parseApplyArgs,
  parseLog,
  type RunMarks,
  type RunStages,
  STAGE_MESSAGES,
  STAGES,
  type StackLogs,
  stagesOf,
  summarize,
} from './apply-stages.js';

const NAMESPACE = 'bench-apply';
const WORKLOADS = 'workloads.compute.datumapis.com';
const log = (msg: string) => process.stderr.write(`[bench:apply] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where the stack under test is: its kubeconfig, the log files to read, the agents' host names. */
interface Target {
  kubeconfig: string;
  coordinatorLog: string;
  agentLogs: Map<string, string>;
  stop(): Promise<void>;
}

/**
 * The Workload of one run: a server that stops on SIGTERM (busybox httpd behind a shell that traps it, so a
 * delete does not wait out the grace period), small requests so that 100 fit the dev hosts, spread evenly over
 * the three locations (maxSkew 1 by zone).
 */
function manifest(name: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'compute.datumapis.com/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      replicas,
      template: {
        spec: {
          image: 'nginx:latest',
          command: ['/bin/sh', '-c', 'trap "exit 0" TERM; /bin/httpd -f -p 80 -h /var/www & wait'],
          resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
        },
      },
      placement: {
        topologySpreadConstraints: [
          { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' },
        ],
      },
    },
  });
}

/** One `kubectl get -w` for the whole run: when it first printed each Workload with READY = REPLICAS. */
class ReadyWatch {
  private child: ChildProcess | undefined;
  private readonly readyAt = new Map<string, number>();
  private stopped = false;
  private buffer = '';

  constructor(private readonly kubeconfig: string) {}

  start(): void {
    const child = spawn(
      'kubectl',
      [
        '--kubeconfig',
        this.kubeconfig,
        'get',
        WORKLOADS,
        '-n',
        NAMESPACE,
        '-w',
        '--no-headers',
        '-o',
        'custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,READY:.status.readyReplicas',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const now = Date.now();
      this.buffer += d;
      const lines = this.buffer.split('\n');
      this.buffer = lines.pop() ?? '';
      for (const line of lines) {
        const [name, replicas, ready] = line.trim().split(/\s+/);
        if (name && replicas && replicas === ready && !this.readyAt.has(name)) this.readyAt.set(name, now);
      }
    });
    // A watch the server ends is started again (a Workload it missed shows in the new one's first list).
    child.on('exit', () => {
      if (!this.stopped) setTimeout(() => this.start(), 100);
    });
  }

  /** Waits until the watch printed `name` READY; returns when. */
  async ready(name: string, timeoutMs: number): Promise<number> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(5)) {
      const at = this.readyAt.get(name);
      if (at !== undefined) return at;
    }
    throw new Error(`${name} not READY in kubectl get -w within ${timeoutMs / 1000} s`);
  }

  stop(): void {
    this.stopped = true;
    this.child?.kill();
  }
}

async function k(kubeconfig: string, args: string[], input?: string, timeoutMs = 120_000): Promise<string> {
  const r = await kubectl(kubeconfig, args, { ...(input ? { input } : {}), timeoutMs });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Applies `name` with `replicas`, waits for READY in the watch, deletes it (waiting for its instances to go). */
async function measure(t: Target, watch: ReadyWatch, name: string, replicas: number): Promise<RunMarks> {
  const applyAt = Date.now();
  await k(t.kubeconfig, ['apply', '-f', '-'], manifest(name, replicas));
  const appliedAt = Date.now();
  const readyAt = await watch.ready(name, 300_000);
  // The finalizer returns only once every instance is stopped and removed from its host.
  await k(
    t.kubeconfig,
    ['delete', WORKLOADS, '-n', NAMESPACE, name, '--wait', '--timeout=300s'],
    undefined,
    330_000,
  );
  return { namespace: NAMESPACE, workload: name, replicas, applyAt, appliedAt, readyAt };
}

function readLogs(t: Target): StackLogs {
  const read = (f: string): LogLine[] =>
    fs.existsSync(f) ? parseLog(fs.readFileSync(f, 'utf8'), STAGE_MESSAGES) : [];
  return {
    coordinator: read(t.coordinatorLog),
    agents: new Map([...t.agentLogs].map(([host, f]) => [host, read(f)])),
  };
}

async function ownStack(): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-bench-apply-'));
  const run = path
    .basename(dir)
    .slice(-6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x');
  log(`starting the stack in ${dir} (kube-apiserver, nats-server, coordinator, three agents with runsc)`);
  let stack: LocalStack | undefined;
  const stop = async () => {
    if (stack) {
      await stack.stop();
      for (const h of stack.hosts) await removeContainersByLabel(`edgeplane.dev/host=${h}`).catch(() => []);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    stack = await startLocalStack({
      dir,
      netnsPrefix: `eb${run}-`,
      hostPrefix: `bench-${run}-`,
      logLevel: 'debug',
      webhook: true,
      say: (s) => log(s),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    kubeconfig: stack.kube.kubeconfigPath,
    coordinatorLog: stack.coordinator.logFile,
    agentLogs: new Map([...stack.agents].map(([h, p]) => [h, p.logFile])),
    stop,
  };
}

function devStack(): Target {
  const dir = path.join(REPO_DIR, '.edge/dev');
  const kubeconfig = path.join(dir, 'kubeconfig');
  if (!fs.existsSync(kubeconfig))
    throw new Error('--dev: no dev stack in .edge/dev (start it with npm run dev)');
  const agentLogs = new Map<string, string>();
  for (const l of DEV_LOCATIONS) {
    const host = `dev-${l.location}`;
    agentLogs.set(host, path.join(dir, 'agents', host, `agent-${host}.log`));
  }
  return {
    kubeconfig,
    coordinatorLog: path.join(dir, 'coordinator', 'coordinator.log'),
    agentLogs,
    stop: async () => undefined,
  };
}

/** p50/p99 of each stage over the runs that have every mark. */
function stageSummary(all: RunStages[]) {
  const of = (f: (r: RunStages) => number) => {
    const s = summarize(all.map(f));
    return { p50Ms: s.p50Ms, p99Ms: s.p99Ms };
  };
  return {
    stages: Object.fromEntries(STAGES.map((s) => [s, of((r) => r.stages[s])])),
    detail: Object.fromEntries(
      (Object.keys(all[0]?.detail ?? {}) as Array<keyof RunStages['detail']>).map((d) => [
        d,
        of((r) => r.detail[d]),
      ]),
    ),
  };
}

async function main(o: ApplyOptions): Promise<void> {
  const t = o.dev ? devStack() : await ownStack();
  const watch = new ReadyWatch(t.kubeconfig);
  const stopAll = async () => {
    watch.stop();
    await t.stop();
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  try {
    log('waiting for the three hosts to be Ready');
    for (const deadline = Date.now() + 120_000; ; await sleep(500)) {
      const states = await k(t.kubeconfig, ['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
      if (states.split(' ').filter((s) => s === 'Ready').length >= DEV_LOCATIONS.length) break;
      if (Date.now() > deadline) throw new Error(`hosts not Ready: ${states}`);
    }
    await k(
      t.kubeconfig,
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }),
    );
    await k(
      t.kubeconfig,
      ['delete', WORKLOADS, '-n', NAMESPACE, '--all', '--wait', '--timeout=300s'],
      undefined,
      330_000,
    );
    watch.start();
    const stamp = Date.now().toString(36);
    // One unmeasured apply first: images, caches and connections warm, as on a stack that has run before.
    log('warm-up apply');
    await measure(t, watch, `warmup-${stamp}`, 1);
    const singles: RunMarks[] = [];
    for (let i = 0; i < o.runs; i++) {
      const m = await measure(t, watch, `apply-${stamp}-${i}`, 1);
      singles.push(m);
      log(`run ${i + 1}/${o.runs}: ${m.readyAt - m.applyAt} ms`);
      await sleep(200);
    }
    const fleet: RunMarks[] = [];
    for (let i = 0; o.fleet > 0 && i < o.fleetRuns; i++) {
      const m = await measure(t, watch, `fleet-${stamp}-${i}`, o.fleet);
      fleet.push(m);
      log(`fleet run ${i + 1}/${o.fleetRuns}: ${o.fleet} replicas READY in ${m.readyAt - m.applyAt} ms`);
      await sleep(1000);
    }
    // Let the daemons flush their last lines.
    await sleep(500);
    const logs = readLogs(t);
    if (o.logs) {
      fs.mkdirSync(o.logs, { recursive: true });
      for (const f of [t.coordinatorLog, ...t.agentLogs.values()])
        if (fs.existsSync(f)) fs.copyFileSync(f, path.join(o.logs, path.basename(f)));
    }
    const totals = singles.map((m) => m.readyAt - m.applyAt);
    const staged: RunStages[] = [];
    const missing = new Map<string, number>();
    for (const m of singles) {
      const s = stagesOf(m, logs);
      if (typeof s === 'string') missing.set(s, (missing.get(s) ?? 0) + 1);
      else staged.push(s);
    }
    const timelines = fleet.map((m) => fleetTimelineOf(m, logs));
    const result = {
      runs: o.runs,
      ...summarize(totals),
      runsMs: totals,
      ...(staged.length ? stageSummary(staged) : {}),
      stagedRuns: staged.length,
      ...(missing.size ? { stagesMissing: Object.fromEntries(missing) } : {}),
      ...(fleet.length
        ? {
            fleet: {
              replicas: o.fleet,
              runs: fleet.length,
              ...summarize(timelines.map((x) => x.readyMs)),
              timelines,
            },
          }
        : {}),
    };
    if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else print(result, staged.length > 0);
  } finally {
    await stopAll();
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the printed object is the JSON above
function print(r: any, staged: boolean): void {
  const out: string[] = [];
  out.push(
    `apply → READY, 1 replica, ${r.runs} runs: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms`,
  );
  if (staged) {
    out.push(`where the time goes (${r.stagedRuns} runs with every mark; p50 / p99 ms):`);
    for (const s of STAGES)
      out.push(
        `  ${s.padEnd(22)} ${String(r.stages[s].p50Ms).padStart(6)} ${String(r.stages[s].p99Ms).padStart(6)}`,
      );
    out.push('  detail:');
    for (const [d, v] of Object.entries(r.detail as Record<string, { p50Ms: number; p99Ms: number }>))
      out.push(`    ${d.padEnd(20)} ${String(v.p50Ms).padStart(6)} ${String(v.p99Ms).padStart(6)}`);
  } else
    out.push(`no breakdown: the daemons' logs lack the debug lines (${JSON.stringify(r.stagesMissing)})`);
  if (r.fleet) {
    out.push(
      `apply → READY, ${r.fleet.replicas} replicas over 3 locations, ${r.fleet.runs} runs: p50 ${r.fleet.p50Ms} ms, max ${r.fleet.maxMs} ms`,
    );
    for (const tl of r.fleet.timelines) out.push(`  ${JSON.stringify(tl)}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

let options: ApplyOptions;
try {
  options = parseApplyArgs(process.argv.slice(2));
} catch (err) {
  console.error(`bench:apply: ${(err as Error).message}`);
  process.exit(2);
}
main(options).then(
  () => process.exit(0),
  (err) => {
    console.error(`bench:apply: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
