/**
 * Enrollment decisions and report admission (pure), and the translation of permissions into user JWT claims:
 * unit cases for every rule, property tests for the invariants of decisions.ts and admission.ts.
 */
import { decode as decodeJwt } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readToken } from '../../agent/enroll.js';
import { decideJoin, tokenState } from '../../coordinator/enroll/decisions.js';
import { type AdmissionRules, admitReport, DEFAULT_ADMISSION } from '../../coordinator/hosts/admission.js';
import { parseTtl } from '../../edgectl/enroll.js';
import {
  createOperatorSetup,
  enrollmentKeys,
  issueUserJwt,
  jwtPermissions,
  withRevocations,
} from '../../shared/nats/accounts.js';
import type { HostEnrollment, JoinRequest, TokenRecord } from '../../shared/nats/enrollment.js';
import { agentPermissions, joinPermissions } from '../../shared/nats/permissions.js';
import { Subjects } from '../../shared/nats/subjects.js';

const subjects = new Subjects('edge');
const NOW = Date.parse('2026-12-01T12:00:00Z');
const KEY = createUser().getPublicKey();

function token(over: Partial<TokenRecord> = {}): TokenRecord {
  return {
    v: 1,
    id: 't1',
    location: 'loc-a',
    expiresAt: new Date(NOW + 3600_000).toISOString(),
    uses: 1,
    used: 0,
    bearerKey: 'UB',
    createdAt: new Date(NOW).toISOString(),
    ...over,
  };
}
const req = (over: Partial<JoinRequest> = {}): JoinRequest => ({ v: 1, host: 'h1', publicKey: KEY, ...over });
const enrolled = (over: Partial<HostEnrollment> = {}): HostEnrollment => ({
  v: 1,
  host: 'h1',
  location: 'loc-a',
  publicKey: KEY,
  token: 't1',
  issuedAt: new Date(NOW).toISOString(),
  ...over,
});

describe('decideJoin', () => {
  it('admits a fresh host with a live token, in the token location', () => {
    expect(decideJoin(token(), req(), undefined, NOW)).toEqual({
      ok: true,
      location: 'loc-a',
      consumesUse: true,
    });
    expect(decideJoin(token(), req({ location: 'loc-a' }), undefined, NOW).ok).toBe(true);
  });
  it.each([
    ['no token', undefined, req(), undefined, /unknown token/],
    ['revoked', token({ revokedAt: 'x' }), req(), undefined, /revoked/],
    ['expired', token({ expiresAt: new Date(NOW).toISOString() }), req(), undefined, /expired/],
    ['used up', token({ used: 1 }), req(), undefined, /used up/],
    ['other location', token(), req({ location: 'loc-b' }), undefined, /for location loc-a, not loc-b/],
    ['taken name', token(), req({ publicKey: 'Uother' }), enrolled(), /already enrolled/],
  ] as const)('refuses: %s', (_n, t, r, e, reason) => {
    const d = decideJoin(t, r, e, NOW);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toMatch(reason);
  });
  it('answers a retry of the same join again without using the token further', () => {
    expect(decideJoin(token({ used: 1 }), req(), enrolled(), NOW)).toEqual({
      ok: true,
      location: 'loc-a',
      consumesUse: false,
    });
  });
  it('lets a revoked host name enroll again', () => {
    expect(decideJoin(token(), req({ publicKey: 'Unew' }), enrolled({ revokedAt: 'x' }), NOW).ok).toBe(true);
  });
  it('never admits a new enrollment with a token that is not active (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 6 }),
        fc.boolean(),
        fc.integer({ min: -5000, max: 5000 }),
        (uses, used, revoked, expiresIn) => {
          const t = token({
            uses,
            used,
            expiresAt: new Date(NOW + expiresIn).toISOString(),
            ...(revoked ? { revokedAt: 'x' } : {}),
          });
          const d = decideJoin(t, req(), undefined, NOW);
          expect(d.ok).toBe(tokenState(t, NOW) === 'active');
          if (d.ok) expect(d.consumesUse && used < uses && !revoked && expiresIn > 0).toBe(true);
        },
      ),
    );
  });
});

