/**
 * The pure parts of `edgectl logs` / `exec`: Docker's stream framing, "last N lines", the output sessions'
 * ordering and flow bound, the client's argument parsing, and the Exec Event message.
 */
import { userInfo } from 'node:os';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DockerFrameParser,
  lastLinesOffset,
  type OutputEnd,
  type OutputSource,
} from '../../agent/drivers/output.js';
import { OpsError, OutputSession, SessionStore } from '../../agent/ops/sessions.js';
import { execEventMessage } from '../../coordinator/ops/audit.js';
import { parseDuration, parseTail, splitInstance } from '../../edgectl/ops.js';
import { operatorName } from '../../edgectl/ops-commands.js';
import { operatorPermissions } from '../../shared/nats/permissions.js';
import { Subjects } from '../../shared/nats/subjects.js';

const frame = (type: number, data: Buffer) => {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
};

describe('DockerFrameParser', () => {
  it('gives back every frame in order however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ type: fc.constantFrom(1, 2), data: fc.uint8Array({ minLength: 1, maxLength: 50 }) }),
        ),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(frames.map((f) => frame(f.type, Buffer.from(f.data))));
          const parser = new DockerFrameParser();
          const out: Array<{ stream: string; data: Buffer }> = [];
          let at = 0;
          for (let i = 0; at < bytes.length; i++) {
            const n = cuts[i % cuts.length]!;
            out.push(...parser.push(bytes.subarray(at, at + n)));
            at += n;
          }
          expect(out.map((o) => [o.stream, [...o.data]])).toEqual(
            frames.map((f) => [f.type === 2 ? 'stderr' : 'stdout', [...f.data]]),
          );
        },
      ),
    );
  });
});

describe('lastLinesOffset', () => {
  it('starts the last n lines (a trailing newline ends a line)', () => {
    const b = Buffer.from('a\nb\nc\n');
    expect(b.subarray(lastLinesOffset(b, 2)).toString()).toBe('b\nc\n');
    expect(b.subarray(lastLinesOffset(b, 5)).toString()).toBe('a\nb\nc\n');
    expect(b.subarray(lastLinesOffset(b, 0)).toString()).toBe('');
    const open = Buffer.from('a\nb\nc');
    expect(open.subarray(lastLinesOffset(open, 1)).toString()).toBe('c');
  });

  it('agrees with splitting into lines', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z]{0,5}$/)), fc.nat(10), (ls, n) => {
        const text = ls.map((l) => `${l}\n`).join('');
        const b = Buffer.from(text);
        expect(b.subarray(lastLinesOffset(b, n)).toString()).toBe(
          n === 0
            ? ''
            : ls
                .slice(-n)
                .map((l) => `${l}\n`)
                .join(''),
        );
      }),
    );
  });
});

/** A source the test drives by hand. */
function fakeSource(): OutputSource & { paused: boolean; closed: boolean; finish(end: OutputEnd): void } {
  let finish: (e: OutputEnd) => void = () => {};
  const s = {
    paused: false,
    closed: false,
    ended: new Promise<OutputEnd>((r) => {
      finish = r;
    }),
    pause: () => {
      s.paused = true;
    },
    resume: () => {
      s.paused = false;
    },
    close: () => {
      s.closed = true;
    },
    finish: (e: OutputEnd) => finish(e),
  };
  return s;
}

const limits = { chunkBytes: 10, bufferBytes: 25, pollWaitMs: 30, lingerMs: 5, idleMs: 200, sessions: 2 };
const text = (c: { data: Array<{ b64: string }> }) =>
  c.data.map((d) => Buffer.from(d.b64, 'base64').toString()).join('');

