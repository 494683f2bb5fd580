/**
 * Test images built from Debian's busybox-static (never pulled): `edgeplane/busybox:latest` and look-alikes such as
 * `nginx:latest` whose CMD runs busybox httpd. The build itself lives in deploy/install.sh (`install.sh image ...`),
 * so shell scripts and TypeScript share one implementation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installSh } from './proc.js';

/** The base test image (busybox applets in /bin, /etc/passwd with root and nobody, /tmp, /var/www/index.html). */
export const BUSYBOX_IMAGE = 'edgeplane/busybox:latest';

/** CMD of an image that serves /var/www over HTTP on port 80 with busybox httpd (like `nginx:latest`). */
export const HTTPD_CMD: readonly string[] = ['/bin/httpd', '-f', '-p', '80', '-h', '/var/www'];

/** What {@link ensureImage} puts into the image config (`docker import --change`). */
export interface ImageSpec {
  /** CMD (exec form); default `["/bin/sh"]`. */
  cmd?: readonly string[];
  /** ENTRYPOINT (exec form). */
  entrypoint?: readonly string[];
  /** ENV entries. */
  env?: Readonly<Record<string, string>>;
  /** WORKDIR. */
  workdir?: string;
  /** EXPOSE entries such as `80` or `53/udp`. */
  exposedPorts?: readonly (number | string)[];
  /** Extra files, by absolute path inside the image (e.g. `{ '/var/www/index.html': '<h1>hi</h1>' }`). */
  files?: Readonly<Record<string, string | Buffer>>;
}

/**
 * Builds `tag` from the busybox rootfs with the given config unless an image of that tag built from the same spec
 * already exists (then it is a fast no-op). Needs a running Docker daemon.
 */
export async function ensureImage(tag: string, spec: ImageSpec = {}): Promise<void> {
  const args = ['image', tag];
  if (spec.cmd) args.push('--cmd', JSON.stringify(spec.cmd));
  if (spec.entrypoint) args.push('--entrypoint', JSON.stringify(spec.entrypoint));
  for (const [k, v] of Object.entries(spec.env ?? {})) args.push('--env', `${k}=${JSON.stringify(v)}`);
  if (spec.workdir) args.push('--workdir', spec.workdir);
  for (const p of spec.exposedPorts ?? []) args.push('--expose', String(p));
  let overlay: string | undefined;
  if (spec.files && Object.keys(spec.files).length) {
    overlay = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-image-'));
    for (const [file, content] of Object.entries(spec.files)) {
      const target = path.join(overlay, path.resolve('/', file));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, content);
      // Scripts (a `#!` first line) are made executable, so an image can carry its own entrypoint.
      if (String(content).startsWith('#!')) fs.chmodSync(target, 0o755);
    }
    args.push('--overlay', overlay);
  }
  try {
    await installSh(args, 5 * 60_000);
  } finally {
    if (overlay) fs.rmSync(overlay, { recursive: true, force: true });
  }
}
