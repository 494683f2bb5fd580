/**
 * Model-based runs of leader election (issue 14, "Fuzzing"): three real LeaderElectors (coordinator/kube/leader.ts)
 * under a fake clock, against the model's own Lease — an in-memory coordination.k8s.io Lease with the API server's
 * rules (create conflicts when it exists, replace conflicts on a stale resourceVersion) — reached through links
 * whose faults the commands choose: up with a delay each way, down (fails at once), blackholed (never answers),
 * replies lost (the write lands, the answer never comes). Candidates are also restarted (stop, which releases the
 * Lease when it can) and crashed (nothing released). A leader that loses the Lease rejoins as the Coordinator does:
 * a new elector with a new identity.
 *
 * Invariants, checked at every write the model's Lease takes and every 50 ms of model time:
 * - at most one candidate leads at any time;
 * - a candidate leads only while the Lease names it and its last write is younger than the lease duration — so a
 *   leader that cannot renew has stopped before any other candidate can take the Lease;
 * - `onLost` is called only by a leader, once per term;
 * - once every link is healthy, a leader is elected within a bound, and it is the Lease's holder.
 */
import { ApiException, type V1Lease } from '@kubernetes/client-node';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { KubeClient } from '../../../coordinator/kube/client.js';
import { type LeaderElectionOptions, LeaderElector } from '../../../coordinator/kube/leader.js';
import { createLogger } from '../../../shared/log.js';
import { reportFigures } from '../figures.js';
import { fuzzParams } from './arbitraries.js';

const log = createLogger({ name: 'model', level: 'silent' });
const CANDIDATES = 3;
const STEP_MS = 50;

/** How a candidate's link to the API server behaves for requests sent from now on. */
interface Link {
  mode: 'up' | 'down' | 'blackhole' | 'replyLost';
  /** Delay to the server (ms). */
  upMs: number;
  /** Delay of the answer (ms). */
  downMs: number;
}

/** The model's Lease: what the API server holds. */
interface LeaseModel {
  lease?: V1Lease;
  rv: number;
  /** When (model time) the holder last wrote it. */
  writtenAt: number;
  /** Every acquisition: who took the Lease from whom, when. */
  takeovers: number;
}

interface Candidate {
  slot: number;
  elector: LeaderElector;
  /** Crashed: none of its requests arrives any more, nothing is released. */
  crashed: boolean;
  /** Replaced by a newer candidate in its slot (restarted, crashed, or rejoined after losing the Lease). */
  replaced: boolean;
  /** Times `onLost` was called (at most once per elector: one term). */
  lostCalls: number;
}

interface World {
  options: LeaderElectionOptions;
  lease: LeaseModel;
  links: Link[];
  /** Candidates by slot (the live one). */
  live: Candidate[];
  /** Every candidate ever made (old ones must never lead again). */
  all: Candidate[];
  generation: number;
  violations: string[];
}

const now = () => performance.now();
const copy = <T>(v: T): T => structuredClone(v);

function leaders(w: World): Candidate[] {
  return w.all.filter((c) => c.elector.isLeader);
}

function checkInvariants(w: World, where: string): void {
  const ls = leaders(w);
  if (ls.length > 1)
    w.violations.push(`${where}: ${ls.length} leaders at once (${ls.map((c) => c.elector.identity)})`);
  const holder = w.lease.lease?.spec?.holderIdentity ?? '';
  for (const c of ls) {
    if (c.crashed) w.violations.push(`${where}: crashed ${c.elector.identity} still leads`);
    if (holder !== c.elector.identity)
      w.violations.push(`${where}: ${c.elector.identity} leads while the Lease names ${holder || 'nobody'}`);
    else if (now() - w.lease.writtenAt >= w.options.leaseDurationMs)
      w.violations.push(
        `${where}: ${c.elector.identity} leads ${Math.round(now() - w.lease.writtenAt)} ms after its last write (lease ${w.options.leaseDurationMs} ms)`,
      );
  }
  for (const c of w.all)
    if (c.lostCalls > 1)
      w.violations.push(`${where}: onLost called ${c.lostCalls} times on ${c.elector.identity}`);
}

