/**
 * A paused coordinator does not declare its hosts Lost (issue 14, "mass loss from the coordinator's own
 * faults"; Nomad #3840): the real stack, the coordinator SIGSTOPped for longer than `lostAfter` (but within its
 * Lease: a pause past the Lease is the fencing scenario, not this one), then SIGCONT. Its hosts kept reporting
 * all along, so no host may go Lost and no instance may be replaced. Before the fix the first check after the
 * pause saw every host silent past lostAfter and declared all of them Lost.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../deploy/stack/proc.js';
import { useEdgeStack } from '../harness/edge.js';
import { nginxWorkload } from '../harness/objects.js';

const LOST_AFTER_SECONDS = 10;
const PAUSE_SECONDS = 25;
const stack = useEdgeStack({
  lostAfterSeconds: LOST_AFTER_SECONDS,
  coordinatorArgs: ['--lease-duration', '120'],
});

describe('coordinator paused past lostAfter', () => {
  it('declares no host Lost and replaces no instance after SIGCONT', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', 'pause']);
    await s.kubectl(['apply', '-n', 'pause', '-f', '-'], {
      input: nginxWorkload({ name: 'steady', replicas: 3 }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com steady -n pause',
      '{.status.readyReplicas}',
      (v) => v === '3',
      120_000,
    );
    const names = async () =>
      (
        await s.kubectl(['get', 'instances', '-n', 'pause', '-o', 'jsonpath={.items[*].metadata.name}'])
      ).stdout
        .split(' ')
        .filter(Boolean)
        .sort();
    const before = await names();
    expect(before).toHaveLength(3);

    process.kill(s.coordinator.pid, 'SIGSTOP');
    try {
      await sleep(PAUSE_SECONDS * 1000);
    } finally {
      process.kill(s.coordinator.pid, 'SIGCONT');
    }
    // Watch for longer than lostAfter after the pause: states every second, no host ever Lost.
    const seen = new Set<string>();
    for (let i = 0; i < LOST_AFTER_SECONDS + 8; i++) {
      const r = await s.kubectl(['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
      for (const state of r.stdout.split(' ').filter(Boolean)) seen.add(state);
      await sleep(1000);
    }
    const events = await s.kubectl(['get', 'events', '-A', '-o', 'jsonpath={.items[*].reason}']);
    console.log(`after a ${PAUSE_SECONDS} s pause: host states seen ${[...seen].join(',')}`);
    expect(events.stdout).not.toContain('HostLost');
    expect(events.stdout).not.toContain('Rescheduled');
    expect(seen.has('Lost')).toBe(false);
    expect(await names()).toEqual(before);
  }, 300_000);
});
