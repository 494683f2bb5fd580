/**
 * The soak: `npm run soak -- --minutes N [--json] [--seed S]` (builds first; the daemons run from dist/).
 *
 * A three-member NATS cluster, two coordinators (one leads through the Lease), three locations of two real agents
 * each (gVisor instances of the locally built test image) — the chaos topology (topology.ts), every link through
 * a fault proxy. For N minutes, seeded churn (apply, scale, roll out, delete Workloads every 20–40 s) runs while
 * a fault of the library (`SOAK_FAULTS` in faults.ts) is injected every one to two minutes and healed after its
 * hold time; the oracle (oracle.ts) samples everything every second. At the end the churn stops, everything is
 * healed, and the system gets time to settle before the final count.
 *
 * Prints progress on stderr; on stdout a summary, or with `--json` exactly one object:
 * `{minutes, seed, lostReplicaSeconds, duplicates, orphans, needlessRestarts, maxCoordinatorRssBytes,
 * maxAgentRssBytes, leakedFds, scenarios: [{name, passed, …}], …}` (docs/reliability.md § Soak says what each
 * figure means). Exits 1 when a correctness bound is broken: any lost replica-second outside fault windows, any
 * orphan, any duplicate outside the allowed window; 2 when the soak itself could not run.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { sleep } from '../../deploy/stack/proc.js';
import { runFileCleanups } from '../harness/index.js';
import { nginxWorkload } from '../harness/objects.js';
import { type InjectedFault, SOAK_FAULTS } from './faults.js';
import { DEFAULT_ORACLE_OPTIONS, type Oracle, startOracle } from './oracle.js';
import type { FaultWindow } from './oracle-count.js';
import { type Rng, seededRandom } from './random.js';
import { startTopology, type Topology } from './topology.js';

const { values: argv } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
    seed: { type: 'string' },
    /** Only faults whose name contains one of these (comma-separated). */
    faults: { type: 'string' },
    /** Seconds between faults: min,max (default 60,120). */
    'fault-every': { type: 'string', default: '60,120' },
  },
});
const minutes = Number(argv.minutes);
if (!(minutes > 0)) {
  process.stderr.write(`--minutes: expected a positive number, got ${JSON.stringify(argv.minutes)}\n`);
  process.exit(2);
}
const seed = argv.seed === undefined ? Date.now() % 2 ** 31 : Number(argv.seed);
if (!Number.isInteger(seed)) {
  process.stderr.write(`--seed: expected an integer, got ${JSON.stringify(argv.seed)}\n`);
  process.exit(2);
}
const [faultMinS, faultMaxS] = (argv['fault-every'] ?? '60,120').split(',').map(Number) as [number, number];
const startedAt = Date.now();
const say = (s: string) =>
  process.stderr.write(`[soak ${((Date.now() - startedAt) / 60_000).toFixed(1)}m] ${s}\n`);

/** One scenario (injected fault) as reported. */
interface ScenarioResult {
  name: string;
  passed: boolean;
  detail: string;
  /** Minute of the run it was injected at. */
  atMinute: number;
  heldMs: number;
  /** Lost replica-seconds, duplicate-seconds and needless restarts counted from injection to settle. */
  lostInFaultSeconds: number;
  duplicateSecondsAllowed: number;
  verify?: Record<string, string | number | boolean>;
  error?: string;
}

// ---- Resources ----

interface ProcSample {
  at: number;
  pid: number;
  kind: 'coordinator' | 'agent';
  name: string;
  rssBytes: number;
  fds: number;
}

function procSample(pid: number, kind: ProcSample['kind'], name: string): ProcSample | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    if (/State:\s+Z/.test(status)) return undefined;
    const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN');
    const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    return Number.isFinite(kb) ? { at: Date.now(), pid, kind, name, rssBytes: kb * 1024, fds } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Growth of RSS and fds from minute `from` to the end, per process that lived through the whole interval (same
 * pid): median of its first minute after `from` against median of its last minute. Undefined when none did.
 */
