/**
 * Revocations pushed to nats-server's account resolver. The coordinator reads the EDGE account's current JWT
 * from the resolver (`$SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP`), adds the revoked user keys, re-signs it with the
 * operator signing key it holds, and pushes it (`$SYS.REQ.CLAIMS.UPDATE`) over a system account connection.
 * Every server of the cluster then closes the revoked users' connections and refuses them from then on.
 * Reading the current JWT first keeps whatever else an operator changed in the account (limits, keys).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { withRevocations } from '../../shared/nats/accounts.js';

/** Adds `keys` (user public keys) to the account's revocations, effective for JWTs issued up to now. */
export async function pushRevocations(
  sys: NatsConnection,
  accountPublicKey: string,
  operatorSigningSeed: string,
  keys: string[],
  now = Date.now(),
): Promise<void> {
  const lookup = await sys.request(`$SYS.REQ.ACCOUNT.${accountPublicKey}.CLAIMS.LOOKUP`, '', {
    timeout: 5000,
  });
  const current = lookup.string();
  if (!current.startsWith('ey')) throw new Error(`account ${accountPublicKey} not found in the resolver`);
  const at = Math.ceil(now / 1000);
  const updated = await withRevocations(
    current,
    Object.fromEntries(keys.map((k) => [k, at])),
    operatorSigningSeed,
  );
  const reply = await sys.request('$SYS.REQ.CLAIMS.UPDATE', updated, { timeout: 5000 });
  const answer = reply.json<{
    data?: { code?: number; message?: string };
    error?: { description?: string };
  }>();
  if (answer.error || (answer.data?.code ?? 0) >= 300)
    throw new Error(
      `resolver refused the account update: ${answer.error?.description ?? answer.data?.message ?? reply.string()}`,
    );
}
