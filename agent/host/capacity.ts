/**
 * What this host has, and what the operator lets Edgeplane use of it. Read from the kernel through node:os and
 * statfs(2): no helper processes, and no library that costs every edge host resident memory (systeminformation
 * spawned lscpu/df every minute and pulled in ICU time-zone data, ~8 MB of RSS for three numbers).
 */
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { HostResourceAmounts, ResourceAmounts } from '../../shared/api/index.js';

/** The host's hardware as the agent advertises it. */
export interface HostCapacity {
  /** Everything the host has; disk: the size of the filesystem holding the state directory. */
  capacity: HostResourceAmounts;
  /** What instances may use: capacity less the reserve, or the operator's override; disk: all of it. */
  allocatable: HostResourceAmounts;
  /** CPU architecture, e.g. x64. */
  arch: string;
  /** Free disk on the filesystem holding the state directory, in bytes (0: not measurable). */
  diskFreeBytes: number;
}

/** Size and free space (for unprivileged users, like `df`'s Avail) of the filesystem holding `dir`. */
export async function filesystemOf(dir: string): Promise<{ totalBytes: number; freeBytes: number }> {
  // The state directory may not exist yet on a first start: its nearest existing ancestor is on the same
  // filesystem unless something is mounted in between, which is then created by the operator anyway.
  let at = path.resolve(dir);
  for (;;) {
    try {
      const s = await statfs(at);
      return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
    } catch (err) {
      const parent = path.dirname(at);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) throw err;
      at = parent;
    }
  }
}

/** Reads capacity; `override` replaces the measured allocatable (operators, and dev stacks standing for big hosts). */
export async function readCapacity(opts: {
  override?: Partial<ResourceAmounts>;
  reserved?: ResourceAmounts;
  /** The agent's state directory: disk is measured on the filesystem holding it (default `/`). */
  stateDir?: string;
}): Promise<HostCapacity> {
  // Logical CPUs, as systeminformation's `cores` (and lscpu's `CPU(s)`) counted them.
  const cores = os.cpus().length || os.availableParallelism();
  const disk = await filesystemOf(opts.stateDir ?? '/').catch(() => undefined);
  // Disk as Kubernetes nodes report `ephemeral-storage`: the filesystem's size as capacity and allocatable
  // (no reserve is configured), its free space in every report.
  const storage = disk ? { ephemeralStorageBytes: disk.totalBytes } : {};
  const capacity = { cpuMillis: cores * 1000, memoryBytes: os.totalmem(), ...storage };
  const reserved = opts.reserved ?? { cpuMillis: 100, memoryBytes: 256 * 1024 * 1024 };
  const allocatable = {
    cpuMillis: opts.override?.cpuMillis ?? Math.max(0, capacity.cpuMillis - reserved.cpuMillis),
    memoryBytes: opts.override?.memoryBytes ?? Math.max(0, capacity.memoryBytes - reserved.memoryBytes),
    ...storage,
  };
  return { capacity, allocatable, arch: os.arch(), diskFreeBytes: disk?.freeBytes ?? 0 };
}
