/**
 * An agent: connects to NATS, follows its location's intents, runs them through its drivers, and reports
 * the host and its instances. `main.ts` only parses configuration and calls {@link Agent.start}.
 */
import { readFile } from 'node:fs/promises';
import { type Authenticator, connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import type { ResourceAmounts, Runtime } from '../shared/api/index.js';
import type { Logger } from '../shared/log.js';
import { encode, type HostReport, MESSAGE_VERSION } from '../shared/nats/messages.js';
import { Subjects } from '../shared/nats/subjects.js';
import type { Driver } from './drivers/driver.js';
import { GvisorDriver } from './drivers/gvisor.js';
import { type HostCapacity, readCapacity } from './host/capacity.js';
import { IntentWatcher } from './intents.js';
import { Reconciler } from './reconciler.js';

/** Agent version, reported in every host report. */
export const AGENT_VERSION = '0.1.0';

/** Everything an agent is configured with. */
export interface AgentConfig {
  /** Host name, unique in the installation. */
  host: string;
  /** Location the host belongs to. */
  location: string;
  /** Labels placement matches on (region, zone, provider, …); hostname and location are added. */
  labels: Record<string, string>;
  /** NATS server URLs. */
  natsServers: string[];
  /** Path of a NATS credentials file. */
  natsCreds?: string;
  /** Subject prefix. */
  subjectPrefix: string;
  /** Directory for the agent's own state (last intents). */
  stateDir: string;
  /** Heartbeat interval in milliseconds. */
  heartbeatMs: number;
  /** Host address instance ports are published on. */
  publishAddress: string;
  /** Replaces the measured allocatable CPU/memory. */
  allocatableOverride?: Partial<ResourceAmounts>;
}

export class Agent {
  private nc: NatsConnection | undefined;
  private intents: IntentWatcher | undefined;
  private reconciler: Reconciler | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reportPending: NodeJS.Timeout | undefined;
  private seq = 0;
  private readonly startedAt = new Date().toISOString();
  private capacity: HostCapacity | undefined;
  private runtimes: Runtime[] = [];
  readonly subjects: Subjects;
  readonly drivers: Partial<Record<Runtime, Driver>>;

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
  ) {
    this.subjects = new Subjects(config.subjectPrefix);
    this.drivers = {
      gvisor: new GvisorDriver({
        host: config.host,
        publishAddress: config.publishAddress,
        stateDir: config.stateDir,
        log: log.child({ driver: 'gvisor' }),
      }),
    };
  }

  /** Labels this host advertises. */
  get labels(): Record<string, string> {
    return {
      ...this.config.labels,
      'kubernetes.io/hostname': this.config.host,
      'edgeplane.dev/location': this.config.location,
    };
  }

  async start(): Promise<void> {
    this.capacity = await readCapacity({ override: this.config.allocatableOverride });
    for (const [runtime, driver] of Object.entries(this.drivers) as Array<[Runtime, Driver]>) {
      const probe = await driver.probe();
      this.log.info({ runtime, ...probe }, 'runtime probe');
      if (probe.ok) this.runtimes.push(runtime);
    }
    this.nc = await connect({
      servers: this.config.natsServers,
      name: `edge-agent ${this.config.host}`,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      ...(this.config.natsCreds ? await credsAuth(this.config.natsCreds) : {}),
    });
    void this.watchStatus(this.nc);
    this.intents = new IntentWatcher({
      nc: this.nc,
      subjects: this.subjects,
      location: this.config.location,
      stateDir: this.config.stateDir,
      log: this.log.child({ part: 'intents' }),
    });
    this.reconciler = new Reconciler({
      host: this.config.host,
      drivers: Object.fromEntries(this.runtimes.map((r) => [r, this.drivers[r]])),
      intents: () => this.intents?.all() ?? [],
      synced: () => this.intents?.synced ?? false,
      log: this.log.child({ part: 'reconciler' }),
    });
    this.intents.on('change', () => this.reconciler?.trigger());
    this.reconciler.on('change', () => this.scheduleReport());
    await this.intents.start();
    this.reconciler.start();
    this.heartbeat = setInterval(() => this.report(), this.config.heartbeatMs);
    this.report();
    this.log.info(
      { host: this.config.host, location: this.config.location, runtimes: this.runtimes, labels: this.labels },
      'agent started',
    );
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') this.log.info({ status: s.type }, 'nats connection');
      if (s.type === 'reconnect') this.report();
    }
  }

  private scheduleReport(): void {
    if (this.reportPending) return;
    this.reportPending = setTimeout(() => {
      this.reportPending = undefined;
      this.report();
    }, 50);
  }

  /** The host report as it would be published now. */
  hostReport(): HostReport {
    const cap = this.capacity!;
    return {
      v: MESSAGE_VERSION,
      host: this.config.host,
      location: this.config.location,
      labels: this.labels,
      capacity: cap.capacity,
      allocatable: cap.allocatable,
      runtimes: this.runtimes,
      agentVersion: AGENT_VERSION,
      startedAt: this.startedAt,
      seq: ++this.seq,
      heartbeatMs: this.config.heartbeatMs,
      instances: (this.reconciler?.observed() ?? []).map((s) => ({
        namespace: s.namespace,
        name: s.name,
        workload: s.workload,
        templateHash: s.templateHash,
        phase: s.phase,
        ready: s.ready,
        runtime: s.runtime,
        providerID: s.providerID,
        ports: s.ports,
        ips: s.ips,
        containers: s.containers,
        message: s.message,
        startedAt: s.startedAt,
      })),
      time: new Date().toISOString(),
    };
  }

  private report(): void {
    if (!this.nc || this.nc.isClosed() || !this.capacity) return;
    try {
      this.nc.publish(this.subjects.hostReport(this.config.host), encode(this.hostReport()));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'host report not published');
    }
  }

  /** Stops the agent; instances keep running (the agent is not the workload). */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.reportPending) clearTimeout(this.reportPending);
    this.intents?.stop();
    await this.reconciler?.stop();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
  }
}

async function credsAuth(path: string): Promise<{ authenticator: Authenticator }> {
  return { authenticator: credsAuthenticator(await readFile(path)) };
}
