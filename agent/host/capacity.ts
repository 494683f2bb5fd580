/** What this host has, read with systeminformation, and what the operator lets Edgeplane use of it. */
import si from 'systeminformation';
import type { ResourceAmounts } from '../../shared/api/index.js';

/** The host's hardware as the agent advertises it. */
export interface HostCapacity {
  /** Everything the host has. */
  capacity: ResourceAmounts;
  /** What instances may use: capacity less the reserve, or the operator's override. */
  allocatable: ResourceAmounts;
  /** CPU architecture, e.g. x64. */
  arch: string;
  /** Free disk on the filesystem holding the state directory, in bytes. */
  diskFreeBytes: number;
}

/** Reads capacity; `override` replaces the measured allocatable (operators, and dev stacks standing for big hosts). */
export async function readCapacity(opts: {
  override?: Partial<ResourceAmounts>;
  reserved?: ResourceAmounts;
}): Promise<HostCapacity> {
  const [cpu, mem, os, fs] = await Promise.all([
    si.cpu(),
    si.mem(),
    si.osInfo(),
    si.fsSize().catch(() => []),
  ]);
  const capacity = { cpuMillis: cpu.cores * 1000, memoryBytes: mem.total };
  const reserved = opts.reserved ?? { cpuMillis: 100, memoryBytes: 256 * 1024 * 1024 };
  const allocatable = {
    cpuMillis: opts.override?.cpuMillis ?? Math.max(0, capacity.cpuMillis - reserved.cpuMillis),
    memoryBytes: opts.override?.memoryBytes ?? Math.max(0, capacity.memoryBytes - reserved.memoryBytes),
  };
  const root = fs.find((f) => f.mount === '/') ?? fs[0];
  return { capacity, allocatable, arch: os.arch, diskFreeBytes: root ? root.available : 0 };
}
