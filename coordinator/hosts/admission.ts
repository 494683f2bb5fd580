/**
 * Whether the coordinator accepts a host report: identity is bound by credentials, not declared by the report.
 *
 * 1. The subject is what NATS permissions guard (a host may publish only on `<prefix>.hosts.<its name>.>`), so
 *    the report's `host` must be the host of its subject.
 * 2. When hosts are enrolled (operator mode), the host must be enrolled, not revoked, and the `location` it
 *    reports must be the one its credentials were issued for (the same location its permissions let it read).
 * 3. The heartbeat interval it claims is bounded: the coordinator derives the host's TTL from it, so an
 *    unbounded interval would let a dead host look Ready for as long as it said, and a tiny one flood.
 * Invariant: an accepted report's host and location are those of the credentials it was published with.
 */
import type { HostReport } from '../../shared/nats/messages.js';

/** Why a report was refused (the label of the refusal counter). */
export type RefusalReason =
  | 'malformed'
  | 'subject-mismatch'
  | 'not-enrolled'
  | 'revoked'
  | 'location-mismatch'
  | 'heartbeat-out-of-bounds';

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'malformed',
  'subject-mismatch',
  'not-enrolled',
  'revoked',
  'location-mismatch',
  'heartbeat-out-of-bounds',
];

/** The identity a host's credentials were issued for. */
export interface BoundIdentity {
  /** Location of its credentials. */
  location: string;
  /** Revoked credentials: its reports are refused even before the server closes its connection. */
  revoked: boolean;
}

/** The rules in force. */
export interface AdmissionRules {
  /** Smallest heartbeat interval accepted (ms). */
  minHeartbeatMs: number;
  /** Largest heartbeat interval accepted (ms). */
  maxHeartbeatMs: number;
  /**
   * The identity bound to a host name; absent when hosts are not enrolled (static nkey users, whose location
   * only their permissions pin). Returns undefined for a host never enrolled.
   */
  identityOf?: (host: string) => BoundIdentity | undefined;
}

export const DEFAULT_ADMISSION: AdmissionRules = { minHeartbeatMs: 100, maxHeartbeatMs: 30_000 };

/** Accepted, or refused with a reason and a message for the log and the reply. */
export type Admission = { ok: true } | { ok: false; reason: RefusalReason; message: string };

/** Decides one decoded report published on `subject` (`expectedSubject` = the subject of its own host). */
export function admitReport(
  report: Pick<HostReport, 'host' | 'location' | 'heartbeatMs'>,
  subject: string,
  expectedSubject: string,
  rules: AdmissionRules,
): Admission {
  if (subject !== expectedSubject)
    return {
      ok: false,
      reason: 'subject-mismatch',
      message: `report of host ${JSON.stringify(report.host)} published on another host's subject`,
    };
  if (rules.identityOf) {
    const id = rules.identityOf(report.host);
    if (!id) return { ok: false, reason: 'not-enrolled', message: `host ${report.host} is not enrolled` };
    if (id.revoked)
      return { ok: false, reason: 'revoked', message: `host ${report.host}: its credentials were revoked` };
    if (id.location !== report.location)
      return {
        ok: false,
        reason: 'location-mismatch',
        message: `host ${report.host} claims location ${report.location}; its credentials are for ${id.location}`,
      };
  }
  if (report.heartbeatMs < rules.minHeartbeatMs || report.heartbeatMs > rules.maxHeartbeatMs)
    return {
      ok: false,
      reason: 'heartbeat-out-of-bounds',
      message: `heartbeatMs ${report.heartbeatMs} is outside [${rules.minHeartbeatMs}, ${rules.maxHeartbeatMs}]`,
    };
  return { ok: true };
}
