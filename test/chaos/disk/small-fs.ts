/**
 * Full disks the test owns: a small tmpfs mounted on a fresh directory, filled up with one filler file (written
 * in 1 MiB, then 4 KiB pieces until ENOSPC), and freed again by removing the filler. Nothing of the machine's
 * own filesystems is ever filled. Vitest-free: soak faults may use it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A mounted small filesystem. */
export interface SmallFs {
  /** Its mount point. */
  dir: string;
  /** Size in bytes. */
  sizeBytes: number;
  /** Free bytes now (statfs, as `df` shows them). */
  freeBytes(): number;
  /** Fills it up with a filler file; resolves with the bytes written. Idempotent while full. */
  fill(): number;
  /** Removes the filler: the space is back. */
  release(): void;
  /** Unmounts (lazily: whatever still holds a file is not in the way) and removes the mount point. */
  unmount(): void;
}

/** Mounts a tmpfs of `sizeMiB` (root only) on `at` (created), or on a new directory under the temp dir. */
export function mountSmallFs(sizeMiB: number, at?: string): SmallFs {
  const dir = at ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ep-smallfs-'));
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0755`, 'tmpfs', dir]);
  const filler = path.join(dir, '.filler');
  let mounted = true;
  const freeBytes = () => {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    sizeBytes: sizeMiB * 1024 * 1024,
    freeBytes,
    fill: () => fillUp(filler),
    release: () => fs.rmSync(filler, { force: true }),
    unmount: () => {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', ['-l', dir]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Appends zeros to `file` until its filesystem is full (ENOSPC); returns the bytes written. */
export function fillUp(file: string): number {
  const fd = fs.openSync(file, 'a');
  let written = 0;
  try {
    for (const size of [1024 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          written += fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}
