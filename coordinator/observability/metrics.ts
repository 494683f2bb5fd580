/**
 * The coordinator's Prometheus metrics (prom-client, on a Registry of its own). Fleet series — hosts, their
 * capacity and allocation, instances, Workloads — are computed from the live {@link FleetSource} at scrape
 * time (collect callbacks), so no edge host is ever scraped and nothing is kept per host between scrapes.
 * Counters mirror the monotonic counts the coordinator's parts keep; a source that is replaced (leadership
 * lost and regained) adds to them rather than resetting them. A coordinator without a source (a standby)
 * exports only its own figures: build info, `edgeplane_coordinator_leader 0`, process metrics.
 *
 * Naming follows Prometheus: `edgeplane_` prefix, base units (seconds, bytes, cores), `_total` counters,
 * `_timestamp_seconds` for points in time; `promtool check metrics` passes (tested).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from '../../shared/process-metrics.js';
import type { FleetSource, HostSource } from './source.js';

/** Instance phases always exported per location (0 when none), so a query of one never comes back empty. */
const PHASES = ['Pending', 'Starting', 'Running', 'Stopping', 'Stopped', 'Failed', 'Unknown'] as const;
const HOST_STATES = ['Ready', 'Disconnected', 'Lost'] as const;

/** What {@link createCoordinatorMetrics} returns. */
export interface CoordinatorMetrics {
  registry: Registry;
  /** The source fleet series are read from; undefined while standing by. */
  setSource(source: FleetSource | undefined): void;
  /** Whether this coordinator holds the Lease (or runs alone). */
  setLeader(leading: boolean): void;
}

/**
 * Adds the part of a monotonic count not yet added to `counter`: per source object, so a fresh source (whose
 * counts start at 0) adds from 0 instead of being ignored until it passes the old one.
 */
class CounterMirror {
  private seen = new WeakMap<object, Map<string, number>>();

  sync<L extends string>(
    counter: Counter<L>,
    source: object,
    labels: Partial<Record<L, string>>,
    value: number,
  ): void {
    let last = this.seen.get(source);
    if (!last) {
      last = new Map();
      this.seen.set(source, last);
    }
    const key = `${(counter as unknown as { name: string }).name}${JSON.stringify(labels)}`;
    const prev = last.get(key) ?? 0;
    if (value > prev) counter.inc(labels, value - prev);
    last.set(key, value);
  }
}

/** Refused report counts by reason, whichever shape the registry keeps them in. */
function refusedByReason(hosts: HostSource): Array<[string, number]> {
  const r = hosts.refused;
  if (!r) return [];
  return r instanceof Map ? [...r.entries()] : Object.entries(r);
}

