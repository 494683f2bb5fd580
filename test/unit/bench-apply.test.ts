/**
 * The pure half of `npm run bench:apply` (bench/apply-stages.ts): its arguments, its percentiles, and the stages
 * it reads from the daemons' log lines — which must add up to the measured total, and name what is missing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fleetTimelineOf,
  type LogLine,
  parseApplyArgs,
  parseLog,
  percentile,
  type RunMarks,
  STAGE_MESSAGES,
  STAGES,
  type StackLogs,
  stagesOf,
  summarize,
} from '../../bench/apply-stages.js';

describe('parseApplyArgs', () => {
  it('has the documented defaults', () => {
    expect(parseApplyArgs([])).toEqual({ runs: 20, fleet: 100, fleetRuns: 3, json: false, dev: false });
  });

  it('reads every flag', () => {
    expect(parseApplyArgs(['--runs', '40', '--fleet', '0', '--fleet-runs', '2', '--json', '--dev'])).toEqual({
      runs: 40,
      fleet: 0,
      fleetRuns: 2,
      json: true,
      dev: true,
    });
  });

  it('refuses a bad value or an unknown flag, naming it', () => {
    expect(() => parseApplyArgs(['--runs', '0'])).toThrow(/--runs: expected an integer ≥ 1, got 0/);
    expect(() => parseApplyArgs(['--runs'])).toThrow(/--runs: .*got nothing/);
    expect(() => parseApplyArgs(['--fleet', '1.5'])).toThrow(/--fleet/);
    expect(() => parseApplyArgs(['--replicas', '3'])).toThrow(/unknown argument --replicas/);
    expect(() => parseApplyArgs(['--logs', '--json'])).toThrow(/--logs: expected a directory/);
    expect(parseApplyArgs(['--logs', '/tmp/x']).logs).toBe('/tmp/x');
  });
});

describe('percentile', () => {
  it('is nearest-rank: p50 of 1..20 is 10, p99 of 20 values is the max', () => {
    const xs = Array.from({ length: 20 }, (_, i) => 20 - i);
    expect(percentile(xs, 50)).toBe(10);
    expect(percentile(xs, 99)).toBe(20);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    expect(summarize([3, 1, 2])).toEqual({ n: 3, p50Ms: 2, p99Ms: 3, maxMs: 3 });
  });

  it('is a value of the sample, between its min and max, and monotone in p', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (xs, p, q) => {
          const v = percentile(xs, p);
          expect(xs).toContain(v);
          if (p <= q) expect(v).toBeLessThanOrEqual(percentile(xs, q));
        },
      ),
    );
  });
});

const NS = 'bench-apply';
const WL = 'apply-x-0';
const HOST = 'bench-h-us-central1-a';
const INSTANCE = `${NS}/${WL}-us-central1-a-0`;
const KEY = `us-central1-a.${NS}.${WL}`;
const PASS_KEY = `compute.datumapis.com|${NS}|${WL}`;

/** The lines one one-replica apply leaves, starting at t (ms). */
function linesOf(t: number): StackLogs {
  const coordinator: LogLine[] = [
    { time: t + 300, msg: 'workload event', workload: `${NS}/${WL}`, event: 'add' },
    { time: t + 301, msg: 'pass', queue: 'autoscaler', key: PASS_KEY, waitedMs: 0, ms: 0 },
    { time: t + 360, msg: 'instance created', instance: INSTANCE, host: HOST },
    { time: t + 380, msg: 'intent written', key: KEY, ms: 4 },
    { time: t + 400, msg: 'pass', queue: 'workloads', key: PASS_KEY, waitedMs: 2, ms: 95 },
    { time: t + 820, msg: 'host report changed instances', host: HOST, seq: 9 },
    { time: t + 900, msg: 'workload status written', workload: `${NS}/${WL}`, readyReplicas: 1 },
    { time: t + 910, msg: 'pass', queue: 'workloads', key: PASS_KEY, waitedMs: 60, ms: 30 },
  ];
  const agent: LogLine[] = [
    { time: t + 390, msg: 'intent received', key: KEY, op: 'PUT' },
    { time: t + 420, msg: 'starting instance', instance: INSTANCE },
    { time: t + 790, msg: 'containers started', instance: INSTANCE, sandboxMs: 250, createMs: 60 },
    { time: t + 800, msg: 'instance started', instance: INSTANCE, ms: 380 },
  ];
  return { coordinator, agents: new Map([[HOST, agent]]) };
}

