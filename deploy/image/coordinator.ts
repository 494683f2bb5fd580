/**
 * The coordinator's container image, built with the local Docker and nothing pulled: a rootfs of
 *   /app/edge-coordinator.mjs   an esbuild bundle of coordinator/main.ts (every npm dependency inside),
 *   /app/web/                   the dashboard's page files (coordinator/observability/web/, served as they are),
 *   /usr/local/bin/node         this machine's Node binary (process.execPath, stripped when `strip` exists),
 *   the shared libraries `ldd` says it loads (and the dynamic loader), at the paths ldd prints,
 *   /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group with a `nonroot` user (65532), /tmp,
 * piped as a tar into `docker import` with the image config as `--change` lines (as deploy/install.sh builds the
 * busybox image). Invariant: the rootfs holds nothing but those files, so what runs in the image is exactly what
 * the project built and tested on this machine.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { REPO_DIR, run } from '../stack/proc.js';

/** Repository name of the image. */
export const COORDINATOR_IMAGE = 'edgeplane/coordinator';

/** Port of the coordinator's HTTP server (/metrics, /healthz, /readyz), `--metrics-address` 0.0.0.0:9464. */
export const COORDINATOR_HTTP_PORT = 9464;

/** The user the image runs as (distroless's `nonroot`). */
export const NONROOT_UID = 65532;

/** Where the bundle and Node live inside the image. */
const BUNDLE_PATH = '/app/edge-coordinator.mjs';
const NODE_PATH = '/usr/local/bin/node';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The version in package.json, which tags the image. */
export function projectVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_DIR, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** `edgeplane/coordinator:<version of package.json>`. */
export function coordinatorImageTag(version = projectVersion()): string {
  return `${COORDINATOR_IMAGE}:${version}`;
}

/**
 * The absolute paths of the shared objects in `ldd` output, the dynamic loader included, in order and without
 * duplicates. Throws on a library ldd could not find (`=> not found`): the image would not start.
 */
export function parseLdd(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('linux-vdso') || t.startsWith('linux-gate')) continue;
    if (/=>\s*not found/.test(t)) throw new Error(`ldd: ${t.split(/\s/)[0]} not found`);
    const m = t.match(/=>\s*(\/\S+)/) ?? t.match(/^(\/\S+)/);
    if (m?.[1] && !out.includes(m[1])) out.push(m[1]);
  }
  return out;
}

/** The image config, as `docker import --change` lines. */
export function imageChanges(version: string): string[] {
  return [
    `ENTRYPOINT ["${NODE_PATH}", "${BUNDLE_PATH}"]`,
    'CMD []',
    `USER ${NONROOT_UID}:${NONROOT_UID}`,
    'WORKDIR /',
    // JSON logs (no pino-pretty worker, which the bundle does not carry), and the system CAs beside Node's own.
    'ENV LOG_FORMAT=json',
    `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`,
    `EXPOSE ${COORDINATOR_HTTP_PORT}`,
    `LABEL org.opencontainers.image.title="edge-coordinator" org.opencontainers.image.version="${version}" org.opencontainers.image.source="https://github.com/edgeplane/edgeplane"`,
  ];
}

/** Options of {@link buildCoordinatorImage}. */
export interface BuildImageOptions {
  /** Image tag (default `edgeplane/coordinator:<version>`). */
  tag?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** What was built. */
export interface BuiltImage {
  /** The tag given to the image. */
  tag: string;
  /** Image id (sha256:…). */
  id: string;
  /** Size Docker reports for the image, in bytes. */
  sizeBytes: number;
  /** Size of the bundle, in bytes. */
  bundleBytes: number;
}

/** Bundles the coordinator, assembles the rootfs in a temp dir and imports it into the local Docker. */
export async function buildCoordinatorImage(opts: BuildImageOptions = {}): Promise<BuiltImage> {
  const version = projectVersion();
  const tag = opts.tag ?? coordinatorImageTag(version);
  const log = opts.log ?? (() => {});
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-image-'));
  try {
    const bundle = path.join(root, BUNDLE_PATH);
    log(`bundling coordinator/main.ts -> ${BUNDLE_PATH}`);
    await build({
      entryPoints: [path.join(REPO_DIR, 'coordinator/main.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      minify: true,
      legalComments: 'none',
      logLevel: 'error',
      // CommonJS dependencies call require(); an ES module has none unless it is made.
      banner: {
        js: "import { createRequire as __edgeRequire } from 'node:module'; const require = __edgeRequire(import.meta.url);",
      },
    });
    // The dashboard's plain files, found next to the bundle (coordinator/observability/server.ts looks there).
    const web = path.join(REPO_DIR, 'coordinator/observability/web');
    for (const f of fs.readdirSync(web)) copyFile(path.join(web, f), path.join(root, '/app/web', f));
    const node = fs.realpathSync(process.execPath);
    log(`node ${process.version} from ${node}`);
    copyFile(node, path.join(root, NODE_PATH));
    const stripped = await run('strip', ['--strip-all', path.join(root, NODE_PATH)]);
    if (stripped.code !== 0)
      log(`strip not available or failed; Node kept unstripped (${stripped.stderr.trim()})`);
    const ldd = await run('ldd', [node]);
    if (ldd.code !== 0) throw new Error(`ldd ${node} failed: ${ldd.stderr}`);
    for (const lib of parseLdd(ldd.stdout)) copyFile(lib, path.join(root, lib));
    if (!fs.existsSync(CA_BUNDLE)) throw new Error(`${CA_BUNDLE} missing (install Debian's ca-certificates)`);
    copyFile(CA_BUNDLE, path.join(root, CA_BUNDLE));
    writeFile(
      root,
      '/etc/passwd',
      `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT_UID}:${NONROOT_UID}:nonroot:/tmp:/sbin/nologin\n`,
    );
    writeFile(root, '/etc/group', `root:x:0:\nnonroot:x:${NONROOT_UID}:\n`);
    fs.mkdirSync(path.join(root, 'tmp'));
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    const smoke = await run(path.join(root, NODE_PATH), [bundle, '--version']);
    if (smoke.code !== 0 || smoke.stdout.trim() !== version)
      throw new Error(`the bundle does not start: ${smoke.stderr || smoke.stdout}`);
    log(`docker import -> ${tag}`);
    const id = await dockerImport(root, tag, imageChanges(version));
    const inspect = await run('docker', ['image', 'inspect', '--format', '{{.Size}}', tag]);
    return { tag, id, sizeBytes: Number(inspect.stdout.trim()), bundleBytes: fs.statSync(bundle).size };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function copyFile(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(fs.realpathSync(from), to);
  fs.chmodSync(to, fs.statSync(from).mode & 0o777);
}

function writeFile(root: string, file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  fs.writeFileSync(path.join(root, file), text, { mode: 0o644 });
}

/** `tar -c root | docker import --change … - tag`; resolves to the image id. */
function dockerImport(root: string, tag: string, changes: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-c', '.'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const imp = spawn('docker', ['import', ...changes.flatMap((c) => ['--change', c]), '-', tag], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    tar.stdout.pipe(imp.stdin);
    let out = '';
    let err = '';
    tar.stderr.on('data', (d) => {
      err += d;
    });
    imp.stdout.on('data', (d) => {
      out += d;
    });
    imp.stderr.on('data', (d) => {
      err += d;
    });
    tar.on('error', reject);
    imp.on('error', reject);
    imp.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new Error(`docker import ${tag} failed (${code}): ${err.trim()}`));
    });
  });
}
