/**
 * An agent: connects to NATS, follows its location's intents, runs them through its drivers, and reports
 * the host and its instances. `main.ts` only parses configuration and calls {@link Agent.start} (or
 * {@link Agent.drain}).
 */
import { join } from 'node:path';
import type { Service } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ResourceAmounts, Runtime } from '../shared/api/index.js';
import type { Logger } from '../shared/log.js';
import { connectNats, withEnvDefaults } from '../shared/nats/connect.js';
import { startLinkDoctor } from '../shared/nats/link-doctor.js';
import { encode, type HostReport, MESSAGE_VERSION } from '../shared/nats/messages.js';
import { type KeyPair, loadOrCreateSealKey } from '../shared/nats/seal.js';
import { AGENT_SERVICE, registerService } from '../shared/nats/service.js';
import { Subjects } from '../shared/nats/subjects.js';
import { VERSION } from '../shared/version.js';
import { CpuMeter, type CpuUsage } from './cpu-usage.js';
import { watchCredentialsExpiry } from './credentials-expiry.js';
import { Docker as DockerClient } from './drivers/docker.js';
import type { Driver, InstanceState } from './drivers/driver.js';
import { GvisorDriver } from './drivers/gvisor.js';
import { QemuDriver } from './drivers/qemu.js';
import type { HostCapacity } from './host/capacity.js';
import { DiskPressure, isDiskError } from './host/disk-pressure.js';
import { HostMonitor } from './host/monitor.js';
import { ArtifactCache, catalogFile } from './images/catalog.js';
import { IntentWatcher } from './intents.js';
import type { HostNetwork } from './network/host-network.js';
import { LinuxHostNetwork } from './network/linux.js';
import { addOpsEndpoints } from './ops/service.js';
import { Reconciler } from './reconciler.js';
import { SegmentWatcher } from './segments.js';

/** Agent version (package.json's), reported in every host report and in `$SRV.INFO`. */
export const AGENT_VERSION = VERSION;

/** Least time between two reports of changed instances; changes within it go out together at its end. */
const REPORT_BATCH_MS = 50;

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
  /** Path of a NATS credentials file (`.creds`, or an nkey user seed from `edgectl host credentials`). */
  natsCreds?: string;
  /** CA bundle of the NATS server's TLS certificate (default $EDGE_NATS_CA); turns TLS on. */
  natsCa?: string;
  /** Client certificate (PEM) for servers that verify clients (default $EDGE_NATS_CERT). */
  natsCert?: string;
  /** Key of {@link natsCert} (default $EDGE_NATS_KEY). */
  natsKey?: string;
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
  /** VM image catalog file (YAML/JSON: image name → kernel/initrd or disk artifacts with URL and sha256). */
  imageCatalog?: string;
  /** Cache directory of verified VM image artifacts (default `<stateDir>/images`). */
  imageCacheDir?: string;
  /** Accelerator for VMs instead of probing KVM. */
  vmAccel?: 'kvm' | 'tcg';
  /** Kernel (bzImage) the KVM boot test boots (default: a cached catalog kernel, else the host's). */
  vmProbeKernel?: string;
  /** Unix socket of the dockerd the gvisor runtime uses (default: dockerode's, /var/run/docker.sock or DOCKER_HOST). */
  dockerSocket?: string;
  /** Serve /metrics, /healthz and /readyz here (`host:port`, loopback advised); absent: not at all. */
  metricsAddress?: string;
  /**
   * Address other hosts reach this host's VXLAN endpoint on, reported as `overlayAddress`; absent: the host has
   * no host network, and instances with Network attachments fail naming why.
   */
  overlayAddress?: string;
  /** Network namespace (`ip netns` name) the host's Network devices live in; absent: the machine's own. */
  networkNamespace?: string;
}

/** What an agent is built with besides its configuration (tests hand in their own parts). */
export interface AgentParts {
  /** The host's network; default: a LinuxHostNetwork with {@link AgentConfig.overlayAddress}, else none. */
  network?: HostNetwork;
}

