/**
 * The objects tests build, one way each: deployment intents (what the coordinator writes into the KV bucket and
 * the agent runs), host reports (what an agent publishes) and Workload manifests (what a user applies with kubectl). Defaults are what most tests want;
 * a test names only what it is about.
 */
import { stringify } from 'yaml';
import type { ResourceAmounts } from '../../shared/api/index.js';
import type { InstanceTemplateSpec } from '../../shared/api/template.js';
import {
  type DeploymentIntent,
  type HostReport,
  type IntentMarker,
  MESSAGE_VERSION,
} from '../../shared/nats/messages.js';
import { templateHash } from '../../shared/template-hash.js';

const MiB = 1024 * 1024;

/** What {@link testIntent} takes; every field of the intent itself may be given too and wins. */
export interface TestIntentOptions extends Partial<DeploymentIntent> {
  /** Workload name. */
  workload: string;
  /** One instance per entry, on that host: instance `i` is `<workload>-<location>-<i>`, ordinal `i`. */
  hosts: string[];
  /** Location (default `loc`). */
  location?: string;
  /** Namespace (default `ns`). */
  namespace?: string;
  /** What the instances run (default `nginx:latest`). */
  template?: InstanceTemplateSpec;
  /** Per-instance limits (default 200m CPU, 64Mi memory). */
  limits?: ResourceAmounts;
  /** Default: the coordinator's own {@link templateHash} of template and limits. */
  templateHash?: string;
}

/** A deployment intent as the coordinator writes it. */
export function testIntent(opts: TestIntentOptions): DeploymentIntent {
  const { workload, hosts, location = 'loc', namespace = 'ns', ...rest } = opts;
  const template = opts.template ?? { image: 'nginx:latest' };
  const limits = opts.limits ?? { cpuMillis: 200, memoryBytes: 64 * MiB };
  return {
    v: MESSAGE_VERSION,
    location,
    namespace,
    workload,
    templateHash: templateHash(template, limits),
    template,
    limits,
    instances: hosts.map((host, i) => ({
      name: `${workload}-${location}-${i}`,
      host,
      ordinal: i,
      labels: {},
    })),
    updatedAt: new Date().toISOString(),
    ...rest,
  };
}

/**
 * A location's intents marker for tests that write intents into the bucket themselves (without IntentStore):
 * epoch 0, listing no key, so the agent trusts the bucket and a key deleted from it is removed, as before
 * markers existed (agent/intent-view.ts).
 */
export function testMarker(over: Partial<IntentMarker> = {}): IntentMarker {
  return {
    v: MESSAGE_VERSION,
    installation: 'test',
    epoch: 0,
    writer: 'test',
    generation: 0,
    keys: [],
    updatedAt: new Date().toISOString(),
    ...over,
  };
}

/** A host's report as an agent publishes it: 1 CPU, 1 GiB, no runtimes, no instances; `over` wins. */
export function testHostReport(host: string, location: string, over: Partial<HostReport> = {}): HostReport {
  const now = new Date().toISOString();
  return {
    v: MESSAGE_VERSION,
    host,
    location,
    labels: {},
    capacity: { cpuMillis: 1000, memoryBytes: 2 ** 30 },
    allocatable: { cpuMillis: 1000, memoryBytes: 2 ** 30 },
    runtimes: [],
    agentVersion: 'test',
    startedAt: now,
    seq: 1,
    heartbeatMs: 1000,
    instances: [],
    time: now,
    ...over,
  };
}

/** What {@link nginxWorkload} takes. */
export interface NginxWorkloadOptions {
  /** Workload name. */
  name: string;
  /** Replicas. */
  replicas: number;
  /** API group (default compute.miloapis.com; the Workload docs' compute.datumapis.com works the same). */
  group?: 'compute.miloapis.com' | 'compute.datumapis.com';
  /** Template labels. */
  labels?: Record<string, string>;
  /** Container ports. */
  ports?: Array<{ name?: string; containerPort: number }>;
  /** Container environment (Kubernetes `env` entries). */
  env?: unknown[];
  /** Requested memory (default 64Mi); the CPU request is 100m. */
  memory?: string;
}

/** A Workload manifest (YAML, for `kubectl apply -f -`) of one `nginx` container of nginx:latest. */
export function nginxWorkload(opts: NginxWorkloadOptions): string {
  const container = {
    name: 'nginx',
    image: 'nginx:latest',
    ...(opts.ports ? { ports: opts.ports } : {}),
    ...(opts.env ? { env: opts.env } : {}),
    resources: { requests: { cpu: '100m', memory: opts.memory ?? '64Mi' } },
  };
  return stringify({
    apiVersion: `${opts.group ?? 'compute.miloapis.com'}/v1alpha1`,
    kind: 'Workload',
    metadata: { name: opts.name },
    spec: {
      replicas: opts.replicas,
      template: {
        ...(opts.labels ? { metadata: { labels: opts.labels } } : {}),
        spec: { containers: [container] },
      },
    },
  });
}