function growth(samples: ProcSample[], fromMs: number, endMs: number) {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;
  const byPid = new Map<number, ProcSample[]>();
  for (const s of samples) byPid.set(s.pid, [...(byPid.get(s.pid) ?? []), s]);
  const out: { kind: string; name: string; rss: number; fds: number; fdsAdded: number }[] = [];
  for (const ss of byPid.values()) {
    const first = ss.filter((s) => s.at >= fromMs && s.at < fromMs + 60_000);
    const last = ss.filter((s) => s.at >= endMs - 60_000);
    if (!first.length || !last.length || ss[0]!.at > fromMs) continue;
    const r0 = median(first.map((s) => s.rssBytes));
    const f0 = median(first.map((s) => s.fds));
    const f1 = median(last.map((s) => s.fds));
    out.push({
      kind: ss[0]!.kind,
      name: ss[0]!.name,
      rss: r0 ? median(last.map((s) => s.rssBytes)) / r0 - 1 : 0,
      fds: f0 ? f1 / f0 - 1 : 0,
      fdsAdded: f1 - f0,
    });
  }
  return out;
}

// ---- Churn ----

const NAMESPACE = 'soak';
/** At most this many replicas in all (two cores run the whole topology). */
const MAX_REPLICAS = 8;

interface Churn {
  workloads: Map<string, { replicas: number; rev: number }>;
  next: number;
  counts: { apply: number; scale: number; rollout: number; delete: number; errors: number };
}

const manifest = (name: string, w: { replicas: number; rev: number }) =>
  nginxWorkload({
    name,
    replicas: w.replicas,
    group: 'compute.datumapis.com',
    env: [{ name: 'SOAK_REVISION', value: String(w.rev) }],
    memory: '32Mi',
  });

/** One churn step: apply a new Workload, scale one, roll one out (new template) or delete one. */
async function churnStep(t: Topology, rng: Rng, c: Churn): Promise<string> {
  const total = [...c.workloads.values()].reduce((n, w) => n + w.replicas, 0);
  const names = [...c.workloads.keys()];
  const ops: ('apply' | 'scale' | 'rollout' | 'delete')[] = [];
  if (names.length < 4 && total < MAX_REPLICAS - 1) ops.push('apply', 'apply');
  if (names.length) ops.push('scale', 'rollout', 'rollout');
  if (names.length > 1) ops.push('delete');
  const op = rng.pick(ops);
  const k = (args: string[], input?: string) =>
    t.kubectl(['-n', NAMESPACE, ...args], { ...(input ? { input } : {}), timeoutMs: 60_000 });
  if (op === 'apply') {
    const name = `soak-${c.next++}`;
    const w = { replicas: rng.int(1, Math.min(3, MAX_REPLICAS - total)), rev: 0 };
    await k(['apply', '-f', '-'], manifest(name, w));
    c.workloads.set(name, w);
  } else if (op === 'scale') {
    const name = rng.pick(names);
    const w = c.workloads.get(name)!;
    const room = MAX_REPLICAS - total + w.replicas;
    w.replicas = rng.int(1, Math.max(1, Math.min(4, room)));
    await k(['scale', `workload.compute.datumapis.com/${name}`, `--replicas=${w.replicas}`]);
  } else if (op === 'rollout') {
    const name = rng.pick(names);
    const w = c.workloads.get(name)!;
    w.rev++;
    await k(['apply', '-f', '-'], manifest(name, w));
  } else {
    const name = rng.pick(names);
    c.workloads.delete(name);
    await k(['delete', `workload.compute.datumapis.com/${name}`, '--wait=false']);
  }
  c.counts[op]++;
  return `${op} ${[...c.workloads.entries()].map(([n, w]) => `${n}=${w.replicas}r${w.rev}`).join(' ')}`;
}

// ---- The run ----

