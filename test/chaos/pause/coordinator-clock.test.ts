/**
 * The coordinator's wall clock stepped ±60 s (issue 14, clock steps): the real stack, the coordinator started
 * under libfaketime. Its clock jumps 60 s ahead, then 60 s behind real time (an NTP correction, a VM restored from
 * a snapshot). Its hosts keep reporting all along, so no host may go Lost, nothing may be rescheduled, and the
 * Lease stays with it; a change made just after the backward step (a scale-up) must converge as fast as any
 * other — before, the work queue measured its intervals on the wall clock and held every recently passed key for
 * the whole step (120 s here).
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../deploy/stack/proc.js';
import { fakeClock } from '../../harness/clock.js';
import { useEdgeStack } from '../../harness/edge.js';
import { tempDir } from '../../harness/index.js';
import { nginxWorkload } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';

const LOST_AFTER_SECONDS = 20;
/** The convergence bound for the coordinator (also used by the kill -9 scenario). */
const CONVERGE_MS = 30_000;
const clock = fakeClock(tempDir('edgeplane-clock-'));
const stack = useEdgeStack({ lostAfterSeconds: LOST_AFTER_SECONDS, coordinatorEnv: clock.env });

describe('coordinator clock steps', () => {
  it('±60 s: no host Lost, nothing rescheduled, the Lease kept, and a change after the step converges', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', 'clock']);
    await s.kubectl(['apply', '-n', 'clock', '-f', '-'], {
      input: nginxWorkload({ name: 'tick', replicas: 3 }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com tick -n clock',
      '{.status.readyReplicas}',
      (v) => v === '3',
      180_000,
    );
    const names = async () =>
      (
        await s.kubectl(['get', 'instances', '-n', 'clock', '-o', 'jsonpath={.items[*].metadata.name}'])
      ).stdout
        .split(' ')
        .filter(Boolean)
        .sort();
    const lease = async () =>
      (
        await s.kubectl([
          'get',
          'lease',
          'edge-coordinator',
          '-n',
          'kube-system',
          '-o',
          'jsonpath={.spec.holderIdentity}/{.spec.leaseTransitions}',
        ])
      ).stdout;
    const before = await names();
    const leaseBefore = await lease();
    const seen = new Set<string>();
    const watch = async (seconds: number) => {
      for (let i = 0; i < seconds; i++) {
        const r = await s.kubectl(['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
        for (const state of r.stdout.split(' ').filter(Boolean)) seen.add(state);
        await sleep(1000);
      }
    };

    // Ahead by a minute, for longer than lostAfter.
    clock.step(60);
    await watch(LOST_AFTER_SECONDS + 10);
    expect(await names()).toEqual(before);

    // Behind by a minute (a 120 s step back), and at once a change: it must not wait out the step.
    clock.step(-60);
    await s.kubectl(['scale', 'workload.compute.miloapis.com', 'tick', '-n', 'clock', '--replicas', '4']);
    const scaledAt = Date.now();
    await s.waitForJsonPath(
      'workload.compute.miloapis.com tick -n clock',
      '{.status.readyReplicas}',
      (v) => v === '4',
      180_000,
    );
    const convergedMs = Date.now() - scaledAt;
    await watch(LOST_AFTER_SECONDS + 5);
    const after = await names();
    const events = await s.kubectl(['get', 'events', '-A', '-o', 'jsonpath={.items[*].reason}']);
    console.log(
      `coordinator clock +60 s then -60 s: host states seen ${[...seen].join(',')}; ` +
        `scale 3→4 just after the step back ready in ${(convergedMs / 1000).toFixed(1)} s; ` +
        `lease ${leaseBefore} → ${await lease()}`,
    );
    reportFigures({
      scenario: 'pause/coordinator-clock-60s',
      passed: !seen.has('Lost') && !events.stdout.includes('Rescheduled') && convergedMs < CONVERGE_MS,
      hostStates: [...seen].join(','),
      scaleUpAfterStepBackS: +(convergedMs / 1000).toFixed(1),
      leaseTransitions: Number(leaseBefore.split('/')[1]),
    });
    expect(events.stdout).not.toContain('HostLost');
    expect(events.stdout).not.toContain('Rescheduled');
    expect(seen.has('Lost')).toBe(false);
    expect(after).toHaveLength(4);
    for (const n of before) expect(after).toContain(n);
    expect(await lease()).toBe(leaseBefore);
    expect(convergedMs).toBeLessThan(CONVERGE_MS);
  }, 480_000);
});
