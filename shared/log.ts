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
  if (pretty) {
    return pino({
      name: opts.name,
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ name: opts.name, level });
}
