/**
 * `edge-agent join`: enrollment of this host with a join token, in one command (like `k3s agent --token`).
 *
 * 1. Make the host's NATS user key pair here; its seed never leaves the host.
 * 2. Connect with the token (a bearer user JWT whose only right is to ask the enrollment service under that
 *    token and read the answer in its own inbox) and send the host name and the public key.
 * 3. Receive the host's user JWT (signed by the coordinator with the host's permissions), write the credentials
 *    (mode 0600) and the agent configuration — only then, so a refused join leaves nothing behind.
 * 4. `systemctl enable edge-agent` and `systemctl restart edge-agent` (enable --now, and a re-join on a host
 *    whose agent runs takes effect; the agent adopts its running instances). Skipped with `--no-start`.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join as joinPath } from 'node:path';
import { promisify } from 'node:util';
import { decode as decodeJwt } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
import {
  AGENT_CONFIG_DIR,
  AGENT_CONFIG_FILE,
  AGENT_CREDS_FILE,
  AGENT_UNIT,
  agentStateDir,
} from '../shared/host-paths.js';
import type { Logger } from '../shared/log.js';
import { credsFile } from '../shared/nats/accounts.js';
import { connectionOptions, withEnvDefaults } from '../shared/nats/connect.js';
import { JoinResponse } from '../shared/nats/enrollment.js';
import { decode, encode, MESSAGE_VERSION } from '../shared/nats/messages.js';
import { Subjects } from '../shared/nats/subjects.js';
import { parseYaml, stringifyYaml } from './yaml.js';

/** Where an installed agent keeps its configuration (the package's layout, shared/host-paths.ts). */
export const AGENT_PATHS = { configDir: AGENT_CONFIG_DIR } as const;

export interface JoinOptions {
  /** NATS server URLs. */
  nats: string[];
  /** The join token (`edgectl hosts token create`). */
  token: string;
  /** This host's name. */
  host: string;
  /** Location the host expects; the token decides, a different one is refused. */
  location?: string;
  /** Where agent.yaml and nats.creds go (default /etc/edgeplane; tests pass their own). */
  configDir?: string;
  /** State directory written into agent.yaml (default /var/lib/edgeplane/agent/<host>). */
  stateDir?: string;
  /** CA of the NATS server certificate (default EDGE_NATS_CA); written into agent.yaml as natsCa. */
  ca?: string;
  /** Enable and start the edge-agent service (default true). */
  start?: boolean;
  /** How long to wait for the enrollment service (default 15 s). */
  timeoutMs?: number;
  log: Logger;
}

export interface JoinResult {
  host: string;
  location: string;
  configFile: string;
  credsFile: string;
}

/** What a token says about itself: its id and the installation's subject prefix (from its one permission). */
export function readToken(token: string): { id: string; prefix: string; expiresAt?: number } {
  let claims: ReturnType<typeof decodeJwt<{ pub?: { allow?: string[] } }>>;
  try {
    claims = decodeJwt<{ pub?: { allow?: string[] } }>(token.trim());
  } catch {
    throw new Error('--token: not a join token (a JWT from edgectl hosts token create)');
  }
  const subject = claims.nats?.pub?.allow?.[0] ?? '';
  const m = /^(.+)\.enroll\.join\.([a-z0-9]+)$/.exec(subject);
  if (!m || claims.name !== `join-${m[2]}`) throw new Error('--token: not a join token');
  return { id: m[2]!, prefix: m[1]!, ...(claims.exp ? { expiresAt: claims.exp * 1000 } : {}) };
}

/** Writes a file atomically (temporary file, then rename). */
function writeAtomic(path: string, text: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Enrolls this host; see the module comment. */
export async function join(o: JoinOptions): Promise<JoinResult> {
  const { id, prefix, expiresAt } = readToken(o.token);
  if (expiresAt !== undefined && expiresAt <= Date.now())
    throw new Error(`--token: expired at ${new Date(expiresAt).toISOString()}`);
  const subjects = new Subjects(prefix);
  const user = createUser();
  const base = connectionOptions(
    withEnvDefaults({
      servers: o.nats,
      name: `edge-agent-join ${o.host}`,
      reconnectForever: false,
      ...(o.ca ? { ca: o.ca } : {}),
    }),
  );
  const { authenticator: _ignored, ...opts } = base;
  const nc = await connect({
    ...opts,
    authenticator: jwtAuthenticator(o.token.trim()),
    inboxPrefix: subjects.joinInbox(id),
  });
  let answer: JoinResponse;
  try {
    const reply = await nc.request(
      subjects.join(id),
      encode({
        v: MESSAGE_VERSION,
        host: o.host,
        ...(o.location ? { location: o.location } : {}),
        publicKey: user.getPublicKey(),
      }),
      { timeout: o.timeoutMs ?? 15_000 },
    );
    answer = decode(JoinResponse, reply.data);
  } finally {
    await nc.close();
  }
  if ('error' in answer) throw new Error(`join refused: ${answer.error}`);
  const configDir = o.configDir ?? AGENT_PATHS.configDir;
  const configFile = joinPath(configDir, basename(AGENT_CONFIG_FILE));
  const creds = joinPath(configDir, basename(AGENT_CREDS_FILE));
  writeAtomic(creds, credsFile(answer.jwt, new TextDecoder().decode(user.getSeed())), 0o600);
  // Keep what an operator (or the package) already put in agent.yaml; set what enrollment decides.
  const previous = existsSync(configFile)
    ? ((parseYaml(readFileSync(configFile, 'utf8')) ?? {}) as object)
    : {};
  const settings = {
    ...previous,
    host: answer.host,
    location: answer.location,
    nats: o.nats.join(','),
    natsCreds: creds,
    subjectPrefix: answer.subjectPrefix,
    stateDir: o.stateDir ?? agentStateDir(answer.host),
    ...(o.ca ? { natsCa: o.ca } : {}),
  };
  writeAtomic(
    configFile,
    `# edge-agent configuration, written by edge-agent join\n${stringifyYaml(settings)}`,
    0o644,
  );
  o.log.info({ host: answer.host, location: answer.location, configFile, credsFile: creds }, 'host enrolled');
  if (o.start ?? true) {
    const systemctl = (...args: string[]) => promisify(execFile)('systemctl', args, { timeout: 60_000 });
    await systemctl('enable', AGENT_UNIT);
    await systemctl('restart', AGENT_UNIT);
    o.log.info('edge-agent enabled and (re)started');
  }
  return { host: answer.host, location: answer.location, configFile, credsFile: creds };
}
