/**
 * The coordinator's registration with the NATS services API and what its `status` endpoint answers: hosts
 * by state, intent writes and CAS conflicts, malformed reports, feed messages, and the work queue.
 */
import type { Service } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { COORDINATOR_SERVICE, registerService } from '../../shared/nats/service.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import { VERSION } from '../../shared/version.js';
import type { FeedPublisher } from '../feed/publisher.js';
import type { HostRegistry } from '../hosts/registry.js';
import type { IntentStore } from '../intents/store.js';

/** Version the coordinator reports (package.json's). */
export const COORDINATOR_VERSION = VERSION;

/** What the status endpoint reads. */
export interface CoordinatorStatusSources {
  nc: NatsConnection;
  subjects: Subjects;
  registry: HostRegistry;
  intents: IntentStore;
  feed?: FeedPublisher;
  /** Items waiting in the Workload work queue. */
  queueLength?: () => number;
  startedAt: string;
  log: Logger;
}

/** Counters for `$SRV.STATS`. */
export function coordinatorCounters(s: CoordinatorStatusSources): Record<string, number> {
  return {
    hostReportsAccepted: s.registry.accepted,
    hostReportsMalformed: s.registry.malformed,
    intentWrites: s.intents.writes,
    intentConflicts: s.intents.conflicts,
    feedPublished: s.feed?.published ?? 0,
  };
}

/** The status document. */
export function coordinatorStatus(s: CoordinatorStatusSources): Record<string, unknown> {
  return {
    version: COORDINATOR_VERSION,
    startedAt: s.startedAt,
    hosts: s.registry.counts(),
    sealer: s.intents.sealerKey,
    ...(s.queueLength ? { queue: s.queueLength() } : {}),
    counters: coordinatorCounters(s),
    hostReportsRefused: { ...s.registry.refused },
  };
}

/** Registers the coordinator (`$SRV.PING.edge-coordinator`) with its status endpoint. */
export function registerCoordinator(s: CoordinatorStatusSources): Promise<Service> {
  return registerService({
    nc: s.nc,
    name: COORDINATOR_SERVICE,
    version: COORDINATOR_VERSION,
    description: 'Edgeplane coordinator: places Workloads and publishes deployment intents',
    metadata: { prefix: s.subjects.prefix },
    statusSubject: s.subjects.coordinatorStatus,
    status: () => coordinatorStatus(s),
    stats: () => coordinatorCounters(s),
    queue: 'q',
    log: s.log,
  });
}
