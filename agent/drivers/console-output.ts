/**
 * A VM's serial console (the file qemu writes with `-serial file:…`) as an {@link OutputSource}: the whole file
 * or its last N lines, then, when following, what qemu appends (polled every 250 ms: inotify is not reliable on
 * every filesystem an agent's state directory lives on). Read in 64 KiB pieces, only while not paused.
 */
import { open } from 'node:fs/promises';
import {
  type LogOptions,
  lastLinesOffset,
  type OutputCallback,
  type OutputEnd,
  OutputError,
  type OutputSource,
} from './output.js';

const PIECE = 64 * 1024;
/** How far back `--tail` looks for its lines. */
const TAIL_WINDOW = 4 * 1024 * 1024;
const POLL_MS = 250;

/** The console file of a VM as a source. */
export async function consoleLogs(
  file: string,
  options: LogOptions,
  onData: OutputCallback,
): Promise<OutputSource> {
  if (options.container)
    throw new OutputError(400, `container: a VM has no containers (its serial console is its log)`);
  if (options.sinceSeconds)
    throw new OutputError(400, 'since: a VM console has no timestamps; use tail instead');
  const fh = await open(file, 'r').catch((err) => {
    throw new OutputError(404, `no console of this VM yet (${(err as Error).message})`);
  });
  let position = 0;
  if (options.tail !== undefined) {
    const size = (await fh.stat()).size;
    const start = Math.max(0, size - TAIL_WINDOW);
    const window = Buffer.alloc(size - start);
    await fh.read(window, 0, window.length, start);
    position = start + lastLinesOffset(window, options.tail);
  }
  let paused = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let finish: (end: OutputEnd) => void = () => {};
  const ended = new Promise<OutputEnd>((resolve) => {
    finish = resolve;
  });
  const stop = (end: OutputEnd) => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    void fh.close().catch(() => undefined);
    finish(end);
  };
  let reading = false;
  const pump = async (): Promise<void> => {
    timer = undefined;
    if (reading) return;
    reading = true;
    try {
      while (!paused && !closed) {
        const buf = Buffer.alloc(PIECE);
        const { bytesRead } = await fh.read(buf, 0, PIECE, position);
        if (closed) return;
        if (bytesRead === 0) break;
        position += bytesRead;
        onData('console', buf.subarray(0, bytesRead));
      }
    } catch (err) {
      closed = true;
      return stop({ reason: `error: ${(err as Error).message}` });
    } finally {
      reading = false;
    }
    if (closed || paused) return;
    if (!options.follow) {
      closed = true;
      return stop({ reason: 'end of log' });
    }
    timer = setTimeout(() => void pump(), POLL_MS);
  };
  void pump();
  return {
    ended,
    pause: () => {
      paused = true;
    },
    resume: () => {
      if (!paused || closed) return;
      paused = false;
      if (!timer) void pump();
    },
    close: () => {
      if (closed) return;
      closed = true;
      stop({ reason: 'closed' });
    },
  };
}
