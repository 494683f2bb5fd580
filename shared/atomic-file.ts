/**
 * Crash-safe writes of small state files (vm.json, the seal key): a reader sees the old content or the new one,
 * never a torn or empty file, whatever moment the process or the machine dies at.
 *
 * Algorithm: write the data to a temp file in the same directory (same filesystem, so the rename is atomic),
 * fsync it, rename it over the target, then fsync the directory so the rename itself survives a power loss.
 * Invariant: the target path always names a complete file (the old one until the rename, the new one after);
 * a failed write leaves the target untouched and removes its temp file.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644, less the umask); given, it is set exactly before any byte is written. */
  mode?: number;
}

/** Replaces `path` with `data` atomically and durably (see the module comment). */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
  try {
    try {
      if (opts.mode !== undefined) fchmodSync(fd, opts.mode);
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

/** fsyncs a directory (its entries: a rename or a new file in it), so they survive a power loss. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
