/**
 * Bucket-wide compare-and-set on a JetStream KV bucket: a write (put or delete) published with
 * `Nats-Expected-Last-Sequence`, so it lands only if nothing at all was written to the bucket's stream since the
 * sequence the writer read. On the nats-server we ship (2.9.10) the per-key check nats.js `kv.create`/`kv.update`
 * send (`Nats-Expected-Last-Subject-Sequence`) can let two writers win on an R3 stream; the bucket-wide one holds
 * (docs/reliability.md § "NATS compare-and-set"). Users: coordinator/intents/store.ts (fencing),
 * coordinator/networks/store.ts (IPAM claims).
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';

/**
 * Publishes `data` (or, when undefined, a KV delete marker) to a KV `subject`, accepted only if the stream's last
 * sequence is still `lastSequence`. Returns the new message's sequence; a refusal throws (JetStream error 10071,
 * see coordinator/intents/store.ts `isWrongRevision`).
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