/** The optional credentials expiry a host report may carry (RFC 3339), in seconds since the epoch. */
function credentialsExpiry(report: object): number | undefined {
  const v = (report as { credentialsExpireAt?: unknown }).credentialsExpireAt;
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const ms = typeof v === 'number' ? v * 1000 : Date.parse(v);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

export function createCoordinatorMetrics(opts: {
  version: string;
  /** Also export prom-client's process_* and nodejs_* metrics (default true). */
  processMetrics?: boolean;
  /** Feed messages the dashboard skipped because they did not decode (a monotonic count). */
  feedRejected?: () => number;
}): CoordinatorMetrics {
  const registry = new Registry();
  const registers = [registry];
  let source: FleetSource | undefined;
  let leading = false;
  const mirror = new CounterMirror();
  if (opts.processMetrics !== false) {
    registerProcessMetrics(registry);
  }

  new Gauge({
    name: 'edgeplane_build_info',
    help: 'Always 1; labels name the component and its version.',
    labelNames: ['component', 'version', 'nodejs_version'],
    registers,
  }).set({ component: 'coordinator', version: opts.version, nodejs_version: process.version }, 1);

  new Gauge({
    name: 'edgeplane_coordinator_leader',
    help: '1 when this coordinator holds the leader Lease (or runs without election), 0 on a standby.',
    registers,
    collect() {
      this.set(leading ? 1 : 0);
    },
  });

  new Gauge({
    name: 'edgeplane_hosts',
    help: 'Hosts known to the coordinator, by state (Ready, Disconnected, Lost).',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      if (!source) return;
      const counts = source.hosts.counts();
      for (const state of HOST_STATES) this.set({ state }, counts[state]);
    },
  });

  // Per-host series, all filled by one pass over the registry per scrape: prom-client calls every metric's
  // collect synchronously in one loop, so the first of them refreshes all eight and the memo is dropped in
  // the microtask after that loop (before any later scrape).
  let refreshing: Promise<void> | undefined;
  const collectHosts = (): Promise<void> => {
    if (!refreshing) {
      refreshHosts();
      refreshing = Promise.resolve();
      queueMicrotask(() => {
        refreshing = undefined;
      });
    }
    return refreshing;
  };
  const hostLabels = ['host', 'location'] as const;
  const resourceLabels = [...hostLabels, 'resource', 'unit'] as const;
  const hostGauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge<L>({ name, help, labelNames, registers, collect: collectHosts });
  const state = hostGauge(
    'edgeplane_host_state',
    "1 for a host's current state (Ready, Disconnected or Lost).",
    [...hostLabels, 'state'],
  );
  const info = hostGauge(
    'edgeplane_host_info',
    "Always 1; labels give the host's location and agent version.",
    [...hostLabels, 'agent_version'],
  );
  const heartbeat = hostGauge(
    'edgeplane_host_last_heartbeat_timestamp_seconds',
    "When the host's last report arrived (coordinator clock), in seconds since the epoch.",
    hostLabels,
  );
  const capacity = hostGauge(
    'edgeplane_host_capacity',
    'What the host has: cpu in cores, memory and ephemeral_storage in bytes.',
    resourceLabels,
  );
  const allocatable = hostGauge(
    'edgeplane_host_allocatable',
    'What may be placed on the host: cpu in cores, memory and ephemeral_storage in bytes.',
    resourceLabels,
  );
  const allocated = hostGauge(
    'edgeplane_host_allocated',
    'What the instances placed on the host request: cpu in cores, memory in bytes.',
    resourceLabels,
  );
  const hostInstances = hostGauge('edgeplane_host_instances', 'Instances placed on the host.', hostLabels);
  const credentials = hostGauge(
    'edgeplane_host_credentials_expiry_timestamp_seconds',
    "When the host's NATS credentials expire, in seconds since the epoch (hosts that report it).",
    hostLabels,
  );
  const perHost = [state, info, heartbeat, capacity, allocatable, allocated, hostInstances, credentials];
  function refreshHosts(): void {
    for (const g of perHost) g.reset();
    if (!source) return;
    for (const e of source.hosts.all()) {
      const r = e.report;
      const h = { host: r.host, location: r.location };
      state.set({ ...h, state: e.state }, 1);
      info.set({ ...h, agent_version: r.agentVersion }, 1);
      heartbeat.set(h, e.lastSeen / 1000);
      for (const [g, amounts] of [
        [capacity, r.capacity],
        [allocatable, r.allocatable],
      ] as const) {
        g.set({ ...h, resource: 'cpu', unit: 'core' }, amounts.cpuMillis / 1000);
        g.set({ ...h, resource: 'memory', unit: 'byte' }, amounts.memoryBytes);
        if (amounts.ephemeralStorageBytes !== undefined)
          g.set({ ...h, resource: 'ephemeral_storage', unit: 'byte' }, amounts.ephemeralStorageBytes);
      }
      const a = source.allocatedOf(r.host);
      allocated.set({ ...h, resource: 'cpu', unit: 'core' }, a.allocated.cpuMillis / 1000);
      allocated.set({ ...h, resource: 'memory', unit: 'byte' }, a.allocated.memoryBytes);
      hostInstances.set(h, a.instances);
      const expiry = credentialsExpiry(r);
      if (expiry !== undefined) credentials.set(h, expiry);
    }
  }

  new Gauge({
    name: 'edgeplane_instances',
    help: 'Instances by phase and location (from the Instance objects).',
    labelNames: ['phase', 'location'],
    registers,
    collect() {
      this.reset();
      if (!source) return;
      const counts = new Map<string, Map<string, number>>();
      for (const i of source.instances()) {
        const byPhase = counts.get(i.spec.location) ?? new Map<string, number>();
        counts.set(i.spec.location, byPhase);
        const phase = i.status?.phase ?? 'Pending';
        byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1);
      }
      for (const [location, byPhase] of counts) {
        for (const phase of new Set([...PHASES, ...byPhase.keys()]))
          this.set({ phase, location }, byPhase.get(phase) ?? 0);
      }
    },
  });

  const workloadLabels = ['namespace', 'workload', 'group'] as const;
  const desired = new Gauge({
    name: 'edgeplane_workload_desired_replicas',
    help: "A Workload's spec.replicas.",
    labelNames: workloadLabels,
    registers,
    collect: () => refreshWorkloads(),
  });
  const ready = new Gauge({
    name: 'edgeplane_workload_ready_replicas',
    help: "A Workload's status.readyReplicas.",
    labelNames: workloadLabels,
    registers,
    collect: () => refreshWorkloads(),
  });
  // Both gauges are filled together; the second collect of a scrape just refills them (a few hundred Workloads).
  function refreshWorkloads(): void {
    desired.reset();
    ready.reset();
    if (!source) return;
    for (const { group, object: w } of source.workloads()) {
      const l = { namespace: w.metadata.namespace ?? 'default', workload: w.metadata.name ?? '', group };
      const replicas = (w.spec as { replicas?: unknown } | undefined)?.replicas;
      desired.set(l, typeof replicas === 'number' ? replicas : 0);
      ready.set(l, w.status?.readyReplicas ?? 0);
    }
  }

  const reconcile = new Histogram({
    name: 'edgeplane_reconcile_duration_seconds',
    help: 'Duration of reconcile passes, by controller and result (success, error).',
    labelNames: ['controller', 'result'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  new Gauge({
    name: 'edgeplane_workqueue_depth',
    help: 'Keys waiting for a worker in a work queue.',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      if (source) this.set({ queue: 'workloads' }, source.queue.length);
    },
  });

  const counter = (name: string, help: string, labelNames: string[], sync: (c: Counter) => void) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        sync(this);
      },
    });
  counter('edgeplane_intent_writes_total', 'Deployment intents written to the KV bucket.', [], (c) => {
    if (source) mirror.sync(c, source.intents, {}, source.intents.writes);
  });
  counter(
    'edgeplane_intent_conflicts_total',
    'Compare-and-set conflicts met writing intents (another writer changed the key first).',
    [],
    (c) => {
      if (source) mirror.sync(c, source.intents, {}, source.intents.conflicts);
    },
  );
  counter('edgeplane_host_reports_total', 'Host reports accepted.', [], (c) => {
    if (source) mirror.sync(c, source.hosts, {}, source.hosts.accepted);
  });
  counter(
    'edgeplane_host_reports_rejected_total',
    'Host reports rejected, by reason: malformed (unparseable, or about another host than its subject) or why it was refused.',
    ['reason'],
    (c) => {
      c.inc({ reason: 'malformed' }, 0); // present from the start, so rate() over it is never empty
      if (!source) return;
      // The registry's count by reason when it keeps one (malformed, subject-mismatch, not-enrolled, …);
      // else its malformed count alone.
      const byReason = refusedByReason(source.hosts);
      if (!byReason.length) byReason.push(['malformed', source.hosts.malformed]);
      for (const [reason, n] of byReason) mirror.sync(c, source.hosts, { reason }, n);
    },
  );
  counter(
    'edgeplane_host_losses_suppressed_total',
    "Host losses held back because more than --max-lost-share of the hosts were silent at once (the fault is likely the coordinator's own).",
    [],
    (c) => {
      if (source) mirror.sync(c, source.hosts, {}, source.hosts.lossesSuppressed ?? 0);
    },
  );
  counter(
    'edgeplane_host_silence_resets_total',
    "Times every host's silence was counted afresh: the coordinator's own NATS link came back, or its check loop stalled.",
    [],
    (c) => {
      if (source) mirror.sync(c, source.hosts, {}, source.hosts.graceRestarts ?? 0);
    },
  );
  counter('edgeplane_feed_messages_total', 'Messages published on the monitoring feed.', [], (c) => {
    if (source?.feedPublished) mirror.sync(c, source, {}, source.feedPublished());
  });
  counter(
    'edgeplane_feed_messages_rejected_total',
    'Monitoring feed messages the dashboard skipped because they did not decode (a newer or broken publisher).',
    [],
    (c) => {
      if (opts.feedRejected) mirror.sync(c, opts, {}, opts.feedRejected());
    },
  );

  return {
    registry,
    setSource(s) {
      if (source?.queue.onPass) source.queue.onPass = undefined;
      source = s;
      if (s)
        s.queue.onPass = (seconds, ok) =>
          reconcile.observe({ controller: 'workloads', result: ok ? 'success' : 'error' }, seconds);
    },
    setLeader(l) {
      leading = l;
    },
  };
}
