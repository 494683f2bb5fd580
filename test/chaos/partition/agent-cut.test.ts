/**
 * An agent cut off from NATS (issue 14, partitions): the real stack, every agent connected through its own fault
 * proxy. One host's link is cut twice — by reset (every connection and every new attempt answered with an RST)
 * and by blackhole (a half-open link: nothing passes, nothing closes) — for longer than `lostAfter`, then healed.
 *
 * What must hold, after Nomad's disconnected clients: the cut-off agent keeps its instances running (autonomy:
 * the same containers, never restarted), the coordinator replaces them when the host is Lost, and after healing
 * the stale copy on the returning host is gone within one reconcile of its reconnect, the replacement kept. No
 * instance on the other hosts restarts. Figures: time to Disconnected, to Lost, to a ready replacement, from
 * healing to the reconnect and to the stale copy gone (how long two copies ran).
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../deploy/stack/proc.js';
import { useEdgeStack } from '../../harness/edge.js';
import { runningContainers, watchFleet } from '../../harness/fleet-watch.js';
import { waitFor } from '../../harness/index.js';
import { nginxWorkload } from '../../harness/objects.js';
import { reportFigures } from '../figures.js';

const LOST_AFTER_SECONDS = 15;
/** The agent's resync period (agent/reconciler.ts): one reconcile. */
const RECONCILE_MS = 5000;
const stack = useEdgeStack({ lostAfterSeconds: LOST_AFTER_SECONDS, agentsThroughProxy: true });

interface InstanceItem {
  metadata: { name: string };
  spec: { host: string };
  status?: { ready?: boolean };
}

async function instances(): Promise<InstanceItem[]> {
  const r = await stack().kubectl(['get', 'instances', '-n', 'part', '-o', 'json']);
  return JSON.parse(r.stdout).items;
}

