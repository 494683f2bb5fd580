/** The link doctor's pure parts: re-pacing reconnects after a wall-clock step, and reading TLS refusals. */
import { describe, expect, it } from 'vitest';
import { explain, memberVerdict, repairClockStep } from '../../shared/nats/link-doctor.js';

describe('repairClockStep', () => {
  it('brings back to now every last dial that lies in the future, and only those', () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    const servers = [
      { hostname: 'a', port: 1, lastConnect: now + 86_400_000 },
      { hostname: 'b', port: 2, lastConnect: now - 500 },
      { hostname: 'c', port: 3, lastConnect: 0 },
    ];
    expect(repairClockStep(servers, now)).toBe(1);
    expect(servers.map((s) => s.lastConnect)).toEqual([now, now - 500, 0]);
    expect(repairClockStep(servers, now)).toBe(0);
  });
});

describe('explain', () => {
  const at = new Date('2026-12-01T12:00:00Z');
  it('names the host clock for a certificate not valid yet or expired', () => {
    expect(explain('TLS: CERT_NOT_YET_VALID: certificate is not yet valid', at)).toMatch(
      /2026-12-01T12:00:00.000Z.*not valid yet: the host clock is likely behind/,
    );
    expect(explain('TLS: CERT_HAS_EXPIRED: certificate has expired', at)).toMatch(
      /expired: check the host clock/,
    );
  });
  it('passes anything else through', () => {
    expect(explain('connect ECONNREFUSED 127.0.0.1:4222', at)).toBe('connect ECONNREFUSED 127.0.0.1:4222');
  });
});

describe('memberVerdict', () => {
  it('calls a member cut off only on "JetStream system temporarily unavailable"', () => {
    expect(
      memberVerdict(
        '{"type":"io.nats.jetstream.api.v1.account_info_response","error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}',
      ),
    ).toBe('cut-off');
    expect(
      memberVerdict('{"type":"io.nats.jetstream.api.v1.account_info_response","memory":0,"streams":1}'),
    ).toBe('fine');
    expect(
      memberVerdict(
        '{"type":"io.nats.jetstream.api.v1.account_info_response","error":{"code":503,"err_code":10039,"description":"jetstream not enabled for account"}}',
      ),
    ).toBe('unknown');
    expect(memberVerdict('')).toBe('unknown');
    expect(memberVerdict('{"error":')).toBe('unknown');
  });
});
