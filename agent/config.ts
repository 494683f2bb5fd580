/**
 * Agent configuration from flags, environment (EDGE_*) and an optional YAML/JSON file, in that order of
 * precedence, validated with zod so a bad value is reported with its name.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { CITY_CODE_LABEL } from '../shared/api/placement.js';
import { agentStateDir } from '../shared/host-paths.js';
import { parseListenAddress } from '../shared/listen.js';
import { formatIssues } from '../shared/nats/messages.js';
import { parseCpuMillis, parseMemoryBytes } from '../shared/resources.js';
import type { AgentConfig } from './agent.js';
import { loadCatalog } from './images/catalog.js';
import { parseYaml } from './yaml.js';

/** The file/flag/environment form, before defaults. */
export const AgentSettings = z
  .object({
    host: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS name: lower-case letters, digits, - and .')
      .optional(),
    location: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a DNS label: lower-case letters, digits and -'),
    provider: z.string().optional(),
    region: z.string().optional(),
    zone: z.string().optional(),
    cityCode: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    nats: z.string().optional(),
    natsCreds: z.string().optional(),
    natsCa: z.string().optional(),
    natsCert: z.string().optional(),
    natsKey: z.string().optional(),
    subjectPrefix: z.string().optional(),
    stateDir: z.string().optional(),
    heartbeatMs: z.coerce.number().int().min(100).optional(),
    publishAddress: z.string().optional(),
    cpu: z.union([z.string(), z.number()]).optional(),
    memory: z.union([z.string(), z.number()]).optional(),
    imageCatalog: z.string().optional(),
    imageCacheDir: z.string().optional(),
    vmAccel: z.enum(['kvm', 'tcg']).optional(),
    vmProbeKernel: z.string().optional(),
    dockerSocket: z.string().optional(),
    overlayAddress: z.ipv4('an IPv4 address, e.g. 192.0.2.10').optional(),
    networkNamespace: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a network namespace name (ip netns)')
      .optional(),
    metricsAddress: z
      .string()
      .refine((a) => {
        try {
          parseListenAddress(a);
          return true;
        } catch {
          return false;
        }
      }, 'host:port, e.g. 127.0.0.1:9465')
      .optional(),
  })
  .strict();
export type AgentSettings = z.infer<typeof AgentSettings>;

const ENV: Record<string, keyof AgentSettings> = {
  EDGE_HOST: 'host',
  EDGE_LOCATION: 'location',
  EDGE_PROVIDER: 'provider',
  EDGE_REGION: 'region',
  EDGE_ZONE: 'zone',
  EDGE_CITY_CODE: 'cityCode',
  EDGE_NATS_URL: 'nats',
  EDGE_NATS_CREDS: 'natsCreds',
  EDGE_NATS_CA: 'natsCa',
  EDGE_NATS_CERT: 'natsCert',
  EDGE_NATS_KEY: 'natsKey',
  EDGE_SUBJECT_PREFIX: 'subjectPrefix',
  EDGE_STATE_DIR: 'stateDir',
  EDGE_HEARTBEAT_MS: 'heartbeatMs',
  EDGE_PUBLISH_ADDRESS: 'publishAddress',
  EDGE_CPU: 'cpu',
  EDGE_MEMORY: 'memory',
  EDGE_IMAGE_CATALOG: 'imageCatalog',
  EDGE_IMAGE_CACHE_DIR: 'imageCacheDir',
  EDGE_VM_ACCEL: 'vmAccel',
  EDGE_VM_PROBE_KERNEL: 'vmProbeKernel',
  EDGE_METRICS_ADDRESS: 'metricsAddress',
  EDGE_DOCKER_SOCKET: 'dockerSocket',
  EDGE_OVERLAY_ADDRESS: 'overlayAddress',
  EDGE_NETWORK_NAMESPACE: 'networkNamespace',
};

/** `a=b,c=d` → record. */
export function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`labels: "${part}" is not key=value`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** Merges file, environment and flags, validates, and applies defaults. */
export function loadAgentConfig(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  const file = typeof flags.config === 'string' ? (parseYaml(readFileSync(flags.config, 'utf8')) ?? {}) : {};
  const fromEnv: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(ENV)) if (env[name] !== undefined) fromEnv[field] = env[name];
  if (env.EDGE_LABELS) fromEnv.labels = parseLabels(env.EDGE_LABELS);
  const fromFlags: Record<string, unknown> = {};
  for (const field of Object.values(ENV)) if (flags[field] !== undefined) fromFlags[field] = flags[field];
  if (typeof flags.labels === 'string') fromFlags.labels = parseLabels(flags.labels);
  const merged = { ...file, ...fromEnv, ...fromFlags };
  const parsed = AgentSettings.safeParse(merged);
  if (!parsed.success) throw new Error(`invalid agent configuration: ${formatIssues(parsed.error)}`);
  const s = parsed.data;
  // A catalog that does not load is a configuration error now, not a VM failure later.
  if (s.imageCatalog) loadCatalog(s.imageCatalog);
  const host = s.host ?? hostname().toLowerCase();
  const labels: Record<string, string> = { ...(s.labels ?? {}) };
  if (s.provider) labels.provider = s.provider;
  if (s.region) labels['topology.kubernetes.io/region'] = s.region;
  if (s.zone) labels['topology.kubernetes.io/zone'] = s.zone;
  if (s.cityCode) {
    labels['edgeplane.dev/city-code'] = s.cityCode;
    // Datum's key: v1alpha placements select hosts by it (coordinator/conversion/workload.ts).
    labels[CITY_CODE_LABEL] = s.cityCode;
  }
  return {
    host,
    location: s.location,
    labels,
    natsServers: (s.nats ?? 'nats://127.0.0.1:4222').split(',').map((u) => u.trim()),
    ...(s.natsCreds ? { natsCreds: s.natsCreds } : {}),
    ...(s.natsCa ? { natsCa: s.natsCa } : {}),
    ...(s.natsCert ? { natsCert: s.natsCert } : {}),
    ...(s.natsKey ? { natsKey: s.natsKey } : {}),
    subjectPrefix: s.subjectPrefix ?? 'edge',
    stateDir: s.stateDir ?? agentStateDir(host),
    heartbeatMs: s.heartbeatMs ?? 5000,
    publishAddress: s.publishAddress ?? '0.0.0.0',
    ...(s.imageCatalog ? { imageCatalog: s.imageCatalog } : {}),
    ...(s.imageCacheDir ? { imageCacheDir: s.imageCacheDir } : {}),
    ...(s.vmAccel ? { vmAccel: s.vmAccel } : {}),
    ...(s.vmProbeKernel ? { vmProbeKernel: s.vmProbeKernel } : {}),
    ...(s.metricsAddress ? { metricsAddress: s.metricsAddress } : {}),
    ...(s.dockerSocket ? { dockerSocket: s.dockerSocket } : {}),
    ...(s.overlayAddress ? { overlayAddress: s.overlayAddress } : {}),
    ...(s.networkNamespace ? { networkNamespace: s.networkNamespace } : {}),
    allocatableOverride: {
      ...(s.cpu !== undefined ? { cpuMillis: parseCpuMillis(s.cpu) } : {}),
      ...(s.memory !== undefined ? { memoryBytes: parseMemoryBytes(s.memory) } : {}),
    },
  };
}
