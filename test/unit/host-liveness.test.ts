/**
 * Host liveness decisions (coordinator/hosts/liveness.ts) and the registry's use of them: silence on the
 * liveness clock, a fresh grace after our own link or loop was down, the mass-loss brake.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LIVENESS,
  decideHostStates,
  type HostSilence,
  type HostState,
  loopStalled,
  stateForSilence,
  worsened,
} from '../../coordinator/hosts/liveness.js';
import { HostRegistry } from '../../coordinator/hosts/registry.js';
import { createLogger } from '../../shared/log.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { testHostReport } from '../harness/objects.js';

const log = createLogger({ name: 'test', level: 'silent' });
const RULES = { lostAfterMs: 30_000, ...DEFAULT_LIVENESS };

/** A report of `host`; heartbeat 2 s: Disconnected after 2 s × 3 + 5 s grace = 11 s. */
const report = (host: string, seq = 1) =>
  testHostReport(host, 'loc', { seq, heartbeatMs: 2000, startedAt: 't0' });

const hostsArb = fc
  .array(
    fc.record({
      state: fc.constantFrom<HostState>('Ready', 'Disconnected', 'Lost'),
      silentMs: fc.integer({ min: 0, max: 120_000 }),
      disconnectAfterMs: fc.integer({ min: 1000, max: 60_000 }),
    }),
    { maxLength: 30 },
  )
  .map((hs) => hs.map((h, i): HostSilence => ({ ...h, host: `h${i}` })));
const rulesArb = fc.record({
  lostAfterMs: fc.integer({ min: 1000, max: 90_000 }),
  maxLostShare: fc.double({ min: 0, max: 1, noNaN: true }),
  minBrakeHosts: fc.integer({ min: 1, max: 5 }),
});

describe('decideHostStates', () => {
  it('follows the silence rule while few hosts are silent', () => {
    const d = decideHostStates(
      [
        { host: 'a', state: 'Ready', silentMs: 31_000, disconnectAfterMs: 11_000 },
        { host: 'b', state: 'Ready', silentMs: 1000, disconnectAfterMs: 11_000 },
        { host: 'c', state: 'Ready', silentMs: 12_000, disconnectAfterMs: 11_000 },
        { host: 'd', state: 'Ready', silentMs: 0, disconnectAfterMs: 11_000 },
      ],
      RULES,
    );
    expect(Object.fromEntries(d.states)).toEqual({ a: 'Lost', b: 'Ready', c: 'Disconnected', d: 'Ready' });
    expect(d.held).toEqual([]);
  });

  it('holds losses at Disconnected when more than 55 % of the hosts are silent at once', () => {
    const hosts: HostSilence[] = ['a', 'b', 'c', 'd'].map((host, i) => ({
      host,
      state: 'Disconnected',
      silentMs: i < 3 ? 31_000 : 0,
      disconnectAfterMs: 11_000,
    }));
    const d = decideHostStates(hosts, RULES);
    expect(d.held.sort()).toEqual(['a', 'b', 'c']);
    expect([...d.states.values()].filter((s) => s === 'Lost')).toEqual([]);
  });

  it('still loses the only host of a one-host fleet, and hosts Lost earlier do not count', () => {
    const one = decideHostStates(
      [{ host: 'a', state: 'Ready', silentMs: 40_000, disconnectAfterMs: 11_000 }],
      RULES,
    );
    expect(one.states.get('a')).toBe('Lost');
    const d = decideHostStates(
      [
        { host: 'gone1', state: 'Lost', silentMs: 900_000, disconnectAfterMs: 11_000 },
        { host: 'gone2', state: 'Lost', silentMs: 900_000, disconnectAfterMs: 11_000 },
        { host: 'a', state: 'Disconnected', silentMs: 31_000, disconnectAfterMs: 11_000 },
        { host: 'b', state: 'Ready', silentMs: 0, disconnectAfterMs: 11_000 },
      ],
      RULES,
    );
    expect(d.states.get('a')).toBe('Lost'); // 1 of 2 live hosts silent: 50 %, and fewer than 2 silent
    expect(d.states.get('gone1')).toBe('Lost');
  });

  it('properties: Lost only past lostAfter and TTL, Ready within TTL, never better without a report, brake ⇒ no new Lost, no brake ⇒ the silence rule', () => {
    fc.assert(
      fc.property(hostsArb, rulesArb, (hosts, rules) => {
        const d = decideHostStates(hosts, rules);
        for (const h of hosts) {
          const next = d.states.get(h.host);
          const bySilence = stateForSilence(h.silentMs, h.disconnectAfterMs, rules.lostAfterMs);
          const rank = { Ready: 0, Disconnected: 1, Lost: 2 } as const;
          const raw = rank[bySilence] >= rank[h.state] ? bySilence : h.state;
          if (next === 'Lost' && h.state !== 'Lost')
            expect(h.silentMs).toBeGreaterThan(Math.max(rules.lostAfterMs, h.disconnectAfterMs));
          if (h.state === 'Ready' && h.silentMs <= h.disconnectAfterMs) expect(next).toBe('Ready');
          // Only a report makes a host better: a silence decision never does.
          expect(rank[next!]).toBeGreaterThanOrEqual(h.state === 'Lost' ? 2 : rank[h.state]);
          if (d.held.length) {
            if (h.state !== 'Lost') expect(next).not.toBe('Lost');
          } else expect(next).toBe(raw);
        }
        if (d.held.length) {
          const live = hosts.filter((h) => h.state !== 'Lost');
          // Silent: past its TTL, or not heard since it went Disconnected (a check never makes it Ready).
          const silent = live.filter(
            (h) => h.silentMs > h.disconnectAfterMs || h.state === 'Disconnected',
          ).length;
          expect(silent / live.length).toBeGreaterThan(rules.maxLostShare);
          expect(silent).toBeGreaterThanOrEqual(rules.minBrakeHosts);
        }
      }),
    );
  });

  it('notices a stalled check loop', () => {
    expect(loopStalled(undefined, 50_000, 1000, 5000)).toBe(false);
    expect(loopStalled(10_000, 16_000, 1000, 5000)).toBe(false);
    expect(loopStalled(10_000, 40_000, 1000, 5000)).toBe(true);
  });
});

