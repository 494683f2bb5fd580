/**
 * Output of an instance as a driver hands it to `edgectl logs` / `edgectl exec`: a pausable source of ordered
 * pieces (stdout, stderr, or a VM's serial console) that ends once, with an exit code for a command.
 *
 * Also the two pure parsers the sources need: Docker's multiplexed stream framing (8-byte header: stream type,
 * three zero bytes, big-endian length; then the payload) and "the last N lines" of a byte buffer.
 */
import type { OutputStreamName } from '../../shared/nats/ops.js';

/** Receives output, in order. */
export type OutputCallback = (stream: OutputStreamName, data: Buffer) => void;

/** How the output ended. */
export interface OutputEnd {
  /** Exit code of a command (exec only). */
  exitCode?: number;
  /** Why it ended, for the client: `exited`, `end of log`, `closed`, or an error. */
  reason: string;
}

/** A running source of output. */
export interface OutputSource {
  /** Resolves once when the output has ended; never rejects (a failure is the `reason`). */
  readonly ended: Promise<OutputEnd>;
  /** Stops reading (the consumer's buffer is full); the runtime waits, nothing is dropped. */
  pause(): void;
  /** Reads again. */
  resume(): void;
  /** Stops the source (the consumer went away); idempotent. */
  close(): void;
}

/** What to read of an instance's output. */
export interface LogOptions {
  /** Container; default: the instance's first container. Not for VMs. */
  container?: string;
  /** Only the last N lines. */
  tail?: number;
  /** Only output of the last N seconds. */
  sinceSeconds?: number;
  /** Keep following new output until closed. */
  follow: boolean;
}

/** An error a client should see as is, with the services API code it is answered with. */
export class OutputError extends Error {
  constructor(
    /** 400 bad request, 404 no such instance/container, 501 not possible with this runtime. */
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Splits Docker's multiplexed stream (non-TTY logs and exec attach) into pieces; feed it bytes as they come. */
export class DockerFrameParser {
  private pending: Buffer = Buffer.alloc(0);

  /** The complete frames in `bytes` plus whatever was left over before; an incomplete frame waits. */
  push(bytes: Buffer): Array<{ stream: OutputStreamName; data: Buffer }> {
    this.pending = this.pending.length ? Buffer.concat([this.pending, bytes]) : bytes;
    const out: Array<{ stream: OutputStreamName; data: Buffer }> = [];
    let at = 0;
    while (this.pending.length - at >= 8) {
      const type = this.pending[at]!;
      const length = this.pending.readUInt32BE(at + 4);
      if (this.pending.length - at - 8 < length) break;
      const data = this.pending.subarray(at + 8, at + 8 + length);
      // 0 is stdin (never attached here); 2 stderr; everything else is shown as stdout.
      if (type !== 0 && length > 0) out.push({ stream: type === 2 ? 'stderr' : 'stdout', data });
      at += 8 + length;
    }
    this.pending = this.pending.subarray(at);
    return out;
  }
}

/**
 * Offset in `bytes` where its last `n` lines start (a trailing newline ends the last line, it does not start an
 * empty one). n = 0 → bytes.length (nothing); fewer lines than n → 0 (everything).
 */
export function lastLinesOffset(bytes: Buffer, n: number): number {
  if (n <= 0) return bytes.length;
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  let lines = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (bytes[i] === 0x0a) {
      lines++;
      if (lines === n) return i + 1;
    }
  }
  return 0;
}
