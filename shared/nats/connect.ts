/**
 * How every Edgeplane process connects to NATS: servers, credentials and TLS in one place, so the coordinator,
 * agents, edgectl and the tests behave alike. Settings not given explicitly come from the environment
 * (EDGE_NATS_CREDS, EDGE_NATS_CA, EDGE_NATS_CERT, EDGE_NATS_KEY), so no daemon needs extra flags for TLS.
 */
import { readFileSync } from 'node:fs';
import {
  type Authenticator,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from '@nats-io/transport-node';

/** Connection settings. */
export interface NatsClientSettings {
  /** Server URLs (`nats://…` or `tls://…`). */
  servers: string[];
  /** Client name the server shows in /connz. */
  name: string;
  /**
   * Credentials file: a `.creds` file (JWT + seed, the `nsc` flow) or a file holding only an nkey user seed
   * (`SU…`, what `edgectl host credentials` writes).
   */
  creds?: string;
  /** CA bundle (PEM) that signs the server's certificate; turns TLS on. */
  ca?: string;
  /** Client certificate and key (PEM) for servers that verify clients (mutual TLS). */
  cert?: string;
  key?: string;
  /** Keep reconnecting forever (daemons) rather than failing (CLI). Default true. */
  reconnectForever?: boolean;
}

/** Settings filled in from the environment where not given. */
export function withEnvDefaults(
  s: NatsClientSettings,
  env: NodeJS.ProcessEnv = process.env,
): NatsClientSettings {
  return {
    ...s,
    ...((s.creds ?? env.EDGE_NATS_CREDS) ? { creds: s.creds ?? env.EDGE_NATS_CREDS } : {}),
    ...((s.ca ?? env.EDGE_NATS_CA) ? { ca: s.ca ?? env.EDGE_NATS_CA } : {}),
    ...((s.cert ?? env.EDGE_NATS_CERT) ? { cert: s.cert ?? env.EDGE_NATS_CERT } : {}),
    ...((s.key ?? env.EDGE_NATS_KEY) ? { key: s.key ?? env.EDGE_NATS_KEY } : {}),
  };
}

/** An authenticator for a `.creds` file or a bare nkey seed file. */
export function authenticatorFromFile(path: string): Authenticator {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`NATS credentials ${path}: ${(err as Error).message}`);
  }
  if (text.includes('BEGIN NATS USER JWT')) return credsAuthenticator(new TextEncoder().encode(text));
  const seed = text.match(/\bSU[A-Z2-7]{40,}\b/)?.[0];
  if (!seed) throw new Error(`NATS credentials ${path}: neither a .creds file nor an nkey user seed (SU…)`);
  return nkeyAuthenticator(new TextEncoder().encode(seed));
}

/** The nats.js connection options for these settings. */
export function connectionOptions(settings: NatsClientSettings): ConnectionOptions {
  const s = settings;
  const forever = s.reconnectForever ?? true;
  const tls = s.ca || s.cert || s.servers.some((u) => u.startsWith('tls://'));
  return {
    servers: s.servers.map((u) => u.replace(/^tls:\/\//, 'nats://')),
    name: s.name,
    ...(forever ? { waitOnFirstConnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 1000 } : {}),
    ...(s.creds ? { authenticator: authenticatorFromFile(s.creds) } : {}),
    ...(tls
      ? {
          tls: {
            ...(s.ca ? { caFile: s.ca } : {}),
            ...(s.cert ? { certFile: s.cert } : {}),
            ...(s.key ? { keyFile: s.key } : {}),
          },
        }
      : {}),
  };
}

/** Connects with {@link connectionOptions} (after {@link withEnvDefaults}). */
export function connectNats(settings: NatsClientSettings): Promise<NatsConnection> {
  return connect(connectionOptions(withEnvDefaults(settings)));
}
