/**
 * Chaos, agent crashes with VMs (QEMU under TCG; the test guest from a catalog served on 127.0.0.1): the agent
 * SIGKILLed at seeded random moments (test/chaos/random.ts, `EDGE_CHAOS_SEED`)
 * - of the image step: each run places a VM of a new catalog image whose initramfs downloads slowly (paced); the
 *   kill comes when a drawn share of it was sent, or up to 5 s after the download (qemu starting);
 * - of the VM boot: the image cached, kills land while qemu starts and while the guest boots.
 * After each restart: exactly one qemu for the instance and it is Running; a qemu that was already running when
 * the agent died is adopted (the same pid), never started again; no qemu or VM directory of another instance, no
 * partial download left in the image cache; after withdrawal, nothing at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../../../agent/images/catalog.js';
import { GUEST_READY_MARKER } from '../../../deploy/stack/index.js';
import { sleep } from '../../../deploy/stack/proc.js';
import { useNats, waitFor } from '../../harness/index.js';
import { GUEST_IMAGE, guestKernelCatalog, serveFiles, sha256 } from '../../harness/vm.js';
import { type AgentWorld, agentWorld, vmLeaks } from '../agent-world.js';
import { reportFigures } from '../figures.js';
import { seededRandom } from '../random.js';
import { chaosLevel } from '../settings.js';
import { killLoop } from './kill-loop.js';

const nats = useNats();
const VM_LIMITS = { cpuMillis: 1000, memoryBytes: 128 * 1024 * 1024 };
const seed = Number(process.env.EDGE_CHAOS_SEED ?? 14);
const runs = chaosLevel({ test: 3, chaos: 10 });

/** Problems of instance `name` now: leaks, and not Running. */
function vmProblems(w: AgentWorld, name: string, adoptPid?: number): string[] {
  const l = vmLeaks(w, [w.instance(name)]);
  const phase = w.reports.at(-1)?.instances.find((i) => i.name === w.instance(name))?.phase;
  const pids = w.vms().map((v) => v.pid);
  return [
    ...l.orphans,
    ...l.duplicates,
    ...l.missing.map((m) => `no qemu in ${m}`),
    ...l.strayDirs.map((d) => `stray VM dir ${d}`),
    ...l.partials.map((p) => `partial download ${p}`),
    ...(phase === 'Running' ? [] : [`phase ${phase}`]),
    ...(adoptPid && !pids.includes(adoptPid)
      ? [`qemu ${adoptPid} (running at the kill) replaced by ${pids}`]
      : []),
  ];
}

