/**
 * A real agent's wall clock stepped by a day, on NATS with mutual TLS (issue 14, clock steps): the real stack with
 * TLS that verifies client certificates (valid 30 days from now), one agent started under libfaketime, every agent
 * through its own fault proxy. test/chaos/pause/nats-clock-step.test.ts covers the NATS client alone; this is the
 * whole agent and what the coordinator makes of it.
 *
 * - +1 day, held past lostAfter: the agent keeps its link and reports; then its link is reset: it regains it at
 *   once (the certificates are valid by its clock) — its host never leaves Ready.
 * - −1 day, held past lostAfter: the agent keeps its link (TLS checks dates only at the handshake) and reports.
 * - Throughout: the coordinator judges the host by when its reports arrive, never by their `time` (a day off), so
 *   no host goes Disconnected or Lost; the agent acts on no date of its own: no container is restarted or
 *   replaced, no Instance moves, and the credentials' expiry it reports (from the certificate) does not change.
 * The step back with a link drop (TLS then refuses the server's certificate by the host's clock) is
 * nats-clock-step's case.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../deploy/stack/proc.js';
import { makeCerts } from '../../harness/certs.js';
import { fakeClock } from '../../harness/clock.js';
import { useEdgeStack } from '../../harness/edge.js';
import { runningContainers, watchFleet } from '../../harness/fleet-watch.js';
import { tempDir, waitFor } from '../../harness/index.js';
import { nginxWorkload } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';
import { chaosLevel } from '../settings.js';

const DAY = 86_400;
const LOST_AFTER_SECONDS = 20;
/** How long each step is held (past lostAfter). */
const HOLD_S = chaosLevel({ test: LOST_AFTER_SECONDS + 5, chaos: 3 * LOST_AFTER_SECONDS });
const dir = tempDir('edgeplane-agent-clock-');
const certs = makeCerts(dir, { days: 30 });
const clock = fakeClock(dir);
const stack = useEdgeStack({
  lostAfterSeconds: LOST_AFTER_SECONDS,
  agentsThroughProxy: true,
  natsTls: certs,
  agentEnv: (_host, i) => (i === 0 ? clock.env : {}),
});

describe('an agent whose wall clock steps by a day (NATS with mutual TLS)', () => {
  it('keeps or regains its link, stays Ready, and acts on no date of its own', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', 'aclock']);
    await s.kubectl(['apply', '-n', 'aclock', '-f', '-'], {
      input: nginxWorkload({ name: 'tock', replicas: 3 }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com tock -n aclock',
      '{.status.readyReplicas}',
      (v) => v === '3',
      180_000,
    );
    const victim = s.hosts[0]!;
    const fleet = await watchFleet(s.nats.url, certs);
    await waitFor('a report of every host', () => s.hosts.every((h) => fleet.hosts.has(h)), {
      timeoutMs: 30_000,
    });
    const placements = async () =>
      (
        await s.kubectl([
          'get',
          'instances',
          '-n',
          'aclock',
          '-o',
          'jsonpath={range .items[*]}{.metadata.name}@{.spec.host} {end}',
        ])
      ).stdout;
    const placed = await placements();
    const containers = new Map<string, string[]>();
    for (const h of s.hosts) containers.set(h, await runningContainers(h));
    const expiry = fleet.hosts.get(victim)!.report.credentialsExpireAt;
    expect(expiry, 'the agent reports its certificate expiry').toBeDefined();
    const seen = new Set<string>();
    const watch = async (seconds: number) => {
      for (let i = 0; i < seconds; i++) {
        const r = await s.kubectl(['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
        for (const state of r.stdout.split(' ').filter(Boolean)) seen.add(state);
        await sleep(1000);
      }
    };
    const reportTime = () => Date.parse(fleet.hosts.get(victim)!.report.time ?? '') - Date.now();

    // Ahead a day, past lostAfter; the reports say so.
    fleet.resetGaps();
    clock.step(DAY);
    await watch(HOLD_S);
    const aheadSkewH = reportTime() / 3_600_000;
    const aheadGapMs = fleet.maxGapMs(victim);
    // The link dropped while ahead: regained at once.
    const before = fleet.hosts.get(victim)!.lastAt;
    const proxy = s.agentProxies.get(victim)!;
    proxy.reset();
    const droppedAt = Date.now();
    await waitFor('the agent reporting again', () => fleet.hosts.get(victim)!.lastAt > droppedAt, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    const regainMs = fleet.hosts.get(victim)!.lastAt - Math.max(before, droppedAt);
    await watch(5);

    // Behind a day, past lostAfter.
    fleet.resetGaps();
    clock.step(-DAY);
    await watch(HOLD_S);
    const behindSkewH = reportTime() / 3_600_000;
    const behindGapMs = fleet.maxGapMs(victim);
    clock.step(0);
    await watch(5);

    const events = await s.kubectl(['get', 'events', '-A', '-o', 'jsonpath={.items[*].reason}']);
    const restarted: string[] = [];
    for (const h of s.hosts)
      if ((await runningContainers(h)).join() !== containers.get(h)!.join()) restarted.push(h);
    const expiryAfter = fleet.hosts.get(victim)!.report.credentialsExpireAt;
    const passed =
      seen.size === 1 &&
      seen.has('Ready') &&
      !restarted.length &&
      (await placements()) === placed &&
      expiryAfter === expiry &&
      !/HostLost|Rescheduled/.test(events.stdout);
    reportFigures({
      scenario: 'pause/agent-clock-1d-tls',
      passed,
      holdS: HOLD_S,
      lostAfterS: LOST_AFTER_SECONDS,
      reportTimeAheadH: +aheadSkewH.toFixed(1),
      reportTimeBehindH: +behindSkewH.toFixed(1),
      longestSilenceAheadS: +(aheadGapMs / 1000).toFixed(1),
      regainedAfterDropAheadS: +(regainMs / 1000).toFixed(1),
      longestSilenceBehindS: +(behindGapMs / 1000).toFixed(1),
      hostStates: [...seen].join(','),
      containersRestarted: restarted.length,
    });
    // The step really reached the agent (its reports carry its clock).
    expect(aheadSkewH).toBeGreaterThan(23);
    expect(behindSkewH).toBeLessThan(-23);
    expect([...seen]).toEqual(['Ready']);
    expect(events.stdout).not.toMatch(/HostLost|Rescheduled/);
    expect(restarted).toEqual([]);
    expect(await placements()).toBe(placed);
    expect(expiryAfter).toBe(expiry);
  }, 480_000);
});
