/**
 * The host's `DiskPressure` condition, after a Node's: True while a write the agent needs fails on its own disks
 * (the intents copy in the state directory, the VM image cache), False otherwise.
 *
 * Algorithm: each kind of write reports every outcome (`failed(what, path, err)` / `succeeded(what)`); the
 * condition is True exactly when some kind's last outcome was a failure, its message lists each failing kind
 * with the path and the error, and `lastTransitionTime` moves only when the status flips.
 * Invariant: a kind that failed stays listed until a later write of the same kind succeeds — a full disk is
 * never forgotten just because nothing tried to write meanwhile (writers retry: intents.ts, the start backoff).
 */
import type { Condition } from '../../shared/api/meta.js';

/** Only errors of the filesystem count: a download that failed on the network is no disk pressure. */
export function isDiskError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && ['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EFBIG'].includes(code);
}

export class DiskPressure {
  /** Failing kinds of write: what → "<path>: <error>". */
  private readonly failing = new Map<string, string>();
  private since = new Date().toISOString();

  /** Records a failed write; returns true when the condition changed. */
  failed(what: string, path: string, err: Error): boolean {
    const detail = `${path}: ${err.message}`;
    if (this.failing.get(what) === detail) return false;
    if (!this.failing.size) this.since = new Date().toISOString();
    this.failing.set(what, detail);
    return true;
  }

  /** Records a successful write; returns true when the condition changed. */
  succeeded(what: string): boolean {
    if (!this.failing.delete(what)) return false;
    if (!this.failing.size) this.since = new Date().toISOString();
    return true;
  }

  /** The condition as reported. */
  condition(): Condition {
    if (!this.failing.size)
      return {
        type: 'DiskPressure',
        status: 'False',
        reason: 'WritesSucceed',
        message: 'the state directory and the image cache take writes',
        lastTransitionTime: this.since,
      };
    return {
      type: 'DiskPressure',
      status: 'True',
      reason: 'WriteFailed',
      message: [...this.failing].map(([what, detail]) => `${what} not written: ${detail}`).join('; '),
      lastTransitionTime: this.since,
    };
  }
}
