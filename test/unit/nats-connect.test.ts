import { describe, expect, it } from 'vitest';
import {
  AVOID_LOST_MS,
  avoidLostServer,
  connectionOptions,
  DEFAULT_DAEMON_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_PINGS_OUT,
  DEFAULT_PING_INTERVAL_MS,
  withEnvDefaults,
} from '../../shared/nats/connect.js';

describe('NATS client pings (dead-link detection)', () => {
  it('pings often enough that a dead link is noticed before a host counts as Disconnected (20 s)', () => {
    const o = connectionOptions(withEnvDefaults({ servers: ['nats://127.0.0.1:4222'], name: 't' }, {}));
    expect(o.pingInterval).toBe(DEFAULT_PING_INTERVAL_MS);
    expect(o.maxPingOut).toBe(DEFAULT_MAX_PINGS_OUT);
    expect((DEFAULT_MAX_PINGS_OUT + 1) * DEFAULT_PING_INTERVAL_MS).toBeLessThan(20_000);
  });

  it('gives a daemon connection attempt 5 s (a hung attempt delayed the return after a healed link), a command 20 s', () => {
    const daemon = connectionOptions(withEnvDefaults({ servers: [], name: 't' }, {}));
    expect(daemon.timeout).toBe(DEFAULT_DAEMON_CONNECT_TIMEOUT_MS);
    expect(DEFAULT_DAEMON_CONNECT_TIMEOUT_MS).toBeLessThan(
      DEFAULT_PING_INTERVAL_MS * (DEFAULT_MAX_PINGS_OUT + 1),
    );
    const command = connectionOptions(
      withEnvDefaults({ servers: [], name: 't', reconnectForever: false }, {}),
    );
    expect(command.timeout).toBeUndefined();
    const env = connectionOptions(
      withEnvDefaults({ servers: [], name: 't' }, { EDGE_NATS_CONNECT_TIMEOUT_MS: '9000' }),
    );
    expect(env.timeout).toBe(9000);
  });

  it('takes EDGE_NATS_PING_MS and EDGE_NATS_MAX_PINGS_OUT, explicit settings first', () => {
    const env = { EDGE_NATS_PING_MS: '2000', EDGE_NATS_MAX_PINGS_OUT: '4' };
    const o = connectionOptions(withEnvDefaults({ servers: [], name: 't' }, env));
    expect([o.pingInterval, o.maxPingOut]).toEqual([2000, 4]);
    const explicit = withEnvDefaults({ servers: [], name: 't', pingIntervalMs: 7000 }, env);
    expect(explicit.pingIntervalMs).toBe(7000);
  });

  it('refuses a bad value naming the variable', () => {
    expect(() => withEnvDefaults({ servers: [], name: 't' }, { EDGE_NATS_PING_MS: 'soon' })).toThrow(
      /EDGE_NATS_PING_MS/,
    );
    expect(() => withEnvDefaults({ servers: [], name: 't' }, { EDGE_NATS_MAX_PINGS_OUT: '0' })).toThrow(
      /EDGE_NATS_MAX_PINGS_OUT/,
    );
  });
});

describe('avoidLostServer (fail-over after a lost link)', () => {
  const pool = () => [
    { listen: 'a:1', lastConnect: 5000 },
    { listen: 'b:2', lastConnect: 1000 },
    { listen: 'c:3', lastConnect: 0 },
  ];
  it('sends the attempt nats.js would make to the server dialled last (the lost one) to the next one', () => {
    expect(avoidLostServer(pool(), {}, 0)?.listen).toBe('b:2');
  });
  it('avoids it at most once per interval, so a lost server left alone is dialled again', () => {
    const state = {};
    expect(avoidLostServer(pool(), state, 0)?.listen).toBe('b:2');
    expect(avoidLostServer(pool(), state, 1000)).toBeNull();
    expect(avoidLostServer(pool(), state, AVOID_LOST_MS + 1)?.listen).toBe('b:2');
  });
  it('leaves nats.js its choice otherwise', () => {
    const p = pool();
    expect(avoidLostServer([p[1]!, p[0]!, p[2]!], {}, 0)).toBeNull();
    expect(avoidLostServer([p[0]!], {}, 0)).toBeNull();
    expect(avoidLostServer([p[2]!, { listen: 'd:4', lastConnect: 0 }], {}, 0)).toBeNull();
  });
});