describe('host registry under its own faults', () => {
  const make = () =>
    new HostRegistry({ nc: undefined as never, subjects: new Subjects('edge'), log, lostAfterMs: 30_000 });

  it('a pause of the coordinator (a stalled check loop) restarts the grace: nobody is Lost after SIGCONT', () => {
    const r = make();
    for (const h of ['a', 'b', 'c']) r.accept(report(h), 0);
    r.timerCheck(1000);
    r.timerCheck(61_000); // stopped for a minute: every host looks silent for 61 s
    expect(r.counts()).toEqual({ Ready: 3, Disconnected: 0, Lost: 0 });
    expect(r.graceRestarts).toBe(1);
    // a and b report on; c stays silent a full lostAfter after the pause: now it is really gone.
    for (let t = 62_000; t <= 92_000; t += 1000) {
      if (t % 5000 === 0) for (const h of ['a', 'b']) r.accept(report(h, t), t);
      r.timerCheck(t);
    }
    expect(r.get('c')?.state).toBe('Lost');
  });

  it('makes no verdict while its own NATS link is down, and counts silence afresh from the reconnect', () => {
    const r = make();
    r.accept(report('a'), 0);
    r.setLink(false, 5000);
    r.check(60_000);
    expect(r.get('a')?.state).toBe('Ready');
    r.setLink(true, 60_000);
    r.check(70_000);
    expect(r.get('a')?.state).toBe('Ready'); // 10 s since the reconnect: within TTL + grace (11 s)
    r.check(72_000);
    expect(r.get('a')?.state).toBe('Disconnected');
    r.check(90_001);
    expect(r.get('a')?.state).toBe('Lost');
  });

  it('makes no host better without a report when its own link comes back (a Lost host stays Lost, once)', () => {
    const r = make();
    const changes: string[] = [];
    r.on('state', (e: { report: { host: string }; state: string }) =>
      changes.push(`${e.report.host}:${e.state}`),
    );
    r.accept(report('a'), 0);
    r.check(12_000);
    r.check(31_000);
    expect(r.get('a')?.state).toBe('Lost');
    r.setLink(false, 40_000);
    r.setLink(true, 50_000);
    r.check(51_000); // silence counted afresh from the reconnect: 1 s, but nothing was heard from a
    expect(r.get('a')?.state).toBe('Lost');
    r.check(90_000);
    expect(r.get('a')?.state).toBe('Lost');
    expect(changes.filter((c) => c === 'a:Lost')).toHaveLength(1);
    r.accept(report('a', 2), 91_000);
    expect(r.get('a')?.state).toBe('Ready');
  });

  it('counts each host the brake holds once, and releases it when it reports', () => {
    const r = make();
    for (const h of ['a', 'b', 'c']) r.accept(report(h), 0);
    r.check(31_000);
    r.check(32_000);
    expect(r.counts()).toEqual({ Ready: 0, Disconnected: 3, Lost: 0 });
    expect(r.lossesSuppressed).toBe(3);
    r.accept(report('a', 2), 33_000);
    expect(r.get('a')?.state).toBe('Ready');
  });

  it("judges a host by when its reports arrive, never by their `time` (an agent's clock a day off)", () => {
    const r = make();
    const DAY = 86_400_000;
    const at = (seq: number, offset: number) => ({
      ...report('a', seq),
      time: new Date(Date.now() + offset).toISOString(),
    });
    r.accept(at(1, DAY), 0);
    r.accept(at(2, -DAY), 2000);
    r.check(10_000);
    expect(r.get('a')?.state).toBe('Ready');
    // Silent from 2 s on: Lost a full lostAfter after the last arrival, whatever the reports said.
    r.check(31_000);
    expect(r.get('a')?.state).toBe('Disconnected');
    r.check(32_001);
    expect(r.get('a')?.state).toBe('Lost');
  });
});

