/**
 * Model-based runs (issue 14, "Fuzzing"): random command sequences against the real host registry and the real
 * work queue, under a fake clock, with a simple model beside each and invariants checked after every step.
 *
 * - Host registry (coordinator/hosts/registry.ts): reports (fresh, stale, restarted agents), time passing, checks,
 *   the coordinator's own NATS link going down and up. Invariants: a host is Lost only after more than lostAfter
 *   of silence counted from its last report and the last link-up; a host heard within its TTL is Ready; a report
 *   makes its host Ready at once; nothing changes while the link is down; every state change is announced once;
 *   the brake never lets a majority of hosts be lost in one check.
 * - Work queue (coordinator/kube/workqueue.ts): adds, delayed adds, passes that succeed, fail or ask to requeue,
 *   time passing. Invariants: a key never runs twice at once; never more workers than configured; no wakeup is
 *   lost (a key added after its pass started runs again); a failed key is retried within the backoff bound.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HostRegistry } from '../../../coordinator/hosts/registry.js';
import { WorkQueue } from '../../../coordinator/kube/workqueue.js';
import { createLogger } from '../../../shared/log.js';
import { Subjects } from '../../../shared/nats/subjects.js';
import { testHostReport } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';
import { fuzzParams } from './arbitraries.js';

const log = createLogger({ name: 'model', level: 'silent' });

// ---------------------------------------------------------------------------------------------------------------
// Host registry

const HOSTS = ['h0', 'h1', 'h2', 'h3', 'h4'];
const LOST_AFTER = 30_000;
const GRACE = 5_000;
const MISSED = 3;

interface RegistryModel {
  now: number;
  linkUp: boolean;
  /** Start of the current grace (last link-up). */
  graceFrom: number;
  hosts: Map<string, { heardAt: number; heartbeatMs: number; startedAt: string; seq: number }>;
}

interface RegistryReal {
  registry: HostRegistry;
  /** State changes announced, per host. */
  announced: Map<string, number>;
}

type RegistryCommand = fc.Command<RegistryModel, RegistryReal>;

/** The silence the registry may count for a host (from its last report or the last link-up). */
const silence = (m: RegistryModel, host: string) => {
  const h = m.hosts.get(host)!;
  return m.now - Math.max(h.heardAt, m.graceFrom);
};
const ttl = (heartbeatMs: number) => heartbeatMs * MISSED + GRACE;

function checkRegistryInvariants(m: RegistryModel, r: RegistryReal): void {
  const all = r.registry.all();
  expect(all.map((e) => e.report.host).sort()).toEqual([...m.hosts.keys()].sort());
  const counts = r.registry.counts();
  expect(counts.Ready + counts.Disconnected + counts.Lost).toBe(m.hosts.size);
  for (const e of all) {
    const h = m.hosts.get(e.report.host)!;
    // Heard within its TTL: Ready. (Not "counted silence within the TTL": after our link comes back, silence is
    // counted afresh, but that never makes a silent host Ready again — see the Check command.)
    const heard = m.now - h.heardAt;
    if (heard <= ttl(h.heartbeatMs)) expect(e.state, `${e.report.host} heard ${heard} ms ago`).toBe('Ready');
  }
}

class Report implements RegistryCommand {
  constructor(
    readonly host: string,
    readonly heartbeatMs: number,
    /** stale: an older report of the same process; restart: a new agent process. */
    readonly kind: 'next' | 'stale' | 'restart',
  ) {}
  check = () => true;
  run(m: RegistryModel, r: RegistryReal): void {
    const prev = m.hosts.get(this.host);
    const startedAt = this.kind === 'restart' || !prev ? `t${m.now}` : prev.startedAt;
    const seq = !prev || this.kind === 'restart' ? 1 : this.kind === 'stale' ? prev.seq - 1 : prev.seq + 1;
    const before = r.registry.get(this.host);
    r.registry.accept(
      testHostReport(this.host, 'loc', { heartbeatMs: this.heartbeatMs, startedAt, seq }),
      m.now,
    );
    if (prev && this.kind === 'stale') {
      // Ignored: nothing about the host changed.
      expect(r.registry.get(this.host)).toBe(before);
    } else {
      m.hosts.set(this.host, { heardAt: m.now, heartbeatMs: this.heartbeatMs, startedAt, seq });
      expect(r.registry.get(this.host)?.state).toBe('Ready');
    }
    checkRegistryInvariants(m, r);
  }
  toString = () => `report(${this.host}, ${this.heartbeatMs}, ${this.kind})`;
}

