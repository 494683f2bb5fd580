/**
 * CPU and memory of other processes, read from /proc (Linux): what the control-plane benchmark reports for the
 * coordinator, kube-apiserver and etcd side by side.
 */
import { readFileSync } from 'node:fs';

/** One reading of a process. */
export interface ProcStats {
  /** utime + stime so far, in seconds. */
  cpuSeconds: number;
  /** Resident set size now, in bytes (VmRSS). */
  rss: number;
  /** Peak resident set size, in bytes (VmHWM). */
  peakRss: number;
}

/** Reads a process's CPU time and RSS from /proc; zeros when it is gone. */
export function procStats(pid: number): ProcStats {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { cpuSeconds: ticks / 100, rss: kb('VmRSS'), peakRss: kb('VmHWM') };
  } catch {
    return { cpuSeconds: 0, rss: 0, peakRss: 0 };
  }
}

/** CPU cores a set of processes used between two readings taken `seconds` apart. */
export function coresBetween(a: readonly ProcStats[], b: readonly ProcStats[], seconds: number): number {
  let cpu = 0;
  for (let i = 0; i < a.length; i++) cpu += (b[i]?.cpuSeconds ?? 0) - (a[i]?.cpuSeconds ?? 0);
  return seconds > 0 ? cpu / seconds : 0;
}

/** Samples the peak RSS of processes every `everyMs` (VmHWM is per process; this is the peak of the sum). */
export function startRssSampler(pids: readonly number[], everyMs = 1000): { peak(): number; stop(): void } {
  let peak = 0;
  const sample = () => {
    const sum = pids.reduce((n, p) => n + procStats(p).rss, 0);
    if (sum > peak) peak = sum;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    peak: () => {
      sample();
      return peak;
    },
    stop: () => clearInterval(timer),
  };
}
