/**
 * The coordinator: watches Workloads on the Kubernetes API, places their instances, publishes intents over
 * NATS and rolls host reports up into Instance and Workload status. `main.ts` only configures and starts it.
 *
 * With leader election, everything is built per leadership term: a standby builds nothing until it holds the
 * Lease, and a leader that cannot renew it stops at once, drops all it built (caches, NATS connection, queue)
 * and stands for election again like a fresh process, so that nothing it held is trusted afterwards.
 */
import os from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  GROUP,
  InstanceKind,
  NetworkKind,
  WORKLOAD_GROUPS,
  WorkloadDeploymentKind,
  WorkloadKind,
} from '../shared/api/index.js';
import type { Logger } from '../shared/log.js';
import { connectNats, withEnvDefaults } from '../shared/nats/connect.js';
import { startLinkDoctor } from '../shared/nats/link-doctor.js';
import { Subjects } from '../shared/nats/subjects.js';
import { requestHeaderAuth } from './apiserver/auth.js';
import { InstancesApiServer } from './apiserver/server.js';
import { InstanceStore } from './apiserver/store.js';
import { AutoscalerController } from './autoscaling/controller.js';
import type { CoordinatorConfig } from './config.js';
import { ConversionWebhook } from './conversion/server.js';
import { type Enrollment, startEnrollment } from './enroll/wire.js';
import { wireFeedAndServices } from './feed/wire.js';
import { AllocationIndex } from './hosts/allocation.js';
import { type HostEntry, HostRegistry } from './hosts/registry.js';
import { HostSync } from './hosts/sync.js';
import { IntentStore } from './intents/store.js';
import { apiErrorMessage, KubeClient } from './kube/client.js';
import { EventRecorder } from './kube/events.js';
import { ResourceCache } from './kube/informer.js';
import { LeaderElector } from './kube/leader.js';
import { SegmentPublisher } from './networks/segment-publisher.js';
import { IpamStore } from './networks/store.js';
import { CoordinatorHttp } from './observability/server.js';
import { AuditRecorder } from './ops/audit.js';
import { COORDINATOR_VERSION } from './services/status.js';
import { type QuotaObject, WorkloadController } from './workloads/controller.js';
import { NetworkStatusWriter } from './workloads/networks.js';
import { crdInstanceWrites } from './workloads/objects.js';
import { OwnWrites } from './workloads/own-writes.js';
import type {
  CoreDataObject,
  DeploymentObject,
  InstanceCache,
  InstanceObject,
  NetworkObject,
  WorkloadObject,
} from './workloads/types.js';
import { OWN_INSTANCE, ownWorkloadKind } from './workloads/writes.js';

export class Coordinator {
  private nc: NatsConnection | undefined;
  /** Re-paces NATS reconnects after a wall-clock step and explains a link that stays down (link-doctor.ts). */
  private stopLinkDoctor: (() => void) | undefined;
  private registry: HostRegistry | undefined;
  private intents: IntentStore | undefined;
  private controller: WorkloadController | undefined;
  private autoscaler: AutoscalerController | undefined;
  private caches: Array<{ start(): Promise<void>; stop(): Promise<void> }> = [];
  private ipam: IpamStore | undefined;
  private segments: SegmentPublisher | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private hostSync: HostSync | undefined;
  private feedStop: (() => Promise<void>) | undefined;
  private elector: LeaderElector | undefined;
  private enrollment: Enrollment | undefined;
  /** The aggregated instances API (`--instances-api=aggregated`) and its store, per term. */
  private instancesApi: InstancesApiServer | undefined;
  private instances: InstanceStore | undefined;
  /** Set by stop(): a lost leadership then ends the process's part instead of starting a new term. */
  private stopping = false;
  private audit: AuditRecorder | undefined;
  /** The HTTP side (metrics, health, dashboard): told of each term's role and handed its parts. */
  private observer: CoordinatorHttp | undefined;
  /** The conversion webhook (every replica serves it, leading or not). */
  private webhook: ConversionWebhook | undefined;
  readonly subjects: Subjects;

  constructor(
    readonly config: CoordinatorConfig,
    private readonly log: Logger,
  ) {
    this.subjects = new Subjects(config.subjectPrefix);
  }

