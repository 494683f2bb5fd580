/**
 * A memory cgroup of the test's own for the agent (cgroup v1 `memory` controller, or v2), created as a child of
 * the cgroup the test runs in (so nothing outside the test is re-accounted) and removed afterwards: a tight limit,
 * usage, failures to charge, OOM kills. A process is put in at birth with {@link MemoryCgroup.execWrapper}
 * (everything it allocates is charged there) or later with {@link MemoryCgroup.add}. Vitest-free: the soak uses it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** What the cgroup counted. */
export interface MemoryStats {
  /** Bytes charged now. */
  usageBytes: number;
  /** Most bytes ever charged (v1; v2: memory.peak when the kernel has it, else usage). */
  maxUsageBytes: number;
  /** Times a charge hit the limit (v1 failcnt; v2 memory.events `max`). */
  limitHits: number;
  /** Processes the OOM killer killed in it. */
  oomKills: number;
}

/** A memory cgroup. */
export interface MemoryCgroup {
  /** Its directory under /sys/fs/cgroup. */
  dir: string;
  version: 1 | 2;
  /** Sets the limit in bytes (v1: below the usage the kernel cannot reclaim, it refuses with EBUSY). */
  setLimit(bytes: number): void;
  /** Moves a process in (its earlier charges stay where they are). */
  add(pid: number): void;
  /** A prefix that puts the command it runs into this cgroup, then execs it (same pid). */
  execWrapper(): string[];
  /** Pids in it. */
  pids(): number[];
  stats(): MemoryStats;
  /** Moves whatever is still in it back to the parent and removes it; idempotent. */
  remove(): void;
}

const read = (file: string) => fs.readFileSync(file, 'utf8').trim();
const num = (file: string) => (fs.existsSync(file) ? Number(read(file)) : 0);
const keyed = (file: string, key: string) =>
  fs.existsSync(file)
    ? Number(
        read(file)
          .split('\n')
          .find((l) => l.startsWith(`${key} `))
          ?.split(' ')[1] ?? 0,
      )
    : 0;

/** Which cgroup version holds the memory controller here, and the test process's own memory cgroup. */
export function ownMemoryCgroup(): { version: 1 | 2; dir: string } {
  const lines = read('/proc/self/cgroup').split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  if (v1 && fs.existsSync('/sys/fs/cgroup/memory'))
    return { version: 1, dir: path.join('/sys/fs/cgroup/memory', v1.split(':')[2] ?? '/') };
  const v2 = lines.find((l) => l.startsWith('0::'));
  return { version: 2, dir: path.join('/sys/fs/cgroup', v2?.slice(3) ?? '/') };
}

/** Creates a memory cgroup with `limitBytes`. */
export function createMemoryCgroup(
  limitBytes: number,
  name = `ep-chaos-${crypto.randomBytes(3).toString('hex')}`,
): MemoryCgroup {
  const own = ownMemoryCgroup();
  // v2 forbids processes in a cgroup whose children have controllers: there, a sibling under the root.
  const parent = own.version === 1 ? own.dir : '/sys/fs/cgroup';
  const dir = path.join(parent, name);
  fs.mkdirSync(dir);
  const v1 = own.version === 1;
  if (v1) fs.writeFileSync(path.join(dir, 'memory.swappiness'), '0');
  else fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
  const cg: MemoryCgroup = {
    dir,
    version: own.version,
    setLimit: (bytes) =>
      fs.writeFileSync(path.join(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(bytes)),
    add: (pid) => fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid)),
    execWrapper: () => ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir],
    pids: () => {
      try {
        return read(path.join(dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    },
    stats: () =>
      v1
        ? {
            usageBytes: num(path.join(dir, 'memory.usage_in_bytes')),
            maxUsageBytes: num(path.join(dir, 'memory.max_usage_in_bytes')),
            limitHits: num(path.join(dir, 'memory.failcnt')),
            oomKills: keyed(path.join(dir, 'memory.oom_control'), 'oom_kill'),
          }
        : {
            usageBytes: num(path.join(dir, 'memory.current')),
            maxUsageBytes: num(path.join(dir, 'memory.peak')) || num(path.join(dir, 'memory.current')),
            limitHits: keyed(path.join(dir, 'memory.events'), 'max'),
            oomKills: keyed(path.join(dir, 'memory.events'), 'oom_kill'),
          },
    remove: () => {
      if (!fs.existsSync(dir)) return;
      for (const pid of cg.pids()) {
        try {
          fs.writeFileSync(path.join(parent, 'cgroup.procs'), String(pid));
        } catch {
          // gone meanwhile
        }
      }
      fs.rmdirSync(dir);
    },
  };
  cg.setLimit(limitBytes);
  return cg;
}
