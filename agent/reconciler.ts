/**
 * The agent's control loop: level-triggered, it reads what the intents want on this host and what the runtimes
 * run, and converges — start what is missing or outdated, remove what is no longer wanted. It never depends
 * on having seen every change, and it never removes anything before the intents are known.
 */

import { EventEmitter } from 'node:events';
import type { Runtime } from '../shared/api/index.js';
import { runtimeOf } from '../shared/api/template.js';
import type { Logger } from '../shared/log.js';
import type { NetworkSegment } from '../shared/nats/messages.js';
import {
  assignmentsDigest,
  attachmentsDrifted,
  attachmentsPresent,
  portsByInstance,
  reportedInterfaces,
  unneededPorts,
} from './attachments.js';
import { type CrashRecord, crashBackoff } from './crash-backoff.js';
import { SingleFlight } from './deadline.js';
import type { Driver, InstanceRequest, InstanceState } from './drivers/driver.js';
import { type HostIntent, requestsFor } from './intents.js';
import type { RejectedIntent } from './malformed.js';
import type { HostNetwork, HostPort } from './network/host-network.js';
import { ProbeManager } from './probes.js';

/** Options of {@link Reconciler}. */
export interface ReconcilerOptions {
  /** This host. */
  host: string;
  /** Every driver of the agent, by runtime: all of them are observed, working or not. */
  drivers: Partial<Record<Runtime, Driver>>;
  /** Runtimes whose runtime check passes now; only they start instances (default: every driver). */
  usable?: () => Runtime[];
  /** Current intents of the location, with this host's unsealed values. */
  intents: () => HostIntent[];
  /** Whether the intents are known (from NATS or disk). */
  synced: () => boolean;
  /** Intents that failed validation: their instances on this host are reported Failed, and kept if running. */
  malformed?: () => RejectedIntent[];
  /** The host's network (absent: this host carries no Network attachments). */
  network?: HostNetwork;
  /** The location's Network segments, undefined until known (segments.ts). */
  segments?: () => NetworkSegment[] | undefined;
  /** Seconds a stopped instance gets between SIGTERM and SIGKILL. */
  graceSeconds?: number;
  /** Interval of the periodic pass, in milliseconds. */
  resyncMs?: number;
  /** How long a driver's `list()` may take before its runtime counts as unobservable (default 20 s). */
  observeTimeoutMs?: number;
  log: Logger;
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

/** Emits `change` when the reported state of any instance changed. */
export class Reconciler extends EventEmitter {
  private states = new Map<string, InstanceState>();
  private failures = new Map<string, { message: string; attempts: number; retryAt: number }>();
  /** Restarts of stopped instances (VMs), for the crash-loop backoff. */
  /**
   * Starts and removals in flight, by instance: they run beside the passes (after the kubelet's pod workers), so
   * a slow image pull or VM boot never holds up the other instances; a pass leaves an instance in flight alone.
   */
  private inflight = new Map<string, Promise<void>>();
  private stopped = false;
  private crashes = new Map<string, CrashRecord>();
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private lastDigest = '';
  private desiredByKey = new Map<string, InstanceRequest>();
  private readonly probes: ProbeManager;
  /**
   * One `list()` per runtime at a time: a hung dockerd costs one pending request, not one per pass. Each listing
   * carries the {@link opClock} of its start.
   */
  private readonly listing = new SingleFlight<{ states: InstanceState[]; since: number }>();
  /** Counts the starts and removals that ended; a listing older than an instance's last one is stale for it. */
  private opClock = 0;
  /** The {@link opClock} at which each instance's last start or removal ended. */
  private readonly settled = new Map<string, number>();
  /** The runtime each reported instance was last listed by. */
  private readonly seenOn = new Map<string, Runtime>();
  /**
   * What this process last programmed each instance's ports from (assignmentsDigest): the host does not read
   * policy back, so an instance this process has not programmed (adopted after a restart) or whose assignments
   * changed is attached again; unchanged, that changes nothing on the host.
   */
  private programmed = new Map<string, string>();
  /** The segments last handed to the host's network, and when (they are handed again every minute). */
  private segmentsSynced: { digest: string; at: number } | undefined;

