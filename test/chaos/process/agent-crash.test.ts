/**
 * Chaos, agent crashes: the agent SIGKILLed at seeded random moments while it creates a two-container instance
 * (volumes, image step, first container, sidecar), started again, and checked: exactly one copy of the instance
 * (two containers, both running), no orphans (containers of other instances, runsc sandboxes or shims without a
 * running container, instance directories of instances that do not exist). Then its state files corrupted while
 * it is down (the intents copy, the seal key): it says so, and removes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureDocker } from '../../../deploy/stack/index.js';
import { sleep } from '../../../deploy/stack/proc.js';
import type { InstanceTemplateSpec } from '../../../shared/api/template.js';
import { startDedicatedDockerd } from '../../harness/dockerd.js';
import { useNats, waitFor } from '../../harness/index.js';
import { type AgentWorld, agentWorld, leaks } from '../agent-world.js';
import { reportFigures } from '../figures.js';
import { seededRandom } from '../random.js';
import { chaosLevel } from '../settings.js';
import { killLoop } from './kill-loop.js';

const nats = useNats();

const PAIR: InstanceTemplateSpec = {
  containers: [
    {
      name: 'app',
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      volumeMounts: [{ name: 'scratch', mountPath: '/s' }],
    },
    {
      name: 'sidecar',
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      volumeMounts: [{ name: 'scratch', mountPath: '/s' }],
    },
  ],
  volumes: [{ name: 'scratch', emptyDir: {} }],
};

/** Instance directories (emptyDir volumes, configMap files) under the agent's state dir. */
const instanceDirs = (w: AgentWorld) => {
  const dir = path.join(w.stateDir, 'instances');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
};

describe('chaos: the agent killed mid-create, and its state files corrupted', () => {
  it('kill -9 at random moments of a two-container create: one copy, no orphans', async () => {
    await ensureDocker();
    const dockerd = await startDedicatedDockerd({ images: [BUSYBOX_IMAGE] });
    const w = await agentWorld({ nats: nats(), dockerd });
    const rng = seededRandom(Number(process.env.EDGE_CHAOS_SEED ?? 14));
    const runs = chaosLevel({ test: 3, chaos: 10 });
    // A first create, uninterrupted, says how long one takes here: kill points are drawn within it.
    w.start();
    await waitFor('agent reporting', () => w.reports.length > 0, { timeoutMs: 120_000 });
    const t0 = Date.now();
    await w.put('warm', PAIR);
    await waitFor(
      'warm-up instance running',
      async () => (await w.containers()).filter((c) => c.running).length === 2,
      {
        timeoutMs: 120_000,
        intervalMs: 50,
      },
    );
    const createMs = Date.now() - t0;
    await w.remove('warm');
    await waitFor('warm-up instance removed', async () => (await w.containers()).length === 0, {
      timeoutMs: 60_000,
    });
    const loop = await killLoop(
      w,
      {
        begin: (i) => w.put(`pair${i}`, PAIR),
        // How far it got: containers of this instance when it died.
        progress: async (i) =>
          String((await w.containers()).filter((c) => c.instance === w.instance(`pair${i}`)).length),
        problems: async (i) => {
          const l = await leaks(w, dockerd, { [w.instance(`pair${i}`)]: 2 });
          const dirs = instanceDirs(w);
          return [
            ...l.orphans,
            ...l.duplicates,
            ...l.missing,
            ...l.strayProcesses,
            ...(dirs.join() === `ns_${w.instance(`pair${i}`)}` ? [] : [`instance dirs: ${dirs.join(' ')}`]),
          ];
        },
        // Withdrawn: everything of it goes, directories and scratch volumes included.
        end: async (i) => {
          await w.remove(`pair${i}`);
          await waitFor(
            `run ${i}: removed`,
            async () => (await w.containers()).length === 0 && !instanceDirs(w).length,
            { timeoutMs: 60_000 },
          );
        },
      },
      { runs, rng, windowMs: createMs },
    );
    const l = await leaks(w, dockerd, {});
    const volumes = (await dockerd.docker(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    reportFigures({
      scenario: 'process/agent-kill-mid-create',
      passed: true,
      runs,
      createMs,
      killedAtMs: loop.killedAtMs.join(' '),
      containersAtKill: loop.progress.join(' '),
      settledMaxMs: Math.max(...loop.settledMs),
      orphans: l.orphans.length,
      strayProcesses: l.strayProcesses.length,
      volumesLeft: volumes.length,
    });
    expect(l).toEqual({ orphans: [], duplicates: [], missing: [], strayProcesses: [] });
    expect(volumes).toEqual([]);
  }, 1_800_000);

  it('corrupted state files: said loudly, nothing removed, nothing started twice', async () => {
    await ensureDocker();
    const dockerd = await startDedicatedDockerd({ images: [BUSYBOX_IMAGE] });
    const w = await agentWorld({ nats: nats(), dockerd });
    await w.put('keep', PAIR);
    w.start();
    await waitFor(
      'instance running',
      async () => (await w.containers()).filter((c) => c.running).length === 2,
      {
        timeoutMs: 120_000,
      },
    );
    const before = (await w.containers()).map((c) => c.id).sort();
    await w.agent().kill();

    // The intents copy torn (a crash of an old agent, a full disk): the agent says so and follows NATS.
    const intentsFile = path.join(w.stateDir, 'intents.json');
    const whole = fs.readFileSync(intentsFile);
    fs.writeFileSync(intentsFile, whole.subarray(0, Math.floor(whole.length / 2)));
    const seen = w.reports.length;
    w.start();
    await waitFor(
      'the torn intents copy reported',
      () => w.logLines(/intents copy on disk is unreadable/).length > 0,
      {
        timeoutMs: 60_000,
      },
    );
    await waitFor(
      'running again, from NATS',
      () => w.reports.slice(seen).at(-1)?.instances[0]?.phase === 'Running',
      {
        timeoutMs: 60_000,
      },
    );
    expect((await w.containers()).map((c) => c.id).sort()).toEqual(before);
    expect(JSON.parse(fs.readFileSync(intentsFile, 'utf8')).revision).toBeGreaterThan(0);
    await w.agent().kill();

    // The seal key torn: never replaced by a new key (values sealed to the old one would be lost silently);
    // the agent refuses to start, naming the file, and the instances keep running.
    const sealFile = path.join(w.stateDir, 'seal.nk');
    fs.writeFileSync(sealFile, 'SX');
    const broken = w.start();
    await waitFor('the agent refuses a torn seal key', () => broken.exit, { timeoutMs: 60_000 });
    expect(broken.exit?.code).not.toBe(0);
    expect(
      w
        .logLines(/failed to start/)
        .map((l) => String(l.line.msg))
        .join('\n'),
    ).toMatch(/seal\.nk/);
    await sleep(2000);
    expect(
      (await w.containers())
        .filter((c) => c.running)
        .map((c) => c.id)
        .sort(),
    ).toEqual(before);
    reportFigures({
      scenario: 'process/agent-corrupt-state',
      passed: true,
      intentsCopyTorn: 'loud, followed NATS, 0 restarts',
      sealKeyTorn: `refused to start (exit ${broken.exit?.code}), instances kept`,
    });
  }, 600_000);
});