  /** Stands for election (when configured) and, once leading, starts every part. */
  async start(): Promise<void> {
    // Metrics, health and the dashboard: up before the election, so a standby answers its probes too.
    if (this.config.metricsAddress)
      this.observer = await CoordinatorHttp.start({
        address: this.config.metricsAddress,
        log: this.log,
        version: COORDINATOR_VERSION,
      });
    // A webhook that cannot start (its Secret refused, its port taken) leaves v1alpha unserved, not the coordinator.
    if (this.config.webhook)
      this.webhook = await ConversionWebhook.start(
        this.config.webhook,
        new KubeClient(this.config.kubeconfig),
        this.log.child({ part: 'conversion' }),
      ).catch((err: Error) => {
        this.log.error(
          { err: apiErrorMessage(err) },
          'conversion webhook not started: v1alpha is not served',
        );
        return undefined;
      });
    await this.startTerm();
  }

  /** Stops every part and releases the Lease. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.stopTerm();
    await this.webhook?.close();
    await this.observer?.close();
  }

  /** Leadership lost: stop acting at once, then stand for election again with nothing kept. */
  private async rejoin(): Promise<void> {
    this.log.error('leadership lost; stopping, then standing for election again');
    await this.stopTerm();
    if (!this.stopping) await this.startTerm();
  }

