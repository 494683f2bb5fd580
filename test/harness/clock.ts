/**
 * Wall-clock steps for one process, through libfaketime (Debian's `faketime`, installed by deploy/install.sh):
 * the process is started with {@link FakeClock.env} (LD_PRELOAD of libfaketime, reading its offset from a file on
 * every call), and {@link FakeClock.step} changes the offset while it runs. The monotonic clock is left alone
 * (DONT_FAKE_MONOTONIC), as a real NTP step or a restored VM snapshot leaves CLOCK_MONOTONIC alone; only this
 * process sees the step, never the machine.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Where Debian puts libfaketime. */
export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/** One process's fake wall clock. */
export interface FakeClock {
  /** Environment to start the process with. */
  readonly env: Record<string, string>;
  /** Current offset from the real clock, in seconds. */
  readonly offsetSeconds: number;
  /** Sets the offset (seconds, negative = behind); the process sees it at its next clock read. */
  step(offsetSeconds: number): void;
}

/** A fake clock whose offset file lives in `dir` (starts at +0). */
export function fakeClock(dir: string): FakeClock {
  if (!fs.existsSync(LIBFAKETIME))
    throw new Error(`${LIBFAKETIME} missing: run deploy/install.sh (faketime)`);
  const file = path.join(dir, 'faketime');
  let offset = 0;
  const write = () => fs.writeFileSync(file, `${offset >= 0 ? '+' : ''}${offset}s\n`);
  write();
  return {
    env: {
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_NO_CACHE: '1',
      DONT_FAKE_MONOTONIC: '1',
    },
    get offsetSeconds() {
      return offset;
    },
    step(offsetSeconds) {
      offset = offsetSeconds;
      write();
    },
  };
}
