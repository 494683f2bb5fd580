/**
 * How a daemon's main runs it, the same for the coordinator and the agent: load the configuration (an invalid one
 * is logged as fatal, naming the field, and exits 2 with nothing started), build the daemon, start it, and on
 * SIGTERM or SIGINT stop it cleanly and exit 0. A start that fails is logged as fatal and exits 1.
 */
import type { Logger } from './log.js';

/** A long-running part that a main starts and, on a signal, stops. */
export interface Daemon {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What {@link runDaemon} needs. */
export interface RunDaemonOptions<C> {
  /** The process's logger. */
  log: Logger;
  /** Reads and validates the configuration; throws naming the field. */
  load: () => C;
  /** Which errors of `load` are configuration errors (exit 2); others propagate. Default: every error. */
  isConfigError?: (err: unknown) => boolean;
  /** Builds the daemon from its configuration. */
  build: (config: C, log: Logger) => Daemon;
  /** What is logged when a signal stops it. */
  stopping: string;
}

/** Loads, builds and starts a daemon, and stops it on SIGTERM/SIGINT. */
export async function runDaemon<C>(opts: RunDaemonOptions<C>): Promise<void> {
  const { log } = opts;
  let config: C;
  try {
    config = opts.load();
  } catch (err) {
    if (opts.isConfigError && !opts.isConfigError(err)) throw err;
    log.fatal((err as Error).message);
    process.exit(2);
  }
  const daemon = opts.build(config, log);
  const shutdown = async (signal: string) => {
    log.info({ signal }, opts.stopping);
    await daemon.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  try {
    await daemon.start();
  } catch (err) {
    // Said once, as a log line naming what failed (an unreadable state file, …), not an unhandled rejection.
    log.fatal(`failed to start: ${(err as Error).message}`);
    process.exit(1);
  }
}
