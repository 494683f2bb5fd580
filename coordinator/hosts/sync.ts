/**
 * Mirrors the host registry into Host and Location objects, so `kubectl get hosts` answers "where is
 * capacity?". Written on change (new host, state, capacity, labels, instance count), never per heartbeat.
 */
import {
  CITY_CODE_LABEL,
  GROUP,
  HostKind,
  type HostStatus,
  LocationKind,
  type ResourceAmounts,
  VERSION,
} from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { withQuantities } from '../../shared/resources.js';
import { apiErrorMessage, isConflict, isNotFound, type KubeClient } from '../kube/client.js';
import type { HostEntry, HostRegistry } from './registry.js';

export class HostSync {
  private written = new Map<string, string>();
  private locations = new Map<string, string>();
  private pending = new Set<string>();
  /** Last labels/capacity/runtimes/version seen per host, to notice a change without writing. */
  private specs = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly registry: HostRegistry,
    private readonly allocatedOf: (host: string) => { allocated: ResourceAmounts; instances: number },
    private readonly log: Logger,
  ) {
    // Heartbeats that change nothing write nothing: only new hosts, instance changes, state changes, and
    // changed labels/capacity/runtimes/version/conditions mark a host.
    registry.on('report', (e: HostEntry, instancesChanged: boolean, isNew: boolean) => {
      const r = e.report;
      const spec = JSON.stringify([
        r.labels,
        r.capacity,
        r.allocatable,
        r.runtimes,
        r.agentVersion,
        r.conditions,
      ]);
      if (instancesChanged || isNew || this.specs.get(r.host) !== spec) this.mark(r.host);
      this.specs.set(r.host, spec);
    });
    registry.on('state', (e: HostEntry) => this.mark(e.report.host));
  }

  /** Marks a host for a write on the next flush (coalesced, at most once a second). */
  mark(host: string): void {
    this.pending.add(host);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, 1000);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private async flush(): Promise<void> {
    const hosts = [...this.pending];
    this.pending.clear();
    for (const host of hosts) {
      const entry = this.registry.get(host);
      if (!entry) continue;
      await this.writeHost(entry).catch((err) => {
        this.log.warn({ host, err: apiErrorMessage(err) }, 'host object not written');
        this.pending.add(host);
      });
    }
    await this.writeLocations().catch((err) =>
      this.log.warn({ err: apiErrorMessage(err) }, 'locations not written'),
    );
  }

  private async writeHost(entry: HostEntry): Promise<void> {
    const r = entry.report;
    const { allocated, instances } = this.allocatedOf(r.host);
    const status: HostStatus = {
      ready: entry.state === 'Ready',
      state: entry.state,
      labels: r.labels,
      // Numbers for code, quantities (64, 256Gi) for people, as a Node's status has them.
      capacity: withQuantities(r.capacity),
      allocatable: withQuantities(r.allocatable),
      allocated: withQuantities(allocated),
      runtimes: r.runtimes,
      instances,
      agentVersion: r.agentVersion,
      lastHeartbeatTime: new Date(entry.lastSeen).toISOString(),
      // The agent's own conditions (DiskPressure), as a Node's.
      ...(r.conditions?.length ? { conditions: r.conditions } : {}),
    };
    const digest = JSON.stringify({ ...status, lastHeartbeatTime: undefined });
    if (this.written.get(r.host) === digest) return;
    const ref = { kind: HostKind, group: GROUP };
    try {
      await this.client.patchStatus(ref, undefined, r.host, status);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.client.create(ref, {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'Host',
          metadata: { name: r.host, labels: r.labels },
          spec: { location: r.location },
        });
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
      await this.client.patchStatus(ref, undefined, r.host, status);
    }
    this.written.set(r.host, digest);
  }

  private async writeLocations(): Promise<void> {
    const byLocation = new Map<string, HostEntry[]>();
    for (const e of this.registry.all())
      byLocation.set(e.report.location, [...(byLocation.get(e.report.location) ?? []), e]);
    const ref = { kind: LocationKind, group: GROUP };
    for (const [location, entries] of byLocation) {
      const ready = entries.filter((e) => e.state === 'Ready');
      const sum = (f: (e: HostEntry) => ResourceAmounts) =>
        ready.reduce(
          (a, e) => ({
            cpuMillis: a.cpuMillis + f(e).cpuMillis,
            memoryBytes: a.memoryBytes + f(e).memoryBytes,
          }),
          { cpuMillis: 0, memoryBytes: 0 },
        );
      const cityCode = (ready[0] ?? entries[0])?.report.labels[CITY_CODE_LABEL];
      const status = {
        hosts: entries.length,
        readyHosts: ready.length,
        ...(cityCode ? { cityCode } : {}),
        allocatable: sum((e) => e.report.allocatable),
        allocated: sum((e) => this.allocatedOf(e.report.host).allocated),
      };
      const digest = JSON.stringify(status);
      if (this.locations.get(location) === digest) continue;
      const labels = entries[0]!.report.labels;
      try {
        await this.client.patchStatus(ref, undefined, location, status);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.client
          .create(ref, {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'Location',
            metadata: { name: location },
            spec: {
              ...(labels.provider ? { provider: labels.provider } : {}),
              ...(labels['topology.kubernetes.io/region']
                ? { region: labels['topology.kubernetes.io/region'] }
                : {}),
              ...(labels['topology.kubernetes.io/zone']
                ? { zone: labels['topology.kubernetes.io/zone'] }
                : {}),
              ...(labels[CITY_CODE_LABEL] ? { cityCode: labels[CITY_CODE_LABEL] } : {}),
            },
          })
          .catch((e) => {
            if (!isConflict(e)) throw e;
          });
        await this.client.patchStatus(ref, undefined, location, status);
      }
      this.locations.set(location, digest);
    }
  }
}
