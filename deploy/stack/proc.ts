/**
 * Child-process plumbing shared by the stack modules: free loopback ports, starting a daemon with its output in a
 * log file (optionally detached, with a pid file), graceful stop (SIGTERM, then SIGKILL), readiness polling.
 * `pidAlive` and `freePort` live in shared/os.ts, which the agent uses too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, pidAlive } from '../../shared/os.js';

/** Repository root (deploy/stack/ is two levels below it). */
export const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Cache directory shared with deploy/install.sh (built binaries, the QEMU test guest, stamps). */
export const EDGE_CACHE = process.env.EDGE_CACHE ?? '/var/cache/edgeplane';

/** Options every started daemon accepts. */
export interface DaemonOptions {
  /** Working directory for data, config and logs; created if missing. */
  dir: string;
  /**
   * Start the process in its own session so it outlives this Node process (for the dev script). A pid file is
   * written into `dir`, and {@link stopPidFile} (or the handle's `stop`) stops it from any later process.
   */
  detached?: boolean;
  /** Where the process's stdout and stderr go (appended); defaults to `<dir>/<name>.log`. */
  logFile?: string;
}

/** `n` distinct free ports on 127.0.0.1. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** The command line of a running process, or undefined. */
export function pidCmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `intervalMs` until it returns a truthy value; throws `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  {
    timeoutMs = 30_000,
    intervalMs = 100,
    abort,
  }: { timeoutMs?: number; intervalMs?: number; abort?: () => string | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    const reason = abort?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const detail = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portAccepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Last `lines` lines of a file ('' when unreadable). */
export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** A started daemon. */
export interface Proc {
  /** Short name (also the pid/log file stem). */
  readonly name: string;
  /** Process id. */
  readonly pid: number;
  /** File receiving stdout and stderr. */
  readonly logFile: string;
  /** Pid file (written for detached processes; removed on stop). */
  readonly pidFile: string;
  /** Exit code or signal once the process ended; undefined while running. */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 10 s). Idempotent; resolves when the process is gone. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL; resolves when the process is gone. Idempotent. */
  kill(): Promise<void>;
}

const attached = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Nothing attached may outlive the Node process (a crashed test run must not leave daemons behind).
  process.on('exit', () => {
    for (const c of attached) {
      try {
        c.kill('SIGKILL');
      } catch {}
    }
  });
}

/** Options of {@link startProc}. */
export interface StartProcOptions extends DaemonOptions {
  /** Short name: pid file `<dir>/<name>.pid`, default log `<dir>/<name>.log`. */
  name: string;
  /** Executable. */
  command: string;
  /** Arguments. */
  args: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** Spawns a daemon with stdout+stderr appended to its log file. */
export function startProc(opts: StartProcOptions): Proc {
  fs.mkdirSync(opts.dir, { recursive: true });
  const logFile = opts.logFile ?? path.join(opts.dir, `${opts.name}.log`);
  const pidFile = path.join(opts.dir, `${opts.name}.pid`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a');
  fs.writeSync(fd, `---- ${new Date().toISOString()} ${opts.command} ${opts.args.join(' ')}\n`);
  const child = spawn(opts.command, opts.args, {
    cwd: opts.dir,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd],
    detached: opts.detached ?? false,
  });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${opts.command}`);
  const pid = child.pid;
  let exit: Proc['exit'];
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      attached.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      exit = { code: -1, signal: null };
      fs.appendFileSync(logFile, `spawn error: ${err.message}\n`);
      attached.delete(child);
      resolve();
    });
  });
  if (opts.detached) {
    fs.writeFileSync(pidFile, `${pid}\n`);
    child.unref();
  } else {
    installExitHook();
    attached.add(child);
  }
  const gone = async (timeoutMs: number) => {
    await Promise.race([exited, sleep(timeoutMs)]);
    return exit !== undefined;
  };
  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs = 10_000) => {
    stopping ??= (async () => {
      if (exit === undefined) {
        child.kill('SIGTERM');
        if (!(await gone(timeoutMs))) {
          child.kill('SIGKILL');
          await gone(10_000);
        }
      }
      fs.rmSync(pidFile, { force: true });
    })();
    return stopping;
  };
  return {
    name: opts.name,
    pid,
    logFile,
    pidFile,
    get exit() {
      return exit;
    },
    stop,
    kill: () => {
      if (exit === undefined) child.kill('SIGKILL');
      return stop(5_000);
    },
  };
}

/**
 * Stops the process named in a pid file written by a detached start (from any process): SIGTERM, SIGKILL after
 * `timeoutMs`. `expect` (a substring of its command line) guards against a recycled pid. Removes the pid file.
 * Resolves to false when no such process was running.
 */
export async function stopPidFile(
  pidFile: string,
  { timeoutMs = 10_000, expect }: { timeoutMs?: number; expect?: string } = {},
): Promise<boolean> {
  let pid: number;
  try {
    pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return false;
  }
  const running =
    Number.isInteger(pid) &&
    pid > 1 &&
    pidAlive(pid) &&
    (!expect || (pidCmdline(pid) ?? '').includes(expect));
  if (running) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
    if (pidAlive(pid)) {
      process.kill(pid, 'SIGKILL');
      while (pidAlive(pid)) await sleep(50);
    }
  }
  fs.rmSync(pidFile, { force: true });
  return running;
}

/** Stops every process of a detached stack whose pid files (`*.pid`) are in `dir`. */
export async function stopPidFilesIn(dir: string, timeoutMs = 10_000): Promise<string[]> {
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.pid'));
  } catch {
    return [];
  }
  // kube-apiserver before etcd, then the rest in any order.
  files.sort((a, b) => rank(a) - rank(b));
  const stopped: string[] = [];
  for (const f of files)
    if (await stopPidFile(path.join(dir, f), { timeoutMs })) stopped.push(f.replace(/\.pid$/, ''));
  return stopped;
}
const rank = (f: string) => (f.startsWith('kube-apiserver') ? 0 : f.startsWith('etcd') ? 2 : 1);

/** True when an error (or a daemon's log) says a port was taken, so the caller may retry with other ports. */
export function isAddrInUse(text: string): boolean {
  return /address already in use|EADDRINUSE|bind: address/i.test(text);
}

/** Runs a command to completion and returns its output (never throws on a non-zero exit). */
export function run(
  command: string,
  args: string[],
  {
    input,
    env,
    cwd,
    timeoutMs,
  }: { input?: string; env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (err) => {
      stderr += err.message;
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Runs `bash deploy/install.sh ARGS...` (the single implementation of builds shared with the install step). */
export async function installSh(args: string[], timeoutMs = 30 * 60_000): Promise<string> {
  const r = await run('bash', [path.join(REPO_DIR, 'deploy', 'install.sh'), ...args], { timeoutMs });
  if (r.code !== 0)
    throw new Error(`deploy/install.sh ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`.trim());
  return r.stdout;
}

/** GET a URL (http only, loopback) and return status and body; rejects on connection errors. */
export async function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}
