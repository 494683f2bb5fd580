/**
 * A TCP fault proxy owned by a test: listens on 127.0.0.1 and forwards every connection to a 127.0.0.1 target,
 * with faults switched per direction at any time. It never touches an interface: faults are made by this process
 * choosing what to forward, so tests stay inside the network rule.
 *
 * Directions: `up` is client → target, `down` is target → client. Modes per direction:
 * - `pass`: forward (after `latencyMs`, if set: every chunk is held that long, order kept);
 * - `blackhole`: read and drop, never close — the half-open link of a vanished peer or a dead middlebox; both
 *   sockets stay open, so only application-level pings can notice it;
 * - `reset` (for all connections at once, see {@link FaultProxy.reset}): both sides get a TCP RST.
 * New connections get the modes in force when they arrive.
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
}

/** A running proxy. */
export interface FaultProxy {
  /** `nats://127.0.0.1:<port>`-style address to give clients (host:port). */
  readonly port: number;
  /** Connections currently open (client side). */
  readonly connections: number;
  /** Sets the faults of one or both directions, for open and future connections. */
  set(direction: 'up' | 'down' | 'both', faults: Partial<DirectionFaults>): void;
  /** Back to `pass` without latency in both directions. */
  heal(): void;
  /** Resets (RST) every open connection on both sides. */
  reset(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  target: net.Socket;
}

/** Starts a proxy to `127.0.0.1:targetPort`, closed by {@link cleanup} when the test (or file) ends. */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const faults: Record<'up' | 'down', DirectionFaults> = {
    up: { mode: 'pass', latencyMs: 0 },
    down: { mode: 'pass', latencyMs: 0 },
  };
  const pairs = new Set<Pair>();

  /** Forwards `from` → `to` under the faults of `dir`, read when each chunk arrives. */
  const pipe = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
    let queue = Promise.resolve();
    from.on('data', (chunk) => {
      const f = faults[dir];
      if (f.mode === 'blackhole') return;
      if (f.latencyMs <= 0) {
        queue = queue.then(() => void (to.destroyed || to.write(chunk)));
        return;
      }
      const delay = f.latencyMs;
      queue = queue.then(
        () => new Promise<void>((r) => setTimeout(() => r(void (to.destroyed || to.write(chunk))), delay)),
      );
    });
    from.on('end', () => {
      if (faults[dir].mode === 'pass') void queue.then(() => to.end());
    });
  };

  const server = net.createServer((client) => {
    const target = net.connect(targetPort, '127.0.0.1');
    const pair = { client, target };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      target.destroy();
    };
    client.on('error', drop).on('close', drop);
    target.on('error', drop).on('close', drop);
    pipe(client, target, 'up');
    pipe(target, client, 'down');
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
    set(direction, f) {
      for (const d of direction === 'both' ? (['up', 'down'] as const) : [direction])
        faults[d] = { ...faults[d], ...f };
    },
    heal() {
      faults.up = { mode: 'pass', latencyMs: 0 };
      faults.down = { mode: 'pass', latencyMs: 0 };
    },
    reset() {
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.target.resetAndDestroy();
        pairs.delete(p);
      }
    },
    async close() {
      for (const p of [...pairs]) {
        p.client.destroy();
        p.target.destroy();
      }
      pairs.clear();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  cleanup(() => proxy.close());
  return proxy;
}
