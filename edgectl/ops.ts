/**
 * `edgectl logs` and `edgectl exec`: finds the instance's host in the monitoring feed (no Kubernetes access
 * needed), opens a session with that host's agent, and pulls its output chunk by chunk until the chunk with
 * `end` (protocol in shared/nats/ops.ts). Every failure is one clear sentence, within a timeout: no such
 * instance, the host's agent not answering, no such container, credentials that are not an operator's.
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { decode, encode, type InstanceFeed, MESSAGE_VERSION } from '../shared/nats/messages.js';
import {
  type ExecRequest,
  type LogsRequest,
  type NextRequest,
  OutputChunk,
  type OutputStreamName,
} from '../shared/nats/ops.js';
import type { OpsAction, Subjects } from '../shared/nats/subjects.js';
import { feedSnapshot } from './feed.js';

/** Who asks and how long to wait for an answer. */
export interface OpsClient {
  nc: NatsConnection;
  subjects: Subjects;
  /** The operator's name (what its credentials may publish as). */
  caller: string;
  /** Per request (default 10 s; a pull is answered within 2 s even when there is no output). */
  timeoutMs?: number;
}

/** A user-facing error; edgectl prints its message and exits 1. */
export class OpsClientError extends Error {}

/** The instance as the feed last saw it; throws when there is none (or it was deleted). */
export async function findInstance(c: OpsClient, namespace: string, name: string): Promise<InstanceFeed> {
  const [last] = (await feedSnapshot(c.nc, c.subjects, c.subjects.feedInstance(namespace, name))).filter(
    (m): m is InstanceFeed => m.kind === 'instance',
  );
  if (!last || last.phase === 'Deleted')
    throw new OpsClientError(
      `instance ${namespace}/${name} not found (the coordinator's feed has no such instance)`,
    );
  if (!last.host) throw new OpsClientError(`instance ${namespace}/${name} is not placed on a host yet`);
  return last;
}

/** Why a request failed, as the operator should read it. */
function explain(err: unknown, subject: string, host: string, caller: string, timeoutMs: number): Error {
  const chain: Error[] = [];
  for (let e = err as Error | undefined; e && chain.length < 5; e = e.cause as Error | undefined)
    chain.push(e);
  const named = (n: string) => chain.some((e) => e.name === n);
  if (named('NoResponders'))
    return new OpsClientError(`host ${host} does not answer: its agent is not connected to NATS`);
  if (named('TimeoutError'))
    return new OpsClientError(`host ${host} did not answer within ${Math.round(timeoutMs / 1000)} s`);
  if (named('PermissionViolationError'))
    return new OpsClientError(
      `the NATS server refused ${subject}: these credentials are not those of operator "${caller}" ` +
        '(logs and exec need an operator identity: edgectl credentials operator <name>, then --operator <name>)',
    );
  return err as Error;
}

/** The chunk in a reply, or the agent's error as an OpsClientError. */
function chunkOf(reply: Msg): OutputChunk {
  const error = reply.headers?.get('Nats-Service-Error');
  if (error) throw new OpsClientError(error);
  return decode(OutputChunk, reply.data);
}

/**
 * Runs one session to its end: `onData` gets the output in order; resolves with the end (exit code of a command).
 * `stop` (e.g. Ctrl-C while following) ends it early: the agent closes the session when nobody pulls.
 */
export async function runSession(
  c: OpsClient,
  host: string,
  op: Exclude<OpsAction, 'next'>,
  request: LogsRequest | ExecRequest,
  onData: (stream: OutputStreamName, bytes: Buffer) => void,
  stop?: AbortSignal,
): Promise<NonNullable<OutputChunk['end']>> {
  const timeout = c.timeoutMs ?? 10_000;
  const ask = async (action: OpsAction, body: unknown): Promise<OutputChunk> => {
    const subject = c.subjects.opsRequest(host, action, c.caller);
    let reply: Msg;
    try {
      reply = await c.nc.request(subject, encode(body), { timeout });
    } catch (err) {
      throw explain(err, subject, host, c.caller, timeout);
    }
    return chunkOf(reply);
  };
  let chunk = await ask(op, request);
  for (;;) {
    for (const d of chunk.data) onData(d.stream, Buffer.from(d.b64, 'base64'));
    if (chunk.end) return chunk.end;
    if (stop?.aborted) return { reason: 'stopped' };
    const pull: NextRequest = { v: MESSAGE_VERSION, session: chunk.session, after: chunk.seq };
    chunk = await ask('next', pull);
  }
}

/** `--since 10m` → 600. Accepts s, m, h (and combinations like 1h30m). */
export function parseDuration(text: string, field = 'since'): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (!m || !text.trim() || (!m[1] && !m[2] && !m[3]))
    throw new OpsClientError(
      `--${field}: expected a duration like 30s, 10m or 1h, got ${JSON.stringify(text)}`,
    );
  const seconds = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  if (seconds <= 0) throw new OpsClientError(`--${field}: must be more than 0 s`);
  return seconds;
}

/** `--tail 20` → 20; -1 (kubectl's "all") → undefined. */
export function parseTail(text: string): number | undefined {
  if (!/^-?\d+$/.test(text.trim()))
    throw new OpsClientError(`--tail: expected a number of lines, got ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n < -1) throw new OpsClientError('--tail: expected 0 or more lines (or -1 for all)');
  return n === -1 ? undefined : n;
}

/** `ns/name` or `name` with `-n ns`. */
export function splitInstance(ref: string, namespace: string): { namespace: string; name: string } {
  const parts = ref.split('/');
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  if (parts.length === 1 && ref) return { namespace, name: ref };
  throw new OpsClientError(`instance: expected <name> or <namespace>/<name>, got ${JSON.stringify(ref)}`);
}
