/**
 * The monitoring feed: the coordinator publishes what changes — hosts (registered, capacity, state, lost),
 * instances (phase, readiness, host), Workloads (replicas, phase) and every event it records — on
 * `<prefix>.feed.…` and `<prefix>.events.…`, only when something changed (never per heartbeat). Two
 * JetStream streams keep the last message per feed subject (the current state, for `edgectl hosts`) and an
 * hour of events, so a tool that starts late still sees the present.
 */
import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import {
  type EventFeed,
  encode,
  type HostFeed,
  type InstanceFeed,
  MESSAGE_VERSION,
  type WorkloadFeed,
} from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import type { HostEntry } from '../hosts/registry.js';
import type { RecordedEvent } from '../kube/events.js';

/** Options of {@link FeedPublisher}. */
export interface FeedPublisherOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Replicas of the feed streams (3 on a NATS cluster). */
  replicas?: number;
}

/** The parts of an Instance object the feed shows. */
export interface FeedInstanceSource {
  metadata: { name: string; namespace?: string };
  spec: { workloadRef: { name: string }; location: string; host: string };
  status?: { phase?: string; ready?: boolean; message?: string } | undefined;
}

/** The parts of a Workload object the feed shows. */
export interface FeedWorkloadSource {
  metadata: { name: string; namespace?: string };
  spec?: unknown;
  status?:
    | { phase?: string; replicas?: number; readyReplicas?: number; availableReplicas?: number }
    | undefined;
}

export class FeedPublisher {
  private digests = new Map<string, string>();
  /** Feed messages published. */
  published = 0;

  constructor(private readonly opts: FeedPublisherOptions) {}

  /** Creates or updates the two streams; the feed still goes out on core NATS when that fails. */
  async start(): Promise<void> {
    const s = this.opts.subjects;
    const replicas = this.opts.replicas ?? 1;
    try {
      const jsm = await jetstreamManager(this.opts.nc);
      const streams = [
        {
          name: s.feedStream,
          subjects: [s.allFeed],
          max_msgs_per_subject: 1,
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          num_replicas: replicas,
        },
        {
          name: s.eventsStream,
          subjects: [s.allEvents],
          max_age: 3600 * 1e9,
          max_msgs: 100_000,
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          num_replicas: replicas,
        },
      ];
      for (const cfg of streams) {
        try {
          await jsm.streams.add(cfg);
        } catch {
          await jsm.streams.update(cfg.name, cfg);
        }
      }
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'feed streams not available; feed is live only');
    }
  }

  /** Publishes `message` on `subject` unless its `digest` is what was last published there. */
  private publish(subject: string, digest: string, message: unknown): void {
    if (this.digests.get(subject) === digest) return;
    this.digests.set(subject, digest);
    try {
      this.opts.nc.publish(subject, encode(message));
      this.published++;
    } catch (err) {
      this.opts.log.debug({ subject, err: (err as Error).message }, 'feed message not published');
    }
  }

  /** A host was reported or changed state. */
  host(entry: HostEntry): void {
    const r = entry.report;
    const body = {
      host: r.host,
      location: r.location,
      state: entry.state,
      labels: r.labels,
      allocatable: r.allocatable,
      runtimes: r.runtimes,
      instances: r.instances.length,
      agentVersion: r.agentVersion,
    };
    const msg: HostFeed = {
      v: MESSAGE_VERSION,
      kind: 'host',
      ...body,
      lastHeartbeat: new Date(entry.lastSeen).toISOString(),
      time: new Date().toISOString(),
    };
    this.publish(this.opts.subjects.feedHost(r.host), JSON.stringify(body), msg);
  }

  /** An Instance object changed (or was deleted). */
  instance(obj: FeedInstanceSource, deleted = false): void {
    const namespace = obj.metadata.namespace ?? 'default';
    const body = {
      namespace,
      name: obj.metadata.name,
      workload: obj.spec.workloadRef.name,
      location: obj.spec.location,
      host: obj.spec.host,
      phase: deleted ? 'Deleted' : (obj.status?.phase ?? 'Pending'),
      ready: deleted ? false : (obj.status?.ready ?? false),
      ...(obj.status?.message && !deleted ? { message: obj.status.message } : {}),
    };
    const msg: InstanceFeed = {
      v: MESSAGE_VERSION,
      kind: 'instance',
      ...body,
      time: new Date().toISOString(),
    };
    const subject = this.opts.subjects.feedInstance(namespace, obj.metadata.name);
    this.publish(subject, JSON.stringify(body), msg);
    if (deleted) this.digests.delete(subject); // gone for good: do not keep its digest forever
  }

  /** A Workload object changed (or was deleted). */
  workload(obj: FeedWorkloadSource, deleted = false): void {
    const namespace = obj.metadata.namespace ?? 'default';
    const replicas = (obj.spec as { replicas?: unknown } | undefined)?.replicas;
    const st = obj.status ?? {};
    const body = {
      namespace,
      name: obj.metadata.name,
      desired: typeof replicas === 'number' ? replicas : 0,
      replicas: deleted ? 0 : (st.replicas ?? 0),
      readyReplicas: deleted ? 0 : (st.readyReplicas ?? 0),
      availableReplicas: deleted ? 0 : (st.availableReplicas ?? 0),
      phase: deleted ? 'Deleted' : (st.phase ?? 'Pending'),
    };
    const msg: WorkloadFeed = {
      v: MESSAGE_VERSION,
      kind: 'workload',
      ...body,
      time: new Date().toISOString(),
    };
    const subject = this.opts.subjects.feedWorkload(namespace, obj.metadata.name);
    this.publish(subject, JSON.stringify(body), msg);
    if (deleted) this.digests.delete(subject);
  }

  /** An event the coordinator recorded (every one is published: events are not state). */
  event(e: RecordedEvent): void {
    const o = e.involvedObject;
    const namespace = o.namespace ?? 'default';
    const msg: EventFeed = {
      v: MESSAGE_VERSION,
      kind: 'event',
      type: e.type,
      reason: e.reason,
      message: e.message,
      object: { kind: o.kind, name: o.name, ...(o.namespace ? { namespace: o.namespace } : {}) },
      count: e.count,
      time: e.time,
    };
    try {
      this.opts.nc.publish(this.opts.subjects.feedEvent(namespace, o.kind, o.name), encode(msg));
      this.published++;
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'event not published to the feed');
    }
  }
}
