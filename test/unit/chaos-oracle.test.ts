/**
 * The chaos oracle's counting (test/chaos/oracle-count.ts) on recorded samples: a clean run counts nothing, and
 * each defect — a slot down outside a fault, a copy on two hosts outside the allowed window, an unowned container
 * or leaked sandbox past its grace, a restart nothing asked for — is counted, while the same thing inside the
 * window a fault allows is not.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Subjects } from '../../shared/nats/subjects.js';
import { sandboxOf } from '../chaos/oracle.js';
import {
  countOracle,
  type FaultWindow,
  type IntendedSlot,
  type OracleOptions,
  type OracleSample,
  type RunningCopy,
} from '../chaos/oracle-count.js';

const OPTS: OracleOptions = {
  startGraceMs: 10_000,
  healGraceMs: 20_000,
  duplicateGraceMs: 15_000,
  orphanGraceMs: 30_000,
};
const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => T0 + s * 1000;

const slot = (name: string, host: string, templateHash = 'h1'): IntendedSlot => ({
  slot: `ns/${name}`,
  host,
  templateHash,
  workloadUid: 'uid-1',
});
const copy = (name: string, host: string, ids = `c-${name}-${host}`, running = true): RunningCopy => ({
  slot: `ns/${name}`,
  host,
  ids,
  running,
});

/** Samples for seconds [from, to) with what `at(second)` returns. */
function seconds(
  from: number,
  to: number,
  f: (s: number) => Partial<OracleSample> & Pick<OracleSample, 'intended' | 'copies'>,
): OracleSample[] {
  return Array.from({ length: to - from }, (_, i) => ({ at: at(from + i), leaked: [], ...f(from + i) }));
}

const steadyIntents = [slot('web-0', 'h-a'), slot('web-1', 'h-b')];
const steadyCopies = [copy('web-0', 'h-a'), copy('web-1', 'h-b')];
const steady = (from: number, to: number) =>
  seconds(from, to, () => ({ intended: steadyIntents, copies: steadyCopies }));

const fault = (start: number, end: number | undefined, touchedHosts: string[] = []): FaultWindow => ({
  name: 'test',
  start: at(start),
  end: end === undefined ? undefined : at(end),
  touchedHosts,
});