export class Agent {
  private nc: NatsConnection | undefined;
  private intents: IntentWatcher | undefined;
  private readonly reconciler: Reconciler;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The instances' CPU usage, read before each report (cpu-usage.ts). */
  private readonly cpu = new CpuMeter();
  /** Earliest expiry of the NATS credentials, re-read only when their files change. */
  private credentials: ReturnType<typeof watchCredentialsExpiry> | undefined;
  private reportPending: NodeJS.Timeout | undefined;
  /** When the last report of changed instances went out (monotonic clock; -Infinity: never). */
  private lastChangeReport = Number.NEGATIVE_INFINITY;
  private seq = 0;
  private readonly startedAt = new Date().toISOString();
  private host: HostMonitor | undefined;
  private service: Service | undefined;
  private ops: { stop(): void } | undefined;
  private sealKey: KeyPair | undefined;
  /**
   * The seal key's public half, computed once: nkeys derives it from the seed on every `getPublicKey()` (an
   * X25519 base-point multiplication in tweetnacl: ~37 ms and ~36 MB of short-lived garbage under lite mode), and
   * every host report carries it.
   */
  private sealPublicKey: string | undefined;
  private published = 0;
  private http: { close(): Promise<void> } | undefined;
  private stopLinkDoctor: (() => void) | undefined;
  readonly subjects: Subjects;
  readonly drivers: Partial<Record<Runtime, Driver>>;
  /** The host's network, when this host carries Network attachments. */
  readonly network: HostNetwork | undefined;
  private segments: SegmentWatcher | undefined;
  /** Writes of the state directory and the image cache that fail: the host's DiskPressure condition. */
  private readonly disk = new DiskPressure();

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
    parts: AgentParts = {},
  ) {
    this.subjects = new Subjects(config.subjectPrefix);
    this.network =
      parts.network ??
      (config.overlayAddress
        ? new LinuxHostNetwork({
            overlayAddress: config.overlayAddress,
            ...(config.networkNamespace ? { netns: config.networkNamespace } : {}),
            logger: log.child({ part: 'network' }),
          })
        : undefined);
    const network = this.network ? { network: this.network } : {};
    const imageCacheDir = config.imageCacheDir ?? join(config.stateDir, 'images');
    this.drivers = {
      gvisor: new GvisorDriver({
        host: config.host,
        publishAddress: config.publishAddress,
        stateDir: config.stateDir,
        ...(config.dockerSocket ? { docker: new DockerClient({ socketPath: config.dockerSocket }) } : {}),
        ...network,
        log: log.child({ driver: 'gvisor' }),
      }),
      vm: new QemuDriver({
        host: config.host,
        vmDir: join(config.stateDir, 'vms'),
        catalog: catalogFile(config.imageCatalog, (err) => log.error({ err }, 'image catalog unreadable')),
        cache: new ArtifactCache(imageCacheDir, {
          onWrite: (err) => this.noteWrite('image cache', imageCacheDir, err),
        }),
        publishAddress: config.publishAddress,
        ...(config.vmAccel ? { accel: config.vmAccel } : {}),
        ...(config.vmProbeKernel ? { kvmTestKernel: config.vmProbeKernel } : {}),
        ...network,
        ...(config.networkNamespace ? { networkNamespace: `/run/netns/${config.networkNamespace}` } : {}),
        log: log.child({ driver: 'vm' }),
      }),
    };
    this.reconciler = new Reconciler({
      host: config.host,
      drivers: this.drivers,
      usable: () => this.host?.runtimes ?? [],
      intents: () => this.intents?.all() ?? [],
      // Removals only on the strength of intents read from NATS by this process (the copy on disk may be behind)
      // and vouched for by the coordinator (intent-view.ts).
      synced: () => (this.intents?.current ?? false) && (this.intents?.trust().trusted ?? false),
      malformed: () => this.intents?.malformedIntents() ?? [],
      ...network,
      segments: () => this.segments?.all(),
      log: log.child({ part: 'reconciler' }),
    });
    this.reconciler.on('change', () => this.scheduleReport());
  }

  private get capacity(): HostCapacity | undefined {
    return this.host?.capacity;
  }

  private get runtimes(): Runtime[] {
    return this.host?.runtimes ?? [];
  }

  /** Labels this host advertises. */
  get labels(): Record<string, string> {
    return {
      ...this.config.labels,
      'kubernetes.io/hostname': this.config.host,
      'edgeplane.dev/location': this.config.location,
      ...this.host?.labels(),
    };
  }

  async start(): Promise<void> {
    // Capacity and working runtimes, re-read every minute; a change is reported at once.
    this.host = new HostMonitor({
      drivers: this.drivers,
      override: this.config.allocatableOverride,
      stateDir: this.config.stateDir,
      log: this.log,
    });
    await this.host.start();
    this.host.on('change', () => this.scheduleReport());
    // The host's curve key: secret values are sealed to it, and only this host holds the seed.
    this.sealKey = loadOrCreateSealKey(join(this.config.stateDir, 'seal.nk'));
    this.sealPublicKey = this.sealKey.getPublicKey();
    this.credentials = watchCredentialsExpiry(
      { creds: this.config.natsCreds, cert: this.config.natsCert },
      () => this.scheduleReport(),
    );
    const natsSettings = withEnvDefaults({
      servers: this.config.natsServers,
      name: `edge-agent ${this.config.host}`,
      ...(this.config.natsCreds ? { creds: this.config.natsCreds } : {}),
      ...(this.config.natsCa ? { ca: this.config.natsCa } : {}),
      ...(this.config.natsCert ? { cert: this.config.natsCert } : {}),
      ...(this.config.natsKey ? { key: this.config.natsKey } : {}),
    });
    const connecting = connectNats(natsSettings);
    // Reconnects survive a wall-clock step, and a link that stays down says why (a wrong clock under TLS).
    this.stopLinkDoctor = startLinkDoctor({ nc: () => this.nc, settings: natsSettings, log: this.log });
    if (this.config.metricsAddress) {
      // Loaded only when asked: an agent without the flag never loads prom-client (idle memory goal).
      const { startAgentHttp } = await import('./metrics.js');
      this.http = await startAgentHttp({
        address: this.config.metricsAddress,
        version: AGENT_VERSION,
        log: this.log,
        source: {
          nc: connecting,
          synced: () => this.intents?.synced ?? false,
          intentsTrust: () => ({
            trusted: this.intents?.trust().trusted ?? false,
            held: this.intents?.held().length ?? 0,
            stale: this.intents?.staleIntents ?? 0,
          }),
          runtimes: Object.keys(this.drivers),
          usable: () => this.runtimes,
          instances: () => this.reconciler.observed(),
          reconciler: this.reconciler,
          rejectedIntents: () => this.intents?.malformed ?? 0,
        },
      });
    }
    this.intents = new IntentWatcher({
      nc: connecting,
      subjects: this.subjects,
      location: this.config.location,
      stateDir: this.config.stateDir,
      log: this.log.child({ part: 'intents' }),
      host: this.config.host,
      sealKey: this.sealKey,
      onSave: (err) => this.noteWrite('intents copy', join(this.config.stateDir, 'intents.json'), err),
    });
    this.intents.on('change', () => this.reconciler.trigger());
    if (this.network) {
      this.segments = new SegmentWatcher({
        nc: connecting,
        subjects: this.subjects,
        location: this.config.location,
        log: this.log.child({ part: 'segments' }),
      });
      this.segments.on('change', () => this.reconciler.trigger());
      this.segments.start();
    }
    // Run from the copy on disk first: instances keep being supervised while NATS is unreachable.
    await this.intents.start();
    this.reconciler.start();
    this.nc = await connecting;
    void this.watchStatus(this.nc);
    this.heartbeat = setInterval(() => this.report(), this.config.heartbeatMs);
    this.report();
    this.service = await registerService({
      nc: this.nc,
      name: AGENT_SERVICE,
      version: AGENT_VERSION,
      description: `Edgeplane agent of host ${this.config.host}`,
      metadata: { host: this.config.host, location: this.config.location },
      statusSubject: this.subjects.agentStatus(this.config.host),
      status: () => this.status(),
      stats: () => this.counters(),
      log: this.log,
    }).catch((err) => {
      this.log.warn({ err: (err as Error).message }, 'not registered with the NATS services API');
      return undefined;
    });
    // Operator endpoints (edgectl logs / exec) on the same registration.
    if (this.service)
      this.ops = addOpsEndpoints({
        nc: this.nc,
        subjects: this.subjects,
        host: this.config.host,
        service: this.service,
        drivers: this.drivers,
        log: this.log.child({ part: 'ops' }),
      });
    this.log.info(
      {
        host: this.config.host,
        location: this.config.location,
        runtimes: this.runtimes,
        labels: this.labels,
      },
      'agent started',
    );
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect')
        this.log.info({ status: s.type }, 'nats connection');
      // A permissions violation means this host's credentials do not fit what it does: say so loudly.
      if (s.type === 'error') this.log.error({ err: String(s.error) }, 'nats error');
      if (s.type === 'reconnect') this.report();
    }
  }

  /** Counters for `$SRV.STATS`. */
  counters(): Record<string, number> {
    return {
      reportsPublished: this.published,
      malformedIntents: this.intents?.malformed ?? 0,
      unopenedSecrets: this.intents?.unopened ?? 0,
      intentResumes: this.intents?.resumes ?? 0,
      intentFullReads: this.intents?.fullReads ?? 0,
      staleIntents: this.intents?.staleIntents ?? 0,
      heldIntents: this.intents?.held().length ?? 0,
    };
  }

  /** What the status endpoint answers. */
  status(): Record<string, unknown> {
    return {
      host: this.config.host,
      location: this.config.location,
      agentVersion: AGENT_VERSION,
      startedAt: this.startedAt,
      runtimes: this.runtimes,
      runtimeChecks: this.host?.runtimeChecks ?? {},
      sealKey: this.sealPublicKey,
      intents: {
        synced: this.intents?.synced ?? false,
        revision: this.intents?.lastRevision ?? 0,
        count: this.intents?.all().length ?? 0,
        epoch: this.intents?.epoch ?? 0,
        trusted: this.intents?.trust().trusted ?? false,
        ...(this.intents?.trust().reason ? { heldBecause: this.intents.trust().reason } : {}),
        held: this.intents?.held() ?? [],
      },
      instances: this.reconciler.observed().map((s) => ({
        namespace: s.namespace,
        name: s.name,
        phase: s.phase,
        ready: s.ready,
      })),
      counters: this.counters(),
    };
  }

  /**
   * A report of changed instances: at once (in the next turn of the event loop, so that changes made together go
   * together) unless one went out less than {@link REPORT_BATCH_MS} ago; then at the end of that window, with
   * everything that changed in it (a host starting many instances sends a few reports, not one per instance).
   */
  private scheduleReport(): void {
    if (this.reportPending) return;
    const wait = Math.max(0, this.lastChangeReport + REPORT_BATCH_MS - performance.now());
    this.reportPending = setTimeout(() => {
      this.reportPending = undefined;
      this.lastChangeReport = performance.now();
      void this.reportAcknowledged();
    }, wait);
  }

  /**
   * A report after instances changed, acknowledged by the coordinator: losing it would hide the change until
   * the next heartbeat, so it is retried (3 attempts, 1 s apart) until the coordinator answers. Heartbeats
   * stay fire-and-forget: the next one repeats everything anyway.
   */
  private async reportAcknowledged(): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      if (!this.nc || this.nc.isClosed() || !this.capacity) return;
      try {
        const t0 = performance.now();
        const report = this.hostReport();
        const reply = await this.nc.request(this.subjects.hostReport(this.config.host), encode(report), {
          timeout: 1000,
        });
        this.published++;
        // Read by the apply benchmark (bench/apply.ts): the coordinator had this report at this line's time.
        this.log.debug(
          {
            seq: report.seq,
            ms: Math.round(performance.now() - t0),
            ready: report.instances.filter((i) => i.ready).length,
          },
          'host report acknowledged',
        );
        if (reply.data.length) this.log.warn({ err: reply.string() }, 'coordinator rejected the host report');
        return;
      } catch (err) {
        this.log.debug({ attempt, err: (err as Error).message }, 'host report not acknowledged');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Records a write's outcome for DiskPressure; a change is reported at once. */
  private noteWrite(what: string, path: string, err?: Error): void {
    const changed =
      err && isDiskError(err) ? this.disk.failed(what, path, err) : !err && this.disk.succeeded(what);
    if (!changed) return;
    const c = this.disk.condition();
    this.log[c.status === 'True' ? 'error' : 'info']({ condition: c }, 'DiskPressure changed');
    this.scheduleReport();
  }

  /** The observed instances with their CPU usage (a reading at most every 2 s; cheap file reads). */
  private measured(): Array<{ s: InstanceState; cpu: CpuUsage | undefined }> {
    const observed = this.reconciler.observed();
    this.cpu.sample(observed);
    return observed.map((s) => ({ s, cpu: this.cpu.of(s.namespace, s.name) }));
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
      ...(cap.capacity.ephemeralStorageBytes !== undefined
        ? { ephemeralStorageFreeBytes: cap.diskFreeBytes }
        : {}),
      conditions: [this.disk.condition()],
      ...(this.sealPublicKey ? { sealKey: this.sealPublicKey } : {}),
      ...(this.credentials?.current() ? { credentialsExpireAt: this.credentials.current() } : {}),
      ...(this.network && this.config.overlayAddress ? { overlayAddress: this.config.overlayAddress } : {}),
      instances: this.measured().map(({ s, cpu }) => ({
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
        ...(s.interfaces?.length ? { interfaces: s.interfaces } : {}),
        containers: s.containers,
        message: s.message,
        startedAt: s.startedAt,
        ...(cpu ? { cpu } : {}),
      })),
      time: new Date().toISOString(),
    };
  }

  private report(): void {
    if (!this.nc || this.nc.isClosed() || !this.capacity) return;
    try {
      this.nc.publish(this.subjects.hostReport(this.config.host), encode(this.hostReport()));
      this.published++;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'host report not published');
    }
  }

  /** Stops the agent; instances keep running (the agent is not the workload). */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.stopLinkDoctor?.();
    this.host?.stop();
    this.credentials?.stop();
    if (this.reportPending) clearTimeout(this.reportPending);
    this.intents?.stop();
    this.segments?.stop();
    this.ops?.stop();
    await this.service?.stop().catch(() => undefined);
    await this.reconciler.stop();
    await this.http?.close();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
  }

  /**
   * Stops the agent if it runs, then stops and removes every instance this host's drivers list, with the
   * reconciler's own stop-then-destroy (SIGTERM, grace period, SIGKILL; then containers, VMs and scratch
   * volumes; persistent volumes stay). Needs no NATS. Throws when a runtime cannot be listed or an instance not
   * removed.
   */
  async drain(): Promise<void> {
    await this.stop();
    await this.reconciler.removeAll();
  }
}
