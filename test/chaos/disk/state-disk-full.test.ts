/**
 * Chaos, disk: the agent's state directory on a small tmpfs the test owns, filled up while the agent runs a
 * two-container instance (emptyDir in the state dir) and a one-container instance with a liveness probe. While
 * full: a workload is added, a liveness probe fails, the agent is SIGKILLed and started again (NATS away at first,
 * so it has only its stale copy on disk). Checked: the agent
 * keeps running (and starts again) on a full disk; no state file is torn (the intents copy always parses); the
 * host reports `DiskPressure` True naming the file and the error; the added workload runs (from NATS, in memory);
 * the failed liveness probe still restarts its container; nothing else is restarted or removed. Once the filler
 * is removed: DiskPressure False, the intents copy current again, removals work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureDocker } from '../../../deploy/stack/index.js';
import { sleep } from '../../../deploy/stack/proc.js';
import type { InstanceTemplateSpec } from '../../../shared/api/template.js';
import type { HostReport } from '../../../shared/nats/messages.js';
import { startDedicatedDockerd } from '../../harness/dockerd.js';
import { cleanup, useNats, waitFor } from '../../harness/index.js';
import { agentWorld, leaks } from '../agent-world.js';
import { reportFigures } from '../figures.js';
import { mountSmallFs } from './small-fs.js';

const nats = useNats();

const PAIR: InstanceTemplateSpec = {
  containers: [
    {
      name: 'app',
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      volumeMounts: [{ name: 's', mountPath: '/s' }],
    },
    {
      name: 'side',
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      volumeMounts: [{ name: 's', mountPath: '/s' }],
    },
  ],
  volumes: [{ name: 's', emptyDir: {} }],
};
/** Healthy until /tmp/sick exists; a (re)start clears it. */
const PROBED: InstanceTemplateSpec = {
  image: BUSYBOX_IMAGE,
  command: ['sh', '-c', 'rm -f /tmp/sick; exec sleep 3600'],
  livenessProbe: {
    exec: { command: ['sh', '-c', 'test ! -e /tmp/sick'] },
    periodSeconds: 1,
    failureThreshold: 2,
  },
};
const SLEEPER: InstanceTemplateSpec = { image: BUSYBOX_IMAGE, command: ['sleep', '3600'] };

const diskPressure = (r: HostReport | undefined) => r?.conditions?.find((c) => c.type === 'DiskPressure');

