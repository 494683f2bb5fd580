/**
 * edgectl's enrollment commands. `nats init` makes an operator-mode NATS setup (operator, system and EDGE
 * accounts, the coordinator's keys, creds for the coordinator, edgectl admin and monitoring); the `hosts token`
 * and `hosts revoke` commands are requests to the coordinator's enrollment service, which holds the keys.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  createOperatorSetup,
  enrollmentKeys,
  newUserCreds,
  type OperatorSetup,
  operatorModeConfig,
  systemUserCreds,
} from '../shared/nats/accounts.js';
import type { AdminResponse } from '../shared/nats/enrollment.js';
import { encode } from '../shared/nats/messages.js';
import { adminPermissions, coordinatorPermissions, monitorPermissions } from '../shared/nats/permissions.js';
import type { Subjects } from '../shared/nats/subjects.js';

/** Files `nats init` writes, by role. */
export interface OperatorFiles {
  /** The whole setup with every seed: keep it offline (it can mint accounts and users). */
  setup: string;
  /** nats-server include: operator, system account, resolver, preloaded account JWTs. */
  serverConfig: string;
  /** The coordinator's `--enroll-keys`. */
  enrollKeys: string;
  /** The coordinator's NATS credentials (`EDGE_NATS_CREDS`) and system account credentials (`--nats-sys-creds`). */
  coordinatorCreds: string;
  coordinatorSysCreds: string;
  /** edgectl for operators (tokens, revocations, the feed). */
  adminCreds: string;
  /** Monitoring (the feed only). */
  monitorCreds: string;
}

function write(path: string, text: string, mode: number): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
}

/** Makes a new operator-mode setup in `out`; `resolverDir` is where nats-server will keep account JWTs. */
export async function initOperator(
  out: string,
  resolverDir: string,
  subjects: Subjects,
): Promise<{ files: OperatorFiles; setup: OperatorSetup }> {
  // A second init must never overwrite the keys of a running installation (its hosts would all be cut off).
  if (existsSync(join(out, 'operator-setup.json')))
    throw new Error(
      `--out ${out}: already holds an operator setup (operator-setup.json); use another directory`,
    );
  mkdirSync(out, { recursive: true });
  const setup = await createOperatorSetup();
  const keys = enrollmentKeys(setup);
  const files: OperatorFiles = {
    setup: join(out, 'operator-setup.json'),
    serverConfig: join(out, 'nats-operator.conf'),
    enrollKeys: join(out, 'enroll-keys.json'),
    coordinatorCreds: join(out, 'coordinator.creds'),
    coordinatorSysCreds: join(out, 'coordinator-sys.creds'),
    adminCreds: join(out, 'admin.creds'),
    monitorCreds: join(out, 'monitor.creds'),
  };
  write(files.setup, `${JSON.stringify(setup, null, 2)}\n`, 0o600);
  write(files.serverConfig, `${operatorModeConfig(setup, resolverDir)}\n`, 0o644);
  write(files.enrollKeys, `${JSON.stringify(keys, null, 2)}\n`, 0o600);
  write(
    files.coordinatorCreds,
    await newUserCreds(keys, 'coordinator', coordinatorPermissions(subjects)),
    0o600,
  );
  write(files.coordinatorSysCreds, await systemUserCreds(setup, 'coordinator-sys'), 0o600);
  write(files.adminCreds, await newUserCreds(keys, 'admin', adminPermissions(subjects)), 0o600);
  write(files.monitorCreds, await newUserCreds(keys, 'monitor', monitorPermissions(subjects)), 0o600);
  return { files, setup };
}

/** One administrative request to the enrollment service; its `error` is thrown. */
export async function adminRequest(
  nc: NatsConnection,
  subjects: Subjects,
  operation: string,
  body: unknown = {},
): Promise<Record<string, unknown>> {
  let reply: Awaited<ReturnType<NatsConnection['request']>>;
  try {
    reply = await nc.request(subjects.admin(operation), encode(body), { timeout: 10_000 });
  } catch (err) {
    const e = err as Error;
    throw new Error(
      /no responders/i.test(e.message)
        ? 'no enrollment service answers: is the coordinator running with --enroll-keys (operator mode)?'
        : e.message,
    );
  }
  const answer = reply.json<AdminResponse>();
  if ('error' in answer) throw new Error(String(answer.error));
  return answer;
}

/** `1h`, `30m`, `90s`, `2d` or plain seconds → seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw new Error(`--ttl: expected e.g. 1h, 30m, 90s or 2d, got ${JSON.stringify(text)}`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}
