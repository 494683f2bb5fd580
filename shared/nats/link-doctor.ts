/**
 * Keeps a daemon's NATS link recoverable when the host's wall clock steps, and says why it cannot connect.
 *
 * Clock steps: nats.js paces reconnect attempts by `Date.now()`: a server is dialled again only when its
 * `lastConnect` plus the reconnect wait is not in the future. A wall clock stepped back (NTP correcting a fast
 * clock, a VM restored from a snapshot) puts every `lastConnect` in the future, and the client then dials nobody
 * until the wall clock catches up: after a step back of a day, an agent whose link dropped stayed away for a day
 * (issue 14, measured by test/integration/nats-clock-step.test.ts). Every second the doctor moves such
 * `lastConnect` values back to now (the reconnect wait is then measured afresh: no dial storm).
 *
 * Cut-off member: a member whose routes to the others are cut keeps its clients — it answers their pings — but
 * nobody beyond it hears them: an agent connected there was silent to the coordinator for the whole cut and its
 * host went Lost (issue 14, test/chaos/nats/stream-leader-isolated.test.ts). Such a member has no JetStream meta
 * leader, and answers `$JS.API.INFO` with "JetStream system temporarily unavailable" (10008) about 10 s into the
 * cut. With more than one server configured, the doctor asks every {@link MEMBER_PROBE_EVERY_MS}; when the member
 * has said so for {@link MEMBER_UNAVAILABLE_MOVE_MS} (no answer in between saying otherwise; a timeout says
 * nothing, so a loaded server never counts), it reconnects, and the reconnect goes to another member first
 * (connect.ts `avoidLostServer`); at most once per {@link MEMBER_MOVE_EVERY_MS}, so a cluster without JetStream
 * quorum anywhere costs one reconnect a minute, not a storm.
 *
 * Diagnosis: nats.js retries a failing connect silently. When the link has been down for {@link EXPLAIN_AFTER_MS}
 * (and then at most every {@link EXPLAIN_EVERY_MS}), the doctor connects to each configured server itself — the
 * plaintext INFO line, then the TLS upgrade nats.js makes — and logs what fails, with the host's clock: a server
 * certificate that is "not yet valid" or "expired" by this host's clock names a wrong clock, not a bad server.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import type { NatsClientSettings } from './connect.js';

/** Down this long (monotonic) before the doctor looks into why. */
export const EXPLAIN_AFTER_MS = 10_000;
/** Least time between two diagnoses. */
export const EXPLAIN_EVERY_MS = 60_000;

/** How often the connected member is asked whether its JetStream has a leader. */
export const MEMBER_PROBE_EVERY_MS = 3_000;
/** The member said "temporarily unavailable" this long (monotonic) before the doctor moves the link. */
export const MEMBER_UNAVAILABLE_MOVE_MS = 10_000;
/** Least time between two moves. */
export const MEMBER_MOVE_EVERY_MS = 60_000;

/**
 * What an answer to `$JS.API.INFO` says about the member that gave it: `cut-off` for "JetStream system temporarily
 * unavailable" (err_code 10008: no meta leader reachable), `fine` for an account info, `unknown` otherwise (another
 * error, such as JetStream not enabled for the account, is not the member's fault). Exported for the unit test.
 */
export function memberVerdict(answer: string): 'fine' | 'cut-off' | 'unknown' {
  try {
    const v = JSON.parse(answer) as { error?: { err_code?: number }; type?: string };
    if (v.error) return v.error.err_code === 10008 ? 'cut-off' : 'unknown';
    return v.type === 'io.nats.jetstream.api.v1.account_info_response' ? 'fine' : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The part of nats.js's server pool the doctor touches (internal: `nc.protocol.servers`). */
interface PooledServer {
  hostname: string;
  port: number;
  lastConnect: number;
}

function pool(nc: NatsConnection): PooledServer[] {
  const servers = (nc as unknown as { protocol?: { servers?: { getServers?: () => PooledServer[] } } })
    .protocol?.servers;
  return servers?.getServers?.() ?? [];
}

/**
 * Servers whose `lastConnect` lies in the future (the wall clock went back since they were dialled) get it set
 * to `now`; returns how many. Exported for the unit test.
 */
export function repairClockStep(servers: PooledServer[], now = Date.now()): number {
  let repaired = 0;
  for (const s of servers)
    if (typeof s.lastConnect === 'number' && s.lastConnect > now) {
      s.lastConnect = now;
      repaired++;
    }
  return repaired;
}

/** What connecting to `host:port` as nats.js would (INFO, then TLS when configured) runs into; undefined: fine. */
export function probeServer(
  host: string,
  port: number,
  settings: Pick<NatsClientSettings, 'ca' | 'cert' | 'key'>,
  timeoutMs = 5000,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let done = false;
    const finish = (why: string | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.once('error', (err) => finish(err.message));
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n')) return;
      socket.off('data', onData);
      const wantsTls = /"tls_required"\s*:\s*true/.test(head) || Boolean(settings.ca || settings.cert);
      if (!wantsTls) return finish(undefined);
      let secure: tls.TLSSocket;
      try {
        secure = tls.connect({
          socket,
          ...(net.isIP(host) ? {} : { servername: host }),
          ...(settings.ca ? { ca: fs.readFileSync(settings.ca, 'utf8') } : {}),
          ...(settings.cert ? { cert: fs.readFileSync(settings.cert, 'utf8') } : {}),
          ...(settings.key ? { key: fs.readFileSync(settings.key, 'utf8') } : {}),
        });
      } catch (err) {
        return finish((err as Error).message);
      }
      secure.once('secureConnect', () => {
        secure.destroy();
        finish(undefined);
      });
      secure.once('error', (err: NodeJS.ErrnoException) =>
        finish(`TLS: ${err.code ? `${err.code}: ` : ''}${err.message}`),
      );
    };
    socket.on('data', onData);
  });
}

