/**
 * The coordinator alone cut off from NATS (issue 14, "mass loss from the coordinator's own faults"): the real
 * stack with a fault proxy between the coordinator and NATS; the link is blackholed (half-open: nothing passes,
 * nothing closes) for longer than `lostAfter`, then healed. The hosts kept reporting to NATS all along, so no
 * host may go Lost and no instance may be replaced: the coordinator notices its dead link by its pings, makes no
 * verdict while it is down, and counts silence afresh once it is back.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../deploy/stack/proc.js';
import { useEdgeStack } from '../harness/edge.js';
import { waitFor } from '../harness/index.js';
import { nginxWorkload } from '../harness/objects.js';

const LOST_AFTER_SECONDS = 20;
const CUT_SECONDS = 35;
const stack = useEdgeStack({
  lostAfterSeconds: LOST_AFTER_SECONDS,
  coordinatorArgs: ['--lease-duration', '120'],
  coordinatorThroughProxy: true,
});

describe('coordinator cut off from NATS', () => {
  it('declares no host Lost and replaces no instance when the link heals', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', 'cut']);
    await s.kubectl(['apply', '-n', 'cut', '-f', '-'], {
      input: nginxWorkload({ name: 'steady', replicas: 3 }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com steady -n cut',
      '{.status.readyReplicas}',
      (v) => v === '3',
      120_000,
    );
    const names = async () =>
      (await s.kubectl(['get', 'instances', '-n', 'cut', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout
        .split(' ')
        .filter(Boolean)
        .sort();
    const before = await names();
    expect(before).toHaveLength(3);

    const logText = () => fs.readFileSync(s.coordinator.logFile, 'utf8');
    s.coordinatorProxy!.set('both', { mode: 'blackhole' });
    const cutAt = Date.now();
    const seen = new Set<string>();
    let noticedMs: number | undefined;
    while (Date.now() - cutAt < CUT_SECONDS * 1000) {
      const r = await s.kubectl(['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
      for (const state of r.stdout.split(' ').filter(Boolean)) seen.add(state);
      if (noticedMs === undefined && logText().includes('coordinator disconnected from NATS'))
        noticedMs = Date.now() - cutAt;
      await sleep(1000);
    }
    s.coordinatorProxy!.heal();
    const healedAt = Date.now();
    await waitFor('the coordinator back on NATS', () => logText().includes('reconnected to NATS'), {
      timeoutMs: 60_000,
    });
    const backMs = Date.now() - healedAt;
    // Watch for longer than lostAfter after the reconnect.
    for (let i = 0; i < LOST_AFTER_SECONDS + 5; i++) {
      const r = await s.kubectl(['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
      for (const state of r.stdout.split(' ').filter(Boolean)) seen.add(state);
      await sleep(1000);
    }
    console.log(
      `coordinator cut ${CUT_SECONDS} s: dead link noticed after ${((noticedMs ?? Number.NaN) / 1000).toFixed(1)} s, ` +
        `reconnected ${(backMs / 1000).toFixed(1)} s after healing; host states seen ${[...seen].join(',')}`,
    );
    const events = await s.kubectl(['get', 'events', '-A', '-o', 'jsonpath={.items[*].reason}']);
    expect(noticedMs).toBeDefined();
    expect(events.stdout).not.toContain('HostLost');
    expect(events.stdout).not.toContain('Rescheduled');
    expect(seen.has('Lost')).toBe(false);
    expect(await names()).toEqual(before);
    await s.waitForJsonPath('hosts', '{.items[*].status.state}', (v) =>
      v.split(' ').every((x) => x === 'Ready'),
    );
  }, 420_000);
});
