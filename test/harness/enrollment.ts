/**
 * The coordinator's NATS side in operator mode for tests: an operator setup made by `edgectl nats init`, the
 * enrollment service and the host registry (bound identities) on the coordinator's real credentials, and an
 * admin connection for edgectl's requests. The nats-server (single or cluster) is the caller's.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Enrollment, startEnrollment } from '../../coordinator/enroll/wire.js';
import { HostRegistry } from '../../coordinator/hosts/registry.js';
import { IntentStore } from '../../coordinator/intents/store.js';
import { type Proc, REPO_DIR, startProc } from '../../deploy/stack/proc.js';
import { adminRequest, initOperator, type OperatorFiles } from '../../edgectl/enroll.js';
import { createLogger } from '../../shared/log.js';
import type { OperatorSetup } from '../../shared/nats/accounts.js';
import { connectNats } from '../../shared/nats/connect.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup, tempDir } from './index.js';

export const log = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
export const subjects = new Subjects('edge');

/** `edgectl nats init` into a temp dir. */
export async function operatorSetupForTest(): Promise<{ files: OperatorFiles; setup: OperatorSetup }> {
  return initOperator(tempDir('edgeplane-operator-'), '/unused', subjects);
}

/** A client connection closed after the test. */
export async function clientFor(
  servers: string[],
  opts: { creds?: string; ca?: string; name?: string } = {},
): Promise<NatsConnection> {
  const nc = await connectNats({ servers, name: opts.name ?? 'test', reconnectForever: false, ...opts });
  cleanup(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

export interface CoordinatorSide {
  nc: NatsConnection;
  registry: HostRegistry;
  intents: IntentStore;
  enrollment: Enrollment;
  /** edgectl's administrative request with the admin credentials. */
  admin(operation: string, body?: unknown): Promise<Record<string, unknown>>;
}

/** Starts the coordinator's NATS side (intents, enrollment, registry) against `servers`. */
export async function startCoordinatorSide(
  servers: string[],
  files: OperatorFiles,
  o: { replicas?: number; ca?: string } = {},
): Promise<CoordinatorSide> {
  const tls = o.ca ? { ca: o.ca } : {};
  const nc = await clientFor(servers, { creds: files.coordinatorCreds, name: 'coordinator', ...tls });
  const intents = new IntentStore({ nc, subjects, log, replicas: o.replicas ?? 1 });
  await intents.start();
  const enrollment = await startEnrollment({
    nc,
    natsServers: servers,
    subjects,
    replicas: o.replicas ?? 1,
    settings: { keysFile: files.enrollKeys, sysCreds: files.coordinatorSysCreds },
    log,
    ...tls,
  });
  cleanup(() => enrollment.stop());
  const registry = new HostRegistry({
    nc,
    subjects,
    log,
    checkMs: 100,
    graceMs: 1000,
    admission: { identityOf: enrollment.identityOf },
  });
  registry.start();
  cleanup(() => registry.stop());
  const adminNc = await clientFor(servers, { creds: files.adminCreds, name: 'edgectl', ...tls });
  return {
    nc,
    registry,
    intents,
    enrollment,
    admin: (operation, body) => adminRequest(adminNc, subjects, operation, body),
  };
}

/** Runs `edge-agent join` (the built CLI, `--no-start`) and returns how long it took. */
export async function agentJoinCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const t0 = performance.now();
  await promisify(execFile)(
    process.execPath,
    [path.join(REPO_DIR, 'dist/agent/main.js'), 'join', '--no-start', ...args],
    { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, timeout: 60_000 },
  );
  return performance.now() - t0;
}

/** What {@link joinHost} takes: `edge-agent join`'s flags; the state directory is `<configDir>/state`. */
export interface JoinHostOptions {
  /** The NATS URL(s) join dials, comma-separated when several. */
  nats: string;
  /** The join token from `tokens.create` / `edgectl hosts token create`. */
  token: string;
  /** The host's name. */
  host: string;
  /** Where join writes agent.yaml and nats.creds. */
  configDir: string;
  /** Further flags, e.g. `--nats-ca`. */
  extraArgs?: string[];
}

/** `edge-agent join` for one host (see {@link agentJoinCli}); returns how long it took. */
export function joinHost(o: JoinHostOptions): Promise<number> {
  return agentJoinCli([
    '--nats',
    o.nats,
    '--token',
    o.token,
    '--host',
    o.host,
    '--config-dir',
    o.configDir,
    '--state-dir',
    path.join(o.configDir, 'state'),
    ...(o.extraArgs ?? []),
  ]);
}

/**
 * The real agent process (`edge-agent run`), configured only by the agent.yaml join wrote into `configDir`:
 * 1 CPU, 1 GiB, published on 127.0.0.1, stopped after the test.
 */
export function startJoinedAgent(host: string, configDir: string, o: { heartbeatMs?: number } = {}): Proc {
  const agent = startProc({
    name: `agent-${host}`,
    dir: configDir,
    command: process.execPath,
    args: [
      path.join(REPO_DIR, 'dist/agent/main.js'),
      'run',
      '--config',
      path.join(configDir, 'agent.yaml'),
      '--publish-address',
      '127.0.0.1',
      '--heartbeat-ms',
      String(o.heartbeatMs ?? 1000),
      '--cpu',
      '1',
      '--memory',
      '1Gi',
    ],
    env: { LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
  });
  cleanup(() => agent.stop());
  return agent;
}
