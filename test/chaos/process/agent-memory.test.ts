/**
 * Chaos, memory: the agent born inside a memory cgroup of the test's own (process/memory-cgroup.ts), with its
 * instances on a dedicated dockerd (containers belong to dockerd, not to the agent's cgroup, as under systemd).
 * 1. Tight: the limit lowered to the agent's idle usage plus 4 MiB while workloads come and go; the agent
 *    either keeps running and converges, or is OOM-killed — then it is started again (as systemd's Restart=always
 *    would) and must converge from there.
 * 2. Short: started in a cgroup far below what it needs, again and again: each start is OOM-killed.
 * Checked after each: the instances that were running are the very same containers (no restart, no removal), no
 * copy, no orphan, no stray runsc process; the intents copy parses; the cgroups are removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureDocker } from '../../../deploy/stack/index.js';
import { sleep } from '../../../deploy/stack/proc.js';
import type { InstanceTemplateSpec } from '../../../shared/api/template.js';
import { startDedicatedDockerd } from '../../harness/dockerd.js';
import { cleanup, useNats, waitFor } from '../../harness/index.js';
import { agentWorld, leaks } from '../agent-world.js';
import { reportFigures } from '../figures.js';
import { chaosLevel } from '../settings.js';
import { createMemoryCgroup } from './memory-cgroup.js';

const nats = useNats();
const MiB = 1024 * 1024;

const SLEEPER: InstanceTemplateSpec = { image: BUSYBOX_IMAGE, command: ['sleep', '3600'] };
const PAIR: InstanceTemplateSpec = {
  containers: [
    { name: 'app', image: BUSYBOX_IMAGE, command: ['sleep', '3600'] },
    { name: 'side', image: BUSYBOX_IMAGE, command: ['sleep', '3600'] },
  ],
};

describe('chaos: the agent short of memory', () => {
  it('a tight limit: runs on or is OOM-killed and restarts cleanly; far too little: killed at every start, instances untouched', async () => {
    await ensureDocker();
    const dockerd = await startDedicatedDockerd({ images: [BUSYBOX_IMAGE] });
    const w = await agentWorld({ nats: nats(), dockerd });
    const cgroups: Array<ReturnType<typeof createMemoryCgroup>> = [];
    cleanup(async () => {
      try {
        await w.agent().stop();
      } catch {
        // never started
      }
      for (const cg of cgroups) cg.remove();
    });
    const cgroup = (limit: number) => {
      const cg = createMemoryCgroup(limit);
      cgroups.push(cg);
      return cg;
    };
    const steady = [w.instance('pair'), w.instance('single')];
    const wanted = (extra: string[] = []) =>
      Object.fromEntries([[steady[0]!, 2], [steady[1]!, 1], ...extra.map((e) => [e, 1])]) as Record<
        string,
        number
      >;
    const converged = async (what: string, extra: string[] = []) => {
      let last: unknown;
      await waitFor(
        what,
        async () => {
          const l = await leaks(w, dockerd, wanted(extra));
          last = l;
          return l.orphans.length + l.duplicates.length + l.missing.length + l.strayProcesses.length === 0;
        },
        { timeoutMs: 180_000, intervalMs: 500 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; leaks: ${JSON.stringify(last)}`);
      });
    };
    await w.put('pair', PAIR);
    await w.put('single', SLEEPER);

    // Roomy first: what the agent uses here.
    const roomy = cgroup(512 * MiB);
    w.start([], { execWrapper: roomy.execWrapper() });
    await converged('instances running');
    expect(roomy.pids()).toEqual([w.agent().pid]);
    await sleep(5_000);
    const idleBytes = roomy.stats().usageBytes;
    const before = new Map((await w.containers()).map((c) => [c.id, c.startedAt]));

    // 1. Tight: idle usage + 4 MiB, while workloads come and go.
    const tightBytes = idleBytes + 4 * MiB;
    let limitRefused = '';
    try {
      roomy.setLimit(tightBytes);
    } catch (err) {
      limitRefused = (err as Error).message;
    }
    const rounds = chaosLevel({ test: 2, chaos: 10 });
    let oomKilledInChurn = false;
    for (let i = 0; i < rounds && !w.agent().exit; i++) {
      const n = `churn${i}`;
      await w.put(n, SLEEPER);
      await waitFor(
        `${n} running (or the agent killed)`,
        async () =>
          Boolean(w.agent().exit) ||
          (await w.containers()).some((c) => c.instance === w.instance(n) && c.running),
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      await w.remove(n);
      await waitFor(
        `${n} removed (or the agent killed)`,
        async () =>
          Boolean(w.agent().exit) || !(await w.containers()).some((c) => c.instance === w.instance(n)),
        { timeoutMs: 180_000, intervalMs: 500 },
      );
    }
    const tight = roomy.stats();
    const exit = w.agent().exit;
    if (exit) {
      oomKilledInChurn = true;
      expect(exit.signal).toBe('SIGKILL');
      expect(tight.oomKills).toBeGreaterThan(0);
      // As systemd would: started again (without the limit), it converges from wherever the kill left it.
      for (let i = 0; i < rounds; i++) await w.remove(`churn${i}`);
      w.start();
    }
    await converged(oomKilledInChurn ? 'converged after the OOM kill' : 'converged under the tight limit');
    await w.agent().stop();

    // 2. Far too little: every start is killed; the instances run on, untouched.
    const starts = chaosLevel({ test: 1, chaos: 5 });
    const short = cgroup(24 * MiB);
    const shortExits: string[] = [];
    for (let i = 0; i < starts; i++) {
      const p = w.start([], { execWrapper: short.execWrapper() });
      await waitFor('the starved agent ended', () => p.exit, { timeoutMs: 180_000, intervalMs: 250 });
      shortExits.push(`${p.exit!.signal ?? p.exit!.code}`);
    }
    const starved = short.stats();
    await converged('instances untouched while the agent could not start');
    expect(() => JSON.parse(fs.readFileSync(path.join(w.stateDir, 'intents.json'), 'utf8'))).not.toThrow();
    // Enough memory again: it adopts everything, restarts nothing.
    w.start();
    await waitFor(
      'reporting after the starved starts',
      () => steady.every((n) => w.reports.at(-1)?.instances.find((i) => i.name === n)?.phase === 'Running'),
      { timeoutMs: 120_000 },
    );
    await converged('converged after the starved starts');
    const after = new Map((await w.containers()).map((c) => [c.id, c.startedAt]));
    for (const cg of cgroups) cg.remove();
    const cgroupsLeft = cgroups.filter((cg) => fs.existsSync(cg.dir)).length;
    reportFigures({
      scenario: 'process/agent-memory',
      passed: true,
      idleUsageMiB: Math.round(idleBytes / MiB),
      tightLimitMiB: Math.round(tightBytes / MiB),
      tightLimitRefused: limitRefused,
      churnRounds: rounds,
      tightOutcome: oomKilledInChurn ? 'OOM-killed, restarted, converged' : 'ran on, converged',
      tightMaxUsageMiB: Math.round(tight.maxUsageBytes / MiB),
      tightLimitHits: tight.limitHits,
      tightOomKills: tight.oomKills,
      shortLimitMiB: 24,
      shortStarts: starts,
      shortExits: shortExits.join(' '),
      shortOomKills: starved.oomKills,
      instancesRestarted: [...before].filter(([id, at]) => after.get(id) !== at).length,
      cgroupsLeft,
    });
    expect([...before].filter(([id, at]) => after.get(id) !== at)).toEqual([]);
    expect(shortExits.every((e) => e === 'SIGKILL')).toBe(true);
    expect(cgroupsLeft).toBe(0);
  }, 1_200_000);
});
