/**
 * The enrollment service's decisions as pure functions over its records, so every rule is unit- and
 * property-tested without NATS.
 *
 * A join is allowed when the token exists, is neither revoked nor expired nor used up, names the location the
 * host expects (if it says one), and the host name is free (not enrolled, or enrolled and revoked). A retry of
 * the same join (same token, same host, same public key: the answer was lost) is answered again without using
 * the token up further, so a join is idempotent.
 * Invariant: a token never admits more than `uses` distinct enrollments, and never after expiry or revocation.
 */
import type { HostEnrollment, JoinRequest, TokenRecord } from '../../shared/nats/enrollment.js';

/** What to do with a join request. */
export type JoinDecision =
  | {
      ok: true;
      /** Location the host is enrolled in (the token's). */
      location: string;
      /** False for a retry of a join already granted: the token's use count stays. */
      consumesUse: boolean;
    }
  | { ok: false; reason: string };

/** A token's state for `edgectl hosts token list`. */
export type TokenState = 'active' | 'expired' | 'used' | 'revoked';

export function tokenState(t: TokenRecord, now: number): TokenState {
  if (t.revokedAt) return 'revoked';
  if (now >= Date.parse(t.expiresAt)) return 'expired';
  if (t.used >= t.uses) return 'used';
  return 'active';
}

/** Decides a join request against the token and the host's current enrollment. */
export function decideJoin(
  token: TokenRecord | undefined,
  req: JoinRequest,
  existing: HostEnrollment | undefined,
  now: number,
): JoinDecision {
  if (!token) return { ok: false, reason: 'unknown token' };
  const retry =
    existing !== undefined &&
    !existing.revokedAt &&
    existing.token === token.id &&
    existing.publicKey === req.publicKey &&
    existing.location === token.location;
  const state = tokenState(token, now);
  if (state === 'revoked') return { ok: false, reason: `token ${token.id} was revoked` };
  if (state === 'expired') return { ok: false, reason: `token ${token.id} expired at ${token.expiresAt}` };
  if (req.location !== undefined && req.location !== token.location)
    return { ok: false, reason: `token ${token.id} is for location ${token.location}, not ${req.location}` };
  if (retry) return { ok: true, location: token.location, consumesUse: false };
  if (state === 'used') return { ok: false, reason: `token ${token.id} is used up (${token.uses} use(s))` };
  if (existing && !existing.revokedAt)
    return {
      ok: false,
      reason: `host ${req.host} is already enrolled (in ${existing.location}); revoke it first`,
    };
  return { ok: true, location: token.location, consumesUse: true };
}