const marks = (t: number): RunMarks => ({
  namespace: NS,
  workload: WL,
  replicas: 1,
  applyAt: t,
  appliedAt: t + 280,
  readyAt: t + 950,
});

describe('stagesOf', () => {
  it('splits one apply into consecutive stages that add up to the total', () => {
    const s = stagesOf(marks(1000), linesOf(1000));
    if (typeof s === 'string') throw new Error(`missing ${s}`);
    expect(s.totalMs).toBe(950);
    expect(s.stages).toEqual({
      applyToCoordinator: 300,
      coordinatorQueue: 5, // the first pass started 95 ms before its line at +400
      passToIntent: 75,
      intentToAgent: 10,
      agentToStart: 30,
      start: 380,
      reportToCoordinator: 20,
      reportToStatusPass: 60, // the status pass started at +880
      statusPass: 20,
      statusToKubectl: 50,
    });
    expect(Object.values(s.stages).reduce((a, b) => a + b, 0)).toBe(s.totalMs);
    expect(s.detail).toEqual({
      kubectlApplyMs: 280,
      firstPassMs: 95,
      intentWriteMs: 4,
      sandboxMs: 250,
      createMs: 60,
      statusQueueMs: 60,
    });
    expect(Object.keys(s.stages)).toEqual([...STAGES]);
  });

  it('names the first mark it cannot find instead of inventing one (daemons logging at info)', () => {
    const logs = linesOf(1000);
    const info: StackLogs = {
      coordinator: [],
      agents: new Map([[HOST, logs.agents.get(HOST)!.filter((l) => l.msg === 'starting instance')]]),
    };
    expect(stagesOf(marks(1000), info)).toBe('workload event');
    const noReport = {
      ...logs,
      coordinator: logs.coordinator.filter((l) => !l.msg.startsWith('host report')),
    };
    expect(stagesOf(marks(1000), noReport)).toBe('host report changed instances');
  });

  it('ignores the lines of other Workloads and of earlier applies of the same name', () => {
    const logs = linesOf(1000);
    const other = linesOf(5000);
    const mixed: StackLogs = {
      coordinator: [
        { time: 10, msg: 'workload event', workload: `${NS}/${WL}`, event: 'delete' },
        ...logs.coordinator.map((l) => ({ ...l })),
        ...other.coordinator.map((l) => ({ ...l, workload: `${NS}/other`, key: 'x', instance: 'y' })),
      ],
      agents: logs.agents,
    };
    const s = stagesOf(marks(1000), mixed);
    expect(typeof s === 'string' ? s : s.totalMs).toBe(950);
  });
});

describe('parseLog and fleetTimelineOf', () => {
  it('keeps only JSON lines with the stage messages', () => {
    const text = [
      '{"level":20,"time":5,"msg":"pass","key":"k","ms":1}',
      'not json',
      '{"level":30,"time":6,"msg":"coordinator started"}',
      '{"level":20,"time":"x","msg":"pass"}',
      '{broken',
    ].join('\n');
    expect(parseLog(text, STAGE_MESSAGES)).toEqual([{ level: 20, time: 5, msg: 'pass', key: 'k', ms: 1 }]);
  });

  it('places a many-replica apply on a timeline relative to the apply', () => {
    const logs = linesOf(1000);
    const m = { ...marks(1000), replicas: 1 };
    expect(fleetTimelineOf(m, logs)).toEqual({
      readyMs: 950,
      seenMs: 300,
      firstPassEndMs: 400,
      lastCreatedMs: 360,
      lastIntentMs: 380,
      firstStartedMs: 800,
      lastStartedMs: 800,
      statusWrittenMs: 900,
      startedPerHost: { [HOST]: 1 },
      startMsP50: 380,
      sandboxMsP50: 250,
    });
  });
});
