/**
 * What the coordinator knows of every host, from the reports agents publish. Host state follows Nomad's
 * heartbeat rules: a host silent for longer than its TTL (`missedHeartbeats` × its heartbeat interval) plus
 * `graceMs` is Disconnected (its instances Unknown, nothing new placed there); after `lostAfterMs` without a
 * report it is Lost and its instances are replaced elsewhere. When it reports again it is Ready at once.
 */
import { EventEmitter } from 'node:events';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../../shared/log.js';
import { decode, HostReport, type ReportedInstance } from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import {
  type AdmissionRules,
  admitReport,
  DEFAULT_ADMISSION,
  REFUSAL_REASONS,
  type RefusalReason,
} from './admission.js';

/** Ready, Disconnected (missed its TTL) or Lost (gone longer than lostAfter). */
export type HostState = 'Ready' | 'Disconnected' | 'Lost';

/** One host as last reported. */
export interface HostEntry {
  /** The last report. */
  report: HostReport;
  /** When the last report arrived (ms since epoch, coordinator clock). */
  lastSeen: number;
  /** Derived state. */
  state: HostState;
  /** Instances of the last report by `namespace/name`. */
  instances: Map<string, ReportedInstance>;
}

/** Options of {@link HostRegistry}. */
export interface HostRegistryOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Heartbeats a host may miss before it is Disconnected (default 3). */
  missedHeartbeats?: number;
  /** Grace added to the TTL before a silent host is Disconnected (default 5000 ms, Nomad's heartbeat_grace idea). */
  graceMs?: number;
  /** Milliseconds without a report before a host is Lost and its instances replaced (default 30 000). */
  lostAfterMs?: number;
  /** How often states are re-evaluated (default 1000 ms). */
  checkMs?: number;
  /** Which reports are accepted (heartbeat bounds, bound identities); see admission.ts. */
  admission?: Partial<AdmissionRules>;
}

/**
 * Events: `report` (entry, instancesChanged: boolean, isNew: boolean) for every accepted report;
 * `state` (entry, previous: HostState) when a host changes state.
 */
export class HostRegistry extends EventEmitter {
  private hosts = new Map<string, HostEntry>();
  private sub: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Reports that failed to parse, or claimed another host than their subject. */
  malformed = 0;
  /** Reports accepted. */
  accepted = 0;
  /** Reports refused, by reason (exported as a metric; `malformed` above counts the first two reasons). */
  readonly refused: Record<RefusalReason, number> = Object.fromEntries(
    REFUSAL_REASONS.map((r) => [r, 0]),
  ) as Record<RefusalReason, number>;
  private readonly rules: AdmissionRules;

  constructor(private readonly opts: HostRegistryOptions) {
    super();
    this.rules = { ...DEFAULT_ADMISSION, ...opts.admission };
  }

  start(): void {
    this.sub = this.opts.nc.subscribe(this.opts.subjects.allHostReports, {
      callback: (err, msg) => {
        if (err) return;
        let report: HostReport;
        try {
          report = decode(HostReport, msg.data);
        } catch (e) {
          return this.refuse(msg, 'malformed', (e as Error).message);
        }
        const admission = admitReport(
          report,
          msg.subject,
          this.opts.subjects.hostReport(report.host),
          this.rules,
        );
        if (!admission.ok) return this.refuse(msg, admission.reason, admission.message);
        try {
          this.accept(report);
        } catch (e) {
          this.opts.log.error(
            { host: report.host, err: (e as Error).message },
            'handling a host report failed',
          );
        }
        // Reports sent as requests (after a change of instances) are acknowledged with an empty reply.
        if (msg.reply) msg.respond();
      },
    });
    this.timer = setInterval(() => this.check(), this.opts.checkMs ?? 1000);
  }

  /** Counts, logs and answers a refused report. */
  private refuse(msg: Msg, reason: RefusalReason, message: string): void {
    this.refused[reason]++;
    if (reason === 'malformed' || reason === 'subject-mismatch') this.malformed++;
    this.opts.log.warn({ subject: msg.subject, reason, err: message }, 'rejected host report');
    if (msg.reply) msg.respond(message);
  }

  stop(): void {
    this.sub?.unsubscribe();
    if (this.timer) clearInterval(this.timer);
  }

  /** Accepts a report (also used directly by tests and benchmarks). */
  accept(report: HostReport, now = Date.now()): void {
    const prev = this.hosts.get(report.host);
    if (prev && prev.report.startedAt === report.startedAt && report.seq < prev.report.seq) return; // stale
    const instances = new Map(report.instances.map((i) => [`${i.namespace}/${i.name}`, i]));
    const changed = !prev || instancesDigest(prev.report) !== instancesDigest(report);
    const entry: HostEntry = { report, lastSeen: now, state: 'Ready', instances };
    this.hosts.set(report.host, entry);
    this.accepted++;
    this.emit('report', entry, changed, !prev);
    if (prev && prev.state !== 'Ready') {
      this.opts.log.info({ host: report.host, previous: prev.state }, 'host is back');
      this.emit('state', entry, prev.state);
    } else if (!prev) {
      this.opts.log.info({ host: report.host, location: report.location }, 'host registered');
      this.emit('state', entry, undefined);
    }
  }

  /** Re-evaluates every host's state against the clock. */
  check(now = Date.now()): void {
    const lostAfter = this.opts.lostAfterMs ?? 30_000;
    for (const entry of this.hosts.values()) {
      const ttl = this.disconnectAfterMs(entry.report);
      const silent = now - entry.lastSeen;
      const state: HostState =
        silent > Math.max(lostAfter, ttl) ? 'Lost' : silent > ttl ? 'Disconnected' : 'Ready';
      if (state !== entry.state) {
        const prev = entry.state;
        entry.state = state;
        this.opts.log.warn({ host: entry.report.host, state, silentMs: silent }, 'host state changed');
        this.emit('state', entry, prev);
      }
    }
  }

  /** Silence after which a host is Disconnected: its TTL (missed heartbeats × interval) plus the grace. */
  disconnectAfterMs(report: Pick<HostReport, 'heartbeatMs'>): number {
    return report.heartbeatMs * (this.opts.missedHeartbeats ?? 3) + (this.opts.graceMs ?? 5000);
  }

  /** Hosts per state. */
  counts(): Record<HostState, number> {
    const out: Record<HostState, number> = { Ready: 0, Disconnected: 0, Lost: 0 };
    for (const e of this.hosts.values()) out[e.state]++;
    return out;
  }

  get(host: string): HostEntry | undefined {
    return this.hosts.get(host);
  }

  all(): HostEntry[] {
    return [...this.hosts.values()];
  }

  /** What a host last said of one instance. */
  reported(host: string, namespace: string, name: string): ReportedInstance | undefined {
    return this.hosts.get(host)?.instances.get(`${namespace}/${name}`);
  }
}

function instancesDigest(r: HostReport): string {
  return JSON.stringify(
    r.instances.map((i) => [
      i.namespace,
      i.name,
      i.phase,
      i.ready,
      i.templateHash,
      i.message,
      i.ports,
      i.containers,
    ]),
  );
}
