/**
 * Docker with gVisor: make sure the daemon answers with the `runsc` runtime registered (deploy/install.sh does the
 * work), run the docker CLI, and clean up containers by label.
 */
import { installSh, run } from './proc.js';

export { BUSYBOX_IMAGE, ensureImage, HTTPD_CMD, type ImageSpec } from './images.js';

/** Result of {@link docker}. */
export interface DockerResult {
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** Exit code. */
  code: number;
}

/** Runs the docker CLI; never throws on a non-zero exit (check `code`). */
export function docker(
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<DockerResult> {
  return run('docker', args, { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000 });
}

let ensured: Promise<void> | undefined;

/**
 * Ensures the Docker daemon answers and has the `runsc` runtime (and the base busybox image); starts or reconfigures
 * dockerd through `deploy/install.sh docker` only when needed. Cached per process.
 */
export function ensureDocker(): Promise<void> {
  ensured ??= (async () => {
    const info = await docker(['info', '--format', '{{json .Runtimes}}'], { timeoutMs: 10_000 });
    const image = await docker(['image', 'inspect', '--format', '{{.Id}}', 'edgeplane/busybox:latest'], {
      timeoutMs: 10_000,
    });
    if (info.code === 0 && info.stdout.includes('"runsc"') && image.code === 0) return;
    await installSh(['docker'], 10 * 60_000);
  })().catch((e) => {
    ensured = undefined;
    throw e;
  });
  return ensured;
}

/**
 * Force-removes every container (running or not) carrying `label` (`key` or `key=value`). Resolves to the removed
 * container ids.
 */
export async function removeContainersByLabel(label: string): Promise<string[]> {
  const ps = await docker(['ps', '-aq', '--no-trunc', '--filter', `label=${label}`]);
  if (ps.code !== 0) throw new Error(`docker ps failed: ${ps.stderr}`);
  const ids = ps.stdout.split('\n').filter(Boolean);
  if (ids.length) {
    const rm = await docker(['rm', '-f', '-v', ...ids]);
    if (rm.code !== 0 && !/No such container/.test(rm.stderr))
      throw new Error(`docker rm failed: ${rm.stderr}`);
  }
  return ids;
}
