/** The agent's CPU meter: cgroup v1/v2 and /proc/<pid>/stat readings, windows, restarts. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CpuMeter, cgroupCpuFile, cpuNanos } from '../../agent/cpu-usage.js';
import type { InstanceState } from '../../agent/drivers/driver.js';

const state = (name: string, cpuSource?: InstanceState['cpuSource']): InstanceState => ({
  namespace: 'ns',
  name,
  workload: 'w',
  templateHash: 'h',
  phase: 'Running',
  ready: true,
  runtime: 'runsc',
  ports: [],
  ips: [],
  containers: [],
  ...(cpuSource ? { cpuSource } : {}),
});

function fakeRoot(): { proc: string; cgroup: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cpu-'));
  const w = (f: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), text);
  };
  // pid 10: cgroup v1 (separate cpuacct mount); 11: combined cpu,cpuacct; 12: cgroup v2.
  w('proc/10/cgroup', '4:memory:/docker/aaa\n2:cpuacct:/docker/aaa\n1:cpu:/docker/aaa\n0::/\n');
  w('cgroup/cpuacct/docker/aaa/cpuacct.usage', '5000000000\n');
  w('proc/11/cgroup', '3:cpu,cpuacct:/docker/bbb\n');
  w('cgroup/cpu,cpuacct/docker/bbb/cpuacct.usage', '7000000000\n');
  w('proc/12/cgroup', '0::/system.slice/docker-ccc.scope\n');
  w(
    'cgroup/system.slice/docker-ccc.scope/cpu.stat',
    'usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n',
  );
  // pid 20: a qemu process, utime 250 + stime 50 ticks = 3 s; a command name with spaces and parentheses.
  w('proc/20/stat', '20 (qemu (x) y) S 1 20 20 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 100 0 0\n');
  return { proc: path.join(root, 'proc'), cgroup: path.join(root, 'cgroup') };
}

describe('cpu readings', () => {
  it('finds the cgroup of a pid on v1 (either mount) and v2, and reads it', () => {
    const files = fakeRoot();
    expect(cgroupCpuFile(10, files)).toEqual({
      file: `${files.cgroup}/cpuacct/docker/aaa/cpuacct.usage`,
      v2: false,
    });
    expect(cpuNanos({ kind: 'cgroup', pids: [10] }, files)).toBe(5e9);
    expect(cpuNanos({ kind: 'cgroup', pids: [11] }, files)).toBe(7e9);
    expect(cpuNanos({ kind: 'cgroup', pids: [12] }, files)).toBe(3e9);
    // Two pids, two cgroups, summed; the same cgroup twice counts once.
    expect(cpuNanos({ kind: 'cgroup', pids: [10, 11, 10] }, files)).toBe(12e9);
    expect(cpuNanos({ kind: 'cgroup', pids: [99] }, files)).toBeUndefined();
  });

  it('reads a process user + system time from /proc/<pid>/stat', () => {
    const files = fakeRoot();
    expect(cpuNanos({ kind: 'process', pids: [20] }, files)).toBe(3e9);
    // And the real thing: this process has used some CPU.
    expect(cpuNanos({ kind: 'process', pids: [process.pid] })).toBeGreaterThan(0);
  });
});

describe('CpuMeter', () => {
  it('reports millicores over the window, reuses the figure within minWindowMs, restarts on a new pid', () => {
    let now = 0;
    let nanos = 0;
    const meter = new CpuMeter({ now: () => now, read: () => nanos, minWindowMs: 2000 });
    const a = state('a', { kind: 'cgroup', pids: [1] });
    meter.sample([a]);
    expect(meter.of('ns', 'a')).toBeUndefined();
    now = 5000;
    nanos = 2.5e9; // 2.5 CPU-seconds in 5 s: 500 millicores
    meter.sample([a]);
    expect(meter.of('ns', 'a')).toEqual({ usageMillis: 500, windowMs: 5000 });
    now = 5500;
    nanos = 5e9;
    meter.sample([a]);
    expect(meter.of('ns', 'a')).toEqual({ usageMillis: 500, windowMs: 5000 });
    // Restarted (another pid): no figure until the next window.
    now = 10_000;
    meter.sample([state('a', { kind: 'cgroup', pids: [2] })]);
    expect(meter.of('ns', 'a')).toBeUndefined();
    // A counter that went back: no negative figure.
    now = 15_000;
    nanos = 1e9;
    meter.sample([state('a', { kind: 'cgroup', pids: [2] })]);
    expect(meter.of('ns', 'a')).toBeUndefined();
    // Gone: forgotten.
    meter.sample([]);
    expect(meter.of('ns', 'a')).toBeUndefined();
  });

  it('measures a real busy process: the CPU time the process itself counts', () => {
    const meter = new CpuMeter({ minWindowMs: 0 });
    const me = state('me', { kind: 'process', pids: [process.pid] });
    const before = process.cpuUsage();
    meter.sample([me]);
    const until = performance.now() + 300;
    while (performance.now() < until) {
      /* burn */
    }
    meter.sample([me]);
    const after = process.cpuUsage(before);
    const { usageMillis, windowMs } = meter.of('ns', 'me')!;
    // CPU-milliseconds in the window, from /proc (10 ms ticks) and from Node: the same figure, whatever the load.
    const fromProc = (usageMillis * windowMs) / 1000;
    const fromNode = (after.user + after.system) / 1000;
    expect(fromProc).toBeGreaterThan(0);
    expect(Math.abs(fromProc - fromNode)).toBeLessThanOrEqual(40);
  });
});
