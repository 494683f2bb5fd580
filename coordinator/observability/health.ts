/**
 * Liveness and readiness of the coordinator, as pure functions of what it knows about itself.
 *
 * - `/healthz` (liveness): the process is alive and its event loop turns (a timer has fired recently). It
 *   never depends on NATS, the API server or the Lease, so a standby, or a leader whose NATS is down, is not
 *   restarted by its liveness probe.
 * - `/readyz` (readiness): a leader is ready once it is connected to NATS and every Kubernetes cache has
 *   synced. A standby (waiting for the Lease) is ready too — it is as ready as it can be, and a Deployment of
 *   two must roll out: were the standby never Ready, a rolling update would wait on it forever. The answer
 *   says `standby`, and `edgeplane_coordinator_leader` tells the two apart. Starting up (before the first
 *   election attempt, or a new leader still connecting and syncing) is not ready.
 */

/** Where the coordinator is in its life. */
export type CoordinatorRole = 'starting' | 'standby' | 'leader' | 'stopping';

/** What health is judged from. */
export interface HealthInput {
  role: CoordinatorRole;
  /** A leader's NATS connection is up (false while reconnecting). */
  natsConnected: boolean;
  /** Every Kubernetes cache has listed and watches. */
  cachesSynced: boolean;
  /** Milliseconds since the event-loop heartbeat timer last fired. */
  loopStallMs: number;
}

/** A probe's answer. */
export interface ProbeResult {
  ok: boolean;
  /** One line for the response body (`ok`, `standby`, or what is missing). */
  detail: string;
}

/** A loop that has not run a timer for this long is stuck (the heartbeat timer ticks every second). */
export const MAX_LOOP_STALL_MS = 10_000;

export function liveness(h: HealthInput): ProbeResult {
  return h.loopStallMs > MAX_LOOP_STALL_MS
    ? { ok: false, detail: `event loop stalled for ${Math.round(h.loopStallMs)} ms` }
    : { ok: true, detail: 'ok' };
}

export function readiness(h: HealthInput): ProbeResult {
  if (h.role === 'standby') return { ok: true, detail: 'standby: waiting for the leader Lease' };
  if (h.role !== 'leader') return { ok: false, detail: h.role };
  const missing = [
    ...(h.natsConnected ? [] : ['NATS not connected']),
    ...(h.cachesSynced ? [] : ['Kubernetes caches not synced']),
  ];
  return missing.length ? { ok: false, detail: missing.join('; ') } : { ok: true, detail: 'ok' };
}
