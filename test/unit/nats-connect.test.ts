import { describe, expect, it } from 'vitest';
import {
  connectionOptions,
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