class Advance implements RegistryCommand {
  constructor(readonly ms: number) {}
  check = () => true;
  run(m: RegistryModel): void {
    m.now += this.ms;
  }
  toString = () => `advance(${this.ms})`;
}

class Check implements RegistryCommand {
  check = () => true;
  run(m: RegistryModel, r: RegistryReal): void {
    const before = new Map(r.registry.all().map((e) => [e.report.host, e.state]));
    const announcedBefore = new Map(r.announced);
    r.registry.check(m.now);
    const after = new Map(r.registry.all().map((e) => [e.report.host, e.state]));
    let changed = 0;
    for (const [host, state] of after) {
      const was = before.get(host);
      const announcements = (r.announced.get(host) ?? 0) - (announcedBefore.get(host) ?? 0);
      expect(announcements, `${host}: ${was} -> ${state}`).toBe(was === state ? 0 : 1);
      if (was !== state) changed++;
      // Only a report makes a host better; a check never does (found by this model with seed 59227002).
      const rank = { Ready: 0, Disconnected: 1, Lost: 2 } as const;
      if (was)
        expect(rank[state], `${host}: ${was} -> ${state} without a report`).toBeGreaterThanOrEqual(rank[was]);
      // Declared Lost only after more than lostAfter of counted silence.
      if (state === 'Lost' && was !== 'Lost')
        expect(silence(m, host), `${host} Lost early`).toBeGreaterThan(LOST_AFTER);
    }
    if (!m.linkUp) expect(changed, 'a verdict while our own link was down').toBe(0);
    // The brake: never more than half of the hosts not yet Lost become Lost in one check (when two or more).
    const pool = [...before.values()].filter((s) => s !== 'Lost').length;
    const newlyLost = [...after].filter(([h, s]) => s === 'Lost' && before.get(h) !== 'Lost').length;
    if (newlyLost >= 2) expect(newlyLost / pool).toBeLessThanOrEqual(0.55);
    checkRegistryInvariants(m, r);
  }
  toString = () => 'check';
}

class Link implements RegistryCommand {
  constructor(readonly up: boolean) {}
  check = () => true;
  run(m: RegistryModel, r: RegistryReal): void {
    r.registry.setLink(this.up, m.now);
    if (this.up && !m.linkUp) m.graceFrom = m.now;
    m.linkUp = this.up;
    checkRegistryInvariants(m, r);
  }
  toString = () => `link(${this.up ? 'up' : 'down'})`;
}

const registryCommands = [
  fc
    .tuple(
      fc.constantFrom(...HOSTS),
      fc.constantFrom(100, 1000, 5000, 10_000),
      fc.constantFrom('next', 'stale', 'restart'),
    )
    .map(([h, hb, kind]) => new Report(h, hb, kind as Report['kind'])),
  fc.constantFrom(500, 3000, 10_000, 20_000, 31_000, 60_000).map((ms) => new Advance(ms)),
  fc.constant(new Check()),
  fc.boolean().map((up) => new Link(up)),
];

// ---------------------------------------------------------------------------------------------------------------
// Work queue

const KEYS = ['a', 'b', 'c', 'd'];
const WORKERS = 2;
const MAX_BACKOFF = 5_000;

interface QueueModel {
  /** Keys added since their running pass started (or never run since added): they must run again. */
  owed: Set<string>;
  /** Keys whose last pass failed, with when it failed (they must be retried by then + MAX_BACKOFF). */
  failedAt: Map<string, number>;
}

interface QueueReal {
  queue: WorkQueue;
  /** Passes running, by key, with how to end each. */
  running: Map<string, (outcome: 'ok' | 'fail' | 'requeue') => void>;
  /** Keys whose pass started since the command began. */
  started: string[];
  /** Highest concurrency seen. */
  maxActive: number;
}

type QueueCommand = fc.AsyncCommand<QueueModel, QueueReal>;

function noteStarts(m: QueueModel, r: QueueReal): void {
  for (const k of r.started.splice(0)) {
    m.owed.delete(k);
    m.failedAt.delete(k);
  }
}

class Add implements QueueCommand {
  constructor(readonly key: string) {}
  check = () => true;
  async run(m: QueueModel, r: QueueReal): Promise<void> {
    r.queue.add(this.key);
    m.owed.add(this.key);
    await vi.advanceTimersByTimeAsync(0);
    noteStarts(m, r);
    expect(r.maxActive).toBeLessThanOrEqual(WORKERS);
  }
  toString = () => `add(${this.key})`;
}