describe('OutputSession', () => {
  it('delivers in order in chunks of at most chunkBytes, pausing the source above the bound', async () => {
    const s = new OutputSession('id', 'alice', limits);
    const src = fakeSource();
    s.attach(src);
    s.onData('stdout', Buffer.from('0123456789abcdefghij'));
    expect(src.paused).toBe(false);
    s.onData('stderr', Buffer.from('ABCDEFGHIJ'));
    expect(src.paused).toBe(true);
    expect(s.buffered).toBe(30);
    const c1 = await s.next(0);
    expect(c1.seq).toBe(1);
    expect(text(c1)).toBe('0123456789');
    expect(src.paused).toBe(false);
    const c2 = await s.next(1);
    expect(text(c2)).toBe('abcdefghij');
    src.finish({ reason: 'end of log' });
    await new Promise((r) => setTimeout(r, 0));
    const c3 = await s.next(2);
    expect(c3.data).toEqual([{ stream: 'stderr', b64: Buffer.from('ABCDEFGHIJ').toString('base64') }]);
    expect(c3.end).toEqual({ reason: 'end of log' });
  });

  it('repeats the last chunk for a repeated pull and refuses any other', async () => {
    const s = new OutputSession('id', 'alice', limits);
    s.attach(fakeSource());
    s.onData('stdout', Buffer.from('x'));
    const c1 = await s.next(0);
    expect(await s.next(0)).toBe(c1);
    await expect(s.next(5)).rejects.toThrow('after: expected 1, got 5');
  });

  it('gathers output arriving while a pull lingers into one chunk, answering as soon as the chunk is full', async () => {
    // A long linger: only a full chunk (4 bytes) can end this pull early, so no timer races the assertion.
    const s = new OutputSession('id', 'alice', { ...limits, chunkBytes: 4, lingerMs: 60_000 });
    s.attach(fakeSource());
    const pull = s.next(0);
    s.onData('stdout', Buffer.from('ab'));
    setTimeout(() => s.onData('stdout', Buffer.from('cdef')), 10);
    expect(text(await pull)).toBe('abcd');
  });

  it('answers an empty chunk after pollWaitMs when there is no output (a heartbeat)', async () => {
    const s = new OutputSession('id', 'alice', limits);
    s.attach(fakeSource());
    const started = Date.now();
    const c = await s.next(0);
    expect(c.data).toEqual([]);
    expect(c.end).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });
});

describe('SessionStore', () => {
  it('binds a session to its caller, bounds open sessions, and closes idle ones', async () => {
    const store = new SessionStore(limits);
    const sources: ReturnType<typeof fakeSource>[] = [];
    const start = async () => {
      const s = fakeSource();
      sources.push(s);
      return s;
    };
    const a = await store.open('alice', start);
    await store.open('alice', start);
    await expect(store.open('alice', start)).rejects.toBeInstanceOf(OpsError);
    await expect(store.next('bob', a.session, 0)).rejects.toThrow('is not yours');
    store.sweep(Date.now() + 1000);
    expect(sources.every((s) => s.closed)).toBe(true);
    await expect(store.next('alice', a.session, 0)).rejects.toThrow('no session');
    store.stop();
  });
});

describe('edgectl arguments', () => {
  it('parses --since, --tail and instance references, naming the field when wrong', () => {
    expect(parseDuration('10m')).toBe(600);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('45s')).toBe(45);
    expect(() => parseDuration('10')).toThrow('--since: expected a duration');
    expect(() => parseDuration('')).toThrow('--since');
    expect(parseTail('-1')).toBeUndefined();
    expect(parseTail('20')).toBe(20);
    expect(() => parseTail('x')).toThrow('--tail');
    expect(splitInstance('web-0', 'default')).toEqual({ namespace: 'default', name: 'web-0' });
    expect(splitInstance('prod/web-0', 'default')).toEqual({ namespace: 'prod', name: 'web-0' });
    expect(() => splitInstance('a/b/c', 'default')).toThrow('instance:');
  });

  it('names the operator by --operator, the credentials file, or (no credentials) the login name', () => {
    delete process.env.EDGE_OPERATOR;
    expect(operatorName('bob', '/x/alice.nk')).toBe('bob');
    expect(operatorName(undefined, '/x/alice.nk')).toBe('alice');
    expect(operatorName(undefined, '/x/alice.creds')).toBe('alice');
    expect(operatorName(undefined, undefined)).toBe(
      userInfo()
        .username.toLowerCase()
        .replace(/[^a-z0-9_-]/g, '-'),
    );
    expect(() => operatorName('Bad Name', undefined)).toThrow('--operator: operator name "Bad Name"');
  });
});

describe('operator identity', () => {
  it('may request only as itself; names that are not one subject token are refused', () => {
    const p = operatorPermissions(new Subjects('edge'), 'alice');
    expect(p.publish.allow).toEqual(
      expect.arrayContaining(['edge.ops.*.logs.alice', 'edge.ops.*.exec.alice', 'edge.ops.*.next.alice']),
    );
    expect(p.publish.allow.filter((s) => s.startsWith('edge.ops.')).every((s) => s.endsWith('.alice'))).toBe(
      true,
    );
    expect(() => operatorPermissions(new Subjects('edge'), 'a.b')).toThrow('operator name "a.b"');
    expect(() => operatorPermissions(new Subjects('edge'), '*')).toThrow('operator name');
  });

  it('is named in the Exec Event with the command quoted where needed', () => {
    expect(
      execEventMessage({
        v: 1,
        host: 'h',
        namespace: 'default',
        instance: 'web-0',
        container: 'app',
        caller: 'alice',
        action: 'exec',
        command: ['sh', '-c', 'echo hi'],
        time: '',
      }),
    ).toBe('operator alice ran exec in container app on host h: sh -c "echo hi"');
  });
});