  private async startTerm(): Promise<void> {
    const log = this.log;
    const client = new KubeClient(this.config.kubeconfig);
    if (this.config.leaderElection) {
      // A standby does nothing but wait for the Lease: no caches, no NATS, no writes.
      this.elector = new LeaderElector(client, this.config.leaderElection, log.child({ part: 'leader' }));
      this.observer?.standby();
      await this.elector.acquire(() => void this.rejoin());
    }
    this.observer?.leading();
    // Credentials and TLS come from EDGE_NATS_CREDS / EDGE_NATS_CA / EDGE_NATS_CERT / EDGE_NATS_KEY.
    const natsSettings = withEnvDefaults({ servers: this.config.natsServers, name: 'edge-coordinator' });
    this.stopLinkDoctor = startLinkDoctor({ nc: () => this.nc, settings: natsSettings, log });
    this.nc = await connectNats(natsSettings);
    // The intents bucket is fenced by epoch (coordinator/intents/store.ts): above the Lease's transitions, so a
    // leader paused past its Lease is refused by the bucket itself when it wakes, and steps down.
    const installation = await installationId(client, log);
    const intents = new IntentStore({
      nc: this.nc,
      subjects: this.subjects,
      log: log.child({ part: 'intents' }),
      replicas: this.config.kvReplicas,
      hostKey: (host) => this.registry?.get(host)?.report.sealKey,
      writer: this.elector?.identity ?? `${os.hostname()}_${process.pid}`,
      minEpoch: this.elector ? this.elector.transitions + 1 : 0,
      ...(installation ? { installation } : {}),
      deferMarkers: true,
      locations: () => new Set(this.registry?.all().map((e) => e.report.location) ?? []),
      ...(this.config.intentResyncMs !== undefined ? { resyncMs: this.config.intentResyncMs } : {}),
      onDeposed: () => void this.rejoin(),
    });
    this.intents = intents;
    await intents.start();
    const ipam = new IpamStore({
      nc: this.nc,
      subjects: this.subjects,
      log: log.child({ part: 'ipam' }),
      replicas: this.config.kvReplicas,
    });
    await ipam.start();
    this.ipam = ipam;
    const segments = new SegmentPublisher({
      nc: this.nc,
      subjects: this.subjects,
      log: log.child({ part: 'segments' }),
      replicas: this.config.kvReplicas,
      overlayOf: (host) => this.registry?.get(host)?.report.overlayAddress,
      warmupMs: this.config.lostAfterMs,
    });
    await segments.start();
    this.segments = segments;
    const networkSettings = { underlayMtu: this.config.underlayMtu };
    const { enrollment: settings, natsServers, kvReplicas: replicas } = this.config;
    const enroll = settings
      ? await startEnrollment({ nc: this.nc, natsServers, subjects: this.subjects, replicas, settings, log })
      : undefined;
    this.enrollment = enroll;
    const registry = new HostRegistry({
      nc: this.nc,
      subjects: this.subjects,
      log: log.child({ part: 'hosts' }),
      lostAfterMs: this.config.lostAfterMs,
      maxLostShare: this.config.maxLostShare,
      admission: {
        ...(enroll ? { identityOf: enroll.identityOf } : {}),
        ...(this.config.maxHeartbeatMs ? { maxHeartbeatMs: this.config.maxHeartbeatMs } : {}),
      },
    });
    this.registry = registry;
    const workloads = new Map<string, ResourceCache<WorkloadObject>>();
    for (const group of WORKLOAD_GROUPS) {
      workloads.set(
        group,
        new ResourceCache<WorkloadObject>(
          client,
          { kind: WorkloadKind, group },
          log.child({ cache: `workloads.${group}` }),
        ),
      );
    }
    // Where Instances live (--instances-api): custom objects in etcd, or the KV this coordinator serves itself.
    const store =
      this.config.instancesApi.mode === 'aggregated'
        ? new InstanceStore({
            nc: this.nc,
            bucket: this.subjects.instancesBucket,
            replicas: this.config.kvReplicas,
            log: log.child({ part: 'instance-store' }),
          })
        : undefined;
    const instances: InstanceCache =
      store ??
      new ResourceCache<InstanceObject>(
        client,
        { kind: InstanceKind, group: GROUP },
        log.child({ cache: 'instances' }),
      );
    const instanceWrites = store ?? crdInstanceWrites(client);
    const deployments = new ResourceCache<DeploymentObject>(
      client,
      { kind: WorkloadDeploymentKind, group: GROUP },
      log.child({ cache: 'workloaddeployments' }),
    );
    const secrets = new ResourceCache<CoreDataObject>(
      client,
      { path: '/api/v1/secrets', list: () => client.core.listSecretForAllNamespaces() },
      log.child({ cache: 'secrets' }),
    );
    const configMaps = new ResourceCache<CoreDataObject>(
      client,
      { path: '/api/v1/configmaps', list: () => client.core.listConfigMapForAllNamespaces() },
      log.child({ cache: 'configmaps' }),
    );
    // ResourceQuotas: requests.* and limits.* of Instances are enforced by the Workload controller.
    const quotas = new ResourceCache<QuotaObject>(
      client,
      { path: '/api/v1/resourcequotas', list: () => client.core.listResourceQuotaForAllNamespaces() },
      log.child({ cache: 'resourcequotas' }),
    );
    const networks = new ResourceCache<NetworkObject>(
      client,
      { kind: NetworkKind, group: GROUP },
      log.child({ cache: 'networks' }),
    );
    // What the Instances hold per host, indexed once for the host sync and placement alike.
    const allocation = new AllocationIndex(instances);
    const events = new EventRecorder(client, 'edge-coordinator', log.child({ part: 'events' }));
    // The controller's own writes: their echoes from the informers queue no pass (workloads/own-writes.ts).
    const ownWrites = new OwnWrites();
    const controller = new WorkloadController({
      ownWrites,
      client,
      log: log.child({ controller: 'workloads' }),
      events,
      subjects: this.subjects,
      workloads,
      instances,
      instanceWrites,
      deployments,
      registry,
      allocation,
      intents,
      secrets,
      configMaps,
      networks,
      warmupMs: this.config.lostAfterMs,
      ipam,
      segments,
      networkSettings,
      requireOverlay: this.config.requireOverlay,
      quotas,
    });
    this.controller = controller;
    // The autoscaler (coordinator/autoscaling/): owns spec.replicas of Workloads with spec.autoscaling.
    const autoscaler = new AutoscalerController({
      client,
      log: log.child({ controller: 'autoscaler' }),
      events,
      workloads,
      instances,
      hosts: registry,
      syncMs: this.config.autoscaleSyncMs,
      defaults: { downWindowSeconds: this.config.autoscaleDownWindowSeconds, tolerance: 0.1 },
    });
    this.autoscaler = autoscaler;
    autoscaler.queue.hold();
    // No pass before every cache has synced: a pass that saw Workloads but not yet their Instances would
    // place them afresh and withdraw what runs (a restarted or newly elected coordinator must change nothing).
    controller.queue.hold();
    const networkStatus = new NetworkStatusWriter({
      client,
      log: log.child({ part: 'networks' }),
      workloads,
      networks,
      ipam,
      settings: networkSettings,
    });

    for (const [group, cache] of workloads) {
      cache.onChange((w, event) => {
        // Read by the apply benchmark (bench/apply.ts): when the coordinator first heard of a Workload.
        log.debug({ workload: `${w.metadata.namespace}/${w.metadata.name}`, group, event }, 'workload event');
        // Every event queues a pass, our own writes' echoes too (a no-op write returns somebody else's version);
        // the controller only waits for those echoes before it plans again (workloads/own-writes.ts).
        ownWrites.isEcho(ownWorkloadKind(group), w, event);
        controller.enqueue(group, w.metadata.namespace!, w.metadata.name);
        autoscaler.enqueue(group, w.metadata.namespace!, w.metadata.name);
        // Network status counts the Workloads attached (it is written only when the count changes).
        void networkStatus.sync(w.metadata.namespace!);
      });
    }
    instances.onChange((i, event) => {
      ownWrites.isEcho(OWN_INSTANCE, i, event);
      controller.enqueueByName(i.metadata.namespace!, i.spec.workloadRef.name);
      // The address blocks a Network's status lists follow its instances.
      void networkStatus.sync(i.metadata.namespace!);
    });
    // A quota that appears, changes or goes may admit or hold back replicas of its namespace's Workloads.
    quotas.onChange((q) => controller.enqueueNamespace(q.metadata.namespace!));
    // A Secret, ConfigMap or Network that appears or changes unblocks (or rolls) the Workloads naming it.
    secrets.onChange((o) => controller.enqueueReferencing(o.metadata.namespace!, 'secret', o.metadata.name!));
    configMaps.onChange((o) =>
      controller.enqueueReferencing(o.metadata.namespace!, 'configMap', o.metadata.name!),
    );
    networks.onChange((o) => {
      controller.enqueueReferencing(o.metadata.namespace!, 'network', o.metadata.name);
      void networkStatus.sync(o.metadata.namespace!);
    });
    const overlays = new Map<string, string | undefined>();
    registry.on('report', (entry: HostEntry, changed: boolean) => {
      if (changed) {
        log.debug({ host: entry.report.host, seq: entry.report.seq }, 'host report changed instances');
        controller.enqueueForHostReport(entry);
      }
      // A host's overlay address is in the peer lists of the segments it is on.
      if (overlays.get(entry.report.host) !== entry.report.overlayAddress) {
        overlays.set(entry.report.host, entry.report.overlayAddress);
        segments.schedule();
      }
    });
    registry.on('state', (entry: HostEntry) => controller.enqueueForHostState(entry));

    this.hostSync = new HostSync(
      client,
      registry,
      (host) => allocation.of(host),
      log.child({ part: 'hostsync' }),
    );

    const feed = await wireFeedAndServices({
      nc: this.nc,
      subjects: this.subjects,
      registry,
      intents,
      events,
      workloads: workloads.values(),
      instances,
      replicas: this.config.kvReplicas,
      queueLength: () => controller.queue.length,
      log,
    });
    this.feedStop = feed.stop;
    // Every exec an agent runs becomes an Event on its Instance, naming the operator.
    this.audit = new AuditRecorder({
      nc: this.nc,
      subjects: this.subjects,
      events,
      instance: (namespace, name) => instances.get(namespace, name),
      log: log.child({ part: 'audit' }),
    });
    this.audit.start();
    registry.start();
    const caches = [...workloads.values(), instances, deployments, secrets, configMaps, networks, quotas];
    this.caches = caches;
    await Promise.all(caches.map((c) => c.start()));
    this.instances = store;
    if (store && this.config.instancesApi.mode === 'aggregated') {
      // Served once the store has its first read; in the background, so that a kube-apiserver without the
      // aggregation layer (no request-header CA yet) holds up only the API, never the controllers.
      const settings = this.config.instancesApi;
      void requestHeaderAuth(client, log, () => this.instances === store)
        .then(async (auth) => {
          if (!auth || this.instances !== store) return;
          const server = new InstancesApiServer({
            ...settings,
            ...auth,
            store,
            log: log.child({ part: 'instances-api' }),
          });
          this.instancesApi = server;
          await server.start();
        })
        .catch((err) => log.error({ err: (err as Error).message }, 'instances API not served'));
    }
    controller.queue.release();
    controller.enqueueAll();
    autoscaler.queue.release();
    autoscaler.start();
    // The IPAM reaper: claims no Instance uses (a crash between a claim and its Instance, a Workload gone
    // without its finalizer) and segments of Networks that are gone are released after the grace period.
    const namespaced = (key: string) => key.split('/') as [string, string];
    this.reaper = setInterval(() => {
      void ipam
        .reap(
          (owner) => !!instances.get(...namespaced(owner)),
          (network) => !!networks.get(...namespaced(network)),
        )
        .then((n) => {
          if (n)
            for (const ns of new Set(networks.list().map((x) => x.metadata.namespace!)))
              void networkStatus.sync(ns);
        })
        .catch((err) => log.warn({ err: (err as Error).message }, 'ipam reaper failed'));
    }, 60_000);
    this.reaper.unref?.();
    // Once the first full pass is done every location's intents are right: markers may now vouch for them
    // (until then agents hold every removal; see agent/intent-view.ts).
    // (A queue kept busy by churn does not hold them back for more than a minute: the markers then list what the
    // bucket held at the start plus what was written since.)
    void Promise.race([controller.queue.idle(), new Promise((r) => setTimeout(r, 60_000).unref())])
      .then(() => (this.intents === intents ? intents.markersReady() : undefined))
      .catch((err) => log.warn({ err: (err as Error).message }, 'intent markers not written'));
    this.observer?.attach({
      hosts: registry,
      allocatedOf: (host) => allocation.of(host),
      instances: () => instances.list(),
      workloads: () => [...workloads].flatMap(([group, c]) => c.list().map((object) => ({ group, object }))),
      queue: controller.queue,
      intents,
      feedPublished: () => feed.feed.published,
      nc: this.nc,
      subjects: this.subjects,
      cachesSynced: () => caches.every((c) => c.isStarted),
    });
    log.info({ nats: this.config.natsServers, groups: WORKLOAD_GROUPS }, 'coordinator started');
  }

