/**
 * The KVM boot test, which chooses a VM's accelerator: KVM when /dev/kvm exists and a Linux kernel actually boots
 * on it here, TCG otherwise. The test boots a kernel without initrd and root file system under KVM and waits,
 * within a timeout, for the kernel to get to the end of its boot (running /init, or the panic for the missing root
 * file system). Firmware alone is no evidence: under nested KVM SeaBIOS runs while a kernel hangs before its first
 * console line. The outcome is kept for this host boot in `<vmDir>/accel.json` (keyed by boot id, qemu binary and
 * kernel), so a restarted agent does not boot again.
 *
 * Not to be confused with the driver's runtime check (`Driver.checkRuntime`), which reports this test's outcome
 * among other things, nor with readiness/liveness probes (agent/probes.ts).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../shared/log.js';
import type { ArtifactCache, Catalog } from '../images/catalog.js';

/** Accelerator of a VM. */
export type Accel = 'kvm' | 'tcg';

/** Which accelerator VMs get, and why (shown in the runtime check's detail and the agent's status). */
export interface AccelChoice {
  /** The accelerator. */
  accel: Accel;
  /** How it was chosen, e.g. `KVM (booted /boot/vmlinuz in 900 ms)`. */
  detail: string;
}

/** What the KVM boot test needs. */
export interface KvmBootTestOptions {
  /** qemu binary. */
  qemu: string;
  /** Kernel (bzImage) to boot; empty when there is none (then TCG without a test). */
  kernel: string;
  /** Directory the outcome is kept in (`accel.json`). */
  vmDir: string;
  /** How long the kernel may take to boot before TCG is chosen. */
  timeoutMs: number;
  /** Logger. */
  log: Logger;
}

/**
 * The kernel the KVM boot test boots: the configured one, else a kernel of the catalog already in the artifact
 * cache, else the host's own (/boot/vmlinuz-<release>) when readable.
 */
export function kvmTestKernel(
  configured: string | undefined,
  catalog: Catalog,
  cache: ArtifactCache,
): string | undefined {
  if (configured) return configured;
  for (const image of Object.values(catalog.images)) {
    const cached = image.kernel && cache.cached(image.kernel);
    if (cached) return cached;
  }
  for (const k of [`/boot/vmlinuz-${release()}`, '/boot/vmlinuz', '/vmlinuz']) {
    try {
      accessSync(k, constants.R_OK);
      return k;
    } catch {}
  }
  return undefined;
}

/** Runs the KVM boot test, or takes its outcome from earlier in this host boot. */
export async function kvmBootTest(opts: KvmBootTestOptions): Promise<AccelChoice> {
  const { qemu, kernel, vmDir, timeoutMs } = opts;
  if (!existsSync('/dev/kvm')) return { accel: 'tcg', detail: 'TCG (no /dev/kvm)' };
  if (!kernel) return { accel: 'tcg', detail: 'TCG (KVM not verified: no kernel to probe it with)' };
  const bootId = (() => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return '';
    }
  })();
  const st = statSync(kernel);
  const key = `${bootId} ${qemu} ${kernel} ${st.size} ${st.mtimeMs}`;
  const file = join(vmDir, 'accel.json');
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { key: string } & AccelChoice;
    if (bootId && saved.key === key) return { accel: saved.accel, detail: `${saved.detail}, this boot` };
  } catch {}
  const t0 = Date.now();
  const args = ['-accel', 'kvm', '-m', '128', '-nodefaults', '-display', 'none', '-no-reboot'];
  args.push('-serial', 'stdio', '-kernel', kernel);
  // No root device has that name: the kernel's panic for it marks the end of a boot. With `edgeplane.probe` the test
  // guest's /init (install.sh), if built into the kernel, prints its ready marker and powers off at once.
  args.push('-append', 'console=ttyS0 panic=-1 root=/dev/edgeplane-kvm-probe edgeplane.probe');
  const booted = /Run \/init|VFS: Unable to mount root|Kernel panic|EDGEPLANE-GUEST-READY/;
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const done = (v: boolean) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (booted.test(out)) done(true);
    });
    child.on('exit', () => done(booted.test(out)));
    child.on('error', () => done(false));
  });
  const result: AccelChoice = ok
    ? { accel: 'kvm', detail: `KVM (booted ${kernel} in ${Date.now() - t0} ms)` }
    : { accel: 'tcg', detail: `TCG (KVM did not boot ${kernel} within ${timeoutMs} ms)` };
  opts.log.info({ kernel, ...result }, 'KVM boot test');
  try {
    mkdirSync(vmDir, { recursive: true });
    writeFileSync(file, JSON.stringify({ key, ...result }));
  } catch {}
  return result;
}
