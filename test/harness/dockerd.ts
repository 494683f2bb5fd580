/**
 * A dockerd of the test's own, for the tests that pause, kill or starve Docker: its own --data-root,
 * --exec-root, --pidfile and socket under a temp dir, the runsc runtime registered as deploy/install.sh registers
 * it on the machine's dockerd, no bridge and no iptables rules, in a network namespace of its own (it must not
 * touch the machine's interfaces or the machine dockerd's chains). The machine's own dockerd is never paused, killed or configured; it is only
 * read from (`docker save`) to load the test images into this one.
 *
 * Everything this dockerd starts (its containerd, the shims, runsc sandboxes and gofers) carries the temp dir in
 * its command line, which is how {@link DedicatedDockerd.processes} finds them, leaked ones included.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type DockerResult, docker } from '../../deploy/stack/docker.js';
import { pidCmdline, run, sleep } from '../../deploy/stack/proc.js';
import { pidAlive } from '../../shared/os.js';
import { cleanup, tempDir, waitFor } from './index.js';

/** Options of {@link startDedicatedDockerd}. */
export interface DedicatedDockerdOptions {
  /** Directory for the socket, exec root, pid file and log (default: a temp dir removed after the test). */
  dir?: string;
  /** Data root (images, containers); default `<dir>/data`. A small filesystem here makes a full image cache. */
  dataRoot?: string;
  /** `live-restore` (containers keep running while dockerd is down or restarting); default false, as install.sh. */
  liveRestore?: boolean;
  /** Images copied from the machine's dockerd (`docker save | docker load`) once it answers. */
  images?: string[];
}

/** A process this dockerd started, from /proc. */
export interface DockerdProcess {
  pid: number;
  /** `dockerd`, `containerd`, `containerd-shim-runc-v2`, `runsc-sandbox`, `runsc-gofer`, … */
  kind: string;
  /** The container id its command line names (shims, sandboxes, gofers), if any. */
  container?: string;
}