  private async stopTerm(): Promise<void> {
    await this.instancesApi?.stop();
    this.instancesApi = this.instances = undefined;
    this.stopLinkDoctor?.();
    this.stopLinkDoctor = undefined;
    this.observer?.detach();
    this.controller?.queue.stop();
    const autoscaler = this.autoscaler;
    autoscaler?.stop();
    this.autoscaler = undefined;
    // The Lease is released once our writes have stopped, before the slower teardown, so a standby starts at once.
    await this.controller?.queue.idle();
    await autoscaler?.queue.idle();
    await this.elector?.stop();
    this.intents?.stop();
    this.hostSync?.stop();
    clearInterval(this.reaper);
    this.ipam?.stop();
    this.segments?.stop();
    this.ipam = this.segments = this.reaper = undefined;
    this.registry?.stop();
    this.audit?.stop();
    await this.enrollment?.stop();
    await this.feedStop?.();
    await Promise.all(this.caches.map((c) => c.stop().catch(() => undefined)));
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
    this.nc = this.registry = this.controller = this.hostSync = this.feedStop = this.elector = undefined;
    this.intents = undefined;
    this.audit = undefined;
    this.enrollment = undefined;
    this.caches = [];
  }
}

/**
 * The installation's identity, written into intent markers so agents never follow another control plane's
 * bucket: the UID of the kube-system namespace (what Kubernetes tools use as a cluster ID). Undefined when it
 * cannot be read (the store then keeps the one in the bucket's fence).
 */
async function installationId(client: KubeClient, log: Logger): Promise<string | undefined> {
  try {
    return (await client.core.readNamespace({ name: 'kube-system' })).metadata?.uid;
  } catch (err) {
    log.warn(
      { err: apiErrorMessage(err) },
      'kube-system namespace not readable; installation id from the intents bucket',
    );
    return undefined;
  }
}
