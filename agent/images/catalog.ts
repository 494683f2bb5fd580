/**
 * The VM image catalog: maps a VM image name of the docs' form (`projects/<project>/global/images/<name>`) to the
 * artifacts that boot it — a kernel and initrd, or a disk image — each with a URL and a sha256. The agent
 * downloads an artifact once over HTTP(S), verifies it, and keeps it in a content-addressed cache.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  createWriteStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { fsyncDir } from '../../shared/atomic-file.js';
import { formatIssues } from '../../shared/nats/messages.js';
import { pidAlive } from '../../shared/os.js';
import { parseYaml } from '../yaml.js';

/** One downloadable file. */
export const Artifact = z
  .object({
    /** Where to download it (http or https). */
    url: z.url({ protocol: /^https?$/ }),
    /** Expected sha256 of the content, lower-case hex. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits'),
  })
  .strict();
export type Artifact = z.infer<typeof Artifact>;

/** How one VM image boots: direct kernel boot, or a disk image. */
export const CatalogImage = z
  .object({
    /** Kernel (bzImage) for direct boot. */
    kernel: Artifact.optional(),
    /** Initial ramdisk for direct boot. */
    initrd: Artifact.optional(),
    /** Kernel command line (direct boot). */
    append: z.string().optional(),
    /** Disk image; the VM boots from a copy-on-write overlay of it. */
    disk: Artifact.extend({ format: z.enum(['qcow2', 'raw']).default('qcow2') }).optional(),
  })
  .strict()
  .refine((i) => Boolean(i.kernel) !== Boolean(i.disk), 'needs either kernel (+ initrd) or disk')
  .refine((i) => !i.initrd || i.kernel, 'initrd needs kernel');
export type CatalogImage = z.infer<typeof CatalogImage>;

/** The catalog file: `images: { <name>: CatalogImage }`. */
export const Catalog = z.object({ images: z.record(z.string(), CatalogImage) }).strict();
export type Catalog = z.infer<typeof Catalog>;

/** Reads and validates a catalog file (YAML or JSON); the error names the bad field. */
export function loadCatalog(path: string): Catalog {
  const parsed = Catalog.safeParse(parseYaml(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(`image catalog ${path}: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/** Options of {@link ArtifactCache}. */
export interface ArtifactCacheOptions {
  /**
   * Told of every download's write to the cache: nothing when it landed, the error when the filesystem refused
   * it (ENOSPC, EROFS, …; network and checksum failures are not the cache's).
   */
  onWrite?: (err?: NodeJS.ErrnoException) => void;
}

/**
 * A content-addressed cache of verified artifacts. Concurrent fetches of one artifact share one download. A
 * download goes to `<name>.<pid>.part`, is fsynced and renamed into place, so a cached name is always a whole,
 * verified file; partial files of processes that no longer run (an agent killed mid-download) are removed
 * before the next download, so they never pile up in the cache.
 */
export class ArtifactCache {
  private inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly opts: ArtifactCacheOptions = {},
  ) {}

  /** Removes partial downloads of processes that are gone; returns their names. */
  removeStalePartials(): string[] {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const stale = names.filter((n) => {
      const m = /^sha256-[0-9a-f]{64}\.(\d+)\.part$/.exec(n);
      return m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
    });
    for (const n of stale) rmSync(join(this.dir, n), { force: true });
    return stale;
  }

  /** Path of the verified copy of the artifact when it is cached (no download). */
  cached(a: Artifact): string | undefined {
    const path = join(this.dir, `sha256-${a.sha256}`);
    return existsSync(path) ? path : undefined;
  }

  /** Path of a verified copy of the artifact, downloading it first when it is not cached. */
  fetch(a: Artifact): Promise<string> {
    const path = join(this.dir, `sha256-${a.sha256}`);
    if (existsSync(path)) return Promise.resolve(path);
    let p = this.inflight.get(a.sha256);
    if (!p) {
      p = this.download(a, path).finally(() => this.inflight.delete(a.sha256));
      this.inflight.set(a.sha256, p);
    }
    return p;
  }

  private async download(a: Artifact, path: string): Promise<string> {
    const tmp = `${path}.${process.pid}.part`;
    try {
      mkdirSync(this.dir, { recursive: true });
      this.removeStalePartials();
      const body = await httpGet(a.url, AbortSignal.timeout(10 * 60_000));
      const hash = createHash('sha256');
      body.on('data', (chunk: Buffer) => hash.update(chunk));
      await pipeline(body, createWriteStream(tmp, { mode: 0o644 }));
      const got = hash.digest('hex');
      if (got !== a.sha256) throw new Error(`sha256 is ${got}, the catalog says ${a.sha256}`);
      const fd = openSync(tmp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      fsyncDir(this.dir);
      this.opts.onWrite?.();
      return path;
    } catch (err) {
      rmSync(tmp, { force: true });
      const e = err as NodeJS.ErrnoException;
      if (e.syscall && e.code) this.opts.onWrite?.(e);
      throw new Error(`downloading ${a.url}: ${e.message}`);
    }
  }
}

/**
 * The body of a successful GET of `url` (http or https), following up to 5 redirects. node:http, not `fetch`:
 * the agent runs V8 in lite mode (agent/lean.ts), which is jitless, and `fetch` (undici) compiles its HTTP
 * parser to WebAssembly — V8 then aborts the whole process (`Check failed: !v8_flags.jitless`).
 */
export function httpGet(url: string, signal: AbortSignal, redirects = 5): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { signal }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects > 0) {
        res.resume();
        resolve(httpGet(new URL(res.headers.location, url).toString(), signal, redirects - 1));
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new Error(`HTTP ${status}`));
        return;
      }
      resolve(res);
    });
    req.on('error', reject);
  });
}

/**
 * A getter for the catalog in `path`, re-read when the file changes (operators add images without a restart).
 * No path: an empty catalog. A file that stops parsing keeps the last good catalog and logs why.
 */
export function catalogFile(path: string | undefined, onError: (message: string) => void): () => Catalog {
  let last: Catalog = { images: {} };
  let lastMtime = -1;
  return () => {
    if (!path) return last;
    try {
      const mtime = statSync(path).mtimeMs;
      if (mtime !== lastMtime) {
        lastMtime = mtime;
        last = loadCatalog(path);
      }
    } catch (err) {
      onError((err as Error).message);
    }
    return last;
  };
}
