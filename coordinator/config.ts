/**
 * The coordinator's configuration from its command-line flags: every flag is checked here, and a bad one is
 * a ConfigError naming the flag, before anything starts. `main.ts` only parses the flags (with their
 * environment-variable defaults) and hands them over.
 */

import { existsSync } from 'node:fs';
import { parseListenAddress } from '../shared/listen.js';
import type { WebhookConfig } from './conversion/server.js';
import type { EnrollmentSettings } from './enroll/wire.js';
import type { LeaderElectionOptions } from './kube/leader.js';

/** Coordinator configuration. */
export interface CoordinatorConfig {
  /** Path of the kubeconfig; the default loading rules apply when absent. */
  kubeconfig?: string;
  /** NATS server URLs. */
  natsServers: string[];
  /** Subject prefix. */
  subjectPrefix: string;
  /** Replicas of the intents bucket (3 on a NATS cluster). */
  kvReplicas: number;
  /** Milliseconds without a report before a host is lost and its instances replaced. */
  lostAfterMs: number;
  /**
   * Leader election on a Lease; when absent this coordinator acts alone (only ever run one then). A leader
   * that loses the Lease stops everything it built and stands for election again (see Coordinator).
   */
  leaderElection?: LeaderElectionOptions;
  /** Host enrollment (operator mode): hosts join with tokens and their reports are bound to their credentials. */
  enrollment?: EnrollmentSettings;
  /** Largest heartbeat interval a host may claim (ms); reports claiming more are refused. */
  maxHeartbeatMs: number;
  /** Share (0–1) of hosts silent at once above which none is declared Lost (hosts/liveness.ts). */
  maxLostShare: number;
  /** Where /metrics, /healthz, /readyz and the dashboard are served (`host:port`); absent: nowhere. */
  metricsAddress?: string;
  /** MTU of the links between hosts; a Network's MTU is at most this less 50 bytes of VXLAN. */
  underlayMtu: number;
  /** Place instances with Network attachments only on hosts that report an overlay address. */
  requireOverlay: boolean;
  /** How often the leader checks the intents bucket holds what it wrote and restores it (ms; default 5000). */
  intentResyncMs?: number;
  /** Time between two autoscaler passes of a Workload (ms; HPA's sync period, default 15000). */
  autoscaleSyncMs: number;
  /** Scale-down stabilisation window of Workloads that set none (seconds; default 300). */
  autoscaleDownWindowSeconds: number;
  /** The conversion webhook of compute.datumapis.com/v1alpha (coordinator/conversion/); absent: not served. */
  webhook?: WebhookConfig;
  /**
   * Where Instances live: `crd` (custom objects in etcd, through kube-apiserver) or `aggregated` (the JetStream KV,
   * served by this coordinator to kube-apiserver through an APIService; coordinator/apiserver/).
   */
  instancesApi: InstancesApiConfig;
}

/** `--instances-api` and its serving flags. */
export type InstancesApiConfig =
  | { mode: 'crd' }
  | {
      mode: 'aggregated';
      /** Where the aggregated API listens (`host:port`). */
      address: string;
      /** Serving certificate and key (PEM files). */
      certFile: string;
      keyFile: string;
    };

