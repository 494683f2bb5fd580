/**
 * Network status: whether the Network can be honoured (Ready, with the refusal naming the field), its segment
 * id claimed in IPAM (IPAMAllocated), its effective range and MTU, the Workloads attached and the address
 * blocks each location uses. Claiming the segment id here gives every Network one as soon as it exists.
 * A status equal to the one last written is not written again; syncs of a namespace run one at a time.
 */
import {
  type Condition,
  GROUP,
  NetworkKind,
  type NetworkStatus,
  WorkloadSpec,
} from '../../shared/api/index.js';
import type { Logger } from '../../shared/log.js';
import { apiErrorMessage, type KubeClient } from '../kube/client.js';
import type { ResourceCache } from '../kube/informer.js';
import { formatCidr } from '../networks/cidr.js';
import { DEFAULT_UNDERLAY_MTU, effectiveNetwork, type NetworkSettings } from '../networks/config.js';
import type { IpamStore } from '../networks/store.js';
import { NO_LOOKUP, resolveReferences } from './references.js';
import { setCondition } from './status.js';
import type { NetworkObject, WorkloadObject } from './types.js';

export class NetworkStatusWriter {
  /** Last status written per `<namespace>/<network>` (JSON). */
  private written = new Map<string, string>();
  /** The sync under way per namespace. */
  private running = new Map<string, Promise<void>>();
  /**
   * The one sync queued behind it per namespace, shared by every caller meanwhile: each Instance change asks for a
   * sync, and chaining one per call grew without bound while Instances were created (a closure and a full pass over
   * the namespace's Workloads per Instance).
   */
  private queued = new Map<string, Promise<void>>();

  constructor(
    private readonly d: {
      client: KubeClient;
      log: Logger;
      workloads: Map<string, ResourceCache<WorkloadObject>>;
      networks: ResourceCache<NetworkObject>;
      /** The IPAM claims (segment ids, blocks); absent: no segment or blocks in status. */
      ipam?: IpamStore;
      /** The underlay MTU. */
      settings?: NetworkSettings;
    },
  ) {}

  /** Brings the status of every Network of a namespace up to date (after the sync under way, if any). */
  sync(namespace: string): Promise<void> {
    const queued = this.queued.get(namespace);
    if (queued) return queued;
    const running = this.running.get(namespace);
    if (!running) return this.start(namespace);
    const next = running
      .catch(() => undefined)
      .then(() => {
        this.queued.delete(namespace);
        return this.start(namespace);
      });
    this.queued.set(namespace, next);
    return next;
  }

  private start(namespace: string): Promise<void> {
    const run = this.syncNow(namespace);
    this.running.set(namespace, run);
    run
      .finally(() => {
        if (this.running.get(namespace) === run) this.running.delete(namespace);
      })
      .catch(() => undefined);
    return run;
  }

  private async syncNow(namespace: string): Promise<void> {
    // Most namespaces have no Network: nothing to count the Workloads for.
    if (this.d.networks.list(namespace).length === 0) return;
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
    const now = new Date().toISOString();
    for (const net of this.d.networks.list(namespace)) {
      const key = `${namespace}/${net.metadata.name}`;
      const prev = net.status as NetworkStatus | undefined;
      try {
        const status = await this.statusOf(key, net, counts.get(net.metadata.name) ?? 0, prev, now);
        const text = JSON.stringify(status);
        if (this.written.get(key) === text || JSON.stringify(prev ?? {}) === text) continue;
        await this.d.client.patchStatus(
          { kind: NetworkKind, group: GROUP },
          namespace,
          net.metadata.name,
          status,
        );
        this.written.set(key, text);
      } catch (err) {
        this.written.delete(key);
        this.d.log.warn(
          { network: net.metadata.name, err: apiErrorMessage(err) },
          'network status not written',
        );
      }
    }
  }

  /** The status of one Network. */
  private async statusOf(
    key: string,
    net: NetworkObject,
    workloads: number,
    prev: NetworkStatus | undefined,
    now: string,
  ): Promise<NetworkStatus> {
    const eff = effectiveNetwork(
      net.spec ?? undefined,
      this.d.settings ?? { underlayMtu: DEFAULT_UNDERLAY_MTU },
    );
    let conditions: Condition[] | undefined = prev?.conditions;
    if ('refused' in eff) {
      conditions = setCondition(
        conditions,
        { type: 'Ready', status: 'False', reason: eff.refused.reason, message: eff.refused.message },
        now,
      );
      conditions = setCondition(
        conditions,
        {
          type: 'IPAMAllocated',
          status: 'False',
          reason: 'NotReady',
          message: 'the spec cannot be honoured',
        },
        now,
      );
      return { workloads, conditions };
    }
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'True', reason: 'Accepted', message: `${workloads} Workload(s) attached` },
      now,
    );
    const status: NetworkStatus = {
      workloads,
      mtu: eff.network.mtu,
      ipv4Range: formatCidr(eff.network.range),
    };
    if (!this.d.ipam) return { ...status, conditions };
    const segment = await this.d.ipam.ensureSegment(key);
    const locations = this.d.ipam.usage(key);
    const addresses = locations.reduce((n, l) => n + l.addresses, 0);
    conditions = setCondition(
      conditions,
      {
        type: 'IPAMAllocated',
        status: 'True',
        reason: 'SegmentAllocated',
        message: `segment ${segment}; ${addresses} address(es) in use`,
      },
      now,
    );
    return { ...status, segment, locations, conditions };
  }
}
