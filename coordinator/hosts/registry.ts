/**
 * What the coordinator knows of every host, from the reports agents publish. Host state follows Nomad's
 * heartbeat rules: a host silent for longer than its TTL (`missedHeartbeats` × its heartbeat interval) plus
 * `graceMs` is Disconnected (its instances Unknown, nothing new placed there); after `lostAfterMs` without a
 * report it is Lost and its instances are replaced elsewhere. When it reports again it is Ready at once.
 * Silence is measured so that the coordinator's own faults (its NATS link down, a pause, a clock step, a mass of
 * silent hosts) declare nobody Lost: see liveness.ts.
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
import {
  DEFAULT_LIVENESS,
  decideHostStates,
  type HostSilence,
  type HostState,
  type LivenessDecision,
  loopStalled,
  silenceMs,
  worsened,
} from './liveness.js';

export type { HostState } from './liveness.js';

/** One host as last reported. */
export interface HostEntry {
  /** The last report. */
  report: HostReport;
  /** When the last report arrived (ms since epoch, coordinator clock; for display). */
  lastSeen: number;
  /** When the last report arrived on the liveness clock (monotonic, `performance.now()`). */
  heardAt: number;
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
  /** Share of hosts silent past their TTL above which no host is declared Lost (default 0.55; liveness.ts). */
  maxLostShare?: number;
  /** Which reports are accepted (heartbeat bounds, bound identities); see admission.ts. */
  admission?: Partial<AdmissionRules>;
  /**
   * Resolves once every report the server has already sent us was handled (default: `nc.flush()`, a PING/PONG
   * round trip: the PONG comes after every message queued for us before it). Run before a host is made worse
   * (liveness.ts, rule 5); absent (no `nc`), timer checks decide at once.
   */
  drainReports?: () => Promise<void>;
  /** How long a drain may take before the check gives up and tries again at the next tick (default 30 000 ms). */
  drainTimeoutMs?: number;
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
  /** Start of the current grace on the liveness clock (restarted after our own link or loop was down). */
  private graceFrom = Number.NEGATIVE_INFINITY;
  /** Whether our own NATS connection is up (no verdicts while it is not). */
  private linkUp = true;
  /** Liveness-clock time of the previous timer check (to notice our own stalls). */
  private lastTick: number | undefined;
  /** Hosts currently held at Disconnected by the brake. */
  private held = new Set<string>();
  /** Losses the brake held back (a host counted once per episode; exported as a metric). */
  lossesSuppressed = 0;
  /** Times the grace restarted because the coordinator could not hear its hosts (link back, loop stalled). */
  graceRestarts = 0;
  /** A drain of queued reports under way before a verdict (timer checks wait for it). */
  private draining = false;
  /** Verdicts that waited for queued reports (counted once per drain). */
  drains = 0;
  /** Hosts a drain saved: they would have been made worse, and a queued report of theirs said they were alive. */
  drainSaves = 0;
  private readonly drain: (() => Promise<void>) | undefined;

  constructor(private readonly opts: HostRegistryOptions) {
    super();
    this.rules = { ...DEFAULT_ADMISSION, ...opts.admission };
    const nc = opts.nc;
    this.drain = opts.drainReports ?? (nc ? () => nc.flush() : undefined);
  }

  start(): void {
    this.sub = this.opts.nc.subscribe(this.opts.subjects.allHostReports, {
      callback: (err, msg) => {
        if (err) return;
        // Nothing may escape a nats.js callback: a throw there closes the connection's reader, and the
        // coordinator would hear no host again (found by fuzzing: a report naming host "a b").
        try {
          this.handle(msg);
        } catch (e) {
          this.opts.log.error({ subject: msg.subject, err: (e as Error).message }, 'host report not handled');
        }
      },
    });
    this.timer = setInterval(() => this.timerCheck(), this.opts.checkMs ?? 1000);
    void this.watchLink();
  }

  /** Decodes, admits and accepts one report; refusals are counted and answered. */
  private handle(msg: Msg): void {
    let report: HostReport;
    let ownSubject: string;
    try {
      report = decode(HostReport, msg.data);
      // A host name that cannot be a subject token is no host's: nobody may publish as it.
      ownSubject = this.opts.subjects.hostReport(report.host);
    } catch (e) {
      this.refuse(msg, 'malformed', (e as Error).message);
      return;
    }
    const admission = admitReport(report, msg.subject, ownSubject, this.rules);
    if (!admission.ok) {
      this.refuse(msg, admission.reason, admission.message);
      return;
    }
    try {
      this.accept(report);
    } catch (e) {
      this.opts.log.error({ host: report.host, err: (e as Error).message }, 'handling a host report failed');
    }
    // Reports sent as requests (after a change of instances) are acknowledged with an empty reply.
    if (msg.reply) msg.respond();
  }

  /** Our own NATS link: no verdicts while it is down, a fresh grace when it is back. */
  private async watchLink(): Promise<void> {
    for await (const s of this.opts.nc.status()) {
      if (s.type === 'disconnect') this.setLink(false);
      else if (s.type === 'reconnect') this.setLink(true);
    }
  }

