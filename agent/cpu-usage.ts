/**
 * CPU usage of the instances, measured cheaply from what the kernel already counts: for a gVisor container the
 * cpuacct accounting of its cgroup (cgroup v1 `cpuacct.usage`, v2 `cpu.stat` usage_usec) — the cgroup found from
 * the container's pid that docker inspect gives (`/proc/<pid>/cgroup`); for a VM the user + system time of its qemu
 * process (`/proc/<pid>/stat`). Reading them is a few small file reads per instance, no docker stats stream.
 *
 * The meter keeps each instance's last cumulative reading and reports the average usage in millicores over the
 * window since the reading before it (at least `minWindowMs`, so reports sent in quick succession reuse the last
 * figure). A new process (another pid: restarted, replaced) or a counter that went back starts afresh: no figure
 * until the next window, never a negative one.
 */
import { readFileSync } from 'node:fs';
import type { InstanceState } from './drivers/driver.js';

/** Where the kernel's files are (tests point them elsewhere). */
export interface CpuFiles {
  /** `/proc`. */
  proc: string;
  /** `/sys/fs/cgroup`. */
  cgroup: string;
}

const HOST_FILES: CpuFiles = { proc: '/proc', cgroup: '/sys/fs/cgroup' };
/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat (100 on every Linux architecture we run on). */
const CLOCK_TICKS = 100;

/** The cgroup directory holding the CPU accounting of `pid`, with how to read it; undefined when unknown. */
export function cgroupCpuFile(
  pid: number,
  files: CpuFiles = HOST_FILES,
): { file: string; v2: boolean } | undefined {
  let text: string;
  try {
    text = readFileSync(`${files.proc}/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  let v2: string | undefined;
  for (const line of text.split('\n')) {
    const [, controllers = '', path = ''] = line.split(/:(.*?):/);
    if (line.startsWith('0::')) v2 = line.slice(3);
    if (controllers.split(',').includes('cpuacct')) {
      for (const mount of ['cpuacct', 'cpu,cpuacct', 'cpuacct,cpu']) {
        const file = `${files.cgroup}/${mount}${path === '/' ? '' : path}/cpuacct.usage`;
        if (readable(file)) return { file, v2: false };
      }
    }
  }
  if (v2 !== undefined) {
    const file = `${files.cgroup}${v2 === '/' ? '' : v2}/cpu.stat`;
    if (readable(file)) return { file, v2: true };
  }
  return undefined;
}

function readable(file: string): boolean {
  try {
    readFileSync(file);
    return true;
  } catch {
    return false;
  }
}

/** Cumulative CPU time in nanoseconds of what `source` names; undefined when any part cannot be read. */
export function cpuNanos(
  source: NonNullable<InstanceState['cpuSource']>,
  files: CpuFiles = HOST_FILES,
): number | undefined {
  try {
    if (source.kind === 'process') {
      let total = 0;
      for (const pid of source.pids) {
        const stat = readFileSync(`${files.proc}/${pid}/stat`, 'utf8');
        // Fields after the command name (which may hold spaces and parentheses): state is field 3, utime 14, stime 15.
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        total += ((Number(rest[11]) + Number(rest[12])) * 1e9) / CLOCK_TICKS;
      }
      return Number.isFinite(total) ? total : undefined;
    }
    // One cgroup may hold several of the pids: count each cgroup once.
    const seen = new Set<string>();
    let total = 0;
    for (const pid of source.pids) {
      const where = cgroupCpuFile(pid, files);
      if (!where) return undefined;
      if (seen.has(where.file)) continue;
      seen.add(where.file);
      const text = readFileSync(where.file, 'utf8');
      if (where.v2) {
        const m = /^usage_usec (\d+)$/m.exec(text);
        if (!m) return undefined;
        total += Number(m[1]) * 1000;
      } else total += Number(text.trim());
    }
    return Number.isFinite(total) ? total : undefined;
  } catch {
    return undefined;
  }
}

/** An instance's usage as reported: average millicores over a window. */
export interface CpuUsage {
  /** Average CPU usage over the window, in millicores (1000 = one core busy). */
  usageMillis: number;
  /** The window's length in milliseconds. */
  windowMs: number;
}

/** Measures the instances' CPU usage between readings; {@link sample} is called before each host report. */
export class CpuMeter {
  private readonly last = new Map<string, { at: number; nanos: number; identity: string }>();
  private readonly usage = new Map<string, CpuUsage>();

  constructor(
    private readonly opts: {
      /** Readings closer than this reuse the last figure (default 2 s). */
      minWindowMs?: number;
      /** Reads a cumulative counter (default: the kernel's files). */
      read?: (source: NonNullable<InstanceState['cpuSource']>) => number | undefined;
      /** Clock in ms (default: performance.now). */
      now?: () => number;
    } = {},
  ) {}

  /** Takes a reading of every instance with a CPU source; forgets instances no longer listed. */
  sample(states: readonly InstanceState[]): void {
    const now = (this.opts.now ?? (() => performance.now()))();
    const read = this.opts.read ?? ((s) => cpuNanos(s));
    const minWindow = this.opts.minWindowMs ?? 2000;
    const present = new Set<string>();
    for (const s of states) {
      const key = `${s.namespace}/${s.name}`;
      present.add(key);
      if (!s.cpuSource) {
        this.last.delete(key);
        this.usage.delete(key);
        continue;
      }
      const identity = `${s.cpuSource.kind}:${s.cpuSource.pids.join(',')}`;
      const prev = this.last.get(key);
      if (prev && prev.identity === identity && now - prev.at < minWindow) continue;
      const nanos = read(s.cpuSource);
      if (nanos === undefined) {
        this.last.delete(key);
        this.usage.delete(key);
        continue;
      }
      this.last.set(key, { at: now, nanos, identity });
      if (!prev || prev.identity !== identity || nanos < prev.nanos || now <= prev.at) {
        this.usage.delete(key);
        continue;
      }
      const windowMs = now - prev.at;
      // ns per ms ÷ 1e6 = cores; × 1000 = millicores.
      this.usage.set(key, {
        usageMillis: Math.round((nanos - prev.nanos) / windowMs / 1000),
        windowMs: Math.round(windowMs),
      });
    }
    for (const key of [...this.last.keys()]) if (!present.has(key)) this.last.delete(key);
    for (const key of [...this.usage.keys()]) if (!present.has(key)) this.usage.delete(key);
  }

  /** The last figure of an instance, if there is one. */
  of(namespace: string, name: string): CpuUsage | undefined {
    return this.usage.get(`${namespace}/${name}`);
  }
}