/** Withdraws `name` and waits until no qemu, VM directory or partial download is left. */
async function withdraw(w: AgentWorld, name: string): Promise<void> {
  await w.remove(name);
  await waitFor(
    `${name} removed`,
    () => {
      const l = vmLeaks(w, []);
      return w.vms().length === 0 && !l.strayDirs.length && !l.partials.length;
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
}

/** The qemu pid file of `name`'s VM directory, when that qemu runs. */
function runningPid(w: AgentWorld, name: string): number | undefined {
  try {
    const pid = Number(
      fs.readFileSync(path.join(w.stateDir, 'vms', `ns_${w.instance(name)}`, 'qemu.pid'), 'utf8'),
    );
    return w.vms().some((v) => v.pid === pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

describe('chaos: the agent killed mid VM image step and mid VM boot', () => {
  it('kill -9 at random moments of the image step: one VM, no partial download, nothing leaked', async () => {
    const g = await guestKernelCatalog();
    // One image per run (and two for the warm-ups): the guest's initramfs with zero padding (which the kernel
    // skips) of its own length, served paced; the kernel is the same for all and cached by the first warm-up.
    const initrds = Array.from({ length: runs + 2 }, (_, i) =>
      Buffer.concat([g.initrd, Buffer.alloc(4096 * (i + 1))]),
    );
    const bytesPerSecond = 256 * 1024;
    const paced = await serveFiles(Object.fromEntries(initrds.map((b, i) => [`/initrd-${i}.gz`, b])), {
      bytesPerSecond,
    });
    const image = (i: number) => `${GUEST_IMAGE}-${i}`;
    const catalog: Catalog = {
      images: Object.fromEntries(
        initrds.map((b, i) => [
          image(i),
          {
            kernel: g.catalog.images[GUEST_IMAGE]!.kernel!,
            initrd: { url: `${paced.base}/initrd-${i}.gz`, sha256: sha256(b) },
            append: 'console=ttyS0 quiet panic=-1',
          },
        ]),
      ),
    };
    const w = await agentWorld({ nats: nats(), imageCatalog: catalog });
    w.start();
    await waitFor('agent reporting', () => w.reports.length > 0, { timeoutMs: 120_000 });
    // Warm-ups (uninterrupted): the first caches the kernel; the second, like every run, downloads only its
    // initramfs and says how long the image step and the start take here.
    let createMs = 0;
    for (const warm of [runs, runs + 1]) {
      const t0 = Date.now();
      await w.put('warm', { image: image(warm) }, VM_LIMITS);
      await waitFor('warm-up VM running', () => vmProblems(w, 'warm').length === 0, {
        timeoutMs: 180_000,
        intervalMs: 100,
      });
      createMs = Date.now() - t0;
      await withdraw(w, 'warm');
    }
    const cached = (i: number) => fs.existsSync(path.join(w.imageCacheDir, `sha256-${sha256(initrds[i]!)}`));
    const loop = await killLoop(
      w,
      {
        begin: (i) => w.put(`img${i}`, { image: image(i) }, VM_LIMITS),
        progress: async (i) =>
          cached(i)
            ? w.vms().length
              ? 'qemu'
              : 'cached'
            : vmLeaks(w, []).partials.length
              ? 'downloading'
              : 'none',
        problems: async (i) => vmProblems(w, `img${i}`),
        end: (i) => withdraw(w, `img${i}`),
      },
      {
        runs,
        rng: seededRandom(seed),
        windowMs: createMs,
        // A drawn share f of the initramfs sent (f ≤ 1: mid-download), or up to 5 s after it (qemu starting).
        waitToKill: async (i, rng) => {
          const f = rng.next() * 1.25;
          const size = initrds[i]!.length;
          await waitFor(
            'the kill point',
            () => (paced.sent.get(`/initrd-${i}.gz`) ?? 0) >= Math.min(f, 1) * size,
            {
              timeoutMs: 180_000,
              intervalMs: 20,
            },
          );
          if (f > 1) await sleep((f - 1) * 20_000);
        },
        settleTimeoutMs: 180_000,
      },
    );
    const final = vmLeaks(w, []);
    reportFigures({
      scenario: 'process/agent-kill-mid-image',
      passed: true,
      runs,
      seed,
      imageStepAndStartMs: createMs,
      initrdBytes: g.initrd.length,
      pacedBytesPerSecond: bytesPerSecond,
      killedAtMs: loop.killedAtMs.join(' '),
      stageAtKill: loop.progress.join(' '),
      settledMaxMs: Math.max(...loop.settledMs),
      leaked: JSON.stringify(final),
    });
    expect(final).toEqual({ orphans: [], duplicates: [], missing: [], strayDirs: [], partials: [] });
  }, 1_800_000);

  it('kill -9 at random moments of the VM boot: one VM, a running qemu adopted, nothing leaked', async () => {
    const g = await guestKernelCatalog();
    const w = await agentWorld({ nats: nats(), imageCatalog: g.catalog });
    w.start();
    await waitFor('agent reporting', () => w.reports.length > 0, { timeoutMs: 120_000 });
    const consoleOf = (name: string) => path.join(w.stateDir, 'vms', `ns_${w.instance(name)}`, 'console.log');
    const booted = (name: string) => {
      try {
        return fs.readFileSync(consoleOf(name), 'utf8').includes(GUEST_READY_MARKER);
      } catch {
        return false;
      }
    };
    // Warm-up: caches the image and says how long qemu's start and the guest's boot take here.
    const t0 = Date.now();
    await w.put('warm', { image: GUEST_IMAGE }, VM_LIMITS);
    await waitFor('warm-up VM running', () => vmProblems(w, 'warm').length === 0, {
      timeoutMs: 180_000,
      intervalMs: 100,
    });
    const startMs = Date.now() - t0;
    await waitFor('warm-up guest booted', () => booted('warm'), { timeoutMs: 300_000, intervalMs: 100 });
    const bootMs = Date.now() - t0;
    await withdraw(w, 'warm');
    const atKill = new Map<number, number | undefined>();
    const loop = await killLoop(
      w,
      {
        begin: (i) => w.put(`boot${i}`, { image: GUEST_IMAGE }, VM_LIMITS),
        progress: async (i) => {
          const pid = runningPid(w, `boot${i}`);
          atKill.set(i, pid);
          return booted(`boot${i}`) ? 'booted' : pid ? 'booting' : w.vms().length ? 'qemu starting' : 'none';
        },
        problems: async (i) => vmProblems(w, `boot${i}`, atKill.get(i)),
        end: (i) => withdraw(w, `boot${i}`),
      },
      { runs, rng: seededRandom(seed + 1), windowMs: bootMs, settleTimeoutMs: 180_000 },
    );
    const adopted = [...atKill.values()].filter(Boolean).length;
    const final = vmLeaks(w, []);
    reportFigures({
      scenario: 'process/agent-kill-mid-vm-boot',
      passed: true,
      runs,
      seed: seed + 1,
      qemuStartMs: startMs,
      guestBootMs: bootMs,
      killedAtMs: loop.killedAtMs.join(' '),
      stageAtKill: loop.progress.join(' '),
      runningQemuAdopted: `${adopted}/${adopted}`,
      settledMaxMs: Math.max(...loop.settledMs),
      leaked: JSON.stringify(final),
    });
    expect(final).toEqual({ orphans: [], duplicates: [], missing: [], strayDirs: [], partials: [] });
  }, 1_800_000);
});
