/**
 * NATS decentralized authentication (operator mode) for Edgeplane: one operator, the system account, and one
 * account `EDGE` holding every Edgeplane user. Users are JWTs signed by the account's signing key (the
 * coordinator holds it and issues host users at enrollment); the account JWT is signed by the operator's
 * signing key (the coordinator holds it too, to add revocations); the operator's identity key stays offline.
 *
 * Permissions are the same {@link NatsPermissions} the static nkey configuration uses, translated field by
 * field by {@link jwtPermissions}, so a host's rights are identical in both modes.
 */
import { encodeAccount, encodeOperator, encodeUser, fmtCreds, decode as jwtDecode } from '@nats-io/jwt';
import { createAccount, createOperator, createUser, fromSeed } from '@nats-io/nkeys';
import type { NatsPermissions } from './permissions.js';

/** A key pair as text. */
export interface KeyText {
  /** Public key (`O…`, `A…`, `U…`). */
  publicKey: string;
  /** Seed (`SO…`, `SA…`, `SU…`): the secret. */
  seed: string;
}

/** Everything `edgectl nats init` makes. */
export interface OperatorSetup {
  operator: KeyText & { name: string; jwt: string; signingKey: KeyText };
  systemAccount: KeyText & { jwt: string };
  account: KeyText & { name: string; jwt: string; signingKey: KeyText };
}

/** What the coordinator needs to issue and revoke users (its `--enroll-keys` file). */
export interface EnrollmentKeys {
  /** The EDGE account's public key (`A…`): `issuer_account` of every user. */
  accountPublicKey: string;
  /** Seed of the account signing key: signs user JWTs. */
  accountSigningSeed: string;
  /** Seed of an operator signing key: re-signs the account JWT with revocations. */
  operatorSigningSeed: string;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function keyText(kp: { getPublicKey(): string; getSeed(): Uint8Array }): KeyText {
  return { publicKey: kp.getPublicKey(), seed: text(kp.getSeed()) };
}

/** No limits on connections and subscriptions (an account JWT without limits allows none). */
const CONNECTION_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
};

