/**
 * Output sessions of `edgectl logs` and `edgectl exec` on the agent: each holds one {@link OutputSource} and the
 * output not yet pulled, and answers pulls in order (protocol in shared/nats/ops.ts).
 *
 * Invariants:
 * - a session buffers at most {@link OPS_LIMITS.bufferBytes} plus one piece of the source: above that the source is
 *   paused, and resumed once a pull has taken the buffer below it again;
 * - every chunk has the next `seq`; a pull with `after` = seq − 1 of the last chunk gets that chunk again (its
 *   reply was lost), any other `after` but the last seq is refused, so output is never skipped or doubled;
 * - the chunk carrying `end` is sent only once the buffer is empty; the session then stays a little (2 poll waits)
 *   for a repeat of that pull; a session nobody pulls for {@link OPS_LIMITS.idleMs} is closed with its source;
 * - at most {@link OPS_LIMITS.sessions} unfinished sessions per agent.
 */
import { randomBytes } from 'node:crypto';
import { MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { OPS_ERRORS, OPS_LIMITS, type OutputChunk, type OutputStreamName } from '../../shared/nats/ops.js';
import type { OutputCallback, OutputEnd, OutputSource } from '../drivers/output.js';

/** An error answered with a services API code. */
export class OpsError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Bounds, overridable in tests. */
export type SessionLimits = { [K in keyof typeof OPS_LIMITS]: number };

/** One session. */
export class OutputSession {
  private buffer: Array<{ stream: OutputStreamName; data: Buffer }> = [];
  private bytes = 0;
  private paused = false;
  private seq = 0;
  private last: OutputChunk;
  private end: OutputEnd | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  private source: OutputSource | undefined;
  /** When it was last pulled (ms since epoch). */
  lastPull = Date.now();

  constructor(
    /** Random id the client pulls with. */
    readonly id: string,
    /** Operator that opened it; only they may pull it. */
    readonly caller: string,
    private readonly limits: SessionLimits,
  ) {
    this.last = { v: MESSAGE_VERSION, session: id, seq: 0, data: [] };
  }

  /** The callback to hand the source. */
  readonly onData: OutputCallback = (stream, data) => {
    if (!data.length) return;
    this.buffer.push({ stream, data });
    this.bytes += data.length;
    if (this.bytes > this.limits.bufferBytes && !this.paused) {
      this.paused = true;
      this.source?.pause();
    }
    this.wake?.();
  };

  /** Attaches the source once it runs; its end ends the session. */
  attach(source: OutputSource): void {
    this.source = source;
    if (this.paused) source.pause();
    void source.ended.then((end) => {
      this.end = end;
      this.wake?.();
    });
  }

  /** Bytes waiting to be pulled. */
  get buffered(): number {
    return this.bytes;
  }

  /** The first reply (seq 0, no output yet). */
  get first(): OutputChunk {
    return this.last;
  }

  /** Whether the chunk with `end` has been sent. */
  get finished(): boolean {
    return this.last.end !== undefined;
  }

  /** Answers a pull: the next chunk, waiting up to pollWaitMs for output; an empty chunk when none came. */
  async next(after: number): Promise<OutputChunk> {
    this.lastPull = Date.now();
    if (after === this.last.seq - 1) return this.last;
    if (after !== this.last.seq)
      throw new OpsError(OPS_ERRORS.badRequest, `after: expected ${this.last.seq}, got ${after}`);
    if (this.finished) return this.last;
    if (this.wake) throw new OpsError(OPS_ERRORS.badRequest, 'a pull of this session is already waiting');
    // Wait for a full chunk, but at most lingerMs once there is some output (so bulk output crosses in few pulls
    // and a followed log line in ~lingerMs), and at most pollWaitMs in all (then an empty chunk: a heartbeat).
    const deadline = Date.now() + this.limits.pollWaitMs;
    let linger = this.bytes ? Date.now() + this.limits.lingerMs : undefined;
    while (this.bytes < this.limits.chunkBytes && !this.end && !this.closed) {
      const wait = Math.min(deadline, linger ?? deadline) - Date.now();
      if (wait <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
      if (this.bytes && linger === undefined) linger = Date.now() + this.limits.lingerMs;
    }
    this.lastPull = Date.now();
    const data = this.take();
    this.last = {
      v: MESSAGE_VERSION,
      session: this.id,
      seq: this.seq + 1,
      data: data.map((d) => ({ stream: d.stream, b64: d.data.toString('base64') })),
      ...(this.end && !this.bytes ? { end: { ...this.end } } : {}),
    };
    this.seq++;
    return this.last;
  }

  /** Takes up to chunkBytes from the front of the buffer, and resumes the source below the bound. */
  private take(): Array<{ stream: OutputStreamName; data: Buffer }> {
    const out: Array<{ stream: OutputStreamName; data: Buffer }> = [];
    let room = this.limits.chunkBytes;
    while (room > 0 && this.buffer.length) {
      const head = this.buffer[0]!;
      if (head.data.length <= room) {
        this.buffer.shift();
        out.push(head);
        room -= head.data.length;
        this.bytes -= head.data.length;
      } else {
        out.push({ stream: head.stream, data: head.data.subarray(0, room) });
        head.data = head.data.subarray(room);
        this.bytes -= room;
        room = 0;
      }
    }
    if (this.paused && this.bytes <= this.limits.bufferBytes) {
      this.paused = false;
      this.source?.resume();
    }
    return out;
  }

  /** Closes the source; a waiting pull is answered. */
  close(): void {
    this.closed = true;
    this.source?.close();
    this.wake?.();
  }
}

/** The sessions of one agent. */
export class SessionStore {
  private readonly sessions = new Map<string, OutputSession>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly limits: SessionLimits = OPS_LIMITS) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(5000, limits.idleMs));
    this.sweeper.unref();
  }

  /** Open sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /** Opens a session for `caller` whose source `start` makes; answers its first chunk. */
  async open(caller: string, start: (onData: OutputCallback) => Promise<OutputSource>): Promise<OutputChunk> {
    this.sweep();
    const open = [...this.sessions.values()].filter((s) => !s.finished).length;
    if (open >= this.limits.sessions)
      throw new OpsError(OPS_ERRORS.tooMany, `this host already serves ${open} sessions; try again later`);
    const session = new OutputSession(randomBytes(12).toString('hex'), caller, this.limits);
    session.attach(await start(session.onData));
    this.sessions.set(session.id, session);
    return session.first;
  }

  /** Answers a pull of `caller`. */
  async next(caller: string, id: string, after: number): Promise<OutputChunk> {
    const session = this.sessions.get(id);
    if (!session) throw new OpsError(OPS_ERRORS.gone, `no session ${id} (ended or idle for too long)`);
    if (session.caller !== caller) throw new OpsError(OPS_ERRORS.forbidden, `session ${id} is not yours`);
    return session.next(after);
  }

  /** Closes sessions nobody pulled for idleMs; a finished one is kept only for a repeat of its last pull. */
  sweep(now = Date.now()): void {
    for (const [id, s] of this.sessions) {
      const keep = s.finished ? Math.min(this.limits.idleMs, 2 * this.limits.pollWaitMs) : this.limits.idleMs;
      if (now - s.lastPull > keep) {
        s.close();
        this.sessions.delete(id);
      }
    }
  }

  /** Closes every session. */
  stop(): void {
    clearInterval(this.sweeper);
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
  }
}
