/**
 * Reading the monitoring feed: the current state (the last message per subject, kept by the feed stream) and
 * the live stream of changes and events (plain NATS subscriptions, what `nats sub` shows).
 */
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decode, FeedMessage } from '../shared/nats/messages.js';
import type { Subjects } from '../shared/nats/subjects.js';

/** The last feed message of every subject under `filter` (e.g. every host), oldest first. */
export async function feedSnapshot(
  nc: NatsConnection,
  subjects: Subjects,
  filter: string,
  timeoutMs = 10_000,
): Promise<FeedMessage[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(subjects.feedStream, {
    // One filter as a string: nats-server 2.9 knows filter_subject only.
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const info = await consumer.info();
  if (info.num_pending === 0) return [];
  const out: FeedMessage[] = [];
  const messages = await consumer.consume();
  const timer = setTimeout(() => messages.stop(), timeoutMs);
  for await (const m of messages) {
    try {
      out.push(decode(FeedMessage, m.data));
    } catch {
      // A message this version does not understand: skip it rather than fail the listing.
    }
    if (m.info.pending === 0) break;
  }
  clearTimeout(timer);
  await messages.close().catch(() => undefined);
  return out;
}

/** Calls `onMessage` for every live feed message and event until the connection closes. */
export function followFeed(
  nc: NatsConnection,
  subjects: Subjects,
  onMessage: (m: FeedMessage, subject: string) => void,
  onMalformed: (subject: string, err: string) => void = () => {},
): void {
  for (const subject of [subjects.allFeed, subjects.allEvents]) {
    nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        try {
          onMessage(decode(FeedMessage, msg.data), msg.subject);
        } catch (e) {
          onMalformed(msg.subject, (e as Error).message);
        }
      },
    });
  }
}