async function main(): Promise<number> {
  const rng = seededRandom(seed);
  say(`seed ${seed}, ${minutes} min; starting the topology (3 NATS members, 2 coordinators, 3 x 2 agents)`);
  const t = await startTopology({
    natsMembers: 3,
    coordinators: 2,
    locations: 3,
    agentsPerLocation: 2,
    lostAfterSeconds: 30,
    leaseSeconds: 15,
    // Small state disks the disk/agent-state-full fault fills.
    agentStateFsMiB: 64,
    random: () => rng.next(),
  });
  let oracle: Oracle | undefined;
  const stopAll = async () => {
    await oracle?.stop().catch(() => {});
    await t.stop();
    await runFileCleanups();
  };
  process.once('SIGINT', () => {
    say('interrupted: stopping everything');
    void stopAll().finally(() => process.exit(130));
  });
  try {
    await t.waitForHostsReady(300_000);
    say(`hosts Ready; leader ${(await t.leader())?.name ?? '(none yet)'}`);
    await t.kubectl(['create', 'namespace', NAMESPACE]);
    oracle = await startOracle(t);
    const o = oracle;
    const runStart = Date.now();
    const runEnd = runStart + minutes * 60_000;

    const resources: ProcSample[] = [];
    const sampleResources = () => {
      for (const c of t.coordinators) {
        const s = procSample(c.proc.pid, 'coordinator', c.name);
        if (s) resources.push(s);
      }
      for (const a of t.agents) {
        const s = procSample(a.proc.pid, 'agent', a.host);
        if (s) resources.push(s);
      }
    };
    const resourceTimer = setInterval(sampleResources, 10_000);
    sampleResources();

    const churn: Churn = {
      workloads: new Map(),
      next: 0,
      counts: { apply: 0, scale: 0, rollout: 0, delete: 0, errors: 0 },
    };
    const churnRng = seededRandom(seed + 1);
    let churning = true;
    const churnLoop = (async () => {
      while (churning && Date.now() < runEnd) {
        try {
          say(`churn: ${await churnStep(t, churnRng, churn)}`);
        } catch (e) {
          churn.counts.errors++;
          say(`churn step failed: ${(e as Error).message.split('\n')[0]}`);
        }
        await sleep(churnRng.int(20_000, 40_000));
      }
    })();

    const pool = SOAK_FAULTS.filter(
      (f) =>
        (f.applies?.(t) ?? true) && (!argv.faults || argv.faults.split(',').some((n) => f.name.includes(n))),
    );
    if (!pool.length) throw new Error(`no fault matches --faults ${argv.faults}`);
    const scenarios: ScenarioResult[] = [];
    const windows = new Map<ScenarioResult, FaultWindow>();
    const faultRng = seededRandom(seed + 2);
    const settleMs = DEFAULT_ORACLE_OPTIONS.healGraceMs;
    for (;;) {
      const wait = faultRng.int(faultMinS * 1000, faultMaxS * 1000);
      if (Date.now() + wait >= runEnd) break;
      await sleep(wait);
      const fault = faultRng.pick(pool);
      const holdMs = faultRng.int(fault.holdMs[0], fault.holdMs[1]);
      const atMinute = Math.round(((Date.now() - runStart) / 60_000) * 10) / 10;
      let injected: InjectedFault | undefined;
      const result: ScenarioResult = {
        name: fault.name,
        passed: false,
        detail: '',
        atMinute,
        heldMs: holdMs,
        lostInFaultSeconds: 0,
        duplicateSecondsAllowed: 0,
      };
      scenarios.push(result);
      const w = o.faultStarted(fault.name, []);
      windows.set(result, w);
      try {
        injected = await fault.inject(t, faultRng);
        w.touchedHosts.push(...injected.touchedHosts);
        result.detail = injected.detail;
        say(`fault: ${injected.detail} for ${(holdMs / 1000).toFixed(0)} s`);
        await sleep(holdMs);
      } catch (e) {
        result.error = (e as Error).message.split('\n')[0];
      } finally {
        try {
          await injected?.heal();
        } catch (e) {
          result.error ??= `heal: ${(e as Error).message.split('\n')[0]}`;
        }
        o.faultHealed(w);
      }
      say(`healed: ${fault.name}`);
      // Verdicts are taken once the window (heal + grace) is over, at the end of the run (see below).
      if (injected?.verify) {
        const v = injected.verify;
        void (async () => {
          await sleep(settleMs);
          try {
            const r = await v();
            result.verify = { passed: r.passed, ...(r.figures ?? {}) };
          } catch (e) {
            result.verify = { passed: false, error: (e as Error).message.split('\n')[0]! };
          }
        })();
      }
    }
    await sleep(Math.max(0, runEnd - Date.now()));
    churning = false;
    await churnLoop;
    t.healAll();
    say(`churn stopped; ${(settleMs / 1000).toFixed(0)} s to settle`);
    await sleep(settleMs);
    clearInterval(resourceTimer);
    sampleResources();
    const end = Date.now();

    const counts = o.counts();
    const figures = o.figures();
    for (const r of scenarios) {
      const w = windows.get(r);
      const c = o.counts({
        from: w?.start ?? 0,
        to: (w?.end ?? end) + DEFAULT_ORACLE_OPTIONS.healGraceMs,
      });
      r.lostInFaultSeconds = c.lostInFaultSeconds;
      r.duplicateSecondsAllowed = c.duplicateSecondsAllowed;
      r.passed =
        !r.error &&
        c.lostReplicaSeconds === 0 &&
        c.duplicateSeconds === 0 &&
        c.orphans === 0 &&
        c.needlessRestarts === 0 &&
        (r.verify?.passed ?? true) === true;
    }
    const touched = (host: string, at: number) =>
      o.faults.some((f) => f.touchedHosts.includes(host) && at >= f.start && at <= (f.end ?? end) + settleMs);
    const growthFrom = runStart + 10 * 60_000;
    const grown = end - growthFrom >= 2 * 60_000 ? growth(resources, growthFrom, end) : [];
    const maxOf = (kind: ProcSample['kind']) =>
      Math.max(0, ...resources.filter((r) => r.kind === kind).map((r) => r.rssBytes));
    const maxGrowth = (kind: string, f: 'rss' | 'fds') =>
      grown.filter((g) => g.kind === kind).reduce((m, g) => Math.max(m, g[f]), 0);
    const leakedFds = grown.reduce((n, g) => n + Math.max(0, g.fdsAdded), 0);
    const resourceGrowth = grown.length
      ? {
          fromMinute: 10,
          toMinute: minutes,
          coordinatorRss: round3(maxGrowth('coordinator', 'rss')),
          agentRss: round3(maxGrowth('agent', 'rss')),
          coordinatorFds: round3(maxGrowth('coordinator', 'fds')),
          agentFds: round3(maxGrowth('agent', 'fds')),
          processes: grown.length,
          bound: 0.1,
          held: grown.every((g) => g.rss <= 0.1 && g.fds <= 0.1),
        }
      : {
          fromMinute: 10,
          toMinute: minutes,
          held: null,
          note: 'runs shorter than 12 minutes measure no growth',
        };
    const correct = counts.lostReplicaSeconds === 0 && counts.orphans === 0 && counts.duplicateSeconds === 0;
    const result = {
      minutes,
      lostReplicaSeconds: counts.lostReplicaSeconds,
      duplicates: counts.duplicateSeconds,
      orphans: counts.orphans,
      needlessRestarts: counts.needlessRestarts,
      maxCoordinatorRssBytes: maxOf('coordinator'),
      maxAgentRssBytes: maxOf('agent'),
      leakedFds,
      scenarios,
      seed,
      passed: correct,
      lostInFaultSeconds: counts.lostInFaultSeconds,
      duplicateSecondsAllowed: counts.duplicateSecondsAllowed,
      resourceGrowth,
      hostLost: figures.hostLost.length,
      spuriousHostLost: figures.hostLost.filter((h) => !touched(h.host, h.at)).map((h) => h.host),
      rescheduled: figures.rescheduled,
      staleInstances: figures.staleInstances,
      feedMessages: figures.feedMessages,
      samples: counts.samples,
      blindSamples: figures.blind,
      churn: churn.counts,
      defects: counts.details.slice(0, 20),
    };
    if (argv.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(
        [
          `soak: ${minutes} min, seed ${seed}: ${correct ? 'bounds held' : 'BOUNDS BROKEN'}`,
          `  lost replica-seconds ${counts.lostReplicaSeconds} (in fault windows ${counts.lostInFaultSeconds})`,
          `  duplicates ${counts.duplicateSeconds} s (allowed ${counts.duplicateSecondsAllowed} s), orphans ${counts.orphans}, needless restarts ${counts.needlessRestarts}`,
          `  max RSS coordinator ${(result.maxCoordinatorRssBytes / 2 ** 20).toFixed(0)} MiB, agent ${(result.maxAgentRssBytes / 2 ** 20).toFixed(0)} MiB; leaked fds ${leakedFds}`,
          `  faults: ${scenarios.map((s) => `${s.name} ${s.passed ? 'ok' : 'FAILED'}`).join(', ') || 'none'}`,
          ...counts.details.slice(0, 20).map((d) => `  ${d}`),
          '',
        ].join('\n'),
      );
    }
    return correct ? 0 : 1;
  } finally {
    say('stopping');
    await stopAll();
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`soak failed: ${(e as Error).stack ?? e}\n`);
    process.exit(2);
  },
);