async function hostState(host: string): Promise<string> {
  const r = await stack().kubectl(['get', 'host', host, '-o', 'jsonpath={.status.state}'], {
    allowFail: true,
  });
  return r.stdout;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe('an agent cut off from NATS', () => {
  it.each([
    'reset',
    'blackhole',
  ] as const)('by %s: keeps its instances, is replaced at Lost, and its stale copy goes within one reconcile of healing', async (mode) => {
    const s = stack();
    if (mode === 'reset') {
      await s.kubectl(['create', 'namespace', 'part']);
      await s.kubectl(['apply', '-n', 'part', '-f', '-'], {
        input: nginxWorkload({ name: 'cut', replicas: 3 }),
      });
    }
    await s.waitForJsonPath(
      'workload.compute.miloapis.com cut -n part',
      '{.status.readyReplicas}',
      (v) => v === '3',
      180_000,
    );
    await s.waitForJsonPath('hosts', '{.items[*].status.state}', (v) =>
      v.split(' ').every((x) => x === 'Ready'),
    );
    const before = await instances();
    const victim = s.hosts.find((h) => before.some((i) => i.spec.host === h))!;
    const others = s.hosts.filter((h) => h !== victim);
    const victimContainers = await runningContainers(victim);
    expect(victimContainers.length).toBeGreaterThan(0);
    const otherContainers = new Map<string, string[]>();
    for (const h of others) otherContainers.set(h, await runningContainers(h));
    const fleet = await watchFleet(s.nats.url);
    await waitFor('a report of every host', () => s.hosts.every((h) => fleet.hosts.has(h)), {
      timeoutMs: 30_000,
    });

    const proxy = s.agentProxies.get(victim)!;
    const cutAt = Date.now();
    if (mode === 'reset') {
      proxy.refuse(true);
      proxy.reset();
    } else proxy.set('both', { mode: 'blackhole' });

    // Until the replacement is ready: the victim's containers run on untouched (autonomy).
    let disconnectedMs: number | undefined;
    let lostMs: number | undefined;
    let replacedMs: number | undefined;
    while (replacedMs === undefined) {
      const elapsed = Date.now() - cutAt;
      if (elapsed > 180_000) throw new Error(`no replacement after ${secs(elapsed)}`);
      const state = await hostState(victim);
      if (disconnectedMs === undefined && state === 'Disconnected') disconnectedMs = elapsed;
      if (lostMs === undefined && state === 'Lost') lostMs = elapsed;
      expect(await runningContainers(victim)).toEqual(victimContainers);
      const now = await instances();
      if (
        lostMs !== undefined &&
        now.length === 3 &&
        now.every((i) => i.spec.host !== victim && i.status?.ready === true)
      )
        replacedMs = Date.now() - cutAt;
      await sleep(1000);
    }
    const silenceAtLostMs = fleet.maxGapMs(victim);
    expect(lostMs).toBeDefined();
    expect(lostMs!).toBeGreaterThanOrEqual(LOST_AFTER_SECONDS * 1000);
    expect(await runningContainers(victim)).toEqual(victimContainers);
    const replaced = await instances();

    // Healed: the agent reconnects, learns its instance went elsewhere, and removes the stale copy.
    proxy.heal();
    const healedAt = Date.now();
    const reportsBefore = fleet.hosts.get(victim)?.lastAt ?? 0;
    await waitFor(
      'the victim reporting again',
      () => (fleet.hosts.get(victim)?.lastAt ?? 0) > reportsBefore,
      {
        timeoutMs: 90_000,
        intervalMs: 100,
      },
    );
    const reconnectedMs = Date.now() - healedAt;
    await waitFor('the stale copy removed', async () => (await runningContainers(victim)).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    const staleGoneMs = Date.now() - healedAt;
    const duplicateMs = Date.now() - cutAt - replacedMs;
    await s.waitForJsonPath(`host ${victim}`, '{.status.state}', (v) => v === 'Ready', 60_000);
    reportFigures({
      scenario: `partition/agent-${mode}`,
      passed: staleGoneMs - reconnectedMs < RECONCILE_MS + 10_000,
      lostAfterS: LOST_AFTER_SECONDS,
      disconnectedS: +((disconnectedMs ?? Number.NaN) / 1000).toFixed(1),
      lostS: +(lostMs! / 1000).toFixed(1),
      silenceAtLostS: +(silenceAtLostMs / 1000).toFixed(1),
      replacedS: +(replacedMs / 1000).toFixed(1),
      reportingAgainAfterHealS: +(reconnectedMs / 1000).toFixed(1),
      staleGoneAfterHealS: +(staleGoneMs / 1000).toFixed(1),
      twoCopiesS: +(duplicateMs / 1000).toFixed(1),
    });
    console.log(
      `agent cut by ${mode} (lostAfter ${LOST_AFTER_SECONDS} s): Disconnected after ${secs(disconnectedMs ?? Number.NaN)}, ` +
        `Lost after ${secs(lostMs!)} (silence seen on NATS ${secs(silenceAtLostMs)}), replacement ready after ${secs(replacedMs)}; ` +
        `healed: reporting again after ${secs(reconnectedMs)}, stale copy gone after ${secs(staleGoneMs)} ` +
        `(${secs(staleGoneMs - reconnectedMs)} after the reconnect; two copies for ${secs(duplicateMs)})`,
    );
    // One reconcile (plus the report that shows it) after the agent is back.
    expect(staleGoneMs - reconnectedMs).toBeLessThan(RECONCILE_MS + 10_000);
    // The replacement is kept, and nothing on the other hosts restarted but for the new replacement.
    expect((await instances()).map((i) => `${i.metadata.name}@${i.spec.host}`).sort()).toEqual(
      replaced.map((i) => `${i.metadata.name}@${i.spec.host}`).sort(),
    );
    for (const h of others) {
      const now = await runningContainers(h);
      for (const id of otherContainers.get(h)!) expect(now).toContain(id);
    }
    await s.waitForJsonPath(
      'workload.compute.miloapis.com cut -n part',
      '{.status.readyReplicas}',
      (v) => v === '3',
    );
  }, 420_000);
});