/** And unlimited JetStream for the EDGE account (nats-server enables JetStream on non-zero limits). */
const ACCOUNT_LIMITS = {
  ...CONNECTION_LIMITS,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

/** Makes a new operator, system account and EDGE account, each with its JWT. */
export async function createOperatorSetup(
  operatorName = 'edgeplane',
  accountName = 'EDGE',
): Promise<OperatorSetup> {
  const op = createOperator();
  const opSigning = createOperator();
  const sys = createAccount();
  const acc = createAccount();
  const accSigning = createAccount();
  const operatorJwt = await encodeOperator(operatorName, op, {
    signing_keys: [opSigning.getPublicKey()],
    system_account: sys.getPublicKey(),
  });
  const sysJwt = await encodeAccount('SYS', sys, { limits: CONNECTION_LIMITS }, { signer: op });
  const accountJwt = await encodeAccount(
    accountName,
    acc,
    { limits: ACCOUNT_LIMITS, signing_keys: [accSigning.getPublicKey()] },
    { signer: opSigning },
  );
  return {
    operator: { ...keyText(op), name: operatorName, jwt: operatorJwt, signingKey: keyText(opSigning) },
    systemAccount: { ...keyText(sys), jwt: sysJwt },
    account: { ...keyText(acc), name: accountName, jwt: accountJwt, signingKey: keyText(accSigning) },
  };
}

/** The coordinator's part of a setup. */
export function enrollmentKeys(setup: OperatorSetup): EnrollmentKeys {
  return {
    accountPublicKey: setup.account.publicKey,
    accountSigningSeed: setup.account.signingKey.seed,
    operatorSigningSeed: setup.operator.signingKey.seed,
  };
}

/** nats-server's default response permission when `allow_responses: true`: one reply within two minutes. */
const RESPONSE_TTL_NS = 120_000_000_000;

/** The `pub`/`sub`/`resp` claims of a user JWT carrying exactly `p`. */
export function jwtPermissions(p: NatsPermissions): {
  pub: { allow: string[] };
  sub: { allow: string[] };
  resp?: { max: number; ttl: number };
} {
  return {
    pub: { allow: [...p.publish.allow] },
    sub: { allow: [...p.subscribe.allow] },
    ...(p.allow_responses ? { resp: { max: 1, ttl: RESPONSE_TTL_NS } } : {}),
  };
}

/** A user JWT to issue. */
export interface UserToIssue {
  /** JWT name (host name, `coordinator`, `join-<token id>`…). */
  name: string;
  /** The user's public key (`U…`); its seed stays with the user. */
  publicKey: string;
  permissions: NatsPermissions;
  /** Tags recorded in the JWT (e.g. `edgeplane.dev/location:<l>`); informational, nats-server lower-cases them. */
  tags?: string[];
  /** Expiry, ms since epoch; none by default. */
  expiresAt?: number;
  /** A bearer JWT needs no signature of a nonce: the JWT alone authenticates (join tokens). */
  bearer?: boolean;
}

/** Signs a user JWT with the account signing key. */
export function issueUserJwt(
  keys: Pick<EnrollmentKeys, 'accountPublicKey' | 'accountSigningSeed'>,
  u: UserToIssue,
) {
  return encodeUser(
    u.name,
    u.publicKey,
    keys.accountPublicKey,
    {
      ...jwtPermissions(u.permissions),
      ...(u.tags ? { tags: u.tags } : {}),
      ...(u.bearer ? { bearer_token: true } : {}),
    },
    {
      signer: fromSeed(new TextEncoder().encode(keys.accountSigningSeed)),
      ...(u.expiresAt ? { exp: Math.floor(u.expiresAt / 1000) } : {}),
    },
  );
}

/** A `.creds` file (JWT + seed) for a user. */
export function credsFile(jwt: string, seed: string): string {
  return text(fmtCreds(jwt, fromSeed(new TextEncoder().encode(seed))));
}

/** Makes a user key pair and its creds, signed by the account signing key (coordinator, admin, monitor). */
export async function newUserCreds(
  keys: Pick<EnrollmentKeys, 'accountPublicKey' | 'accountSigningSeed'>,
  name: string,
  permissions: NatsPermissions,
): Promise<string> {
  const u = keyText(createUser());
  return credsFile(await issueUserJwt(keys, { name, publicKey: u.publicKey, permissions }), u.seed);
}

/** A system account user's creds (pushes account JWTs to the resolver). */
export async function systemUserCreds(setup: OperatorSetup, name = 'sys'): Promise<string> {
  const u = keyText(createUser());
  const jwt = await encodeUser(
    name,
    u.publicKey,
    fromSeed(new TextEncoder().encode(setup.systemAccount.seed)),
  );
  return credsFile(jwt, u.seed);
}

/** The claims of an account JWT (decoded, not verified: it comes from the resolver). */
export function accountClaims(jwt: string) {
  const c = jwtDecode<Record<string, unknown> & { revocations?: Record<string, number> }>(jwt);
  if (c.type !== 'account' && c.nats?.type !== 'account') throw new Error('not an account JWT');
  return c;
}

/**
 * The account JWT `current` with `revoked` added to its revocations (public key → unix seconds: JWTs of that user
 * issued at or before that time are refused), re-signed with the operator signing key.
 */
export async function withRevocations(
  current: string,
  revoked: Record<string, number>,
  operatorSigningSeed: string,
): Promise<string> {
  const c = accountClaims(current);
  const { type: _t, version: _v, ...nats } = c.nats as Record<string, unknown>;
  const revocations = { ...((nats.revocations as Record<string, number>) ?? {}), ...revoked };
  return encodeAccount(
    c.name,
    c.sub,
    { ...nats, revocations },
    { signer: fromSeed(new TextEncoder().encode(operatorSigningSeed)) },
  );
}

/**
 * nats-server configuration for operator mode with the full (directory) resolver: account JWTs live in
 * `resolverDir`, the system and EDGE accounts are preloaded, and updates pushed by the system account
 * (`$SYS.REQ.CLAIMS.UPDATE`) are stored and spread through the cluster.
 */
export function operatorModeConfig(
  setup: Pick<OperatorSetup, 'operator' | 'systemAccount' | 'account'>,
  resolverDir: string,
): string {
  return [
    `operator: ${JSON.stringify(setup.operator.jwt)}`,
    `system_account: ${JSON.stringify(setup.systemAccount.publicKey)}`,
    'resolver: {',
    '  type: full',
    `  dir: ${JSON.stringify(resolverDir)}`,
    '  allow_delete: false',
    '  interval: "2m"',
    '  timeout: "5s"',
    '}',
    'resolver_preload: {',
    `  ${setup.systemAccount.publicKey}: ${JSON.stringify(setup.systemAccount.jwt)}`,
    `  ${setup.account.publicKey}: ${JSON.stringify(setup.account.jwt)}`,
    '}',
  ].join('\n');
}