const apiError = (code: number, message: string) => new ApiException(code, message, { message }, {});

/** The model's API server, as one candidate's link reaches it. */
function clientFor(w: World, c: () => Candidate): KubeClient {
  const request = <T>(serve: () => T): Promise<T> => {
    const link = { ...w.links[c().slot]! };
    const self = c();
    return new Promise<T>((resolve, reject) => {
      if (self.crashed || link.mode === 'blackhole') return;
      if (link.mode === 'down') {
        setTimeout(() => reject(new Error('connect ECONNREFUSED')), 1);
        return;
      }
      setTimeout(() => {
        if (self.crashed) return;
        let result: { ok: T } | { err: unknown };
        try {
          result = { ok: serve() };
        } catch (err) {
          result = { err };
        }
        if (link.mode === 'replyLost') return;
        setTimeout(() => ('ok' in result ? resolve(result.ok) : reject(result.err)), link.downMs);
      }, link.upMs);
    });
  };
  const write = (body: V1Lease) => {
    const holder = body.spec?.holderIdentity ?? '';
    const previous = w.lease.lease?.spec?.holderIdentity ?? '';
    w.lease.rv++;
    w.lease.lease = { ...copy(body), metadata: { ...body.metadata, resourceVersion: String(w.lease.rv) } };
    w.lease.writtenAt = now();
    if (holder && holder !== previous) {
      w.lease.takeovers++;
      // Taking the Lease while another still believes it leads: two leaders from now on.
      for (const o of leaders(w))
        if (o.elector.identity !== holder)
          w.violations.push(`${o.elector.identity} still leads when ${holder} takes the Lease`);
    }
    return copy(w.lease.lease);
  };
  const coordination = {
    readNamespacedLease: () =>
      request(() => {
        if (!w.lease.lease) throw apiError(404, 'not found');
        return copy(w.lease.lease);
      }),
    createNamespacedLease: ({ body }: { body: V1Lease }) =>
      request(() => {
        if (w.lease.lease) throw apiError(409, 'already exists');
        return write(body);
      }),
    replaceNamespacedLease: ({ body }: { body: V1Lease }) =>
      request(() => {
        if (body.metadata?.resourceVersion !== w.lease.lease?.metadata?.resourceVersion)
          throw apiError(409, 'the object has been modified');
        return write(body);
      }),
  };
  return { coordination } as unknown as KubeClient;
}

/** A new candidate in `slot` (a new process: new identity), standing for election at once. */
function spawn(w: World, slot: number): Candidate {
  const c: Candidate = { slot, crashed: false, replaced: false, lostCalls: 0, elector: undefined as never };
  c.elector = new LeaderElector(
    clientFor(w, () => c),
    { ...w.options, identity: `c${slot}-g${w.generation++}` },
    log,
  );
  w.live[slot] = c;
  w.all.push(c);
  const term = () =>
    void c.elector.acquire(() => {
      c.lostCalls++;
      if (c.elector.isLeader)
        w.violations.push(`onLost called on ${c.elector.identity} while it still says it leads`);
      // As Coordinator.rejoin: stop everything, stand again as a new elector.
      if (!c.replaced) {
        c.replaced = true;
        void c.elector.stop();
        spawn(w, slot);
      }
    });
  term();
  return c;
}

type Cmd = fc.AsyncCommand<World, World>;

async function advance(w: World, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += STEP_MS) {
    await vi.advanceTimersByTimeAsync(Math.min(STEP_MS, ms - t));
    checkInvariants(w, `t=${Math.round(now())}`);
  }
}

class SetLink implements Cmd {
  constructor(
    readonly slot: number,
    readonly link: Link,
  ) {}
  check = () => true;
  async run(_m: World, w: World): Promise<void> {
    w.links[this.slot] = this.link;
    await advance(w, 0);
  }
  toString = () => `link(c${this.slot}, ${this.link.mode} ${this.link.upMs}/${this.link.downMs})`;
}