describe('admitReport', () => {
  const bound: AdmissionRules = {
    ...DEFAULT_ADMISSION,
    identityOf: (h) =>
      h === 'h1'
        ? { location: 'loc-a', revoked: false }
        : h === 'gone'
          ? { location: 'loc-a', revoked: true }
          : undefined,
  };
  const r = (host: string, location: string, heartbeatMs = 1000) => ({ host, location, heartbeatMs });
  it.each([
    ['subject-mismatch', r('h1', 'loc-a'), subjects.hostReport('h2')],
    ['not-enrolled', r('h9', 'loc-a'), subjects.hostReport('h9')],
    ['revoked', r('gone', 'loc-a'), subjects.hostReport('gone')],
    ['location-mismatch', r('h1', 'loc-b'), subjects.hostReport('h1')],
    ['heartbeat-out-of-bounds', r('h1', 'loc-a', 60_000), subjects.hostReport('h1')],
    ['heartbeat-out-of-bounds', r('h1', 'loc-a', 10), subjects.hostReport('h1')],
  ] as const)('refuses %s', (reason, report, subject) => {
    expect(admitReport(report, subject, subjects.hostReport(report.host), bound)).toMatchObject({
      ok: false,
      reason,
    });
  });
  it('accepts the bound identity, and without enrollment any location', () => {
    expect(
      admitReport(r('h1', 'loc-a'), subjects.hostReport('h1'), subjects.hostReport('h1'), bound).ok,
    ).toBe(true);
    expect(
      admitReport(r('h9', 'loc-z'), subjects.hostReport('h9'), subjects.hostReport('h9'), DEFAULT_ADMISSION)
        .ok,
    ).toBe(true);
  });
  it('accepts only what the credentials say (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('h1', 'h2', 'gone'),
        fc.constantFrom('h1', 'h2', 'gone'),
        fc.constantFrom('loc-a', 'loc-b'),
        fc.integer({ min: 0, max: 100_000 }),
        (subjectHost, host, location, heartbeatMs) => {
          const a = admitReport(
            { host, location, heartbeatMs },
            subjects.hostReport(subjectHost),
            subjects.hostReport(host),
            bound,
          );
          const id = bound.identityOf!(host);
          const expected =
            subjectHost === host &&
            id !== undefined &&
            !id.revoked &&
            id.location === location &&
            heartbeatMs >= bound.minHeartbeatMs &&
            heartbeatMs <= bound.maxHeartbeatMs;
          expect(a.ok).toBe(expected);
        },
      ),
    );
  });
});

describe('user JWTs', () => {
  it('carry exactly the static permissions, signed by the account signing key', async () => {
    const setup = await createOperatorSetup();
    const keys = enrollmentKeys(setup);
    const p = agentPermissions(subjects, 'h1', 'loc-a');
    const user = createUser().getPublicKey();
    const claims = decodeJwt<Record<string, unknown>>(
      await issueUserJwt(keys, { name: 'h1', publicKey: user, permissions: p, tags: ['a:b'] }),
    );
    expect(claims.iss).toBe(setup.account.signingKey.publicKey);
    expect(claims.nats).toMatchObject({
      pub: { allow: p.publish.allow },
      sub: { allow: p.subscribe.allow },
      resp: { max: 1 },
      issuer_account: setup.account.publicKey,
      tags: ['a:b'],
    });
    expect(jwtPermissions(joinPermissions(subjects, 'abc'))).toEqual({
      pub: { allow: ['edge.enroll.join.abc'] },
      sub: { allow: ['_INBOX.join.abc.>'] },
    });
  });
  it('revocations keep the account and add to what was revoked', async () => {
    const setup = await createOperatorSetup();
    const once = await withRevocations(setup.account.jwt, { UA: 1 }, setup.operator.signingKey.seed);
    const twice = decodeJwt<{ revocations: Record<string, number>; signing_keys: string[] }>(
      await withRevocations(once, { UB: 2 }, setup.operator.signingKey.seed),
    );
    expect(twice.nats.revocations).toEqual({ UA: 1, UB: 2 });
    expect(twice.nats.signing_keys).toEqual([setup.account.signingKey.publicKey]);
    expect(twice.iss).toBe(setup.operator.signingKey.publicKey);
    expect(twice.sub).toBe(setup.account.publicKey);
  });
});

describe('tokens on the command line', () => {
  it('parses --ttl', () => {
    expect([parseTtl('90s'), parseTtl('30m'), parseTtl('1h'), parseTtl('2d'), parseTtl('45')]).toEqual([
      90, 1800, 3600, 172_800, 45,
    ]);
    expect(() => parseTtl('1 hour')).toThrow(/--ttl: expected/);
  });
  it('reads a join token: its id and subject prefix from its one permission; refuses anything else', async () => {
    const setup = await createOperatorSetup();
    const keys = enrollmentKeys(setup);
    const jwt = await issueUserJwt(keys, {
      name: 'join-0a1b2c',
      publicKey: createUser().getPublicKey(),
      permissions: joinPermissions(new Subjects('acme.edge'), '0a1b2c'),
      expiresAt: NOW + 60_000,
      bearer: true,
    });
    expect(readToken(`  ${jwt}\n`)).toEqual({ id: '0a1b2c', prefix: 'acme.edge', expiresAt: NOW + 60_000 });
    const host = await issueUserJwt(keys, {
      name: 'h1',
      publicKey: createUser().getPublicKey(),
      permissions: agentPermissions(subjects, 'h1', 'loc-a'),
    });
    expect(() => readToken(host)).toThrow(/not a join token/);
    expect(() => readToken('hello')).toThrow(/not a join token/);
  });
});