class Finish implements QueueCommand {
  constructor(
    readonly pick: number,
    readonly outcome: 'ok' | 'fail' | 'requeue',
  ) {}
  check = (_m: Readonly<QueueModel>) => true;
  async run(m: QueueModel, r: QueueReal): Promise<void> {
    const keys = [...r.running.keys()];
    if (!keys.length) return;
    const key = keys[this.pick % keys.length]!;
    const end = r.running.get(key)!;
    if (this.outcome === 'fail') m.failedAt.set(key, performance.now());
    end(this.outcome);
    await vi.advanceTimersByTimeAsync(0);
    noteStarts(m, r);
  }
  toString = () => `finish(#${this.pick}, ${this.outcome})`;
}

class Wait implements QueueCommand {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: QueueModel, r: QueueReal): Promise<void> {
    await vi.advanceTimersByTimeAsync(this.ms);
    noteStarts(m, r);
    // A failed key not yet retried, while nothing blocks it (not running, a worker free), is within its backoff.
    for (const [key, at] of m.failedAt)
      if (!r.running.has(key) && r.running.size < WORKERS)
        expect(performance.now() - at, `${key} not retried`).toBeLessThanOrEqual(MAX_BACKOFF + 600);
  }
  toString = () => `wait(${this.ms})`;
}

const queueCommands = [
  fc.constantFrom(...KEYS).map((k) => new Add(k)),
  fc.tuple(fc.nat(3), fc.constantFrom('ok', 'fail', 'requeue')).map(([p, o]) => new Finish(p, o as 'ok')),
  fc.constantFrom(0, 100, 500, 2000, 6000).map((ms) => new Wait(ms)),
];

describe('model-based runs under a fake clock', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the host registry keeps its liveness invariants under any sequence of reports, silences and link changes', () => {
    const runs = fuzzParams(200, 5000);
    fc.assert(
      fc.property(fc.commands(registryCommands, { maxCommands: 60 }), (cmds) => {
        const registry = new HostRegistry({
          nc: undefined as never,
          subjects: new Subjects('edge'),
          log,
          missedHeartbeats: MISSED,
          graceMs: GRACE,
          lostAfterMs: LOST_AFTER,
        });
        const announced = new Map<string, number>();
        registry.on('state', (e: { report: { host: string } }, previous: string | undefined) => {
          if (previous !== undefined) announced.set(e.report.host, (announced.get(e.report.host) ?? 0) + 1);
        });
        // First reports announce (previous undefined): not a change of state.
        fc.modelRun(
          () => ({
            model: { now: 1_000_000, linkUp: true, graceFrom: Number.NEGATIVE_INFINITY, hosts: new Map() },
            real: { registry, announced },
          }),
          cmds,
        );
      }),
      runs,
    );
    reportFigures({
      scenario: 'fuzz/model-host-registry',
      passed: true,
      runs: runs.numRuns,
      seed: runs.seed,
    });
  });

  it('the work queue never runs a key twice at once, never loses a wakeup, and retries failures within the bound', async () => {
    const runs = fuzzParams(100, 3000);
    await fc.assert(
      fc.asyncProperty(fc.commands(queueCommands, { maxCommands: 50 }), async (cmds) => {
        const real: QueueReal = { queue: undefined as never, running: new Map(), started: [], maxActive: 0 };
        real.queue = new WorkQueue(
          (key) =>
            new Promise((resolve, reject) => {
              expect(real.running.has(key), `${key} ran twice at once`).toBe(false);
              real.started.push(key);
              real.running.set(key, (outcome) => {
                real.running.delete(key);
                if (outcome === 'fail') reject(new Error('failed'));
                else resolve(outcome === 'requeue' ? { requeueAfterMs: 1000 } : undefined);
              });
              real.maxActive = Math.max(real.maxActive, real.running.size);
            }),
          { workers: WORKERS, log, name: 'model', maxBackoffMs: MAX_BACKOFF, minIntervalMs: 500, burst: 3 },
        );
        const model: QueueModel = { owed: new Set(), failedAt: new Map() };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        // Drain: end every pass well, let every timer fire; every key owed a pass got one.
        for (let i = 0; i < 50 && (real.running.size || model.owed.size); i++) {
          for (const end of [...real.running.values()]) end('ok');
          await vi.advanceTimersByTimeAsync(MAX_BACKOFF + 1000);
          noteStarts(model, real);
        }
        for (const end of [...real.running.values()]) end('ok');
        expect([...model.owed], 'keys added but never run again').toEqual([]);
        expect(real.maxActive).toBeLessThanOrEqual(WORKERS);
        real.queue.stop();
      }),
      runs,
    );
    reportFigures({ scenario: 'fuzz/model-work-queue', passed: true, runs: runs.numRuns, seed: runs.seed });
  });
});
