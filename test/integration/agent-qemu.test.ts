/**
 * The QEMU driver on real qemu: the image catalog's artifacts downloaded from a 127.0.0.1 HTTP server, verified and
 * cached; the test guest (Debian's cloud kernel + busybox initramfs) booted with the machine type's vCPUs and
 * memory, on the accelerator the KVM boot test picks; QMP state; adoption by a new driver; clean ACPI stop; the KVM boot test.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InstanceRequest } from '../../agent/drivers/driver.js';
import { QemuDriver } from '../../agent/drivers/qemu.js';
import { qmp } from '../../agent/drivers/qmp.js';
import { HostMonitor } from '../../agent/host/monitor.js';
import { ArtifactCache } from '../../agent/images/catalog.js';
import { GUEST_READY_MARKER, testGuest } from '../../deploy/stack/index.js';
import { createLogger } from '../../shared/log.js';
import { reconcilerFor } from '../harness/agent.js';
import { tempDir, waitFor } from '../harness/index.js';
import {
  destroyVmsAfterTest,
  GUEST_IMAGE,
  guestKernelCatalog,
  testQemuDriver,
  vmRequest,
} from '../harness/vm.js';

const log = createLogger({ name: 'test', level: 'warn' });
const IMAGE = GUEST_IMAGE;

async function setup(opts: { badSha?: boolean } = {}) {
  const { guest, srv, catalog } = await guestKernelCatalog(opts);
  const dir = tempDir('edgeplane-agent-vm-');
  const make = () => testQemuDriver({ dir, catalog, kvmTestTimeoutMs: 8000, log });
  const driver = make();
  destroyVmsAfterTest(driver);
  return { guest, srv, driver, make, dir };
}

const request = (extra: Partial<InstanceRequest['template']> = {}): InstanceRequest =>
  vmRequest(IMAGE, extra);

describe('QEMU driver', () => {
  it('downloads, verifies and caches the artifacts, boots the guest to Running, is adopted, and stops cleanly', async () => {
    const s = await setup();
    const state = await s.driver.start(request({ ports: [{ name: 'ssh', containerPort: 22 }] }));
    expect(state.runtime).toBe(`qemu-${s.guest.accel}`);
    expect(s.srv.requests.sort()).toEqual(['/initrd.gz', '/vmlinuz']);
    const consoleLog = join(s.dir, 'vms', 'ns_vm-0', 'console.log');
    await waitFor(
      'the guest ready marker',
      () => existsSync(consoleLog) && readFileSync(consoleLog, 'utf8').includes(GUEST_READY_MARKER),
      {
        timeoutMs: 90_000,
      },
    );
    const running = await s.driver.inspect('ns', 'vm-0');
    expect(running).toMatchObject({
      phase: 'Running',
      ready: true,
      containers: [{ name: 'vm', state: 'running' }],
    });
    expect(running?.ports[0]).toMatchObject({ name: 'ssh', containerPort: 22, hostIP: '127.0.0.1' });
    // vCPUs and memory of e2-micro (2 vCPUs, 1 GiB).
    const pid = Number(readFileSync(join(s.dir, 'vms', 'ns_vm-0', 'qemu.pid'), 'utf8'));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline[cmdline.indexOf('-smp') + 1]).toBe('2');
    expect(cmdline[cmdline.indexOf('-m') + 1]).toBe('1024M');
    expect(cmdline[cmdline.indexOf('-accel') + 1]).toBe(s.guest.accel);

    // A restarted agent (a new driver on the same directory) adopts the VM rather than starting another.
    const again = s.make();
    expect((await again.list()).map((v) => [v.name, v.phase])).toEqual([['vm-0', 'Running']]);
    expect((await again.start(request())).startedAt).toBe(running?.startedAt);

    // ACPI power button: the guest powers itself off well within the grace period.
    const t0 = Date.now();
    await again.stop('ns', 'vm-0', 30);
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(readFileSync(consoleLog, 'utf8')).toMatch(/power|halt|reboot/i);
    expect(await again.inspect('ns', 'vm-0')).toMatchObject({ phase: 'Stopped', ready: false });
    await again.destroy('ns', 'vm-0');
    expect(await again.inspect('ns', 'vm-0')).toBeUndefined();

    // Cached: a new VM of the same image downloads nothing.
    s.srv.requests.length = 0;
    await s.driver.start({ ...request(), name: 'vm-1' });
    expect(s.srv.requests).toEqual([]);
    await s.driver.destroy('ns', 'vm-1');
  });

  it('rejects an artifact whose sha256 differs, and template fields a VM cannot honour, leaving nothing behind', async () => {
    const s = await setup({ badSha: true });
    await expect(s.driver.start(request())).rejects.toThrow(
      /template\.spec\.image: .*vmlinuz: sha256 is [0-9a-f]{64}, the catalog says/,
    );
    expect(readdirSync(join(s.dir, 'images')).filter((f) => f.includes('.part'))).toEqual([]);
    expect(await s.driver.list()).toEqual([]);
    await expect(s.driver.start(request({ env: [{ name: 'A', value: 'b' }] }))).rejects.toThrow(
      'template.spec.env: not supported for VM images',
    );
    await expect(
      s.driver.start({ ...request(), template: { image: 'projects/x/global/images/unknown' } }),
    ).rejects.toThrow(/projects\/x\/global\/images\/unknown is not in this host's image catalog/);
    await expect(
      s.driver.start({ ...request(), limits: { cpuMillis: 64_000, memoryBytes: 1 << 30 } }),
    ).rejects.toThrow(/limits\.cpu: the VM needs 64 vCPUs; this host has \d+/);
  });

  it('tests KVM by booting a kernel (not just the firmware), once per host boot, without holding up the runtime check', async () => {
    const guest = await testGuest();
    const dir = tempDir('edgeplane-agent-vm-kvm-test-');
    const make = (kvmTestKernel?: string) =>
      new QemuDriver({
        host: 'vm-host',
        vmDir: join(dir, 'vms'),
        catalog: () => ({ images: {} }),
        cache: new ArtifactCache(join(dir, 'images')),
        kvmTestTimeoutMs: 8000,
        ...(kvmTestKernel ? { kvmTestKernel } : {}),
        log,
      });
    const d = make(guest.kernelPath);
    // The runtime check answers within its 2 s wait even while a KVM boot test could take its 8 s.
    let t0 = Date.now();
    const first = await d.checkRuntime();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(first.ok).toBe(true);
    expect(first.detail).toMatch(/^QEMU emulator version .*; (KVM|TCG|accelerator: probing KVM)/);
    // Same verdict as install.sh's guest_probe, which boots this kernel + the guest's initramfs to its ready marker.
    t0 = Date.now();
    const accel = await d.accelerator();
    console.log(`KVM boot test: ${accel.detail} (${Date.now() - t0} ms)`);
    expect(accel.accel).toBe(guest.accel);
    expect(accel.detail).toMatch(
      existsSync('/dev/kvm')
        ? guest.accel === 'kvm'
          ? /^KVM \(booted /
          : /^TCG \(KVM did not boot /
        : /no \/dev\/kvm/,
    );
    expect((await d.checkRuntime()).detail).toContain(accel.detail);
    // The host says which accelerator its VMs get (the agent's status endpoint carries the runtime checks).
    const monitor = new HostMonitor({ drivers: { vm: d }, log });
    await monitor.refresh();
    expect(monitor.runtimes).toEqual(['vm']);
    expect(monitor.runtimeChecks.vm?.detail).toContain(accel.detail);
    // A restarted agent on this host boot takes the recorded outcome instead of probing again.
    t0 = Date.now();
    expect(await make(guest.kernelPath).accelerator()).toEqual({
      ...accel,
      detail: `${accel.detail}, this boot`,
    });
    expect(Date.now() - t0).toBeLessThan(1000);
    // Configured: no boot test.
    expect(
      await new QemuDriver({
        host: 'vm-host',
        vmDir: join(dir, 'vms'),
        catalog: () => ({ images: {} }),
        cache: new ArtifactCache(join(dir, 'images')),
        accel: 'tcg',
        log,
      }).accelerator(),
    ).toEqual({ accel: 'tcg', detail: 'tcg (configured)' });
  });

  it('starts a VM that powered off again, with crash-loop backoff, through the reconciler', async () => {
    const s = await setup();
    const req = request();
    const r = reconcilerFor({ host: 'vm-host', runtime: 'vm', driver: s.driver, req, log });
    const vm = () => r.observed().find((x) => x.name === 'vm-0');
    const consoleLog = join(s.dir, 'vms', 'ns_vm-0', 'console.log');
    const powerOff = async () => {
      await waitFor(
        'guest up',
        () => existsSync(consoleLog) && readFileSync(consoleLog, 'utf8').includes(GUEST_READY_MARKER),
        {
          timeoutMs: 90_000,
        },
      );
      await qmp(join(s.dir, 'vms', 'ns_vm-0', 'qmp.sock'), 'system_powerdown');
    };
    await waitFor('VM running', () => vm()?.phase === 'Running', { timeoutMs: 60_000 });
    await powerOff();
    // First restart at once.
    await waitFor('restarted', () => vm()?.phase === 'Running' && vm()?.containers[0]?.restartCount === 1, {
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    await powerOff();
    // The second waits.
    const waiting = await waitFor(
      'backoff reported',
      () => (/restarting in \d+s/.test(vm()?.message ?? '') ? vm() : undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    );
    expect(waiting?.phase).toBe('Stopped');
    await waitFor(
      'restarted after the backoff',
      () => vm()?.phase === 'Running' && vm()?.containers[0]?.restartCount === 2,
      {
        timeoutMs: 60_000,
      },
    );
  });
});
