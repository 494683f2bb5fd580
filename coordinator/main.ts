#!/usr/bin/env node
/** edge-coordinator: places Workloads and publishes intents. This file only wires parts together. */
import { Command } from 'commander';
import { createLogger } from '../shared/log.js';
import { Coordinator, type CoordinatorConfig } from './coordinator.js';
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
  .action(
    async (flags: {
      kubeconfig?: string;
      nats: string;
      subjectPrefix: string;
      kvReplicas: string;
      lostAfter: string;
      leaderElect: boolean;
      leaseNamespace: string;
      leaseName: string;
      leaseDuration: string;
    }) => {
      const log = createLogger({ name: 'edge-coordinator' });
      const kvReplicas = Number(flags.kvReplicas);
      const lostAfter = Number(flags.lostAfter);
      if (!Number.isInteger(kvReplicas) || kvReplicas < 1) {
        log.fatal(`--kv-replicas: expected a positive integer, got ${flags.kvReplicas}`);
        process.exit(2);
      }
      if (!Number.isFinite(lostAfter) || lostAfter <= 0) {
        log.fatal(`--lost-after: expected a positive number of seconds, got ${flags.lostAfter}`);
        process.exit(2);
      }
      const leaseDuration = Number(flags.leaseDuration);
      if (!Number.isFinite(leaseDuration) || leaseDuration < 2) {
        log.fatal(`--lease-duration: expected at least 2 seconds, got ${flags.leaseDuration}`);
        process.exit(2);
      }
      // client-go's proportions: renew deadline 2/3 of the lease, retry period 2/15 of it.
      const leaseMs = leaseDuration * 1000;
      const config: CoordinatorConfig = {
        ...((flags.kubeconfig ?? process.env.KUBECONFIG)
          ? { kubeconfig: flags.kubeconfig ?? process.env.KUBECONFIG }
          : {}),
        natsServers: flags.nats.split(',').map((s) => s.trim()),
        subjectPrefix: flags.subjectPrefix,
        kvReplicas,
        lostAfterMs: lostAfter * 1000,
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
      // A leader that cannot renew its Lease (API server unreachable, or another took it) stops acting at once
      // and stands for election again, like a fresh process: nothing it held is trusted afterwards.
      let coordinator: Coordinator;
      let stopping = false;
      const run = (): Promise<void> => {
        coordinator = new Coordinator({ ...config, onLostLeadership: () => void rejoin() }, log);
        return coordinator.start();
      };
      const rejoin = async () => {
        log.error('leadership lost; stopping, then standing for election again');
        await coordinator.stop();
        if (!stopping) await run();
      };
      const shutdown = async (signal: string) => {
        stopping = true;
        log.info({ signal }, 'stopping coordinator');
        await coordinator.stop();
        process.exit(0);
      };
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      process.once('SIGINT', () => void shutdown('SIGINT'));
      await run();
    },
  );

await program.parseAsync(process.argv);
