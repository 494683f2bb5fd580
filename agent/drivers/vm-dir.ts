/**
 * A VM directory's on-disk identity: `vm.json` (the record, like a container's labels) and `qemu.pid`. Reading a
 * record tells three cases apart — none (no file: no VM was ever started from this directory), the record, and
 * unreadable — and the third is an error, never "no VM": a qemu may still run there, and starting a second one
 * over it would orphan it (or kill it and recreate its disk). Records are written with writeFileAtomic, so an
 * unreadable one means outside damage, which an operator must look at.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from '../../shared/os.js';
import type { Accel } from './kvm-boot-test.js';

/** What `vm.json` records. */
export interface VmRecord {
  /** Host that started the VM (a directory of another host is not ours). */
  host: string;
  /** Instance namespace and name. */
  namespace: string;
  name: string;
  /** Owning Workload. */
  workload: string;
  /** Template hash of the instance the VM runs. */
  templateHash: string;
  /** Accelerator it was started with. */
  accel: Accel;
  /** Forwarded ports. */
  ports: Array<{ name?: string; containerPort: number; hostIP: string; hostPort: number }>;
  /** When qemu was started (ISO time). */
  startedAt: string;
  /** Restarts of this instance on this host. */
  restartCount: number;
}

/** Whether `pid` is a live (not zombie) qemu of the VM directory `dir`; a zombie's cmdline is empty. */
export function runsIn(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

/** The qemu pid of a VM directory, when that process still runs this VM. */
export function qemuPidOf(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'qemu.pid'), 'utf8').trim());
    if (!pid || !pidAlive(pid)) return undefined;
    return runsIn(pid, dir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The VM record of a directory: undefined when there is none (or it is another host's); throws, naming the file
 * and any qemu still running there, when the file exists but cannot be read or parsed.
 */
export function readVmRecord(dir: string, host: string): VmRecord | undefined {
  const file = join(dir, 'vm.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // no record, or not a VM directory at all
    throw unreadable(dir, file, (err as Error).message);
  }
  let r: VmRecord;
  try {
    r = JSON.parse(text) as VmRecord;
    if (typeof r !== 'object' || r === null || typeof r.host !== 'string' || typeof r.name !== 'string')
      throw new Error('not a VM record');
  } catch (err) {
    throw unreadable(dir, file, (err as Error).message);
  }
  return r.host === host ? r : undefined;
}

function unreadable(dir: string, file: string, why: string): Error {
  const pid = qemuPidOf(dir);
  return new Error(
    `${file} is unreadable (${why}); ${pid ? `qemu pid ${pid} still runs in ${dir}` : `no qemu runs in ${dir}`}: ` +
      'refusing to start a VM over it (look at the directory, stop that qemu if it is stale, remove the directory)',
  );
}
