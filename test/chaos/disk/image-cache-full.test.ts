/**
 * Chaos, disk: the VM image cache (`--image-cache-dir`) on a small tmpfs the test owns, full when a VM instance
 * of a catalog image not yet cached is placed on the host (QEMU under TCG, the test guest served over HTTP from
 * 127.0.0.1). Checked: the instance fails with a message naming the image, the artifact and the error; the host
 * reports `DiskPressure` True for the image cache; no partial download is left and no qemu or VM directory is
 * started; the running VM (cached before the cache filled) is untouched. Once the filler is removed the start is
 * retried by the agent's backoff and the VM runs: exactly one qemu, DiskPressure False.
 */
import { describe, expect, it } from 'vitest';
import type { HostReport } from '../../../shared/nats/messages.js';
import { cleanup, useNats, waitFor } from '../../harness/index.js';
import { GUEST_IMAGE, guestKernelCatalog, serveFiles, sha256 } from '../../harness/vm.js';
import { agentWorld, vmLeaks } from '../agent-world.js';
import { reportFigures } from '../figures.js';
import { mountSmallFs } from './small-fs.js';

const nats = useNats();
const OTHER_IMAGE = 'projects/edgeplane-test/global/images/busybox-guest-2';
const VM_LIMITS = { cpuMillis: 1000, memoryBytes: 128 * 1024 * 1024 };

const diskPressure = (r: HostReport | undefined) => r?.conditions?.find((c) => c.type === 'DiskPressure');

describe('chaos: the VM image cache full', () => {
  it('fails the start clearly, leaves nothing, keeps the running VM, and starts once space is back', async () => {
    const g = await guestKernelCatalog();
    // A second image: the same guest under other bytes (the initramfs with zero padding after it, which the
    // kernel skips), so that it has an artifact of its own to download.
    const initrd2 = Buffer.concat([g.initrd, Buffer.alloc(4096)]);
    const srv2 = await serveFiles({ '/initrd2.gz': initrd2 });
    const catalog = {
      images: {
        ...g.catalog.images,
        [OTHER_IMAGE]: {
          kernel: g.catalog.images[GUEST_IMAGE]!.kernel!,
          initrd: { url: `${srv2.base}/initrd2.gz`, sha256: sha256(initrd2) },
          append: 'console=ttyS0 quiet panic=-1',
        },
      },
    };
    // Room for the first image's artifacts and a little more, not for a second initramfs.
    const sizeMiB = Math.ceil((g.kernel.length + g.initrd.length) / (1024 * 1024)) + 2;
    const cache = mountSmallFs(sizeMiB);
    cleanup(() => cache.unmount());
    const w = await agentWorld({ nats: nats(), imageCatalog: catalog, imageCacheDir: cache.dir });
    const vm = (n: string) => w.reports.at(-1)?.instances.find((i) => i.name === w.instance(n));
    await w.put('first', { image: GUEST_IMAGE }, VM_LIMITS);
    w.start();
    await waitFor('the first VM running', () => vm('first')?.phase === 'Running', { timeoutMs: 180_000 });
    const [firstQemu] = w.vms();
    expect(firstQemu).toBeDefined();

    const filled = cache.fill();
    const t0 = Date.now();
    await w.put('second', { image: OTHER_IMAGE }, VM_LIMITS);
    const failed = await waitFor(
      'the second VM failed with the reason',
      () => {
        const s = vm('second');
        return s?.phase === 'Failed' && /no space left|ENOSPC/.test(s.message ?? '') ? s : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const toFailedMs = Date.now() - t0;
    expect(failed.message).toContain(OTHER_IMAGE);
    expect(failed.message).toContain('initrd2.gz');
    const pressure = await waitFor(
      'DiskPressure for the image cache',
      () => {
        const c = diskPressure(w.reports.at(-1));
        return c?.status === 'True' ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(pressure.message).toMatch(/image cache/);
    const whileFull = vmLeaks(w, [w.instance('first')]);
    expect(whileFull).toEqual({ orphans: [], duplicates: [], missing: [], strayDirs: [], partials: [] });

    const t1 = Date.now();
    cache.release();
    await waitFor('the second VM running once space is back', () => vm('second')?.phase === 'Running', {
      timeoutMs: 400_000,
      intervalMs: 500,
    });
    const recoverMs = Date.now() - t1;
    await waitFor('DiskPressure False', () => diskPressure(w.reports.at(-1))?.status === 'False', {
      timeoutMs: 60_000,
    });
    const l = vmLeaks(w, [w.instance('first'), w.instance('second')]);
    expect(l).toEqual({ orphans: [], duplicates: [], missing: [], strayDirs: [], partials: [] });
    expect(w.vms().find((v) => v.dir === firstQemu!.dir)?.pid).toBe(firstQemu!.pid);
    reportFigures({
      scenario: 'disk/image-cache-full',
      passed: true,
      cacheMiB: sizeMiB,
      filledBytes: filled,
      toFailedMs,
      failedMessage: failed.message ?? '',
      diskPressureMessage: pressure.message ?? '',
      releaseToRunningMs: recoverMs,
      firstVmUntouched: true,
      leaked: JSON.stringify(l),
    });
    for (const n of ['first', 'second']) await w.remove(n);
    await waitFor('VMs removed', () => w.vms().length === 0, { timeoutMs: 120_000 });
  }, 900_000);
});
