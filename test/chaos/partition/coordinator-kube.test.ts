/**
 * The coordinator alone cut off from kube-apiserver (issue 14, partitions): the real stack, the coordinator's
 * kubeconfig pointing at a fault proxy (kubectl and the agents go direct). The link is blackholed — nothing passes,
 * nothing closes, so only the coordinator's own deadlines can tell — for longer than its Lease, then healed.
 *
 * What must hold, after client-go's leader election: the leader that cannot renew steps down within its renew
 * deadline (a leader that keeps acting on a Lease it can no longer prove is how two leaders happen), it takes the
 * Lease again once the link heals and acts again (a change made then converges), and nothing moves: its hosts
 * kept reporting on NATS, so no host is Lost, nothing is rescheduled, the instances are the same ones.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../deploy/stack/proc.js';
import { useEdgeStack } from '../../harness/edge.js';
import { runningContainers } from '../../harness/fleet-watch.js';
import { waitFor } from '../../harness/index.js';
import { nginxWorkload } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';

const LOST_AFTER_SECONDS = 20;
/** The Lease (15 s), renew deadline (10 s) and retry period (2 s) are the coordinator's defaults (client-go's). */
const LEASE_SECONDS = 15;
const CUT_SECONDS = 45;
const stack = useEdgeStack({ lostAfterSeconds: LOST_AFTER_SECONDS, kubeThroughProxy: true });

/** The coordinator's log lines (JSON) with their `msg`, from `from` on (a byte offset). */
function logMessages(file: string, from = 0): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '');
}

describe('coordinator cut off from kube-apiserver', () => {
  it('steps down within its renew deadline, leads again after healing, and nothing moves', async () => {
    const s = stack();
    await s.kubectl(['create', 'namespace', 'kcut']);
    await s.kubectl(['apply', '-n', 'kcut', '-f', '-'], {
      input: nginxWorkload({ name: 'still', replicas: 3 }),
    });
    await s.waitForJsonPath(
      'workload.compute.miloapis.com still -n kcut',
      '{.status.readyReplicas}',
      (v) => v === '3',
      180_000,
    );
    const names = async () =>
      (await s.kubectl(['get', 'instances', '-n', 'kcut', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout
        .split(' ')
        .filter(Boolean)
        .sort();
    const before = await names();
    const containers = new Map<string, string[]>();
    for (const h of s.hosts) containers.set(h, await runningContainers(h));
    const log = s.coordinator.logFile;
    const offset = fs.statSync(log).size;

    s.kubeProxy!.set('both', { mode: 'blackhole' });
    const cutAt = Date.now();
    let steppedDownMs: number | undefined;
    while (Date.now() - cutAt < CUT_SECONDS * 1000) {
      if (steppedDownMs === undefined && logMessages(log, offset).some((m) => m.startsWith('lost the lease')))
        steppedDownMs = Date.now() - cutAt;
      await sleep(500);
    }
    s.kubeProxy!.heal();
    const healedAt = Date.now();
    await waitFor(
      'the coordinator leading again',
      () => logMessages(log, offset).filter((m) => m === 'became leader').length > 0,
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const leadingMs = Date.now() - healedAt;
    // It acts again: a scale-up made now converges.
    await s.kubectl(['scale', 'workload.compute.miloapis.com', 'still', '-n', 'kcut', '--replicas', '4']);
    const scaledAt = Date.now();
    await s.waitForJsonPath(
      'workload.compute.miloapis.com still -n kcut',
      '{.status.readyReplicas}',
      (v) => v === '4',
      120_000,
    );
    const convergedMs = Date.now() - scaledAt;
    // Watch for longer than lostAfter after it leads again.
    const seen = new Set<string>();
    for (let i = 0; i < LOST_AFTER_SECONDS + 5; i++) {
      const r = await s.kubectl(['get', 'hosts', '-o', 'jsonpath={.items[*].status.state}']);
      for (const state of r.stdout.split(' ').filter(Boolean)) seen.add(state);
      await sleep(1000);
    }
    const events = await s.kubectl(['get', 'events', '-A', '-o', 'jsonpath={.items[*].reason}']);
    console.log(
      `coordinator cut from kube-apiserver ${CUT_SECONDS} s (Lease ${LEASE_SECONDS} s): stepped down after ` +
        `${((steppedDownMs ?? Number.NaN) / 1000).toFixed(1)} s; leading again ${(leadingMs / 1000).toFixed(1)} s ` +
        `after healing; a scale-up then converged in ${(convergedMs / 1000).toFixed(1)} s; host states seen ${[...seen].join(',')}`,
    );
    reportFigures({
      scenario: 'partition/coordinator-kube',
      passed:
        steppedDownMs !== undefined &&
        !events.stdout.includes('HostLost') &&
        !events.stdout.includes('Rescheduled'),
      cutS: CUT_SECONDS,
      leaseS: LEASE_SECONDS,
      steppedDownS: +((steppedDownMs ?? Number.NaN) / 1000).toFixed(1),
      leadingAgainAfterHealS: +(leadingMs / 1000).toFixed(1),
      scaleUpConvergedS: +(convergedMs / 1000).toFixed(1),
      hostStates: [...seen].join(','),
    });
    // Within the cut (45 s; expected: a retry period + the renew deadline = 12 s); before, never.
    expect(steppedDownMs).toBeDefined();
    expect(events.stdout).not.toContain('HostLost');
    expect(events.stdout).not.toContain('Rescheduled');
    expect(seen.has('Lost')).toBe(false);
    const after = await names();
    expect(after).toHaveLength(4);
    for (const n of before) expect(after).toContain(n);
    // No instance restarted: every container that ran before still runs.
    for (const h of s.hosts) {
      const now = await runningContainers(h);
      for (const id of containers.get(h)!) expect(now).toContain(id);
    }
  }, 600_000);
});
