/**
 * Bucket-wide compare-and-set on a JetStream KV bucket: a write (put or delete) published with
 * `Nats-Expected-Last-Sequence`, so it lands only if nothing at all was written to the bucket's stream since the
 * sequence the writer read. On the nats-server we ship (2.9.10) the per-key check nats.js `kv.create`/`kv.update`
 * send (`Nats-Expected-Last-Subject-Sequence`) can let two writers win on an R3 stream; the bucket-wide one holds
 * (docs/reliability.md § "NATS compare-and-set"). Users: coordinator/intents/store.ts (fencing),
 * coordinator/networks/store.ts (IPAM claims), coordinator/enroll/store.ts (join tokens).
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';

/**
 * Publishes `data` (or, when undefined, a KV delete marker) to a KV `subject`, accepted only if the stream's last
 * sequence is still `lastSequence`. Returns the new message's sequence; a refusal throws (JetStream error 10071,
 * `isWrongRevision`).
 */
export async function publishIfLastSequence(
  js: JetStreamClient,
  subject: string,
  data: Uint8Array | undefined,
  lastSequence: number,
): Promise<number> {
  const h = natsHeaders();
  if (!data) h.set('KV-Operation', 'DEL');
  const ack = await js.publish(subject, data ?? new Uint8Array(0), { headers: h, expect: { lastSequence } });
  return ack.seq;
}

/** An error's message, JetStream error code and code, as one string to match on. */
export function errorText(err: unknown): string {
  return `${(err as Error)?.message ?? ''} ${(err as { api_error?: { err_code?: number } })?.api_error?.err_code ?? ''} ${(err as { code?: unknown })?.code ?? ''}`;
}

/**
 * The server refused a write: the stream's (or key's) last sequence was not the expected one (JetStream error
 * 10071 "wrong last sequence"), or the key exists on create.
 */
export function isWrongRevision(err: unknown): boolean {
  return /wrong last sequence|10071|key exists|10164/i.test(errorText(err));
}

/** A KV key as the stream leader has it now (never a lagging direct get): its revision and value. */
export interface LeaderEntry {
  /** The stream's last sequence when read: the expectation for a write decided on this read. */
  lastSequence: number;
  /** The key's latest message, undefined when it never existed or was purged. */
  entry?: { revision: number; data: Uint8Array; deleted: boolean };
}

/**
 * Reads the stream's last sequence, then the key's latest message, both from the stream leader. A write
 * published with `lastSequence` lands only if neither changed, so a decision made on this read holds.
 */
export async function readForCas(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
): Promise<LeaderEntry> {
  const lastSequence = (await jsm.streams.info(stream)).state.last_seq;
  const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
  if (!m) return { lastSequence };
  return {
    lastSequence,
    entry: { revision: m.seq, data: m.data, deleted: !!m.header?.get('KV-Operation') },
  };
}