/** A running dedicated dockerd. */
export interface DedicatedDockerd {
  /** The temp dir everything lives under. */
  dir: string;
  /** Its unix socket: the agent's `--docker-socket`. */
  socket: string;
  dataRoot: string;
  execRoot: string;
  /** dockerd's pid while it runs. */
  pid(): number | undefined;
  /** The docker CLI against this dockerd (never throws; check `code`). */
  docker(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<DockerResult>;
  /** Every process of this dockerd's tree still alive (found by the temp dir in its command line). */
  processes(): DockerdProcess[];
  /** SIGSTOP dockerd (its containerd and containers keep running). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** SIGKILL dockerd and waits until it is gone (containerd and the shims survive, as on a real host). */
  kill(): Promise<void>;
  /** Starts dockerd again (after {@link kill}) and waits until it answers. */
  restart(): Promise<void>;
  /** Removes its containers, stops it, kills whatever of its tree is left, unmounts and removes its dirs. */
  stop(): Promise<void>;
}

const CONTAINER_ID = /\b([0-9a-f]{64})\b/;

/** Starts a dedicated dockerd; it is stopped and its directories removed when the test (or file) ends. */
export async function startDedicatedDockerd(opts: DedicatedDockerdOptions = {}): Promise<DedicatedDockerd> {
  // Short: the socket path must fit in sun_path (108 bytes).
  const dir = opts.dir ?? tempDir('ep-dockerd-');
  const dataRoot = opts.dataRoot ?? path.join(dir, 'data');
  const execRoot = path.join(dir, 'exec');
  const socket = path.join(dir, 'docker.sock');
  const pidFile = path.join(dir, 'dockerd.pid');
  const logFile = path.join(dir, 'dockerd.log');
  const config = path.join(dir, 'daemon.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      'live-restore': opts.liveRestore ?? false,
      runtimes: { runsc: { path: '/usr/bin/runsc', runtimeArgs: ['--network=host'] } },
    }),
  );
  let pid: number | undefined;
  const cli = (args: string[], o: { input?: string; timeoutMs?: number } = {}) =>
    docker(['-H', `unix://${socket}`, ...args], { timeoutMs: 60_000, ...o });

  const launch = async () => {
    const log = fs.openSync(logFile, 'a');
    // In a network namespace of its own: a dockerd with `--bridge=none` deletes the interface `docker0` it finds
    // (moby removes the default bridge when the bridge is disabled), which in the machine's namespace broke every
    // container of the machine's dockerd. Its containers (runsc --network=host) share that namespace.
    const child = spawn(
      'unshare',
      [
        '--net',
        '--',
        'sh',
        '-c',
        'ip link set lo up && exec "$@"',
        'sh',
        'dockerd',
        '--config-file',
        config,
        '--data-root',
        dataRoot,
        '--exec-root',
        execRoot,
        '--pidfile',
        pidFile,
        '-H',
        `unix://${socket}`,
        '--bridge=none',
        '--iptables=false',
        '--ip6tables=false',
      ],
      { detached: true, stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    child.unref();
    pid = child.pid;
    await waitFor(
      `dedicated dockerd on ${socket}`,
      async () => (await cli(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 })).code === 0,
      {
        timeoutMs: 120_000,
        intervalMs: 250,
        abort: () =>
          pid && !pidAlive(pid)
            ? `dockerd exited: ${fs.readFileSync(logFile, 'utf8').slice(-1500)}`
            : undefined,
      },
    );
  };

  const processes = (): DockerdProcess[] => {
    const out: DockerdProcess[] = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmd = pidCmdline(Number(entry));
      if (!cmd?.includes(dir)) continue;
      // Zombies have an empty command line; the rest are ours.
      const kind = path.basename(cmd.split(' ')[0]!);
      // The docker CLI talking to it (this test's own calls) is not part of its tree.
      if (kind === 'docker' || kind === 'bash') continue;
      const id = CONTAINER_ID.exec(cmd)?.[1];
      out.push({ pid: Number(entry), kind, ...(id ? { container: id } : {}) });
    }
    return out;
  };

  const waitGone = (p: number) =>
    waitFor(`pid ${p} to exit`, () => !pidAlive(p) || isZombie(p), { timeoutMs: 30_000, intervalMs: 50 });

  const handle: DedicatedDockerd = {
    dir,
    socket,
    dataRoot,
    execRoot,
    pid: () => (pid && pidAlive(pid) ? pid : undefined),
    docker: cli,
    processes,
    pause: () => {
      if (pid) process.kill(pid, 'SIGSTOP');
    },
    resume: () => {
      if (pid) process.kill(pid, 'SIGCONT');
    },
    kill: async () => {
      if (!pid) return;
      const p = pid;
      process.kill(p, 'SIGKILL');
      await waitGone(p);
      pid = undefined;
    },
    restart: async () => {
      if (pid && pidAlive(pid)) throw new Error('dedicated dockerd still runs');
      fs.rmSync(pidFile, { force: true });
      await launch();
    },
    stop: async () => {
      if (pid && pidAlive(pid)) {
        process.kill(pid, 'SIGCONT');
        const ids = (await cli(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
        if (ids.length) await cli(['rm', '-f', '-v', ...ids], { timeoutMs: 120_000 });
        process.kill(pid, 'SIGTERM');
        await waitFor('dedicated dockerd to stop', () => !pidAlive(pid!), { timeoutMs: 60_000 }).catch(
          () => undefined,
        );
      }
      // What a killed dockerd left: containerd, shims, sandboxes.
      for (const p of processes()) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await sleep(200);
      const mounts = fs
        .readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(`${dir}/`) || m.startsWith(`${dataRoot}/`) || m === dataRoot)
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) await run('umount', ['-l', m], { timeoutMs: 30_000 });
    },
  };
  cleanup(() => handle.stop());
  await launch();
  if (opts.images?.length) await loadImages(handle, opts.images);
  return handle;
}

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Copies `images` from the machine's dockerd into `d` (`docker save | docker load`); no registry involved. */
export async function loadImages(d: Pick<DedicatedDockerd, 'socket'>, images: string[]): Promise<void> {
  const r = await run(
    'bash',
    ['-o', 'pipefail', '-c', `docker save "$@" | docker -H unix://${d.socket} load`, 'load', ...images],
    { timeoutMs: 300_000 },
  );
  if (r.code !== 0) throw new Error(`loading ${images.join(' ')} into the dedicated dockerd: ${r.stderr}`);
}
