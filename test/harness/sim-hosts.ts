/**
 * Simulated hosts for tests that need placed instances but no runtime: each host heartbeats a HostReport over
 * real NATS and reports Running and ready whatever the intents place on it, as an agent would (the same model as
 * bench/control-plane.ts). Stopping one makes it silent.
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../shared/nats/connect.js';
import {
  DeploymentIntent,
  decode,
  encode,
  type HostReport,
  MESSAGE_VERSION,
} from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';

/** Running simulated hosts. */
export interface SimHosts {
  /** Host names. */
  hosts: string[];
  /** Stops every heartbeat and the intents watch, closes the connection. */
  stop(): Promise<void>;
}

/** Starts `locations.length` hosts, one per location (`sim-<location>`), heartbeating every `heartbeatMs`. */
export async function startSimHosts(
  natsUrl: string,
  locations: string[],
  heartbeatMs = 1000,
): Promise<SimHosts> {
  const subjects = new Subjects();
  const nc: NatsConnection = await connectNats({ servers: [natsUrl], name: 'sim-hosts' });
  const byKey = new Map<string, DeploymentIntent>();
  let stopped = false;
  void (async () => {
    for (; !stopped; ) {
      try {
        const kv = await new Kvm(nc).open(subjects.intentsBucket);
        await kv.status();
        for await (const e of await kv.watch({ key: '>' })) {
          if (e.key.endsWith('._marker') || e.key === '_fence') continue;
          if (e.operation === 'PUT') {
            try {
              byKey.set(e.key, decode(DeploymentIntent, e.value));
            } catch {}
          } else byKey.delete(e.key);
        }
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  })();
  const startedAt = new Date().toISOString();
  const hosts = locations.map((l) => `sim-${l}`);
  let seq = 0;
  const report = (host: string, location: string): HostReport => ({
    v: MESSAGE_VERSION,
    host,
    location,
    labels: {
      'kubernetes.io/hostname': host,
      'topology.kubernetes.io/region': location.replace(/-?[a-z]$/, ''),
      'topology.kubernetes.io/zone': location,
      provider: 'sim',
    },
    capacity: { cpuMillis: 64_000, memoryBytes: 256 * 2 ** 30 },
    allocatable: { cpuMillis: 64_000, memoryBytes: 256 * 2 ** 30 },
    runtimes: ['gvisor'],
    agentVersion: 'sim',
    startedAt,
    seq: ++seq,
    heartbeatMs,
    instances: [...byKey.values()].flatMap((intent) =>
      intent.instances
        .filter((i) => i.host === host)
        .map((i) => ({
          namespace: intent.namespace,
          name: i.name,
          workload: intent.workload,
          templateHash: intent.templateHash,
          phase: 'Running' as const,
          ready: true,
          runtime: 'runsc',
        })),
    ),
    time: new Date().toISOString(),
  });
  const timer = setInterval(() => {
    locations.forEach((l, i) => {
      nc.publish(subjects.hostReport(hosts[i]!), encode(report(hosts[i]!, l)));
    });
  }, heartbeatMs);
  return {
    hosts,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await nc.close();
    },
  };
}