/** The flags as the command line gives them: strings, before any check. */
export interface CoordinatorFlags {
  /** `--kubeconfig`. */
  kubeconfig?: string | undefined;
  /** `--nats`: comma-separated server URLs. */
  nats: string;
  /** `--subject-prefix`. */
  subjectPrefix: string;
  /** `--kv-replicas`: a positive integer. */
  kvReplicas: string;
  /** `--lost-after`: seconds, a positive number. */
  lostAfter: string;
  /** `--[no-]leader-elect`. */
  leaderElect: boolean;
  /** `--lease-namespace`. */
  leaseNamespace: string;
  /** `--lease-name`. */
  leaseName: string;
  /** `--lease-duration`: seconds, at least 2. */
  leaseDuration: string;
  /** `--enroll-keys`: operator mode, the account and operator signing keys (with `--nats-sys-creds`). */
  enrollKeys?: string | undefined;
  /** `--nats-sys-creds`: operator mode, system account credentials. */
  natsSysCreds?: string | undefined;
  /** `--max-heartbeat`: seconds, a positive number (default 30). */
  maxHeartbeat?: string | undefined;
  /** `--max-lost-share`: a fraction in (0, 1] (default 0.55). */
  maxLostShare?: string | undefined;
  /** `--metrics-address`: host:port, or empty for none. */
  metricsAddress?: string | undefined;
  /** `--underlay-mtu`: bytes, 1330–9216 (default 1500). */
  underlayMtu?: string | undefined;
  /** `--[no-]require-overlay` (default on). */
  requireOverlay?: boolean | undefined;
  /** `--intent-resync`: seconds, a positive number (default 5). */
  intentResync?: string | undefined;
  /** `--autoscale-sync-period`: seconds, a positive number (default 15). */
  autoscaleSyncPeriod?: string | undefined;
  /** `--autoscale-downscale-stabilization`: seconds, 0 to 3600 (default 300). */
  autoscaleDownscaleStabilization?: string | undefined;
  /** `--webhook-address`: host:port of the conversion webhook, or empty for none. */
  webhookAddress?: string | undefined;
  /** `--webhook-url`: the https URL kube-apiserver calls. */
  webhookUrl?: string | undefined;
  /** `--webhook-cert-dir`: directory of tls.crt, tls.key, ca.crt. */
  webhookCertDir?: string | undefined;
  /** `--webhook-cert-secret`: namespace/name of a Secret holding them. */
  webhookCertSecret?: string | undefined;
  /** `--instances-api`: crd (default) or aggregated. */
  instancesApi?: string | undefined;
  /** `--instances-api-address`: host:port (default 0.0.0.0:6443). */
  instancesApiAddress?: string | undefined;
  /** `--instances-api-cert` / `--instances-api-key`: the serving certificate (aggregated mode). */
  instancesApiCert?: string | undefined;
  instancesApiKey?: string | undefined;
}

