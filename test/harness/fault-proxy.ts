/**
 * A TCP fault proxy owned by a test: listens on 127.0.0.1 and forwards every connection to a 127.0.0.1 target,
 * with faults switched per direction at any time. It never touches an interface: faults are made by this process
 * choosing what to forward, so tests stay inside the network rule.
 *
 * Directions: `up` is client → target, `down` is target → client. Faults per direction:
 * - `mode: 'pass'`: forward, each chunk `latencyMs` ± `jitterMs` (uniform) after it arrived, order kept (a chunk
 *   whose draw would overtake the one before waits for it, as on one TCP stream);
 * - `mode: 'blackhole'`: read and drop, never close — the half-open link of a vanished peer or a dead middlebox;
 *   both sockets stay open, so only application-level pings can notice it;
 * - `closeAfterBytes: n`: each connection forwards n more bytes in this direction (counted from when the fault
 *   was set, or from the connection's start), then both sides are closed (FIN) — a link that dies mid-message;
 * - `reset` (for all connections at once, see {@link FaultProxy.reset}): both sides get a TCP RST;
 * - `refuse` (see {@link FaultProxy.refuse}): new connections are reset as soon as they are accepted — with a
 *   reset, a link that is down and known to be down (a clean partition), as against a blackhole's silent one.
 * New connections get the faults in force when they arrive.
 */
import net from 'node:net';
import { cleanup } from './index.js';

/** What a direction does with the bytes it reads. */
export type DirectionMode = 'pass' | 'blackhole';

/** The faults of one direction. */
export interface DirectionFaults {
  /** Forward or drop. */
  mode: DirectionMode;
  /** Delay added to every forwarded chunk (ms; 0 = none). */
  latencyMs: number;
  /** Each chunk's delay is `latencyMs` plus a uniform draw in [-jitterMs, +jitterMs] (never below 0). */
  jitterMs: number;
  /** Close the connection after this many more bytes in this direction; undefined = never. */
  closeAfterBytes: number | undefined;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Source of the jitter draws, in [0, 1) (default Math.random; pass a seeded one for reproducible runs). */
  random?: () => number;
}

/** A running proxy. */
export interface FaultProxy {
  /** Port it listens on (127.0.0.1): give clients `127.0.0.1:<port>`. */
  readonly port: number;
  /** Connections currently open (client side). */
  readonly connections: number;
  /** Connections closed by a `closeAfterBytes` fault so far. */
  readonly closedByByteLimit: number;
  /** The faults of one direction now. */
  faults(direction: 'up' | 'down'): Readonly<DirectionFaults>;
  /** Sets the faults of one or both directions, for open and future connections. */
  set(direction: 'up' | 'down' | 'both', faults: Partial<DirectionFaults>): void;
  /** While on, new connections are reset as soon as they are accepted. */
  refuse(on: boolean): void;
  /** Whether new connections are refused now. */
  readonly refusing: boolean;
  /** Back to `pass` without latency, jitter or byte limit in both directions, and accepting again. */
  heal(): void;
  /** Resets (RST) every open connection on both sides. */
  reset(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  target: net.Socket;
  /** Bytes each direction may still forward before the connection is closed (undefined: no limit). */
  budget: Record<'up' | 'down', number | undefined>;
}

const PASS: DirectionFaults = { mode: 'pass', latencyMs: 0, jitterMs: 0, closeAfterBytes: undefined };

/** One chunk's delay under `f`. */
export function chunkDelayMs(
  f: Pick<DirectionFaults, 'latencyMs' | 'jitterMs'>,
  random: () => number,
): number {
  const jitter = f.jitterMs > 0 ? (random() * 2 - 1) * f.jitterMs : 0;
  return Math.max(0, f.latencyMs + jitter);
}

/** Starts a proxy to `127.0.0.1:targetPort`, closed by {@link cleanup} when the test (or file) ends. */
export async function startFaultProxy(targetPort: number, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const random = opts.random ?? Math.random;
  const faults: Record<'up' | 'down', DirectionFaults> = { up: { ...PASS }, down: { ...PASS } };
  const pairs = new Set<Pair>();
  let closedByByteLimit = 0;
  let refusing = false;

  const closePair = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.target.destroy();
  };

  /** Forwards `from` → `to` under the faults of `dir`, read when each chunk arrives. */
  const pipe = (pair: Pair, from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
    let queue = Promise.resolve();
    /** When the previous chunk is (or was) due: no chunk overtakes another. */
    let lastDue = 0;
    let closing = false;
    const send = (chunk: Buffer, f: DirectionFaults, last: boolean) => {
      const delay = f.latencyMs > 0 || f.jitterMs > 0 ? chunkDelayMs(f, random) : 0;
      const due = Math.max(Date.now() + delay, lastDue);
      lastDue = due;
      queue = queue.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (to.destroyed) return;
        if (!last) {
          to.write(chunk);
          return;
        }
        closedByByteLimit++;
        // Both ends see an orderly close right after the last byte allowed through.
        await new Promise<void>((r) => to.end(chunk, () => r()));
        pair.client.end();
        pair.target.end();
        setTimeout(() => closePair(pair), 100);
      });
    };
    from.on('data', (chunk: Buffer) => {
      const f = faults[dir];
      if (closing || f.mode === 'blackhole') return;
      const budget = pair.budget[dir];
      if (budget === undefined) return send(chunk, f, false);
      if (chunk.length < budget) {
        pair.budget[dir] = budget - chunk.length;
        return send(chunk, f, false);
      }
      closing = true;
      send(chunk.subarray(0, budget), f, true);
    });
    from.on('end', () => {
      if (faults[dir].mode === 'pass' && !closing) void queue.then(() => to.end());
    });
  };

  const server = net.createServer((client) => {
    if (refusing) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const target = net.connect(targetPort, '127.0.0.1');
    const pair: Pair = {
      client,
      target,
      budget: { up: faults.up.closeAfterBytes, down: faults.down.closeAfterBytes },
    };
    pairs.add(pair);
    const drop = () => closePair(pair);
    client.on('error', drop).on('close', drop);
    target.on('error', drop).on('close', drop);
    pipe(pair, client, target, 'up');
    pipe(pair, target, client, 'down');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  const proxy: FaultProxy = {
    port,
    get connections() {
      return pairs.size;
    },
    get closedByByteLimit() {
      return closedByByteLimit;
    },
    faults: (d) => ({ ...faults[d] }),
    set(direction, f) {
      for (const d of direction === 'both' ? (['up', 'down'] as const) : [direction]) {
        faults[d] = { ...faults[d], ...f };
        // A byte limit counts from now on every open connection.
        if ('closeAfterBytes' in f) for (const p of pairs) p.budget[d] = f.closeAfterBytes;
      }
    },
    refuse(on) {
      refusing = on;
    },
    get refusing() {
      return refusing;
    },
    heal() {
      refusing = false;
      faults.up = { ...PASS };
      faults.down = { ...PASS };
      for (const p of pairs) p.budget = { up: undefined, down: undefined };
    },
    reset() {
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.target.resetAndDestroy();
        pairs.delete(p);
      }
    },
    async close() {
      for (const p of [...pairs]) closePair(p);
      pairs.clear();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  cleanup(() => proxy.close());
  return proxy;
}