describe('chaos: the agent state disk full', () => {
  it('keeps running, tears nothing, says DiskPressure, restarts and removes nothing blind, recovers', async () => {
    await ensureDocker();
    const dockerd = await startDedicatedDockerd({ images: [BUSYBOX_IMAGE] });
    const disk = mountSmallFs(16);
    cleanup(() => disk.unmount());
    const w = await agentWorld({ nats: nats(), dockerd, stateDir: path.join(disk.dir, 'state') });
    await w.put('pair', PAIR);
    await w.put('probed', PROBED);
    w.start();
    const running = (names: string[]) => {
      const r = w.reports.at(-1);
      return names.every((n) => r?.instances.find((i) => i.name === w.instance(n))?.phase === 'Running');
    };
    await waitFor('instances running', () => running(['pair', 'probed']), { timeoutMs: 120_000 });
    const intentsFile = path.join(w.stateDir, 'intents.json');
    const before = new Map((await w.containers()).map((c) => [c.id, c]));
    expect(before.size).toBe(3);

    // Full.
    const t0 = Date.now();
    const filled = disk.fill();
    expect(disk.freeBytes()).toBe(0);
    await w.put('added', SLEEPER);
    const pressure = await waitFor(
      'DiskPressure reported',
      () => {
        const c = diskPressure(w.reports.at(-1));
        return c?.status === 'True' ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const toConditionMs = Date.now() - t0;
    expect(pressure.message).toMatch(/intents\.json.*(ENOSPC|no space left)/);
    await waitFor('the added workload runs from memory', () => running(['added']), { timeoutMs: 120_000 });

    // A liveness probe fails while the disk is full: its container is restarted all the same.
    const probed = [...before.values()].find((c) => c.instance === w.instance('probed'))!;
    await dockerd.docker(['exec', probed.id, 'touch', '/tmp/sick']);
    const restarted = await waitFor(
      'the failing container restarted',
      async () => (await w.containers()).find((c) => c.id === probed.id && c.startedAt !== probed.startedAt),
      { timeoutMs: 90_000, intervalMs: 500 },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; log: ${JSON.stringify(w.logLines(/liveness|restart/).map((l) => l.line))}`,
      );
    });

    // SIGKILLed and started again while full — first with NATS away, so that its first passes have only the copy
    // on disk, which the full disk kept at a revision without 'added': it must not remove 'added' on its strength.
    await w.agent().kill();
    expect(() => JSON.parse(fs.readFileSync(intentsFile, 'utf8'))).not.toThrow();
    const addedBefore = (await w.containers()).find((c) => c.instance === w.instance('added'))!;
    await nats().stop();
    w.start();
    await waitFor(
      'resumed from the stale copy',
      () => w.logLines(/^resumed intents from disk$/).length >= 1,
      {
        timeoutMs: 60_000,
      },
    );
    await sleep(8000);
    const addedOffline = (await w.containers()).find((c) => c.instance === w.instance('added'));
    expect(addedOffline?.id).toBe(addedBefore.id);
    expect(addedOffline?.running).toBe(true);
    const seen = w.reports.length;
    await nats().restart();
    await waitFor(
      'reporting again while full',
      () => w.reports.length > seen && running(['pair', 'probed', 'added']),
      {
        timeoutMs: 120_000,
      },
    );
    await waitFor(
      'DiskPressure again after the restart',
      () => diskPressure(w.reports.at(-1))?.status === 'True',
      {
        timeoutMs: 60_000,
      },
    );
    expect(w.agent().exit).toBeUndefined();
    const removals = w.logLines(/^removing instance/).length;
    const steady = (await w.containers()).filter((c) => before.has(c.id));
    expect(steady.map((c) => c.id).sort()).toEqual([...before.keys()].sort());
    // Started by the agent: only 'added'; the probed container's own restart is Docker's, in place.
    const starts = w.logLines(/^starting instance$/).map((l) => String(l.line.instance));
    expect(starts.filter((i) => !i.endsWith(w.instance('added'))).length).toBe(2);

    // Space again: the condition clears, the copy is written again, and removals work.
    const t1 = Date.now();
    disk.release();
    await waitFor('DiskPressure False', () => diskPressure(w.reports.at(-1))?.status === 'False', {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    const recoverMs = Date.now() - t1;
    const copy = JSON.parse(fs.readFileSync(intentsFile, 'utf8')) as { intents: Record<string, unknown> };
    expect(Object.keys(copy.intents).some((k) => k.endsWith('.added'))).toBe(true);
    await w.remove('added');
    await waitFor(
      'the added workload removed',
      () => !w.reports.at(-1)?.instances.some((i) => i.name === w.instance('added')),
      {
        timeoutMs: 60_000,
      },
    );
    const l = await leaks(w, dockerd, { [w.instance('pair')]: 2, [w.instance('probed')]: 1 });
    expect(l).toEqual({ orphans: [], duplicates: [], missing: [], strayProcesses: [] });
    reportFigures({
      scenario: 'disk/state-disk-full',
      passed: true,
      fsMiB: 16,
      filledBytes: filled,
      toDiskPressureMs: toConditionMs,
      diskPressureMessage: pressure.message ?? '',
      livenessRestartWhileFull: restarted ? 'yes' : 'no',
      removalsWhileFull: removals,
      agentRestartedWhileFull: 'came back, adopted all',
      releaseToDiskPressureFalseMs: recoverMs,
      leaked: JSON.stringify(l),
    });
    expect(removals).toBe(0);
  }, 900_000);
});