  constructor(private readonly opts: ReconcilerOptions) {
    super();
    this.probes = new ProbeManager(opts.log.child({ part: 'probes' }));
    this.probes.on('change', () => this.publishIfChanged());
  }

  /** Instances this host must run, from the intents. */
  desired(): InstanceRequest[] {
    return requestsFor(this.opts.host, this.opts.intents(), this.opts.log);
  }

  /** What the host runs now, as last observed, with readiness gated by the readiness probes. */
  observed(): InstanceState[] {
    return [...this.states.entries()].map(([k, s]) => {
      const req = this.desiredByKey.get(k);
      return req && s.templateHash === req.templateHash ? this.probes.gate(s, req) : s;
    });
  }

  start(): void {
    this.timer = setInterval(() => this.trigger(), this.opts.resyncMs ?? 5000);
    this.trigger();
  }

  /** Stops the periodic passes and waits for the running pass and every start/removal in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.probes.stop();
    await this.running;
    await Promise.allSettled([...this.inflight.values()]);
  }

  /** Asks for a pass; passes never overlap, and a request during a pass causes one more. */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err) => this.opts.log.error({ err }, 'reconcile pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.trigger();
        }
      });
  }

  private driverFor(req: InstanceRequest): Driver {
    const runtime = runtimeOf(req.template);
    const driver = this.opts.drivers[runtime];
    const usable = this.opts.usable?.() ?? (Object.keys(this.opts.drivers) as Runtime[]);
    if (!driver || !usable.includes(runtime))
      throw new Error(`this host does not offer the ${runtime} runtime now`);
    return driver;
  }

  /** One pass: observe, then converge. */
  async pass(): Promise<void> {
    const actual = new Map<string, { state: InstanceState; driver: Driver }>();
    // A runtime that cannot be observed (dockerd down) is left alone: nothing of it is started, removed or
    // reported changed until it answers again.
    const unobserved = new Map<Runtime, string>();
    // The oldest listing's start: a start or removal that ended after it may not show in what was listed (a
    // listing takes seconds on a loaded host), so the instance is judged by the next pass, never by this one.
    let listedSince = this.opClock;
    for (const [runtime, driver] of Object.entries(this.opts.drivers) as Array<[Runtime, Driver]>) {
      try {
        const since = this.opClock;
        const listed = await this.listing.run(
          runtime,
          async () => ({ states: await driver.list(), since }),
          this.opts.observeTimeoutMs ?? 20_000,
          `the ${runtime} runtime (list)`,
        );
        listedSince = Math.min(listedSince, listed.since);
        for (const state of listed.states) {
          actual.set(key(state.namespace, state.name), { state, driver });
          this.seenOn.set(key(state.namespace, state.name), runtime);
        }
      } catch (err) {
        unobserved.set(runtime, (err as Error).message);
      }
    }
    if (unobserved.size)
      this.opts.log.warn({ unobserved: Object.fromEntries(unobserved) }, 'runtimes not observable');
    await this.syncSegments();
    // The host's ports, by instance; undefined when they cannot be observed (then no port decides anything).
    const ports = await this.observePorts();
    if (ports) {
      for (const [k, a] of actual) {
        const mine = ports.get(k);
        if (mine?.length) a.state = { ...a.state, interfaces: reportedInterfaces(mine) };
      }
    }
    const desired = new Map(this.desired().map((r) => [key(r.namespace, r.name), r]));
    this.desiredByKey = desired;
    const next = new Map<string, InstanceState>();
    // Instances whose start or removal ended after the listing began: what was listed of them is stale (a start
    // judged on it was started again, destroying the instance it had just made ready). The op's end asked for
    // another pass, which sees them as they are.
    const stale = new Set<string>();
    for (const [k, at] of this.settled) {
      if (at > listedSince) stale.add(k);
      else this.settled.delete(k);
    }

    for (const [k, req] of desired) {
      const have = actual.get(k);
      const runtime = this.tryRuntimeOf(req);
      const blind = runtime ? unobserved.get(runtime) : undefined;
      if (blind !== undefined) {
        // What runs there is not known: Unknown (and not ready), like a pod on an unreachable node.
        next.set(k, this.unknownState(this.states.get(k) ?? this.pendingState(req), runtime!, blind));
        continue;
      }
      if (this.inflight.has(k) || stale.has(k)) {
        next.set(k, this.states.get(k) ?? { ...this.pendingState(req), phase: 'Starting' });
        continue;
      }
      if (
        have &&
        have.state.templateHash === req.templateHash &&
        have.state.phase !== 'Stopped' &&
        have.driver.isComplete(have.state, req) &&
        (!ports || attachmentsPresent(req.interfaces, ports.get(k) ?? []))
      ) {
        next.set(k, have.state);
        this.failures.delete(k);
        if (
          ports &&
          req.interfaces?.length &&
          (attachmentsDrifted(req.interfaces, ports.get(k) ?? []) ||
            this.programmed.get(k) !== assignmentsDigest(req.interfaces))
        )
          this.launch(k, () => this.reattachOne(k, req, have.driver));
        continue;
      }
      const failure = this.failures.get(k);
      if (failure && performance.now() < failure.retryAt) {
        next.set(k, this.failedState(req, failure.message));
        continue;
      }
      if (have && have.state.templateHash === req.templateHash && have.state.phase === 'Stopped') {
        // A VM that powered off or crashed: started again with the kubelet's crash-loop backoff (at once, then
        // 10 s doubling to 5 min, counted from the stop; forgotten after 10 min of running).
        const wait = this.crashBackoff(k, have.state);
        if (wait > 0) {
          next.set(k, {
            ...have.state,
            message: `${have.state.message ?? 'stopped'}; restarting in ${Math.ceil(wait / 1000)}s`,
          });
          continue;
        }
      }
      next.set(k, { ...this.pendingState(req), phase: 'Starting' });
      this.launch(k, () => this.startOne(k, req));
    }
    // An instance whose intent does not validate keeps what runs (a bad write must not delete workloads) and
    // says why nothing changes.
    const refused = new Set<string>();
    for (const r of this.opts.malformed?.() ?? []) {
      for (const inst of r.instances) {
        const k = key(r.namespace, inst.name);
        if (inst.host !== this.opts.host) continue;
        const message = `malformed intent ${r.key}: ${r.message}`;
        const current = next.get(k);
        if (desired.has(k)) {
          // The last valid version of the intent still applies.
          if (current) next.set(k, { ...current, message: `${message} (running the last valid intent)` });
          continue;
        }
        refused.add(k);
        const have = actual.get(k)?.state;
        next.set(
          k,
          have
            ? { ...have, message }
            : {
                ...this.pendingState({
                  namespace: r.namespace,
                  name: inst.name,
                  workload: r.workload,
                  templateHash: '',
                }),
                phase: 'Failed',
                message,
              },
        );
      }
    }
    if (this.opts.synced()) {
      for (const [k, have] of actual) {
        if (desired.has(k) || refused.has(k)) continue;
        // Keep reporting it until it is gone: deletion waits on exactly this.
        next.set(k, { ...have.state, phase: 'Stopping', ready: false });
        if (!this.inflight.has(k) && !stale.has(k))
          this.launch(k, () => this.removeOne(have.state, have.driver));
      }
    }
    // An instance being removed on a runtime that went blind is still there as far as anyone knows: it stays
    // reported (Unknown), so a deletion waiting on it does not complete early.
    for (const [k, state] of this.states) {
      const runtime = this.seenOn.get(k);
      const blind = runtime ? unobserved.get(runtime) : undefined;
      if (!next.has(k) && blind !== undefined) next.set(k, this.unknownState(state, runtime!, blind));
    }
    for (const k of this.seenOn.keys()) if (!next.has(k)) this.seenOn.delete(k);
    if (this.opts.synced() && !unobserved.size && ports)
      await this.removeUnneededPorts(ports, actual, desired, stale);
    this.states = next;
    this.syncProbes(actual);
    this.publishIfChanged();
  }

  /** Hands the location's segments to the host's network when they changed, and every minute anyway. */
  private async syncSegments(): Promise<void> {
    const network = this.opts.network;
    const segments = this.opts.segments?.();
    if (!network || !segments) return;
    const digest = JSON.stringify([...segments].sort((a, b) => a.segment - b.segment));
    const last = this.segmentsSynced;
    if (last && last.digest === digest && Date.now() - last.at < 60_000) return;
    try {
      await network.syncSegments(segments);
      this.segmentsSynced = { digest, at: Date.now() };
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'segments not programmed; will retry');
    }
  }

  /** The host's ports by instance, or undefined without a host network or when they cannot be listed. */
  private async observePorts(): Promise<Map<string, HostPort[]> | undefined> {
    if (!this.opts.network) return undefined;
    try {
      return portsByInstance(await this.opts.network.list());
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'host network ports not observable');
      return undefined;
    }
  }

  /**
   * Removes the ports no instance needs: an instance's own ports go with its removal; these are the ones left by
   * an instance that is gone (an agent killed half-way, a holder that died) or whose intent no longer attaches it.
   */
  private async removeUnneededPorts(
    ports: Map<string, HostPort[]>,
    actual: Map<string, { state: InstanceState; driver: Driver }>,
    desired: Map<string, InstanceRequest>,
    stale: Set<string>,
  ): Promise<void> {
    // An instance just started may have attached its ports after the listing missed its containers.
    const needed = new Set([...this.inflight.keys(), ...stale]);
    for (const k of actual.keys()) {
      const req = desired.get(k);
      if (!req || req.interfaces?.length) needed.add(k);
    }
    for (const instance of unneededPorts([...ports.values()].flat(), needed)) {
      try {
        this.opts.log.info({ instance }, 'removing network ports no instance needs');
        await this.opts.network?.detach(instance);
      } catch (err) {
        this.opts.log.warn({ instance, err: (err as Error).message }, 'failed to remove ports; will retry');
      }
    }
  }

  /** Rewrites a running instance's ports whose policy or MTU changed. */
  private async reattachOne(k: string, req: InstanceRequest, driver: Driver): Promise<void> {
    try {
      if (!driver.reattach) throw new Error(`the ${driver.runtime} runtime cannot attach Networks`);
      this.opts.log.info({ instance: k }, 'programming network ports of a running instance');
      await driver.reattach(req.namespace, req.name, req.interfaces ?? []);
      this.programmed.set(k, assignmentsDigest(req.interfaces));
    } catch (err) {
      this.opts.log.warn({ instance: k, err: (err as Error).message }, 'failed to rewrite network ports');
    }
  }

  /** Runs a start or removal beside the passes; when it ends, a pass observes the result. */
  private launch(k: string, op: () => Promise<void>): void {
    const p = op().finally(() => {
      this.inflight.delete(k);
      this.settled.set(k, ++this.opClock);
      this.trigger();
    });
    this.inflight.set(k, p);
  }

  private syncProbes(actual: Map<string, { state: InstanceState; driver: Driver }>): void {
    const live: Array<{ req: InstanceRequest; state: InstanceState; driver: Driver }> = [];
    for (const [k, req] of this.desiredByKey) {
      const state = this.states.get(k);
      const driver = actual.get(k)?.driver ?? this.tryDriverFor(req);
      if (state && driver) live.push({ req, state, driver });
    }
    this.probes.sync(live);
  }

  private tryRuntimeOf(req: InstanceRequest): Runtime | undefined {
    try {
      return runtimeOf(req.template);
    } catch {
      return undefined;
    }
  }

  private tryDriverFor(req: InstanceRequest): Driver | undefined {
    try {
      return this.driverFor(req);
    } catch {
      return undefined;
    }
  }

  /** Milliseconds until a stopped instance may start again (crash-backoff.ts); 0 records a restart now. */
  private crashBackoff(k: string, state: InstanceState): number {
    const { wait, record } = crashBackoff(
      this.crashes.get(k),
      state.startedAt,
      performance.now(),
      Date.now(),
    );
    this.crashes.set(k, record);
    return wait;
  }

  private async startOne(k: string, req: InstanceRequest): Promise<void> {
    const t0 = performance.now();
    // For the start-duration metric; a template of no known kind fails below, naming the field.
    const runtime = this.tryRuntimeOf(req) ?? 'unknown';
    try {
      const driver = this.driverFor(req);
      this.opts.log.info({ instance: k, templateHash: req.templateHash }, 'starting instance');
      const state = await driver.start(req);
      this.programmed.set(k, assignmentsDigest(req.interfaces));
      this.emit('started', runtime, (performance.now() - t0) / 1000, true);
      this.opts.log.info(
        { instance: k, ms: Math.round(performance.now() - t0), phase: state.phase, ready: state.ready },
        'instance started',
      );
      this.failures.delete(k);
      if (this.desiredByKey.get(k)?.templateHash === req.templateHash) this.states.set(k, state);
      this.publishIfChanged();
    } catch (err) {
      this.emit('started', runtime, (performance.now() - t0) / 1000, false);
      const prev = this.failures.get(k);
      const attempts = (prev?.attempts ?? 0) + 1;
      const backoff = Math.min(300_000, 1000 * 2 ** (attempts - 1));
      const message = `${(err as Error).message} (attempt ${attempts}; retrying in ${Math.round(backoff / 1000)}s)`;
      this.failures.set(k, { message, attempts, retryAt: performance.now() + backoff });
      this.opts.log.warn({ instance: k, err: message, retryInMs: backoff }, 'instance failed to start');
      if (this.desiredByKey.get(k)?.templateHash === req.templateHash)
        this.states.set(k, this.failedState(req, message));
      this.publishIfChanged();
    }
  }

  /**
   * Removes an instance no longer intended for this host: stop (SIGTERM, then SIGKILL after the grace period),
   * then destroy. Throws what the driver threw.
   */
  private async remove(state: InstanceState, driver: Driver): Promise<void> {
    await driver.stop(state.namespace, state.name, this.opts.graceSeconds ?? 10);
    await driver.destroy(state.namespace, state.name);
  }

  private async removeOne(state: InstanceState, driver: Driver): Promise<void> {
    const k = key(state.namespace, state.name);
    try {
      this.opts.log.info({ instance: k }, 'removing instance no longer intended for this host');
      await this.remove(state, driver);
      this.programmed.delete(k);
      if (!this.desiredByKey.has(k)) this.states.delete(k);
      this.publishIfChanged();
    } catch (err) {
      this.opts.log.warn(
        { instance: k, err: (err as Error).message },
        'failed to remove instance; will retry',
      );
    }
  }

  /**
   * Stops and destroys every instance the drivers list, whatever the intents say, one after the other, the way a
   * pass removes an unwanted one: the agent's drain. Call it after {@link stop}, or a pass may start them again.
   * Throws when a runtime cannot be listed or an instance not removed, so a drain never reports a host empty
   * that is not.
   */
  async removeAll(): Promise<void> {
    for (const driver of Object.values(this.opts.drivers)) {
      for (const state of await driver.list()) {
        this.opts.log.info({ instance: key(state.namespace, state.name) }, 'draining instance');
        await this.remove(state, driver);
      }
    }
  }

  private pendingState(
    req: Pick<InstanceRequest, 'namespace' | 'name' | 'workload' | 'templateHash'>,
  ): InstanceState {
    return {
      namespace: req.namespace,
      name: req.name,
      workload: req.workload,
      templateHash: req.templateHash,
      phase: 'Pending',
      ready: false,
      runtime: '',
      ports: [],
      ips: [],
      containers: [],
    };
  }

  private unknownState(last: InstanceState, runtime: Runtime, why: string): InstanceState {
    return {
      ...last,
      phase: 'Unknown',
      ready: false,
      message: `the ${runtime} runtime cannot be observed: ${why}`,
    };
  }

  private failedState(req: InstanceRequest, message: string): InstanceState {
    return { ...this.pendingState(req), phase: 'Failed', message };
  }

  private publishIfChanged(): void {
    const digest = JSON.stringify(
      this.observed().map((s) => [
        s.namespace,
        s.name,
        s.phase,
        s.ready,
        s.message,
        s.templateHash,
        s.containers,
        s.interfaces,
      ]),
    );
    if (digest !== this.lastDigest) {
      this.lastDigest = digest;
      this.emit('change');
    }
  }
}