class Wait implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: World, w: World): Promise<void> {
    await advance(w, this.ms);
  }
  toString = () => `wait(${this.ms})`;
}

class Restart implements Cmd {
  constructor(
    readonly slot: number,
    /** crash: nothing released, no request of the old process arrives any more. */
    readonly crash: boolean,
  ) {}
  check = () => true;
  async run(_m: World, w: World): Promise<void> {
    const old = w.live[this.slot]!;
    old.replaced = true;
    old.crashed = this.crash;
    void old.elector.stop();
    spawn(w, this.slot);
    await advance(w, 0);
  }
  toString = () => `${this.crash ? 'crash' : 'restart'}(c${this.slot})`;
}

const link = fc.record({
  mode: fc.constantFrom<Link['mode']>('up', 'up', 'down', 'blackhole', 'replyLost'),
  upMs: fc.constantFrom(0, 5, 200, 1500, 4000),
  downMs: fc.constantFrom(0, 5, 200, 1500, 4000, 9000),
});

const commands = [
  fc.tuple(fc.nat(CANDIDATES - 1), link).map(([s, l]) => new SetLink(s, l)),
  fc.constantFrom(STEP_MS, 1000, 3000, 8000, 16_000).map((ms) => new Wait(ms)),
  fc.tuple(fc.nat(CANDIDATES - 1), fc.boolean()).map(([s, crash]) => new Restart(s, crash)),
];

/** The coordinator's proportions (coordinator/config.ts): renew deadline 2/3 of the lease, retry 2/15. */
function optionsFor(leaseSeconds: number): LeaderElectionOptions {
  const leaseMs = leaseSeconds * 1000;
  return {
    namespace: 'kube-system',
    name: 'edge-coordinator',
    leaseDurationMs: leaseMs,
    renewDeadlineMs: Math.round((leaseMs * 2) / 3),
    retryPeriodMs: Math.max(500, Math.round((leaseMs * 2) / 15)),
  };
}

describe('leader election, model-based under a fake clock', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never two leaders; a leader that cannot renew stops before another can acquire; healed, one leads', async () => {
    const runs = fuzzParams(60, 1500);
    let elections = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(2, 5, 15),
        fc.commands(commands, { maxCommands: 40 }),
        async (leaseSeconds, cmds) => {
          const w: World = {
            options: optionsFor(leaseSeconds),
            lease: { rv: 0, writtenAt: 0, takeovers: 0 },
            links: Array.from({ length: CANDIDATES }, () => ({ mode: 'up', upMs: 5, downMs: 5 })),
            live: [],
            all: [],
            generation: 0,
            violations: [],
          };
          try {
            for (let s = 0; s < CANDIDATES; s++) spawn(w, s);
            await fc.asyncModelRun(() => ({ model: w, real: w }), cmds);
            expect(w.violations.slice(0, 5)).toEqual([]);
            // Healed: every link up and quick; a leader within two leases plus a renew cycle, and it holds the Lease.
            for (let s = 0; s < CANDIDATES; s++) w.links[s] = { mode: 'up', upMs: 5, downMs: 5 };
            const o = w.options;
            await advance(w, 2 * o.leaseDurationMs + o.renewDeadlineMs + 3 * o.retryPeriodMs);
            expect(w.violations.slice(0, 5)).toEqual([]);
            const ls = leaders(w);
            expect(ls.length, 'one leader once healed').toBe(1);
            expect(w.live).toContain(ls[0]);
            expect(w.lease.lease?.spec?.holderIdentity).toBe(ls[0]!.elector.identity);
            elections += w.lease.takeovers;
          } finally {
            for (const c of w.all) {
              c.crashed = true;
              void c.elector.stop();
            }
            await vi.advanceTimersByTimeAsync(0);
          }
        },
      ),
      runs,
    );
    reportFigures({
      scenario: 'fuzz/model-leader-election',
      passed: true,
      runs: runs.numRuns,
      seed: runs.seed,
      takeovers: elections,
    });
  }, 600_000);
});