/** Reads a TLS failure as a statement about this host's clock when it is one. */
export function explain(why: string, now = new Date()): string {
  if (/CERT_NOT_YET_VALID|not yet valid/i.test(why))
    return `${why} — by this host's clock (${now.toISOString()}) the certificate is not valid yet: the host clock is likely behind`;
  if (/CERT_HAS_EXPIRED|expired/i.test(why))
    return `${why} — by this host's clock (${now.toISOString()}) the certificate has expired: check the host clock, or renew the certificate`;
  return why;
}

/** Options of {@link startLinkDoctor}. */
export interface LinkDoctorOptions {
  /** The connection, once it exists (the first connect may still be under way). */
  nc: () => NatsConnection | undefined;
  /** What the connection was made with (servers, TLS files). */
  settings: Pick<NatsClientSettings, 'servers' | 'ca' | 'cert' | 'key'>;
  log: Logger;
}

/** Starts the doctor (an unref'd 1 s timer); call the result to stop it. */
export function startLinkDoctor(o: LinkDoctorOptions): () => void {
  let downSince: number | undefined = performance.now();
  let lastExplained = Number.NEGATIVE_INFINITY;
  let explaining = false;
  let probing = false;
  let lastProbe = Number.NEGATIVE_INFINITY;
  let cutOffSince: number | undefined;
  let lastMove = Number.NEGATIVE_INFINITY;
  const probeMember = (nc: NatsConnection) => {
    const now = performance.now();
    if (o.settings.servers.length < 2 || probing || now - lastProbe < MEMBER_PROBE_EVERY_MS) return;
    lastProbe = now;
    probing = true;
    nc.request('$JS.API.INFO', '', { timeout: MEMBER_PROBE_EVERY_MS - 500 })
      .then(
        (m) => {
          const verdict = memberVerdict(m.string());
          const at = performance.now();
          if (verdict === 'fine') cutOffSince = undefined;
          if (verdict !== 'cut-off') return;
          cutOffSince ??= at;
          if (at - cutOffSince < MEMBER_UNAVAILABLE_MOVE_MS || at - lastMove < MEMBER_MOVE_EVERY_MS) return;
          lastMove = at;
          o.log.warn(
            { server: nc.getServer(), cutOffForMs: Math.round(at - cutOffSince) },
            'this NATS member has no JetStream leader (cut off from the cluster?): moving to another member',
          );
          cutOffSince = undefined;
          nc.reconnect().catch(() => undefined);
        },
        () => undefined,
      )
      .finally(() => {
        probing = false;
      });
  };
  const tick = () => {
    const nc = o.nc();
    if (nc) {
      const repaired = repairClockStep(pool(nc));
      if (repaired)
        o.log.warn(
          { servers: repaired, now: new Date().toISOString() },
          'wall clock went back: NATS reconnects re-paced',
        );
      const up =
        !nc.isClosed() && (nc as unknown as { protocol?: { connected?: boolean } }).protocol?.connected;
      if (up) {
        downSince = undefined;
        probeMember(nc);
        return;
      }
    }
    const now = performance.now();
    downSince ??= now;
    if (explaining || now - downSince < EXPLAIN_AFTER_MS || now - lastExplained < EXPLAIN_EVERY_MS) return;
    lastExplained = now;
    explaining = true;
    void Promise.all(
      o.settings.servers.map(async (url) => {
        const u = new URL(url.replace(/^tls:\/\//, 'nats://'));
        const why = await probeServer(u.hostname, Number(u.port || 4222), o.settings);
        return why ? `${u.host}: ${explain(why)}` : undefined;
      }),
    )
      .then((answers) => {
        const failures = answers.filter((a): a is string => a !== undefined);
        o.log.error(
          { downForMs: Math.round(now - downSince!), failures, hostClock: new Date().toISOString() },
          failures.length
            ? 'cannot connect to NATS'
            : 'cannot connect to NATS (every server answers a probe; see the server logs)',
        );
      })
      .finally(() => {
        explaining = false;
      });
  };
  const timer = setInterval(tick, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
