/**
 * When the agent's NATS credentials stop working: the earliest of the user JWT's `exp` claim (the JWT in its
 * `.creds` file) and its TLS client certificate's notAfter. Reported as `credentialsExpireAt` so the
 * coordinator's `edgeplane_host_credentials_expiry_timestamp_seconds` (and the "expiring soon" alert) has data.
 *
 * Read once at start and again only when one of the files changes (stat polled once a minute, never per
 * heartbeat), so the agent stays cheap. Invariant: a part that cannot be read or carries no expiry (an nkey
 * seed, a JWT without `exp` — enrollment-issued host JWTs have none today) contributes nothing; with no expiry
 * at all the field is absent, never a made-up date.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';

/** The files whose expiry counts. */
export interface CredentialFiles {
  /** The `.creds` file (user JWT + seed) or an nkey seed file. */
  creds?: string;
  /** The TLS client certificate (PEM). */
  cert?: string;
}

/** The `exp` claim (seconds since the epoch) of the user JWT in a `.creds` text; undefined: none. */
export function jwtExpiry(credsText: string): number | undefined {
  const m = /-----BEGIN NATS USER JWT-----\s*([A-Za-z0-9_\-.]+)\s*-+END NATS USER JWT/.exec(credsText);
  const payload = m?.[1]?.split('.')[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && exp > 0 ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** A PEM certificate's notAfter, in seconds since the epoch; undefined: not a certificate. */
export function certExpiry(pem: string | Buffer): number | undefined {
  try {
    const ms = Date.parse(new X509Certificate(pem).validTo);
    return Number.isFinite(ms) ? ms / 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** The earliest expiry of the files (RFC 3339); undefined when none has one. */
export function credentialsExpireAt(files: CredentialFiles): string | undefined {
  const read = (p: string | undefined) => {
    if (!p) return undefined;
    try {
      return fs.readFileSync(p);
    } catch {
      return undefined;
    }
  };
  const creds = read(files.creds);
  const cert = read(files.cert);
  const all = [creds && jwtExpiry(creds.toString('utf8')), cert && certExpiry(cert)].filter(
    (s): s is number => typeof s === 'number',
  );
  return all.length ? new Date(Math.min(...all) * 1000).toISOString() : undefined;
}

/** Watches the files (stat once a minute) and calls `onChange` with the new expiry when it changes. */
export function watchCredentialsExpiry(
  files: CredentialFiles,
  onChange: (expireAt: string | undefined) => void,
  intervalMs = 60_000,
): { current: () => string | undefined; stop: () => void } {
  let current = credentialsExpireAt(files);
  const paths = [files.creds, files.cert].filter((p): p is string => !!p);
  const reread = () => {
    const next = credentialsExpireAt(files);
    if (next === current) return;
    current = next;
    onChange(next);
  };
  for (const p of paths) fs.watchFile(p, { interval: intervalMs, persistent: false }, reread);
  return {
    current: () => current,
    stop: () => {
      for (const p of paths) fs.unwatchFile(p, reread);
    },
  };
}