  /** Our NATS link went down (no verdicts from now) or came back (a fresh grace for every host). */
  setLink(up: boolean, now = performance.now()): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    if (up) this.restartGrace('reconnected to NATS', now);
    else this.opts.log.warn('coordinator disconnected from NATS: no host is judged until it is back');
  }

  /** Restarts every host's grace: silence before now is not held against anyone. */
  restartGrace(why: string, now = performance.now()): void {
    this.graceFrom = now;
    this.graceRestarts++;
    this.opts.log.warn({ why }, 'host silence is counted afresh');
  }

  /** The timer's check: a stalled loop (we were stopped or starved) restarts the grace first. */
  timerCheck(now = performance.now()): void {
    const stalled = loopStalled(this.lastTick, now, this.opts.checkMs ?? 1000, this.opts.graceMs ?? 5000);
    if (stalled)
      this.restartGrace(`the check loop stalled for ${Math.round(now - (this.lastTick ?? now))} ms`, now);
    this.lastTick = now;
    if (this.draining) return;
    if (!this.drain) {
      this.check(now);
      return;
    }
    const pending = this.decide(now);
    if (!pending) return;
    const worse = worsened(pending.hosts, pending.decision);
    if (worse.length === 0) {
      this.applyDecision(pending);
      return;
    }
    // Read what is queued first, then decide again for the same instant (liveness.ts, rule 5).
    this.draining = true;
    this.drains++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), this.opts.drainTimeoutMs ?? 30_000);
    });
    void Promise.race([this.drain().then(() => 'drained' as const), timeout])
      .then((how) => {
        if (how === 'timeout') {
          this.opts.log.warn('queued host reports not read in time: no verdict this round');
          return;
        }
        const again = this.decide(now);
        if (!again) return;
        const still = new Set(worsened(again.hosts, again.decision));
        for (const h of worse) if (!still.has(h)) this.drainSaves++;
        this.applyDecision(again);
      })
      .catch((err) =>
        this.opts.log.warn(
          { err: (err as Error).message },
          'queued host reports not read: no verdict this round',
        ),
      )
      .finally(() => {
        clearTimeout(timer);
        this.draining = false;
      });
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

  /**
   * Accepts a report (also used directly by tests and benchmarks). `now` is on the liveness clock; given (tests),
   * it is also the displayed `lastSeen`.
   */
  accept(report: HostReport, now?: number): void {
    const prev = this.hosts.get(report.host);
    if (prev && prev.report.startedAt === report.startedAt && report.seq < prev.report.seq) return; // stale
    const instances = new Map(report.instances.map((i) => [`${i.namespace}/${i.name}`, i]));
    const changed = !prev || instancesDigest(prev.report) !== instancesDigest(report);
    const entry: HostEntry = {
      report,
      lastSeen: now ?? Date.now(),
      heardAt: now ?? performance.now(),
      state: 'Ready',
      instances,
    };
    this.held.delete(report.host);
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

  /** Re-evaluates every host's state on the liveness clock (see liveness.ts); nothing while our link is down. */
  check(now = performance.now()): void {
    const pending = this.decide(now);
    if (pending) this.applyDecision(pending);
  }

  /** Every host's next state at `now` (undefined while our link is down: no verdicts then). */
  private decide(now: number): Pending | undefined {
    if (!this.linkUp) return undefined;
    const entries = [...this.hosts.values()];
    const hosts: HostSilence[] = entries.map((e) => ({
      host: e.report.host,
      state: e.state,
      silentMs: silenceMs(e.heardAt, this.graceFrom, now),
      disconnectAfterMs: this.disconnectAfterMs(e.report),
    }));
    const decision = decideHostStates(hosts, {
      lostAfterMs: this.opts.lostAfterMs ?? 30_000,
      maxLostShare: this.opts.maxLostShare ?? DEFAULT_LIVENESS.maxLostShare,
      minBrakeHosts: DEFAULT_LIVENESS.minBrakeHosts,
    });
    return { entries, hosts, decision };
  }

  /** Applies a decision: states changed (with their events), losses the brake holds logged once. */
  private applyDecision({ entries, hosts, decision }: Pending): void {
    const silent = new Map(hosts.map((h) => [h.host, h.silentMs]));
    for (const host of decision.held) {
      if (this.held.has(host)) continue;
      this.held.add(host);
      this.lossesSuppressed++;
      this.opts.log.error(
        { host, silentMs: silent.get(host), hosts: entries.length },
        "too many hosts silent at once: not declaring this one Lost (the fault is likely ours or the network's)",
      );
    }
    for (const entry of entries) {
      // A report accepted since the decision replaced the entry: the decision is not about it any more.
      if (this.hosts.get(entry.report.host) !== entry) continue;
      const state = decision.states.get(entry.report.host) ?? entry.state;
      if (state === 'Lost') this.held.delete(entry.report.host);
      if (state !== entry.state) {
        const prev = entry.state;
        entry.state = state;
        this.opts.log.warn(
          { host: entry.report.host, state, silentMs: silent.get(entry.report.host) },
          'host state changed',
        );
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

/** A decision and what it was made from. */
interface Pending {
  /** The entries decided on. */
  entries: HostEntry[];
  /** Their silence. */
  hosts: HostSilence[];
  /** The decision. */
  decision: LivenessDecision;
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
