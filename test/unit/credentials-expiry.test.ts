/**
 * The agent's credentials expiry: the `exp` of the user JWT in its `.creds` file, the notAfter of its TLS client
 * certificate (made here with the real openssl), the earlier of both, and nothing when neither expires.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createAccount, createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import {
  certExpiry,
  credentialsExpireAt,
  jwtExpiry,
  watchCredentialsExpiry,
} from '../../agent/credentials-expiry.js';
import { credsFile, issueUserJwt } from '../../shared/nats/accounts.js';
import { tempDir, waitFor } from '../harness/index.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const account = (() => {
  const a = createAccount();
  return { accountPublicKey: a.getPublicKey(), accountSigningSeed: text(a.getSeed()) };
})();

async function creds(expiresAt?: number): Promise<string> {
  const user = createUser();
  const jwt = await issueUserJwt(account, {
    name: 'h1',
    publicKey: user.getPublicKey(),
    permissions: { publish: { allow: ['x'] }, subscribe: { allow: ['x'] } },
    ...(expiresAt ? { expiresAt } : {}),
  });
  return credsFile(jwt, text(user.getSeed()));
}

function cert(dir: string, days: number): string {
  const file = path.join(dir, `cert-${days}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=h1',
      '-days',
      String(days),
      '-keyout',
      path.join(dir, `key-${days}.pem`),
      '-out',
      file,
    ],
    { stdio: 'ignore' },
  );
  return file;
}

describe('credentials expiry', () => {
  it("reads a JWT's exp, a certificate's notAfter, takes the earlier, and reports nothing when none expires", async () => {
    const dir = tempDir('edgeplane-creds-expiry-');
    const exp = Math.floor(Date.now() / 1000) + 3 * 86_400;
    const withExp = path.join(dir, 'exp.creds');
    fs.writeFileSync(withExp, await creds(exp * 1000));
    const noExp = path.join(dir, 'noexp.creds');
    fs.writeFileSync(noExp, await creds());
    const seedOnly = path.join(dir, 'seed.nk');
    fs.writeFileSync(seedOnly, text(createUser().getSeed()));

    expect(jwtExpiry(fs.readFileSync(withExp, 'utf8'))).toBe(exp);
    expect(jwtExpiry(fs.readFileSync(noExp, 'utf8'))).toBeUndefined();
    expect(jwtExpiry(fs.readFileSync(seedOnly, 'utf8'))).toBeUndefined();

    const oneDay = cert(dir, 1);
    const tenDays = cert(dir, 10);
    const notAfter = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', oneDay], {
      encoding: 'utf8',
    });
    const certExp = certExpiry(fs.readFileSync(oneDay))!;
    expect(certExp).toBe(Date.parse(notAfter.replace('notAfter=', '').trim()) / 1000);
    expect(certExp - Date.now() / 1000).toBeGreaterThan(86_000);
    expect(certExpiry('not a certificate')).toBeUndefined();

    const iso = (s: number) => new Date(s * 1000).toISOString();
    expect(credentialsExpireAt({ creds: withExp })).toBe(iso(exp));
    expect(credentialsExpireAt({ creds: withExp, cert: oneDay })).toBe(iso(certExp));
    expect(credentialsExpireAt({ creds: withExp, cert: tenDays })).toBe(iso(exp));
    expect(credentialsExpireAt({ creds: noExp, cert: tenDays })).toBe(
      iso(certExpiry(fs.readFileSync(tenDays))!),
    );
    expect(credentialsExpireAt({ creds: noExp })).toBeUndefined();
    expect(credentialsExpireAt({ creds: seedOnly })).toBeUndefined();
    expect(credentialsExpireAt({})).toBeUndefined();
    expect(credentialsExpireAt({ creds: path.join(dir, 'missing') })).toBeUndefined();
  });

  it('re-reads only when a file changes, and says so', async () => {
    const dir = tempDir('edgeplane-creds-expiry-');
    const file = path.join(dir, 'nats.creds');
    fs.writeFileSync(file, await creds());
    const seen: Array<string | undefined> = [];
    const w = watchCredentialsExpiry({ creds: file }, (e) => seen.push(e), 50);
    try {
      expect(w.current()).toBeUndefined();
      const exp = Math.floor(Date.now() / 1000) + 86_400;
      fs.writeFileSync(file, await creds(exp * 1000));
      await waitFor('the new expiry', () => seen.length === 1, { timeoutMs: 5000, intervalMs: 20 });
      expect(seen).toEqual([new Date(exp * 1000).toISOString()]);
      expect(w.current()).toBe(seen[0]);
    } finally {
      w.stop();
    }
  });
});