describe('queued reports are read before a verdict (rule 5)', () => {
  it('worsened names exactly the hosts a decision makes worse', () => {
    fc.assert(
      fc.property(hostsArb, rulesArb, (hosts, rules) => {
        const d = decideHostStates(hosts, rules);
        const rank = { Ready: 0, Disconnected: 1, Lost: 2 };
        const want = hosts.filter((h) => rank[d.states.get(h.host)!] > rank[h.state]).map((h) => h.host);
        expect(worsened(hosts, d)).toEqual(want);
      }),
    );
  });

  /** A registry whose drain hands it the reports "queued on its socket" when asked, as a flush would. */
  const withQueue = () => {
    const queued: Array<{ host: string; seq: number; at: number }> = [];
    let drains = 0;
    const r: HostRegistry = new HostRegistry({
      nc: undefined as never,
      subjects: new Subjects('edge'),
      log,
      lostAfterMs: 30_000,
      drainReports: async () => {
        drains++;
        for (const q of queued.splice(0)) r.accept(report(q.host, q.seq), q.at);
      },
    });
    return { r, queued, drains: () => drains };
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

  it('a host whose report is queued unread is not declared Lost; a silent one is', async () => {
    const { r, queued, drains } = withQueue();
    const live = ['b', 'd', 'e', 'f'];
    for (const h of ['a', 'c', ...live]) r.accept(report(h), 0);
    for (let t = 1000; t <= 30_000; t += 1000) {
      if (t % 5000 === 0) for (const h of live) r.accept(report(h, t), t);
      r.timerCheck(t);
      await settle();
    }
    // a and c went Disconnected (silent past their TTL, nothing queued); now a report of a waits, none of c.
    expect(r.get('a')?.state).toBe('Disconnected');
    queued.push({ host: 'a', seq: 2, at: 30_500 });
    r.timerCheck(31_001);
    expect(r.get('c')?.state).toBe('Disconnected'); // nothing decided before the drain finished
    await settle();
    expect(r.get('a')?.state).toBe('Ready');
    expect(r.get('c')?.state).toBe('Lost');
    expect(r.get('b')?.state).toBe('Ready');
    expect(r.drainSaves).toBe(1);
    expect(drains()).toBeGreaterThan(0);
  });

  it('makes no verdict while a drain does not finish, and none when it fails', async () => {
    let release: () => void = () => {};
    const r = new HostRegistry({
      nc: undefined as never,
      subjects: new Subjects('edge'),
      log,
      lostAfterMs: 30_000,
      drainReports: () => new Promise<void>((resolve) => (release = resolve)),
    });
    r.accept(report('a'), 0);
    r.timerCheck(40_000);
    r.timerCheck(41_000);
    await settle();
    expect(r.get('a')?.state).toBe('Ready');
    release();
    await settle();
    expect(r.get('a')?.state).toBe('Lost');
    const failing = new HostRegistry({
      nc: undefined as never,
      subjects: new Subjects('edge'),
      log,
      lostAfterMs: 30_000,
      drainReports: () => Promise.reject(new Error('connection closed')),
    });
    failing.accept(report('a'), 0);
    failing.timerCheck(40_000);
    await settle();
    expect(failing.get('a')?.state).toBe('Ready');
  });
});
