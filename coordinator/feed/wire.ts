/**
 * Connects the coordinator's parts to the monitoring feed and the NATS services API, so that
 * `coordinator.ts` needs one call: host registry events, Workload and Instance cache changes, and recorded
 * events go to the {@link FeedPublisher}; the coordinator registers as `edge-coordinator`.
 */
import type { Service } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import { GROUP, VERSION } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import type { HostEntry, HostRegistry, HostState } from '../hosts/registry.js';
import type { IntentStore } from '../intents/store.js';
import type { EventRecorder } from '../kube/events.js';
import type { ObjectHandler } from '../kube/informer.js';
import { registerCoordinator } from '../services/status.js';
import { type FeedInstanceSource, FeedPublisher, type FeedWorkloadSource } from './publisher.js';

/** A cache the feed follows. */
interface Observable<T> {
  onChange(handler: ObjectHandler<T>): void;
}

/** What {@link wireFeedAndServices} connects. */
export interface FeedWiring {
  nc: NatsConnection;
  subjects: Subjects;
  registry: HostRegistry;
  intents: IntentStore;
  events: EventRecorder;
  workloads: Iterable<Observable<FeedWorkloadSource>>;
  instances: Observable<FeedInstanceSource>;
  /** Items waiting in the Workload work queue. */
  queueLength?: () => number;
  /** Replicas of the feed streams. */
  replicas?: number;
  log: Logger;
}

/** Starts the feed and the services registration; returns a stop function. */
export async function wireFeedAndServices(
  w: FeedWiring,
): Promise<{ feed: FeedPublisher; stop(): Promise<void> }> {
  const feed = new FeedPublisher({
    nc: w.nc,
    subjects: w.subjects,
    log: w.log.child({ part: 'feed' }),
    replicas: w.replicas,
  });
  await feed.start();
  w.registry.on('report', (e: HostEntry) => feed.host(e));
  w.registry.on('state', (e: HostEntry, previous: HostState | undefined) => {
    feed.host(e);
    recordHostEvent(w.events, e, previous);
  });
  for (const cache of w.workloads) cache.onChange((o, ev) => feed.workload(o, ev === 'delete'));
  w.instances.onChange((o, ev) => feed.instance(o, ev === 'delete'));
  w.events.addSink((e) => feed.event(e));
  let service: Service | undefined;
  try {
    service = await registerCoordinator({
      nc: w.nc,
      subjects: w.subjects,
      registry: w.registry,
      intents: w.intents,
      feed,
      ...(w.queueLength ? { queueLength: w.queueLength } : {}),
      startedAt: new Date().toISOString(),
      log: w.log,
    });
  } catch (err) {
    w.log.warn({ err: (err as Error).message }, 'not registered with the NATS services API');
  }
  return {
    feed,
    stop: async () => {
      await service?.stop().catch(() => undefined);
    },
  };
}

/**
 * A Kubernetes Event on the Host for every state change (`kubectl get events`, and the feed's events):
 * HostDisconnected, HostLost, HostReady.
 */
function recordHostEvent(events: EventRecorder, e: HostEntry, previous: HostState | undefined): void {
  const host = { apiVersion: `${GROUP}/${VERSION}`, kind: 'Host', metadata: { name: e.report.host } };
  const silent = Math.round((Date.now() - e.lastSeen) / 1000);
  // Registration is in the feed only: a coordinator restart re-registers every host, which must not cost
  // thousands of Kubernetes writes.
  if (previous === undefined) return;
  if (e.state === 'Disconnected') {
    events.record(
      host,
      'Warning',
      'HostDisconnected',
      `no heartbeat for ${silent} s: its instances are Unknown`,
    );
  } else if (e.state === 'Lost') {
    events.record(
      host,
      'Warning',
      'HostLost',
      `no heartbeat for ${silent} s: its instances are replaced elsewhere`,
    );
  } else {
    events.record(host, 'Normal', 'HostReady', `heartbeats again after being ${previous.toLowerCase()}`);
  }
}
