#!/usr/bin/env node
/** edge-coordinator: places Workloads and publishes intents. This file only parses flags, builds and handles signals. */
import { Command } from 'commander';
import { runDaemon } from '../shared/daemon.js';
import { createLogger } from '../shared/log.js';
import { ConfigError, type CoordinatorFlags, loadCoordinatorConfig } from './config.js';
import { Coordinator } from './coordinator.js';
import { DEFAULT_LEADER_ELECTION } from './kube/leader.js';

const program = new Command('edge-coordinator')
  .description(
    'Edgeplane coordinator: places Workloads on edge hosts and reports their status to Kubernetes.',
  )
  .version('0.1.0')
  .option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
  .option(
    '--nats <urls>',
    'NATS server URLs, comma-separated [EDGE_NATS_URL]',
    process.env.EDGE_NATS_URL ?? 'nats://127.0.0.1:4222',
  )
  .option(
    '--subject-prefix <prefix>',
    'NATS subject prefix [EDGE_SUBJECT_PREFIX]',
    process.env.EDGE_SUBJECT_PREFIX ?? 'edge',
  )
  .option(
    '--kv-replicas <n>',
    'replicas of the intents bucket (3 on a NATS cluster)',
    process.env.EDGE_KV_REPLICAS ?? '1',
  )
  .option(
    '--lost-after <seconds>',
    'seconds without a heartbeat before a host is lost and its instances replaced',
    process.env.EDGE_LOST_AFTER ?? '30',
  )
  .option(
    '--enroll-keys <file>',
    'operator mode: account and operator signing keys (edgectl nats init); turns host enrollment on [EDGE_ENROLL_KEYS]',
    process.env.EDGE_ENROLL_KEYS,
  )
  .option(
    '--nats-sys-creds <file>',
    'operator mode: system account credentials, to push revocations to the resolver [EDGE_NATS_SYS_CREDS]',
    process.env.EDGE_NATS_SYS_CREDS,
  )
  .option(
    '--max-heartbeat <seconds>',
    'largest heartbeat interval a host may claim; reports claiming more are refused',
    process.env.EDGE_MAX_HEARTBEAT ?? '30',
  )
  .option(
    '--max-lost-share <fraction>',
    'when more than this share of the hosts is silent at once, declare none Lost (the fault is likely ours) [EDGE_MAX_LOST_SHARE]',
    process.env.EDGE_MAX_LOST_SHARE ?? '0.55',
  )
  .option(
    '--underlay-mtu <bytes>',
    'MTU of the links between hosts; Networks get at most this less 50 bytes of VXLAN [EDGE_UNDERLAY_MTU]',
    process.env.EDGE_UNDERLAY_MTU ?? '1500',
  )
  .option(
    '--require-overlay',
    'place instances with Network attachments only on hosts that report an overlay address (the default)',
  )
  .option(
    '--no-require-overlay',
    'also place instances with Network attachments on hosts that report no overlay address (they get no Network there)',
  )
  .option(
    '--intent-resync <seconds>',
    'how often the leader checks that the intents bucket holds what it wrote, and restores it if not [EDGE_INTENT_RESYNC]',
    process.env.EDGE_INTENT_RESYNC ?? '5',
  )
  .option(
    '--autoscale-sync-period <seconds>',
    'how often the autoscaler looks at each autoscaled Workload (HPA: --horizontal-pod-autoscaler-sync-period) [EDGE_AUTOSCALE_SYNC_PERIOD]',
    process.env.EDGE_AUTOSCALE_SYNC_PERIOD ?? '15',
  )
  .option(
    '--autoscale-downscale-stabilization <seconds>',
    'scale-down stabilisation window of Workloads that set none in spec.autoscaling.behavior [EDGE_AUTOSCALE_DOWNSCALE_STABILIZATION]',
    process.env.EDGE_AUTOSCALE_DOWNSCALE_STABILIZATION ?? '300',
  )
  .option(
    '--instances-api <mode>',
    'where Instances live: crd (custom objects in etcd) or aggregated (the JetStream KV, served by this coordinator through an APIService) [EDGE_INSTANCES_API]',
    process.env.EDGE_INSTANCES_API ?? 'crd',
  )
  .option(
    '--instances-api-address <host:port>',
    'aggregated mode: where the instances API listens [EDGE_INSTANCES_API_ADDRESS]',
    process.env.EDGE_INSTANCES_API_ADDRESS ?? '0.0.0.0:6443',
  )
  .option(
    '--instances-api-cert <file>',
    'aggregated mode: serving certificate (PEM) [EDGE_INSTANCES_API_CERT]',
    process.env.EDGE_INSTANCES_API_CERT,
  )
  .option(
    '--instances-api-key <file>',
    'aggregated mode: serving key (PEM) [EDGE_INSTANCES_API_KEY]',
    process.env.EDGE_INSTANCES_API_KEY,
  )
  .option('--no-leader-elect', 'act without a Lease (only when a single coordinator runs)')
  .option(
    '--lease-namespace <ns>',
    'namespace of the leader-election Lease',
    DEFAULT_LEADER_ELECTION.namespace,
  )
  .option('--lease-name <name>', 'name of the leader-election Lease', DEFAULT_LEADER_ELECTION.name)
  .option(
    '--lease-duration <seconds>',
    'seconds a standby waits for an unrenewed Lease before taking over',
    '15',
  )
  .option(
    '--metrics-address <host:port>',
    'serve /metrics, /healthz, /readyz and the dashboard here; "" turns it off [EDGE_METRICS_ADDRESS]',
    process.env.EDGE_METRICS_ADDRESS ?? '0.0.0.0:9464',
  )
  .option(
    '--webhook-address <host:port>',
    'serve the conversion webhook of compute.datumapis.com/v1alpha here (HTTPS) and point the CRDs at it; "" turns it off [EDGE_WEBHOOK_ADDRESS]',
    process.env.EDGE_WEBHOOK_ADDRESS ?? '',
  )
  .option(
    '--webhook-url <url>',
    'the https URL kube-apiserver calls (default: this address when it is loopback, else the Service the CRDs name) [EDGE_WEBHOOK_URL]',
    process.env.EDGE_WEBHOOK_URL,
  )
  .option(
    '--webhook-cert-dir <dir>',
    "the webhook's tls.crt, tls.key and ca.crt; made there when missing [EDGE_WEBHOOK_CERT_DIR]",
    process.env.EDGE_WEBHOOK_CERT_DIR,
  )
  .option(
    '--webhook-cert-secret <namespace/name>',
    "a Secret holding the webhook's tls.crt, tls.key and ca.crt, made when missing (all replicas serve it) [EDGE_WEBHOOK_CERT_SECRET]",
    process.env.EDGE_WEBHOOK_CERT_SECRET,
  )
  .action((flags: CoordinatorFlags) =>
    runDaemon({
      log: createLogger({ name: 'edge-coordinator' }),
      load: () => loadCoordinatorConfig(flags),
      isConfigError: (err) => err instanceof ConfigError,
      build: (config, log) => new Coordinator(config, log),
      stopping: 'stopping coordinator',
    }),
  );

await program.parseAsync(process.argv);
