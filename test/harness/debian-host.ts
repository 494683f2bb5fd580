/**
 * A fresh Debian 12 host for installation tests: the rootfs deploy/package/debian-host-rootfs.sh builds with
 * debootstrap from Debian's repositories (cached under /var/cache/edgeplane), imported into the machine's dockerd
 * and booted with systemd as PID 1.
 *
 * The container shares the machine's network namespace (so the host reaches a nats-server on 127.0.0.1 and
 * touches no interface; its own UTS namespace keeps its host name to itself) and the machine's dockerd: the
 * socket and the docker CLI are mounted in, as if docker.io were installed, so the agent on this host runs its
 * gVisor instances with the machine's dockerd + runsc. Nothing else of the machine is visible. It runs with every
 * capability the machine grants (not `--privileged`: the machine's root lacks CAP_SYS_RESOURCE, which
 * `--privileged` asks for) and without seccomp/AppArmor profiles, which systemd's sandboxing needs.
 */
import crypto from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { docker, REPO_DIR } from '../../deploy/stack/index.js';
import { run } from '../../deploy/stack/proc.js';
import { cleanup } from './index.js';

/** A booted Debian host. */
export interface DebianHost {
  /** Container name. */
  name: string;
  /** Runs a shell script (`sh -c`) on the host; never throws (check `code`). */
  sh(script: string, timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Like {@link sh}, but throws with the output when the script fails; resolves to stdout. */
  ok(script: string, timeoutMs?: number): Promise<string>;
  /** Removes the container (everything running in it stops). */
  stop(): Promise<void>;
}

/** Builds (cached) the rootfs and imports it; resolves to the image name. */
export async function debianHostImage(): Promise<string> {
  const built = await run('bash', [path.join(REPO_DIR, 'deploy/package/debian-host-rootfs.sh')], {
    timeoutMs: 20 * 60_000,
  });
  if (built.code !== 0) throw new Error(`debian-host-rootfs.sh failed:\n${built.stderr}`);
  const tar = built.stdout.trim().split('\n').pop() as string;
  const image = `edgeplane-test/debian12-host:${Math.floor(statSync(tar).mtimeMs / 1000)}`;
  if ((await docker(['image', 'inspect', image])).code === 0) return image;
  const imported = await docker(['import', '--change', 'CMD ["/lib/systemd/systemd"]', tar, image], {
    timeoutMs: 5 * 60_000,
  });
  if (imported.code !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
  return image;
}

/** Boots a Debian host with `mounts` (`host path` → `path on the Debian host`, read-only); removed by cleanup. */
export async function startDebianHost(opts: {
  label: string;
  mounts: Record<string, string>;
}): Promise<DebianHost> {
  const image = await debianHostImage();
  const name = `edgeplane-host-${crypto.randomBytes(4).toString('hex')}`;
  const args = [
    'run',
    '-d',
    '--name',
    name,
    '--hostname',
    name,
    '--label',
    opts.label,
    '--network',
    'host',
    '--cap-add',
    'ALL',
    '--cap-drop',
    'SYS_RESOURCE',
    '--security-opt',
    'seccomp=unconfined',
    '--security-opt',
    'apparmor=unconfined',
    '--tmpfs',
    '/run',
    '--tmpfs',
    '/run/lock',
    '--tmpfs',
    '/tmp',
    '-e',
    'container=docker',
    '--stop-signal',
    'SIGRTMIN+3',
    '-v',
    '/sys/fs/cgroup:/sys/fs/cgroup:rw',
    '-v',
    '/var/run/docker.sock:/run/docker.sock',
    '-v',
    '/usr/bin/docker:/usr/bin/docker:ro',
  ];
  for (const [from, to] of Object.entries(opts.mounts)) args.push('-v', `${from}:${to}:ro`);
  const started = await docker([...args, image, '/lib/systemd/systemd']);
  if (started.code !== 0) throw new Error(`docker run failed: ${started.stderr}`);
  const stop = async () => {
    await docker(['rm', '-f', '-v', name]);
  };
  cleanup(stop);
  const sh = async (script: string, timeoutMs = 120_000) => {
    const r = await docker(['exec', name, 'sh', '-c', script], { timeoutMs });
    return r;
  };
  const ok = async (script: string, timeoutMs?: number) => {
    const r = await sh(script, timeoutMs);
    if (r.code !== 0) throw new Error(`on ${name}: ${script}\nexit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  // Booted: systemd reached its default target (degraded would name a failed unit: show it).
  // `--wait` needs systemd's bus, which exists a moment after PID 1 starts.
  const state = await sh(
    'for i in $(seq 100); do s=$(systemctl is-system-running --wait 2>/dev/null) && break; ' +
      '[ "$s" = degraded ] && break; sleep 0.3; done; echo "$s"',
    120_000,
  );
  if (state.stdout.trim() !== 'running') {
    const failed = await sh('systemctl --failed --no-legend');
    throw new Error(`Debian host did not boot cleanly: ${state.stdout.trim()}\n${failed.stdout}`);
  }
  return { name, sh, ok, stop };
}
