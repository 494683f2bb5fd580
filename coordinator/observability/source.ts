/**
 * What the coordinator's HTTP side (metrics, health, dashboard) reads from a running coordinator. Plain
 * structural types, so this folder depends on no controller: `coordinator.ts` hands one {@link FleetSource}
 * over once its caches have synced, and takes it back when it stops (a coordinator that loses the Lease is
 * replaced by a fresh one; the HTTP server outlives it).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ResourceAmounts } from '../../shared/api/index.js';
import type { Subjects } from '../../shared/nats/subjects.js';
import type { HostEntry, HostState } from '../hosts/registry.js';

/** The host registry as read here. */
export interface HostSource {
  all(): HostEntry[];
  get(host: string): HostEntry | undefined;
  counts(): Record<HostState, number>;
  /** Reports accepted. */
  accepted: number;
  /** Reports that failed to parse or named another host than their subject. */
  malformed: number;
  /** Reports refused, by reason (e.g. an unenrolled host), when the registry counts them. */
  refused?: Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  /** Losses the brake held back: most hosts were silent at once (hosts/liveness.ts). */
  lossesSuppressed?: number;
  /** Times every host's silence was counted afresh (our NATS link came back, or our check loop stalled). */
  graceRestarts?: number;
}

/** An Instance object, as much as is shown. */
export interface InstanceSourceObject {
  metadata: { name?: string; namespace?: string };
  spec: { host: string; location: string; workloadRef: { name: string } };
  status?: { phase?: string; ready?: boolean; message?: string } | undefined;
}

/** A Workload object, as much as is shown. */
export interface WorkloadSourceObject {
  metadata: { name?: string; namespace?: string };
  spec?: unknown;
  status?: { phase?: string; replicas?: number; readyReplicas?: number } | undefined;
}

/** Everything a running (leading) coordinator offers to metrics, health and the dashboard. */
export interface FleetSource {
  /** Hosts as reported. */
  hosts: HostSource;
  /** What the Instances placed on a host request. */
  allocatedOf(host: string): { allocated: ResourceAmounts; instances: number };
  /** Every Instance object. */
  instances(): InstanceSourceObject[];
  /** Every Workload object, with the API group it was read from. */
  workloads(): Array<{ group: string; object: WorkloadSourceObject }>;
  /** The Workload work queue: its depth, and a hook told of every pass. */
  queue: { readonly length: number; onPass: ((seconds: number, ok: boolean) => void) | undefined };
  /** Intent store counters. */
  intents: { readonly writes: number; readonly conflicts: number };
  /** Feed messages published. */
  feedPublished?: () => number;
  /** The coordinator's NATS connection (the dashboard follows the feed on it). */
  nc: NatsConnection;
  subjects: Subjects;
  /** Whether every Kubernetes cache has listed and is watching. */
  cachesSynced(): boolean;
}
