/**
 * Registration with the NATS services API (`@nats-io/services`): `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`
 * (optionally `.<name>` / `.<name>.<id>`) discover every coordinator and agent, and each exposes a `status`
 * endpoint that answers with a JSON snapshot of its own state.
 */

import { type Service, Svcm } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log.js';

/** Service names, as `nats micro ls` shows them. */
export const COORDINATOR_SERVICE = 'edge-coordinator';
export const AGENT_SERVICE = 'edge-agent';

/** Options of {@link registerService}. */
export interface ServiceRegistration {
  nc: NatsConnection;
  /** {@link COORDINATOR_SERVICE} or {@link AGENT_SERVICE}. */
  name: string;
  /** Semver of the process. */
  version: string;
  /** One line for `$SRV.INFO`. */
  description: string;
  /** Shown in `$SRV.INFO`, e.g. host and location. */
  metadata: Record<string, string>;
  /** Subject of the status endpoint. */
  statusSubject: string;
  /** The status document (JSON-serialisable). */
  status: () => unknown;
  /** Extra `data` for `$SRV.STATS` (counters such as malformed messages). */
  stats?: () => unknown;
  /** Queue group of the endpoint; empty for an endpoint exactly one process serves. */
  queue?: string;
  log: Logger;
}

/** Registers the service and its status endpoint; stop it with `service.stop()`. */
export async function registerService(r: ServiceRegistration): Promise<Service> {
  // @nats-io/services pins an older nats-core; the connection API it uses is the same.
  const service = await new Svcm(r.nc as unknown as ConstructorParameters<typeof Svcm>[0]).add({
    name: r.name,
    version: r.version,
    description: r.description,
    metadata: r.metadata,
    queue: r.queue ?? '',
    ...(r.stats ? { statsHandler: async () => r.stats!() } : {}),
  });
  service.addEndpoint('status', {
    subject: r.statusSubject,
    handler: (err, msg) => {
      if (err) return;
      try {
        msg.respond(JSON.stringify(r.status()));
      } catch (e) {
        msg.respondError(500, (e as Error).message);
      }
    },
  });
  r.log.info(
    { service: r.name, id: service.info().id, status: r.statusSubject },
    'registered with the NATS services API',
  );
  return service;
}
