/**
 * NATS identities for a new host (and for the coordinator and monitoring tools): an nkey user whose seed the
 * host keeps, and the `authorization.users` entry, with its permissions, that the operator adds to
 * nats-server's configuration. For JWT accounts (operator mode) the same permissions go into `nsc`; see
 * docs/nats.md.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { type EnrollmentKeys, newUserCreds } from '../shared/nats/accounts.js';
import {
  agentPermissions,
  coordinatorPermissions,
  monitorPermissions,
  type NatsPermissions,
  nkeyUserConfig,
  operatorPermissions,
} from '../shared/nats/permissions.js';
import type { Subjects } from '../shared/nats/subjects.js';

/** A generated identity. */
export interface GeneratedIdentity {
  /** Name the files are called by (host name, `coordinator`, `monitor`). */
  name: string;
  /** Public nkey (`U…`) the server knows the user by. */
  publicKey: string;
  /** Seed (`SU…`): the secret the client authenticates with. */
  seed: string;
  /** What it may do. */
  permissions: NatsPermissions;
  /** The `authorization.users` entry for nats-server. */
  userConfig: string;
}

/** Which identity to generate. */
export type IdentityRole =
  | { role: 'host'; host: string; location: string }
  | { role: 'coordinator' }
  | { role: 'monitor' }
  /** A person or tool that may read logs and exec into instances, known by `name` in audit Events. */
  | { role: 'operator'; name: string };

/** Generates an nkey user with the permissions of `who`. */
export function generateIdentity(subjects: Subjects, who: IdentityRole): GeneratedIdentity {
  const kp = createUser();
  const permissions =
    who.role === 'host'
      ? agentPermissions(subjects, who.host, who.location)
      : who.role === 'coordinator'
        ? coordinatorPermissions(subjects)
        : who.role === 'operator'
          ? operatorPermissions(subjects, who.name)
          : monitorPermissions(subjects);
  const name = who.role === 'host' ? who.host : who.role === 'operator' ? who.name : who.role;
  const comment =
    who.role === 'host'
      ? `edge-agent of host ${who.host} in ${who.location}`
      : who.role === 'operator'
        ? `edge operator ${who.name} (logs and exec; named in exec Events)`
        : `edge ${who.role}`;
  const publicKey = kp.getPublicKey();
  return {
    name,
    publicKey,
    seed: new TextDecoder().decode(kp.getSeed()),
    permissions,
    userConfig: nkeyUserConfig(publicKey, permissions, comment),
  };
}

/** Writes `<dir>/<name>.nk` (the seed, mode 0600) and `<dir>/<name>.conf` (the server entry); returns both paths. */
export function writeIdentity(dir: string, id: GeneratedIdentity): { seedFile: string; configFile: string } {
  mkdirSync(dir, { recursive: true });
  const seedFile = join(dir, `${id.name}.nk`);
  const configFile = join(dir, `${id.name}.conf`);
  writeFileSync(seedFile, `${id.seed}\n`, { mode: 0o600 });
  chmodSync(seedFile, 0o600);
  writeFileSync(configFile, `${id.userConfig}\n`);
  return { seedFile, configFile };
}

/**
 * Operator mode: `<dir>/<name>.creds`, a user JWT of the EDGE account with {@link operatorPermissions}, signed with
 * the account signing key in `enroll-keys.json` (what `edgectl nats init` wrote). Returns its path.
 */
export async function writeOperatorCreds(
  dir: string,
  enrollKeysFile: string,
  subjects: Subjects,
  name: string,
): Promise<string> {
  const keys = JSON.parse(readFileSync(enrollKeysFile, 'utf8')) as EnrollmentKeys;
  const creds = await newUserCreds(keys, name, operatorPermissions(subjects, name));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.creds`);
  writeFileSync(file, creds, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}
