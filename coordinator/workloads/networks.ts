/**
 * Network status: how many Workloads attach to each Network, and Ready. Written only when the count changes
 * (remembered, so a burst of Workload events makes one write, not one per event).
 */
import { type Condition, GROUP, NetworkKind, WorkloadSpec } from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { apiErrorMessage, type KubeClient } from '../kube/client.js';
import type { ResourceCache } from '../kube/informer.js';
import { NO_LOOKUP, resolveReferences } from './references.js';
import { setCondition } from './status.js';
import type { NetworkObject, WorkloadObject } from './types.js';

export class NetworkStatusWriter {
  /** Last count written per `<namespace>/<network>`. */
  private written = new Map<string, number>();

  constructor(
    private readonly d: {
      client: KubeClient;
      log: Logger;
      workloads: Map<string, ResourceCache<WorkloadObject>>;
      networks: ResourceCache<NetworkObject>;
    },
  ) {}

  /** Brings the status of every Network of a namespace up to date. */
  async sync(namespace: string): Promise<void> {
    const counts = new Map<string, number>();
    for (const cache of this.d.workloads.values()) {
      for (const w of cache.list(namespace)) {
        const parsed = WorkloadSpec.safeParse(w.spec);
        if (!parsed.success || w.metadata.deletionTimestamp) continue;
        for (const n of resolveReferences(parsed.data, NO_LOOKUP).referenced.networks) {
          counts.set(n, (counts.get(n) ?? 0) + 1);
        }
      }
    }
    for (const net of this.d.networks.list(namespace)) {
      const key = `${namespace}/${net.metadata.name}`;
      const workloads = counts.get(net.metadata.name) ?? 0;
      const prev = net.status as { workloads?: number; conditions?: Condition[] } | undefined;
      const ready = prev?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if ((prev?.workloads === workloads && ready) || this.written.get(key) === workloads) continue;
      this.written.set(key, workloads);
      const conditions = setCondition(
        prev?.conditions,
        { type: 'Ready', status: 'True', reason: 'Accepted', message: `${workloads} Workload(s) attached` },
        new Date().toISOString(),
      );
      try {
        await this.d.client.patchStatus({ kind: NetworkKind, group: GROUP }, namespace, net.metadata.name, {
          workloads,
          conditions,
        });
      } catch (err) {
        this.written.delete(key);
        this.d.log.warn(
          { network: net.metadata.name, err: apiErrorMessage(err) },
          'network status not written',
        );
      }
    }
  }
}
