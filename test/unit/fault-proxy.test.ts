/**
 * The test fault proxy (test/harness/fault-proxy.ts) against a plain TCP server: latency with jitter keeps order
 * and stays within its bounds, close-after-N-bytes forwards exactly N bytes per direction and then closes both
 * sides, refuse resets new connections, heal undoes all of it.
 */
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkDelayMs, startFaultProxy } from '../harness/fault-proxy.js';
import { cleanup, waitFor } from '../harness/index.js';

/** A server that records what each connection sent and can write to it. */
async function startServer() {
  const conns: { socket: net.Socket; received: Buffer[]; closed: boolean }[] = [];
  const server = net.createServer((socket) => {
    const c = { socket, received: [] as Buffer[], closed: false };
    conns.push(c);
    socket.on('data', (d) => c.received.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      c.closed = true;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup(
    () =>
      new Promise<void>((r) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, conns };
}

/** A client connected to `port`, recording what it receives and when. */
async function connectClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  const c = {
    socket,
    received: [] as { at: number; data: Buffer }[],
    closed: false,
    error: undefined as NodeJS.ErrnoException | undefined,
  };
  socket.on('data', (data) => c.received.push({ at: Date.now(), data }));
  socket.on('error', (e) => {
    c.error = e;
  });
  socket.on('close', () => {
    c.closed = true;
  });
  cleanup(() => socket.destroy());
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });
  return c;
}

const bytesOf = (xs: Buffer[]) => Buffer.concat(xs);

describe('fault proxy', () => {
  it('draws each delay within latency ± jitter, never below 0', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (latencyMs, jitterMs, r) => {
          const d = chunkDelayMs({ latencyMs, jitterMs }, () => r);
          expect(d).toBeGreaterThanOrEqual(Math.max(0, latencyMs - jitterMs));
          expect(d).toBeLessThanOrEqual(latencyMs + jitterMs);
        },
      ),
    );
    // The draw spreads over the whole range (a jitter that is always 0 would pass the bounds above).
    expect(chunkDelayMs({ latencyMs: 100, jitterMs: 50 }, () => 0)).toBe(50);
    expect(chunkDelayMs({ latencyMs: 100, jitterMs: 50 }, () => 0.999999)).toBeCloseTo(150, 2);
  });

  it('delays with jitter but keeps the order of the bytes', async () => {
    const server = await startServer();
    const proxy = await startFaultProxy(server.port);
    const client = await connectClient(proxy.port);
    await waitFor('server side', () => server.conns.length === 1);
    proxy.set('down', { latencyMs: 150, jitterMs: 140 });
    const sentAt = Date.now();
    const chunks = Array.from({ length: 30 }, (_, i) => `<${i}>`);
    for (const c of chunks) {
      server.conns[0]!.socket.write(c);
      await new Promise((r) => setTimeout(r, 2));
    }
    const expected = chunks.join('');
    await waitFor(
      'every chunk through',
      () => bytesOf(client.received.map((x) => x.data)).toString() === expected,
      {
        timeoutMs: 10_000,
      },
    );
    // Nothing overtook: the bytes arrived in order, and none before the smallest possible delay.
    expect(bytesOf(client.received.map((x) => x.data)).toString()).toBe(expected);
    expect(client.received[0]!.at - sentAt).toBeGreaterThanOrEqual(10 - 2);
    // The other direction is untouched.
    expect(proxy.faults('up')).toMatchObject({ latencyMs: 0, jitterMs: 0 });
  });

  it('closes a connection after exactly N bytes in one direction, and only new bytes count', async () => {
    const server = await startServer();
    const proxy = await startFaultProxy(server.port);
    const client = await connectClient(proxy.port);
    await waitFor('server side', () => server.conns.length === 1);
    client.socket.write('before-');
    await waitFor('first bytes', () => bytesOf(server.conns[0]!.received).toString() === 'before-');
    proxy.set('up', { closeAfterBytes: 10 });
    client.socket.write('0123456');
    client.socket.write('789abcdef');
    await waitFor('both sides closed', () => client.closed && server.conns[0]!.closed, { timeoutMs: 10_000 });
    expect(bytesOf(server.conns[0]!.received).toString()).toBe('before-0123456789');
    expect(proxy.closedByByteLimit).toBe(1);
    // A new connection gets the limit in force; the down direction was never limited.
    const second = await connectClient(proxy.port);
    await waitFor('second server side', () => server.conns.length === 2);
    server.conns[1]!.socket.write('x'.repeat(100));
    await waitFor('down bytes', () => bytesOf(second.received.map((x) => x.data)).length === 100);
    second.socket.write('y'.repeat(25));
    await waitFor('second closed', () => second.closed, { timeoutMs: 10_000 });
    expect(bytesOf(server.conns[1]!.received).toString()).toBe('y'.repeat(10));
    // Healed: no limit any more.
    proxy.heal();
    const third = await connectClient(proxy.port);
    await waitFor('third server side', () => server.conns.length === 3);
    third.socket.write('z'.repeat(50));
    await waitFor('all 50 bytes', () => bytesOf(server.conns[2]!.received).length === 50);
    expect(third.closed).toBe(false);
  });

  it('blackholes without closing, refuses new connections with a reset, and heals', async () => {
    const server = await startServer();
    const proxy = await startFaultProxy(server.port);
    const client = await connectClient(proxy.port);
    await waitFor('server side', () => server.conns.length === 1);
    proxy.set('both', { mode: 'blackhole' });
    client.socket.write('lost');
    await new Promise((r) => setTimeout(r, 300));
    expect(server.conns[0]!.received).toHaveLength(0);
    expect(client.closed).toBe(false);

    proxy.refuse(true);
    proxy.reset();
    await waitFor('reset seen', () => client.closed);
    expect(client.error?.code).toBe('ECONNRESET');
    const refused = await connectClient(proxy.port);
    await waitFor('refused', () => refused.closed);
    expect(refused.error?.code).toBe('ECONNRESET');
    expect(server.conns).toHaveLength(1);

    proxy.heal();
    expect(proxy.refusing).toBe(false);
    const ok = await connectClient(proxy.port);
    ok.socket.write('hello');
    await waitFor(
      'forwarded again',
      () => server.conns[1] && bytesOf(server.conns[1].received).toString() === 'hello',
    );
  });
});
