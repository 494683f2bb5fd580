/**
 * The QEMU driver booting a disk image: the test guest's qcow2 disk (MBR, FAT partition, syslinux, the same
 * kernel + busybox initramfs; built by deploy/install.sh) in the catalog, served from 127.0.0.1 with its sha256.
 * The VM runs on a per-instance qcow2 overlay: writes land there, the cached base stays as verified.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { InstanceRequest } from '../../agent/drivers/driver.js';
import { qmp } from '../../agent/drivers/qmp.js';
import type { Catalog } from '../../agent/images/catalog.js';
import { GUEST_READY_MARKER, testGuest } from '../../deploy/stack/index.js';
import { createLogger } from '../../shared/log.js';
import { reconcilerFor } from '../harness/agent.js';
import { tempDir, waitFor } from '../harness/index.js';
import { destroyVmsAfterTest, serveFiles, sha256, testQemuDriver, vmRequest } from '../harness/vm.js';

const run = promisify(execFile);
const log = createLogger({ name: 'test', level: 'warn' });
const IMAGE = 'projects/edgeplane-test/global/images/busybox-disk';

async function setup(opts: { badSha?: boolean } = {}) {
  const guest = await testGuest();
  const disk = readFileSync(guest.diskPath);
  const { requests, base } = await serveFiles({ '/disk.qcow2': disk });
  const catalog: Catalog = {
    images: {
      [IMAGE]: {
        disk: {
          url: `${base}/disk.qcow2`,
          sha256: opts.badSha ? sha256(Buffer.from('other')) : sha256(disk),
          format: 'qcow2',
        },
      },
    },
  };
  const dir = tempDir('edgeplane-agent-vm-disk-');
  const driver = testQemuDriver({
    dir,
    catalog,
    // A disk image has no kernel of its own to test KVM with: the test guest's.
    kvmTestKernel: guest.kernelPath,
    kvmTestTimeoutMs: 8000,
    log,
  });
  destroyVmsAfterTest(driver);
  return { guest, disk, requests, driver, dir, catalog };
}

const request = (): InstanceRequest => vmRequest(IMAGE);

/** qemu processes whose command line mentions `dir`. */
function qemuProcessesUnder(dir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.startsWith('qemu-system') && cmd.includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('QEMU driver, disk image', () => {
  it('boots the verified, cached disk image through a qcow2 overlay to Running, and stops cleanly', async () => {
    const s = await setup();
    const t0 = Date.now();
    const state = await s.driver.start(request());
    expect(state.runtime).toBe(`qemu-${s.guest.accel}`);
    expect(s.requests).toEqual(['/disk.qcow2']);
    const vmDir = join(s.dir, 'vms', 'ns_vm-0');
    const consoleLog = join(vmDir, 'console.log');
    await waitFor(
      'the guest ready marker',
      () => existsSync(consoleLog) && readFileSync(consoleLog, 'utf8').includes(GUEST_READY_MARKER),
      { timeoutMs: 90_000 },
    );
    console.log(`disk-image guest ready ${Date.now() - t0} ms after start (${s.guest.accel})`);
    expect(await s.driver.inspect('ns', 'vm-0')).toMatchObject({
      phase: 'Running',
      ready: true,
      containers: [{ name: 'vm', state: 'running' }],
    });

    // qemu runs the overlay (no direct kernel boot); the overlay's backing file is the verified cached base.
    const pid = Number(readFileSync(join(vmDir, 'qemu.pid'), 'utf8'));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline).not.toContain('-kernel');
    const overlay = join(vmDir, 'disk.qcow2');
    expect(cmdline[cmdline.indexOf('-drive') + 1]).toBe(`file=${overlay},if=virtio,format=qcow2`);
    const cachedBase = join(s.dir, 'images', `sha256-${sha256(s.disk)}`);
    const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', overlay])).stdout) as {
      format: string;
      'backing-filename': string;
      'backing-filename-format': string;
    };
    expect(info).toMatchObject({
      format: 'qcow2',
      'backing-filename': cachedBase,
      'backing-filename-format': 'qcow2',
    });

    // A write to the VM's disk (through qemu's block layer) lands in the overlay; the base is untouched.
    await qmp(join(vmDir, 'qmp.sock'), 'human-monitor-command', {
      'command-line': 'qemu-io virtio0 "write -P 0xab 0 64k"',
    });
    const map = JSON.parse((await run('qemu-img', ['map', '-U', '--output=json', overlay])).stdout) as Array<{
      start: number;
      length: number;
      depth: number;
      data: boolean;
    }>;
    expect(map[0]).toMatchObject({ start: 0, depth: 0, data: true });
    expect(sha256(readFileSync(cachedBase))).toBe(sha256(s.disk));

    // ACPI power button: the guest powers itself off well within the grace period.
    const t1 = Date.now();
    await s.driver.stop('ns', 'vm-0', 30);
    expect(Date.now() - t1).toBeLessThan(25_000);
    expect(readFileSync(consoleLog, 'utf8')).toContain('EDGEPLANE-GUEST-POWERDOWN');
    expect(await s.driver.inspect('ns', 'vm-0')).toMatchObject({ phase: 'Stopped', ready: false });
    expect(qemuProcessesUnder(vmDir)).toEqual([]);
    expect(sha256(readFileSync(cachedBase))).toBe(sha256(s.disk));
    await s.driver.destroy('ns', 'vm-0');
    expect(existsSync(vmDir)).toBe(false);
  });

  it('reports a disk image whose sha256 differs on the instance, and leaves no VM behind', async () => {
    const s = await setup({ badSha: true });
    const req = request();
    const r = reconcilerFor({ host: 'vm-host', runtime: 'vm', driver: s.driver, req, log });
    const failed = await waitFor(
      'the instance failed',
      () => {
        const vm = r.observed().find((x) => x.name === 'vm-0');
        return vm?.phase === 'Failed' ? vm : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(failed?.message).toMatch(
      /template\.spec\.image: projects\/edgeplane-test\/global\/images\/busybox-disk: downloading http:\/\/127\.0\.0\.1:\d+\/disk\.qcow2: sha256 is [0-9a-f]{64}, the catalog says [0-9a-f]{64}/,
    );
    expect(s.requests[0]).toBe('/disk.qcow2');
    expect(readdirSync(join(s.dir, 'images'))).toEqual([]);
    expect(await s.driver.list()).toEqual([]);
    expect(qemuProcessesUnder(s.dir)).toEqual([]);
  });
});
