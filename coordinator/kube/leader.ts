/**
 * Leader election on a coordination.k8s.io Lease, after client-go's leaderelection: a candidate takes the
 * Lease when it is free or its holder has not renewed it within leaseDuration, the leader renews it every
 * retryPeriod, and a leader that cannot renew within renewDeadline stops leading and calls `onLost` (the
 * Coordinator then stops acting at once and stands for election again, so that two never act at once).
 * Writes use the Lease's resourceVersion, so two candidates cannot both win.
 *
 * Every duration (a holder's silence, the renew deadline) is measured on this process's monotonic clock
 * (`performance.now()`), as client-go does with Go's monotonic time: the wall clock only fills in the Lease's
 * timestamps for humans. A standby whose wall clock stepped forward past the lease duration took the Lease from a
 * leader still renewing it (two leaders at once), and a leader stepped forward gave up its Lease at its first
 * failed renewal (issue 14).
 *
 * Every attempt has a deadline of its own, as client-go's context timeouts — the leader's is what is left of its
 * renew deadline, a candidate's the renew deadline ({@link attemptTimeoutMs}): over a half-open link to the API server a request neither answers
 * nor fails, and an attempt awaited without one kept a cut-off leader "leading" for as long as the link stayed
 * dead, and a candidate waiting forever after it healed (issue 14, the coordinator cut off from kube-apiserver).
 * A write that lands after its attempt gave up is harmless: it carries the resourceVersion it read.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type { V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.js';
import { apiErrorMessage, isConflict, isNotFound, type KubeClient } from './client.js';

/** Timing and identity of an election. */
export interface LeaderElectionOptions {
  /** Namespace of the Lease (default kube-system). */
  namespace: string;
  /** Name of the Lease (default edge-coordinator). */
  name: string;
  /** This candidate's identity (default hostname_pid_random). */
  identity?: string;
  /** How long a Lease is valid without renewal (default 15 s). */
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it gives up (default 10 s). */
  renewDeadlineMs: number;
  /** How often candidates retry and the leader renews (default 2 s). */
  retryPeriodMs: number;
}

