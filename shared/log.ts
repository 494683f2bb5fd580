/** Logging for every Edgeplane process: pino JSON lines, pretty-printed when stdout is a terminal. */
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Name of the process or component, e.g. `edge-agent`. */
  name: string;
  /** Minimum level; defaults to $LOG_LEVEL or `info`. */
  level?: string;
  /** Pretty-print; defaults to whether stdout is a TTY (and $LOG_FORMAT is not `json`). */
  pretty?: boolean;
}

/** A pino logger that writes JSON, or human-readable lines on a terminal. */
export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.LOG_FORMAT !== 'json');
  if (pretty && process.env.EDGEPLANE_BUNDLED === '1') {
    // The packaged bundle (deploy/package/build.ts) has no node_modules for a transport's worker to load from:
    // pretty-print in-process instead (a terminal only, never under systemd). Its `require` is bundled.
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino({ name: opts.name, level }, pretty({ colorize: true, translateTime: 'HH:MM:ss.l' }));
  }
  if (pretty) {
    return pino({
      name: opts.name,
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ name: opts.name, level });
}
