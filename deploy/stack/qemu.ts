/**
 * The QEMU test guest: Debian's cloud kernel and a busybox initramfs (also on a bootable qcow2 disk image: MBR,
 * FAT partition, syslinux), built and KVM-probed by deploy/install.sh (`install.sh guest-paths`, the one
 * implementation), plus a helper that boots it with a serial console and QMP.
 *
 * The guest prints `EDGEPLANE-GUEST-READY` on ttyS0 once up and powers off when its ACPI power button is pressed
 * (QMP `system_powerdown`).
 */

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { qmp } from '../../agent/drivers/qmp.js';
import { pidAlive } from '../../shared/os.js';
import { installSh, sleep, waitFor } from './proc.js';

/** Marker the guest prints on its serial console when it is up. */
export const GUEST_READY_MARKER = 'EDGEPLANE-GUEST-READY';

/** The cached test guest. */
export interface TestGuest {
  /** Kernel image (bzImage) for `-kernel`. */
  kernelPath: string;
  /** gzip'd cpio initramfs for `-initrd`. */
  initrdPath: string;
  /** qcow2 disk image booting the same kernel + initramfs through syslinux (console on ttyS0). */
  diskPath: string;
  /** Accelerator that boots the guest on this machine (probed once by install.sh). */
  accel: 'kvm' | 'tcg';
}

let cached: Promise<TestGuest> | undefined;

/** Paths of the test guest, building it (and probing KVM) first if needed. Cached per process. */
export function testGuest(): Promise<TestGuest> {
  cached ??= installSh(['guest-paths'], 10 * 60_000)
    .then((out) => {
      const kv = Object.fromEntries(
        out
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      const accel = kv.accel === 'kvm' ? 'kvm' : 'tcg';
      if (!kv.kernel || !kv.initrd || !kv.disk)
        throw new Error(`install.sh guest-paths printed no paths:\n${out}`);
      return { kernelPath: kv.kernel, initrdPath: kv.initrd, diskPath: kv.disk, accel } satisfies TestGuest;
    })
    .catch((e) => {
      cached = undefined;
      throw e;
    });
  return cached;
}

/** Options of {@link startTestGuest}. */
export interface TestGuestOptions {
  /** Working directory (QMP socket, console log); created if missing. */
  dir: string;
  /** Override the probed accelerator. */
  accel?: 'kvm' | 'tcg';
  /** Guest memory in MiB (default 256). */
  memoryMb?: number;
  /** Extra kernel command line. */
  append?: string;
  /** Extra qemu arguments. */
  extraArgs?: string[];
}

/** A running QEMU test guest. */
export interface TestGuestHandle {
  /** qemu process id. */
  readonly pid: number;
  /** Accelerator in use. */
  readonly accel: 'kvm' | 'tcg';
  /** QMP unix socket. */
  readonly qmpSocket: string;
  /** File receiving the serial console (ttyS0) output. */
  readonly consoleLog: string;
  /** Serial console output so far. */
  console(): string;
  /** Resolves with the console output once it matches `pattern` (string or RegExp); rejects after `timeoutMs`. */
  waitForConsole(pattern: string | RegExp, timeoutMs?: number): Promise<string>;
  /** Sends one QMP command and resolves with its `return` value (rejects on a QMP error). */
  qmp(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /**
   * Presses the ACPI power button (QMP `system_powerdown`) and waits up to `timeoutMs` (default 30 s) for qemu to
   * exit; falls back to QMP `quit`, then SIGKILL. Resolves to how it ended.
   */
  powerdown(timeoutMs?: number): Promise<'powerdown' | 'quit' | 'killed' | 'already-exited'>;
  /** Whether qemu has exited. */
  readonly exited: boolean;
  /** Ends qemu whatever it takes (QMP quit, then SIGKILL); idempotent. */
  stop(): Promise<void>;
}

/** Boots the test guest with its console on a pipe (and `consoleLog`) and QMP on a unix socket. */
export async function startTestGuest(opts: TestGuestOptions): Promise<TestGuestHandle> {
  const guest = await testGuest();
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const accel = opts.accel ?? guest.accel;
  const qmpSocket = path.join(dir, 'qmp.sock');
  const consoleLog = path.join(dir, 'console.log');
  fs.rmSync(qmpSocket, { force: true });
  const args = [
    '-accel',
    accel,
    '-m',
    String(opts.memoryMb ?? 256),
    '-smp',
    '1',
    '-nodefaults',
    '-nographic',
    '-serial',
    'stdio',
    '-no-reboot',
    '-kernel',
    guest.kernelPath,
    '-initrd',
    guest.initrdPath,
    '-append',
    `console=ttyS0 quiet panic=-1 ${opts.append ?? ''}`.trim(),
    '-qmp',
    `unix:${qmpSocket},server=on,wait=off`,
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn('qemu-system-x86_64', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not start qemu-system-x86_64');
  const pid = child.pid;
  let out = '';
  let exited = false;
  const log = fs.createWriteStream(consoleLog);
  const onData = (d: Buffer) => {
    const s = d.toString('utf8');
    out += s;
    log.write(s);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exitP = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      log.end();
      resolve();
    }),
  );
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const gone = (ms: number) => Promise.race([exitP.then(() => true), sleep(ms).then(() => exited)]);

  const qmp = async (command: string, qargs?: Record<string, unknown>) => {
    await waitFor('the QMP socket', () => fs.existsSync(qmpSocket), { timeoutMs: 10_000, intervalMs: 50 });
    return qmpCommand(qmpSocket, command, qargs);
  };
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (!exited) {
        await qmp('quit').catch(() => {});
        if (!(await gone(5000))) {
          child.kill('SIGKILL');
          await gone(5000);
        }
      }
      process.removeListener('exit', killOnExit);
      fs.rmSync(qmpSocket, { force: true });
    })();
    return stopping;
  };

  return {
    pid,
    accel,
    qmpSocket,
    consoleLog,
    console: () => out,
    get exited() {
      return exited && !pidAlive(pid);
    },
    waitForConsole: (pattern, timeoutMs = 60_000) =>
      waitFor(
        `${pattern} on the guest console`,
        () => (typeof pattern === 'string' ? out.includes(pattern) : pattern.test(out)) && out,
        {
          timeoutMs,
          intervalMs: 50,
          abort: () => (exited ? `qemu exited; console:\n${out.slice(-2000)}` : undefined),
        },
      ),
    qmp,
    powerdown: async (timeoutMs = 30_000) => {
      if (exited) return 'already-exited';
      let how: 'powerdown' | 'quit' | 'killed' = 'powerdown';
      try {
        await qmp('system_powerdown');
      } catch {}
      if (!(await gone(timeoutMs))) {
        how = 'quit';
        await qmp('quit').catch(() => {});
        if (!(await gone(5000))) {
          how = 'killed';
          child.kill('SIGKILL');
          await gone(5000);
        }
      }
      await stop();
      return how;
    },
    stop,
  };
}

/** One QMP command on a socket: the agent's client, so tests and the VM driver speak QMP the same way. */
export function qmpCommand(
  socketPath: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<unknown> {
  return qmp(socketPath, command, args, timeoutMs);
}