/** client-go's defaults. */
export const DEFAULT_LEADER_ELECTION: LeaderElectionOptions = {
  namespace: 'kube-system',
  name: 'edge-coordinator',
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/**
 * How long a candidate's acquire attempt may take: the renew deadline (at least a retry period). A slow API
 * server is waited for as long as a leader would wait for its renewal; only a request that would outlive that is
 * given up. (Half the deadline made a leader step down on a merely loaded apiserver.)
 */
export function attemptTimeoutMs(
  o: Pick<LeaderElectionOptions, 'renewDeadlineMs' | 'retryPeriodMs'>,
): number {
  return Math.max(o.retryPeriodMs, o.renewDeadlineMs);
}

/** RFC 3339 with microseconds, the wire format of metav1.MicroTime. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  readonly identity: string;
  private stopped = false;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  /** Ends the term when no renewal succeeded in time (see {@link acquire}). */
  private deadline: NodeJS.Timeout | undefined;
  /** The Lease's leaseTransitions as this candidate last wrote it (the term it leads; a fencing epoch floor). */
  transitions = 0;
  /**
   * When this candidate last saw the Lease change, on its own monotonic clock (so neither skew between hosts nor a
   * step of its own wall clock matters).
   */
  private observed: { holder?: string; renewTime?: string; at: number } = { at: 0 };

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectionOptions,
    private readonly log: Logger,
  ) {
    this.identity =
      opts.identity ?? `${os.hostname()}_${process.pid}_${crypto.randomBytes(3).toString('hex')}`;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Resolves once this candidate holds the Lease; then renews it in the background and calls `onLost` if it
   * cannot renew within renewDeadline. Resolves never if stopped first.
   */
  async acquire(onLost: () => void): Promise<void> {
    this.log.info(
      { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity },
      'waiting to become leader',
    );
    let sentAt = 0;
    while (!this.stopped) {
      sentAt = performance.now();
      if (await this.attempt(attemptTimeoutMs(this.opts))) break;
      await this.sleep(this.opts.retryPeriodMs);
    }
    if (this.stopped) return new Promise(() => undefined);
    this.leading = true;
    this.log.info({ identity: this.identity }, 'became leader');
    // As client-go, a renewal cycle begins a retry period after the last success and has the renew deadline to
    // succeed, its attempts retried every retry period. Unlike client-go, the cycle is counted from when the last
    // successful write was *sent* (it landed at or after that, so no standby can take the Lease before then + the
    // lease duration), and a timer of its own ends the term at that deadline whatever an attempt in flight does.
    // Counted from the answer (which a slow API server may send seconds later) and checked only once an attempt
    // ended, a leader whose renewals were answered late kept acting past its Lease, while a standby took it
    // (found by the model run, test/chaos/fuzz/leader-model.test.ts: 15.2 s after its last write, Lease 15 s).
    const budget = Math.min(
      this.opts.retryPeriodMs + this.opts.renewDeadlineMs,
      this.opts.leaseDurationMs - 1,
    );
    let okSentAt = sentAt;
    const lose = () => {
      if (!this.leading || this.stopped) return;
      this.leading = false;
      clearTimeout(this.timer);
      this.log.error({ identity: this.identity }, 'lost the lease: could not renew it within the deadline');
      onLost();
    };
    const arm = () => {
      clearTimeout(this.deadline);
      this.deadline = setTimeout(lose, Math.max(0, okSentAt + budget - performance.now()));
    };
    arm();
    const renew = async () => {
      if (this.stopped || !this.leading) return;
      const sent = performance.now();
      const renewed = await this.attempt(Math.max(1, okSentAt + budget - sent));
      if (this.stopped || !this.leading) return;
      if (renewed) {
        okSentAt = sent;
        arm();
      }
      this.timer = setTimeout(() => void renew(), this.opts.retryPeriodMs);
    };
    this.timer = setTimeout(() => void renew(), this.opts.retryPeriodMs);
  }

  /** Stops renewing and, when leading, releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.coordination.readNamespacedLease({
        name: this.opts.name,
        namespace: this.opts.namespace,
      });
      if (lease.spec?.holderIdentity !== this.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 };
      await this.client.coordination.replaceNamespacedLease({
        name: this.opts.name,
        namespace: this.opts.namespace,
        body: lease,
      });
      this.log.info({ identity: this.identity }, 'released the lease');
    } catch (err) {
      this.log.warn(
        { err: apiErrorMessage(err) },
        'lease not released; the standby takes over when it expires',
      );
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      this.timer = setTimeout(r, ms);
    });
  }

  /** One acquire-or-renew, counted as failed when it has not finished within `timeoutMs`. */
  private async attempt(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn({ timeoutMs: Math.round(timeoutMs) }, 'lease request timed out');
        resolve(false);
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.tryAcquireOrRenew(), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name } = this.opts;
    const now = new Date();
    const spec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
      renewTime: microTime(now) as unknown as Date,
    };
    let lease: V1Lease;
    try {
      lease = await this.client.coordination.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) {
        this.log.warn({ err: apiErrorMessage(err) }, 'lease not readable');
        return false;
      }
      try {
        await this.client.coordination.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { ...spec, acquireTime: spec.renewTime, leaseTransitions: 0 },
          },
        });
        this.transitions = 0;
        return true;
      } catch (e) {
        if (!isConflict(e)) this.log.warn({ err: apiErrorMessage(e) }, 'lease not created');
        return false;
      }
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = String(lease.spec?.renewTime ?? '');
    if (holder !== this.observed.holder || renewTime !== this.observed.renewTime) {
      this.observed = { holder, renewTime, at: performance.now() };
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const held =
      holder !== '' && holder !== this.identity && performance.now() - this.observed.at < durationMs;
    if (held) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1);
    lease.spec = {
      ...lease.spec,
      ...spec,
      acquireTime: holder === this.identity ? lease.spec?.acquireTime : spec.renewTime,
      leaseTransitions: transitions,
    };
    try {
      await this.client.coordination.replaceNamespacedLease({ name, namespace, body: lease });
      this.transitions = transitions;
      if (holder !== this.identity) this.log.info({ previous: holder || '(none)' }, 'took the lease');
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log.warn({ err: apiErrorMessage(err) }, 'lease not renewed');
      return false;
    }
  }
}