/** A flag with a value the coordinator cannot run with; the message names the flag. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Checks the flags and turns them into a CoordinatorConfig; throws ConfigError naming the first bad flag. */
export function loadCoordinatorConfig(
  flags: CoordinatorFlags,
  env: Record<string, string | undefined> = process.env,
): CoordinatorConfig {
  const kvReplicas = Number(flags.kvReplicas);
  if (!Number.isInteger(kvReplicas) || kvReplicas < 1)
    throw new ConfigError(`--kv-replicas: expected a positive integer, got ${flags.kvReplicas}`);
  const lostAfter = Number(flags.lostAfter);
  if (!Number.isFinite(lostAfter) || lostAfter <= 0)
    throw new ConfigError(`--lost-after: expected a positive number of seconds, got ${flags.lostAfter}`);
  const leaseDuration = Number(flags.leaseDuration);
  if (!Number.isFinite(leaseDuration) || leaseDuration < 2)
    throw new ConfigError(`--lease-duration: expected at least 2 seconds, got ${flags.leaseDuration}`);
  const natsServers = flags.nats
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (!natsServers.length) throw new ConfigError(`--nats: expected server URLs, got "${flags.nats}"`);
  const maxHeartbeat = Number(flags.maxHeartbeat ?? '30');
  if (!Number.isFinite(maxHeartbeat) || maxHeartbeat <= 0)
    throw new ConfigError(
      `--max-heartbeat: expected a positive number of seconds, got ${flags.maxHeartbeat}`,
    );
  const maxLostShare = Number(flags.maxLostShare ?? '0.55');
  if (!(maxLostShare > 0 && maxLostShare <= 1))
    throw new ConfigError(`--max-lost-share: expected a fraction in (0, 1], got ${flags.maxLostShare}`);
  const underlayMtu = Number(flags.underlayMtu ?? '1500');
  if (!Number.isInteger(underlayMtu) || underlayMtu < 1330 || underlayMtu > 9216)
    throw new ConfigError(`--underlay-mtu: expected bytes from 1330 to 9216, got ${flags.underlayMtu}`);
  const intentResync = Number(flags.intentResync ?? '5');
  if (!Number.isFinite(intentResync) || intentResync <= 0)
    throw new ConfigError(
      `--intent-resync: expected a positive number of seconds, got ${flags.intentResync}`,
    );
  const autoscaleSync = Number(flags.autoscaleSyncPeriod ?? '15');
  if (!Number.isFinite(autoscaleSync) || autoscaleSync <= 0)
    throw new ConfigError(
      `--autoscale-sync-period: expected a positive number of seconds, got ${flags.autoscaleSyncPeriod}`,
    );
  const downWindow = Number(flags.autoscaleDownscaleStabilization ?? '300');
  if (!Number.isInteger(downWindow) || downWindow < 0 || downWindow > 3600)
    throw new ConfigError(
      `--autoscale-downscale-stabilization: expected whole seconds from 0 to 3600, got ${flags.autoscaleDownscaleStabilization}`,
    );
  const instancesApi = instancesApiConfig(flags);
  if (Boolean(flags.enrollKeys) !== Boolean(flags.natsSysCreds))
    throw new ConfigError('--enroll-keys and --nats-sys-creds go together (operator mode)');
  const kubeconfig = flags.kubeconfig ?? env.KUBECONFIG;
  const metricsAddress = flags.metricsAddress?.trim();
  if (metricsAddress) {
    try {
      parseListenAddress(metricsAddress, '--metrics-address');
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  const webhookAddress = flags.webhookAddress?.trim();
  let webhook: WebhookConfig | undefined;
  if (webhookAddress) {
    try {
      parseListenAddress(webhookAddress, '--webhook-address');
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    if (flags.webhookUrl && !/^https:\/\/[^/]+\/\S*$/.test(flags.webhookUrl))
      throw new ConfigError(`--webhook-url: expected an https:// URL with a path, got ${flags.webhookUrl}`);
    if (flags.webhookCertSecret && !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(flags.webhookCertSecret))
      throw new ConfigError(`--webhook-cert-secret: expected namespace/name, got ${flags.webhookCertSecret}`);
    webhook = {
      address: webhookAddress,
      ...(flags.webhookUrl ? { url: flags.webhookUrl } : {}),
      ...(flags.webhookCertDir ? { certDir: flags.webhookCertDir } : {}),
      ...(flags.webhookCertSecret ? { certSecret: flags.webhookCertSecret } : {}),
    };
  } else if (flags.webhookUrl || flags.webhookCertDir || flags.webhookCertSecret)
    throw new ConfigError(
      '--webhook-url, --webhook-cert-dir and --webhook-cert-secret need --webhook-address',
    );
  // client-go's proportions: renew deadline 2/3 of the lease, retry period 2/15 of it.
  const leaseMs = leaseDuration * 1000;
  return {
    ...(kubeconfig ? { kubeconfig } : {}),
    natsServers,
    subjectPrefix: flags.subjectPrefix,
    kvReplicas,
    lostAfterMs: lostAfter * 1000,
    maxHeartbeatMs: maxHeartbeat * 1000,
    maxLostShare,
    underlayMtu,
    requireOverlay: flags.requireOverlay !== false,
    intentResyncMs: intentResync * 1000,
    autoscaleSyncMs: autoscaleSync * 1000,
    autoscaleDownWindowSeconds: downWindow,
    instancesApi,
    ...(flags.enrollKeys && flags.natsSysCreds
      ? { enrollment: { keysFile: flags.enrollKeys, sysCreds: flags.natsSysCreds } }
      : {}),
    ...(metricsAddress ? { metricsAddress } : {}),
    ...(webhook ? { webhook } : {}),
    ...(flags.leaderElect
      ? {
          leaderElection: {
            namespace: flags.leaseNamespace,
            name: flags.leaseName,
            leaseDurationMs: leaseMs,
            renewDeadlineMs: Math.round((leaseMs * 2) / 3),
            retryPeriodMs: Math.max(500, Math.round((leaseMs * 2) / 15)),
          },
        }
      : {}),
  };
}

/** Checks `--instances-api` and, in aggregated mode, its address and serving certificate. */
function instancesApiConfig(flags: CoordinatorFlags): InstancesApiConfig {
  const mode = flags.instancesApi ?? 'crd';
  if (mode === 'crd') return { mode };
  if (mode !== 'aggregated')
    throw new ConfigError(`--instances-api: expected crd or aggregated, got ${JSON.stringify(mode)}`);
  const address = (flags.instancesApiAddress ?? '0.0.0.0:6443').trim();
  try {
    parseListenAddress(address, '--instances-api-address');
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (!flags.instancesApiCert || !flags.instancesApiKey)
    throw new ConfigError(
      '--instances-api=aggregated needs --instances-api-cert and --instances-api-key (the serving certificate kube-apiserver calls)',
    );
  for (const [flag, file] of [
    ['--instances-api-cert', flags.instancesApiCert],
    ['--instances-api-key', flags.instancesApiKey],
  ] as const)
    if (!existsSync(file)) throw new ConfigError(`${flag}: no such file ${file}`);
  return { mode, address, certFile: flags.instancesApiCert, keyFile: flags.instancesApiKey };
}
