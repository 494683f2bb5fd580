/**
 * How every Edgeplane process connects to NATS: servers, credentials and TLS in one place, so the coordinator,
 * agents, edgectl and the tests behave alike. Settings not given explicitly come from the environment
 * (EDGE_NATS_CREDS, EDGE_NATS_CA, EDGE_NATS_CERT, EDGE_NATS_KEY), so no daemon needs extra flags for TLS.
 *
 * Dead links: a half-open connection (the peer or a middlebox gone without a FIN/RST) is only noticed by the
 * client's own pings. nats.js pings every 2 minutes and gives up after 2 unanswered ones, so it noticed a dead link
 * after 4–6 minutes, while the coordinator declares a silent host Lost after 30 s. We ping every
 * {@link DEFAULT_PING_INTERVAL_MS} and give up after {@link DEFAULT_MAX_PINGS_OUT} unanswered pings: a dead link is
 * noticed (and a reconnect begun) within (maxPingsOut + 1) × pingInterval = 9 s. What the coordinator sees is
 * longer: the reports since the last one that arrived are lost too, so a host's silence is up to one heartbeat
 * (5 s) + 9 s + the fail-over, under its default Disconnected bound (3 × 5 s heartbeat + 5 s grace = 20 s) and
 * well under `lostAfter` (30 s). With a 5 s ping it was up to 5 + 15 s: a host whose link to one NATS member died
 * just before a heartbeat went Disconnected although another member was there (issue 14).
 * EDGE_NATS_PING_MS and EDGE_NATS_MAX_PINGS_OUT override them.
 *
 * Healing: a daemon's reconnect attempt that starts while the link is still dead hangs until its connect timeout.
 * nats.js waits 20 s, so an agent whose blackholed link healed stayed away up to 20 s longer, its replaced
 * instance running twice meanwhile (measured 15.2 s by test/e2e/agent-partition.test.ts). Daemons, which retry
 * forever, give an attempt {@link DEFAULT_DAEMON_CONNECT_TIMEOUT_MS} (EDGE_NATS_CONNECT_TIMEOUT_MS overrides it);
 * one-shot commands keep nats.js's 20 s.
 *
 * Fail-over: nats.js's first reconnect after a lost link goes to the server it just lost whenever that server was
 * the first it ever dialled (its first pick does not rotate the pool). Over a half-open link that attempt hangs
 * for the whole connect timeout before another member is tried, so an agent whose link to one of three members
 * died stayed silent for ping bound + connect timeout (20 s: its host went Disconnected). {@link avoidLostServer}
 * sends that attempt to another member first (at most one attempt in {@link AVOID_LOST_MS}, so a lost server that
 * is the only one left is not shunned).
 */
import { readFileSync } from 'node:fs';
import {
  type Authenticator,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  type Server,
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
  /** Client ping interval in ms (default {@link DEFAULT_PING_INTERVAL_MS}; EDGE_NATS_PING_MS). */
  pingIntervalMs?: number;
  /** Unanswered pings after which the link is declared dead (default {@link DEFAULT_MAX_PINGS_OUT}; EDGE_NATS_MAX_PINGS_OUT). */
  maxPingsOut?: number;
  /** Keep reconnecting forever (daemons) rather than failing (CLI). Default true. */
  reconnectForever?: boolean;
  /** How long one connection attempt may take, in ms (daemons: {@link DEFAULT_DAEMON_CONNECT_TIMEOUT_MS}; EDGE_NATS_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
}

/** Client ping interval: a dead link is noticed within (maxPingsOut + 1) × this (see the module comment). */
export const DEFAULT_PING_INTERVAL_MS = 3000;
/** Unanswered pings before the link is declared dead. */
export const DEFAULT_MAX_PINGS_OUT = 2;
/** How long a daemon's connection attempt may take before the next one (see the module comment). */
export const DEFAULT_DAEMON_CONNECT_TIMEOUT_MS = 5000;

/** A positive integer from the environment, or a clear error naming the variable. */
function envPositiveInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`${name}: expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
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
    pingIntervalMs: s.pingIntervalMs ?? envPositiveInt(env, 'EDGE_NATS_PING_MS') ?? DEFAULT_PING_INTERVAL_MS,
    maxPingsOut: s.maxPingsOut ?? envPositiveInt(env, 'EDGE_NATS_MAX_PINGS_OUT') ?? DEFAULT_MAX_PINGS_OUT,
    ...((s.connectTimeoutMs ?? envPositiveInt(env, 'EDGE_NATS_CONNECT_TIMEOUT_MS'))
      ? { connectTimeoutMs: s.connectTimeoutMs ?? envPositiveInt(env, 'EDGE_NATS_CONNECT_TIMEOUT_MS') }
      : {}),
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

/** A server of nats.js's pool, as its reconnect handler sees it. */
export interface PoolServer {
  /** `host:port`. */
  listen: string;
  /** When it was last dialled (wall clock, ms; 0: never). */
  lastConnect: number;
}

/** How long after avoiding the lost server it may be avoided again. */
export const AVOID_LOST_MS = 10_000;

/**
 * Which server to dial next: when nats.js would dial the server it dialled last — the one whose link was just
 * lost, since no dial happens while connected — and another is known, that other one (the next in nats.js's own
 * order), at most once per {@link AVOID_LOST_MS}; otherwise null (nats.js decides). `state` keeps when it last
 * avoided; `now` is monotonic.
 */
export function avoidLostServer<S extends PoolServer>(
  pool: readonly S[],
  state: { avoidedAt?: number },
  now = performance.now(),
): S | null {
  if (pool.length < 2) return null;
  const last = pool.reduce((a, b) => (b.lastConnect > a.lastConnect ? b : a));
  if (pool[0] !== last || last.lastConnect === 0) return null;
  if (state.avoidedAt !== undefined && now - state.avoidedAt < AVOID_LOST_MS) return null;
  state.avoidedAt = now;
  return pool.find((x) => x !== last) ?? null;
}

/** The nats.js connection options for these settings. */
export function connectionOptions(settings: NatsClientSettings): ConnectionOptions {
  const s = settings;
  const forever = s.reconnectForever ?? true;
  const avoiding: { avoidedAt?: number } = {};
  const tls = s.ca || s.cert || s.servers.some((u) => u.startsWith('tls://'));
  return {
    servers: s.servers.map((u) => u.replace(/^tls:\/\//, 'nats://')),
    name: s.name,
    pingInterval: s.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
    maxPingOut: s.maxPingsOut ?? DEFAULT_MAX_PINGS_OUT,
    ...(forever
      ? {
          waitOnFirstConnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1000,
          timeout: s.connectTimeoutMs ?? DEFAULT_DAEMON_CONNECT_TIMEOUT_MS,
          reconnectToServer: (pool: readonly Server[]) => avoidLostServer(pool, avoiding),
        }
      : s.connectTimeoutMs
        ? { timeout: s.connectTimeoutMs }
        : {}),
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