describe('chaos oracle counting', () => {
  it('counts nothing for a run where every slot runs once, on its host, unchanged', () => {
    const c = countOracle(steady(0, 120), [], OPTS);
    expect(c).toMatchObject({
      samples: 120,
      lostReplicaSeconds: 0,
      lostInFaultSeconds: 0,
      duplicateSeconds: 0,
      duplicateSecondsAllowed: 0,
      orphans: 0,
      needlessRestarts: 0,
    });
  });

  it('counts the seconds a slot is down outside fault windows as lost, inside them apart', () => {
    const down = seconds(60, 70, () => ({ intended: steadyIntents, copies: [copy('web-1', 'h-b')] }));
    const samples = [...steady(0, 60), ...down, ...steady(70, 100)];
    const outside = countOracle(samples, [], OPTS);
    expect(outside.lostReplicaSeconds).toBe(10);
    expect(outside.details[0]).toContain('lost ns/web-0');
    // The same gap while a fault is in force (or within its heal grace) is the fault's.
    const inside = countOracle(samples, [fault(50, 55)], OPTS);
    expect(inside.lostReplicaSeconds).toBe(0);
    expect(inside.lostInFaultSeconds).toBe(10);
    // A fault healed longer ago than the grace does not excuse it.
    expect(countOracle(samples, [fault(20, 30)], OPTS).lostReplicaSeconds).toBe(10);
  });

  it('gives a new or moved slot its start grace, then counts it', () => {
    const placed = [...steadyIntents, slot('web-2', 'h-a')];
    const starting = seconds(10, 40, (s) => ({
      intended: placed,
      copies: s < 15 ? steadyCopies : [...steadyCopies, copy('web-2', 'h-a')],
    }));
    expect(countOracle([...steady(0, 10), ...starting], [], OPTS).lostReplicaSeconds).toBe(0);
    const neverStarts = seconds(10, 40, () => ({ intended: placed, copies: steadyCopies }));
    // Placed at 10 s, grace 10 s: down from 20 s to 39 s.
    expect(countOracle([...steady(0, 10), ...neverStarts], [], OPTS).lostReplicaSeconds).toBe(20);
  });

  it('counts a slot on two hosts as a duplicate unless a fault touching one of them allows it', () => {
    const twice = seconds(30, 50, () => ({
      intended: [slot('web-0', 'h-c'), slot('web-1', 'h-b')],
      copies: [...steadyCopies, copy('web-0', 'h-c')],
    }));
    const samples = [...steady(0, 30), ...twice];
    const c = countOracle(samples, [], OPTS);
    expect(c.duplicateSeconds).toBe(20);
    expect(c.details.some((d) => d.includes('duplicate ns/web-0 on h-a,h-c'))).toBe(true);
    // h-a was cut off from 20 s to 40 s: allowed until 40 + 15 s.
    const allowed = countOracle(samples, [fault(20, 40, ['h-a'])], OPTS);
    expect(allowed.duplicateSeconds).toBe(0);
    expect(allowed.duplicateSecondsAllowed).toBe(20);
    // Healed at 30 s: allowed until 45 s, the last four seconds are a defect.
    expect(countOracle(samples, [fault(20, 30, ['h-a'])], OPTS).duplicateSeconds).toBe(4);
    // A fault on another host does not allow it.
    expect(countOracle(samples, [fault(20, 40, ['h-b'])], OPTS).duplicateSeconds).toBe(20);
  });

  it('counts a container no intent owns, and a leaked sandbox, once each after the grace', () => {
    const extra = seconds(0, 100, () => ({
      intended: steadyIntents,
      copies: [...steadyCopies, copy('gone-0', 'h-a', 'c-old', false)],
      leaked: [{ id: 'sandbox:abc' }],
    }));
    const c = countOracle(extra, [], OPTS);
    expect(c.orphans).toBe(2);
    expect(c.details.filter((d) => d.startsWith('orphan'))).toHaveLength(2);
    // Within the grace: clean-up may still be on its way.
    expect(countOracle(extra.slice(0, 30), [], OPTS).orphans).toBe(0);
    // On a host cut off, an unowned copy waits for the host to hear again (its grace counts from the heal).
    const cut = countOracle(
      extra.map((s) => ({ ...s, leaked: [] })),
      [fault(0, 60, ['h-a'])],
      OPTS,
    );
    expect(cut.details).toEqual([]);
    expect(cut.orphans).toBe(0);
    const cutLonger = countOracle(
      [...extra, ...seconds(100, 130, () => ({ intended: steadyIntents, copies: extra[0]!.copies }))].map(
        (s) => ({
          ...s,
          leaked: [],
        }),
      ),
      [fault(0, 60, ['h-a'])],
      OPTS,
    );
    expect(cutLonger.orphans).toBe(1);
  });

  it('counts a restart nothing asked for, but not a rollout, a re-placement or a fault on that host', () => {
    const restarted = seconds(30, 60, () => ({
      intended: steadyIntents,
      copies: [copy('web-0', 'h-a', 'c-new'), copy('web-1', 'h-b')],
    }));
    const c = countOracle([...steady(0, 30), ...restarted], [], OPTS);
    expect(c.needlessRestarts).toBe(1);
    expect(c.details[0]).toContain('needless restart of ns/web-0@h-a');
    // Gone for a while and back with new ids: a restart too.
    const gap = seconds(30, 35, () => ({ intended: steadyIntents, copies: [copy('web-1', 'h-b')] }));
    expect(countOracle([...steady(0, 30), ...gap, ...restarted.slice(5)], [], OPTS).needlessRestarts).toBe(1);
    // A new template hash for that slot: asked for.
    const rolled = restarted.map((s) => ({
      ...s,
      intended: [slot('web-0', 'h-a', 'h2'), slot('web-1', 'h-b')],
    }));
    expect(countOracle([...steady(0, 30), ...rolled], [], OPTS).needlessRestarts).toBe(0);
    // A rollout step: the intent changes first, the agent replaces the copy (new template) seconds later.
    const intentFirst = seconds(30, 33, () => ({
      intended: [slot('web-0', 'h-a', 'h2'), slot('web-1', 'h-b')],
      copies: [{ ...copy('web-0', 'h-a'), templateHash: 'h1' }, copy('web-1', 'h-b')],
    }));
    const replaced = seconds(33, 60, () => ({
      intended: [slot('web-0', 'h-a', 'h2'), slot('web-1', 'h-b')],
      copies: [{ ...copy('web-0', 'h-a', 'c-new'), templateHash: 'h2' }, copy('web-1', 'h-b')],
    }));
    const before = steady(0, 30).map((s) => ({
      ...s,
      copies: [{ ...copy('web-0', 'h-a'), templateHash: 'h1' }, copy('web-1', 'h-b')],
    }));
    expect(countOracle([...before, ...intentFirst, ...replaced], [], OPTS).needlessRestarts).toBe(0);
    // The same, but the copy restarted on its old template: nothing asked for that.
    const sameTemplate = replaced.map((s) => ({
      ...s,
      copies: [{ ...copy('web-0', 'h-a', 'c-new'), templateHash: 'h1' }, copy('web-1', 'h-b')],
    }));
    expect(countOracle([...before, ...intentFirst, ...sameTemplate], [], OPTS).needlessRestarts).toBe(1);
    // Scaled away and back (same key, new assignment): asked for.
    const scaledDown = seconds(30, 40, () => ({
      intended: [slot('web-1', 'h-b')],
      copies: [copy('web-1', 'h-b')],
    }));
    expect(countOracle([...steady(0, 30), ...scaledDown, ...restarted], [], OPTS).needlessRestarts).toBe(0);
    // The agent of h-a was killed then: its restarts are the fault's.
    expect(
      countOracle([...steady(0, 30), ...restarted], [fault(25, 28, ['h-a'])], OPTS).needlessRestarts,
    ).toBe(0);
    // A fault elsewhere excuses nothing.
    expect(
      countOracle([...steady(0, 30), ...restarted], [fault(25, 28, ['h-b'])], OPTS).needlessRestarts,
    ).toBe(1);
  });

  it('skips samples it could not read', () => {
    const blind = seconds(30, 60, () => ({ intended: undefined, copies: undefined }));
    const c = countOracle([...steady(0, 30), ...blind, ...steady(60, 70)], [], OPTS);
    expect(c.samples).toBe(40);
    expect(c.lostReplicaSeconds).toBe(0);
  });

  it('counts zero for any clean run, and never less for a longer run (properties)', () => {
    const hosts = ['h-a', 'h-b', 'h-c'];
    const sampleArb = fc.record({
      intended: fc.uniqueArray(
        fc.record({
          n: fc.integer({ min: 0, max: 5 }),
          host: fc.constantFrom(...hosts),
          hash: fc.constantFrom('h1', 'h2'),
        }),
        { selector: (x) => x.n, maxLength: 4 },
      ),
      extra: fc.array(
        fc.record({
          n: fc.integer({ min: 0, max: 5 }),
          host: fc.constantFrom(...hosts),
          id: fc.constantFrom('x', 'y'),
          running: fc.boolean(),
        }),
        { maxLength: 3 },
      ),
      leaked: fc.array(fc.constantFrom('sandbox:1', 'sandbox:2'), { maxLength: 1 }),
    });
    type Drawn = typeof sampleArb extends fc.Arbitrary<infer T> ? T : never;
    const toSamples = (xs: Drawn[], clean: boolean): OracleSample[] =>
      xs.map((x, i) => {
        const intended = x.intended.map((s) => slot(`w-${s.n}`, s.host, s.hash));
        const copies = intended.map((s) => ({
          slot: s.slot,
          host: s.host,
          ids: `c-${s.slot}-${s.templateHash}`,
          running: true,
        }));
        return {
          at: at(i * 5),
          intended,
          copies: clean
            ? copies
            : [...copies, ...x.extra.map((e) => copy(`w-${e.n}`, e.host, e.id, e.running))],
          leaked: clean ? [] : x.leaked.map((id) => ({ id })),
        };
      });
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 40 }), (xs) => {
        // Every intended slot running once, on its host, its ids fixed by its assignment: nothing counted.
        const clean = countOracle(toSamples(xs, true), [], OPTS);
        expect([
          clean.lostReplicaSeconds,
          clean.duplicateSeconds,
          clean.orphans,
          clean.needlessRestarts,
        ]).toEqual([0, 0, 0, 0]);
      }),
    );
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 2, maxLength: 40 }), fc.nat(), (xs, cut) => {
        const samples = toSamples(xs, false);
        const prefix = countOracle(samples.slice(0, 1 + (cut % samples.length)), [], OPTS);
        const full = countOracle(samples, [], OPTS);
        for (const k of ['lostReplicaSeconds', 'duplicateSeconds', 'orphans', 'needlessRestarts'] as const)
          expect(full[k]).toBeGreaterThanOrEqual(prefix[k]);
      }),
    );
  });
});

describe('what the oracle reads', () => {
  it('takes only intent keys from the intents bucket: not the fence, not a marker', () => {
    const s = new Subjects('edge');
    expect(s.isIntentKey(s.intentKey('us-central1-a', 'default', 'web'))).toBe(true);
    expect(s.isIntentKey(s.intentMarkerKey('us-central1-a'))).toBe(false);
    expect(s.isIntentKey(s.intentFenceKey)).toBe(false);
  });

  it('reads a runsc sandbox from its command line: root and container', () => {
    const id = 'a'.repeat(64);
    const args = [
      'runsc-sandbox',
      '--root=/run/docker/runtime-runc/moby',
      '--log-format=json',
      'boot',
      `--bundle=/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/${id}`,
      '--cpu-num',
      '2',
    ];
    expect(sandboxOf(args)).toEqual({ root: '/run/docker/runtime-runc/moby', container: id });
    expect(sandboxOf(['runsc-gofer', ...args.slice(1)])).toBeUndefined();
    expect(sandboxOf(args.filter((a) => !a.startsWith('--root=')))).toBeUndefined();
    expect(sandboxOf(undefined)).toBeUndefined();
  });
});
