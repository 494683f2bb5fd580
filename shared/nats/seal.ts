/**
 * Sealing of secret values to one host: the coordinator encrypts each host's ResolvedValues with an nkeys
 * curve key pair (X25519 + XSalsa20-Poly1305) to that host's public curve key, so only that host can open
 * them. The agent keeps its curve seed in its state directory and publishes the public key in its HostReport.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createCurve, fromCurveSeed, type KeyPair } from '@nats-io/nkeys';
import { writeFileAtomic } from '../atomic-file.js';
import { decode, ResolvedValues } from './messages.js';

export type { KeyPair } from '@nats-io/nkeys';

/** A fresh curve key pair (public key starts with `X`). */
export function newSealKey(): KeyPair {
  return createCurve();
}

/**
 * Reads the curve seed at `path`, or creates one there (mode 0600) when the file does not exist yet, so a
 * host keeps its key across restarts. The new file is written atomically (a crash leaves no file or a whole
 * one); a file that exists but does not hold a seed is an error naming it, never replaced by a new key.
 */
export function loadOrCreateSealKey(path: string): KeyPair {
  try {
    return fromCurveSeed(new TextEncoder().encode(readFileSync(path, 'utf8').trim()));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`seal key ${path}: ${(err as Error).message}`);
  }
  const kp = createCurve();
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, `${new TextDecoder().decode(kp.getSeed())}\n`, { mode: 0o600 });
  return kp;
}

/** Seals `values` from `sender` to the host whose public curve key is `recipient`; base64 text. */
export function sealValues(sender: KeyPair, recipient: string, values: ResolvedValues): string {
  const sealed = sender.seal(new TextEncoder().encode(JSON.stringify(values)), recipient);
  return Buffer.from(sealed).toString('base64');
}

/** Opens values sealed by `sender` (its public curve key) for `recipient`; throws when they do not open. */
export function openValues(recipient: KeyPair, sender: string, sealed: string): ResolvedValues {
  const opened = recipient.open(Buffer.from(sealed, 'base64'), sender);
  if (!opened)
    throw new Error('sealed values do not open with this host key (sealed for another host or altered)');
  return decode(ResolvedValues, opened);
}

/** Whether there is anything to seal. */
export function hasValues(values: ResolvedValues | undefined): values is ResolvedValues {
  return (
    !!values &&
    (Object.keys(values.env).length > 0 ||
      Object.keys(values.files).length > 0 ||
      values.registryAuth.length > 0 ||
      Object.values(values.revisions ?? {}).some((r) => hasValues(r)))
  );
}
