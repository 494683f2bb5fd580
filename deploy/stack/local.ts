/**
 * The local stack of `npm run dev`, as one call: nats-server with JetStream, etcd + kube-apiserver with the CRDs,
 * the coordinator and one agent per dev location, each agent a network host of its own (a stand-in host
 * namespace on an underlay that exists only inside namespaces this creates; deploy/stack/netns.ts). The dev
 * script starts it detached under .edge/dev; the apply benchmark starts its own, attached, under a temporary
 * directory, with other host names and namespace prefixes so that it never meets a running dev stack.
 */
import path from 'node:path';
import { EXAMPLE_IMAGES } from '../../examples/images.js';
import { ensureDocker, ensureImage } from './docker.js';
import { DEV_LOCATIONS, startAgent, startCoordinator } from './edgeplane.js';
import { type KubeApiHandle, startKubeApi } from './kube.js';
import { type NatsServerHandle, startNatsServer } from './nats.js';
import { createStandInHosts, removeNetnsWithPrefix } from './netns.js';
import { type Proc, REPO_DIR } from './proc.js';

/** Options of {@link startLocalStack}. */
export interface LocalStackOptions {
  /** Directory of every daemon's data and log (`nats/`, `kube/`, `coordinator/`, `agents/<host>/`). */
  dir: string;
  /** Prefix of the network namespaces standing for the agents' hosts and their underlay (`<prefix>h<i>`, `<prefix>u`). */
  netnsPrefix: string;
  /** Prefix of the agents' host names: `<hostPrefix><location>`. */
  hostPrefix: string;
  /** Start the daemons in their own sessions with pid files, so they outlive this process (the dev script). */
  detached?: boolean;
  /** LOG_LEVEL of the coordinator and agents (default: $LOG_LEVEL, else info). */
  logLevel?: string;
  /** Serve the conversion webhook of compute.datumapis.com/v1alpha from the coordinator (see startCoordinator). */
  webhook?: boolean;
  /** Progress lines. */
  say?: (line: string) => void;
}

/** A started local stack. */
export interface LocalStack {
  nats: NatsServerHandle;
  kube: KubeApiHandle;
  coordinator: Proc;
  /** Agents by host name, in DEV_LOCATIONS order. */
  agents: Map<string, Proc>;
  /** Host names, one per location, in DEV_LOCATIONS order. */
  hosts: string[];
  /** Stops the agents, the coordinator, kube-apiserver and NATS, then deletes the namespaces. Containers stay. */
  stop(): Promise<void>;
}

/** Starts the stack (see the module comment); docker with gVisor and the example images are made ready first. */
export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  const say = o.say ?? (() => undefined);
  const detached = o.detached ?? false;
  const env = o.logLevel ? { LOG_LEVEL: o.logLevel } : undefined;
  say('docker + gVisor');
  await ensureDocker();
  // Images the examples reference, built locally because no registry is reachable.
  for (const [tag, spec] of Object.entries(EXAMPLE_IMAGES)) await ensureImage(tag, spec);
  say('nats-server with JetStream');
  const nats = await startNatsServer({ dir: path.join(o.dir, 'nats'), jetstream: true, detached });
  say('etcd + kube-apiserver with the CRDs');
  const kube = await startKubeApi({
    dir: path.join(o.dir, 'kube'),
    crdDir: path.join(REPO_DIR, 'deploy/crds'),
    detached,
  });
  say(`three stand-in network hosts (namespaces ${o.netnsPrefix}h0-2 on an underlay in ${o.netnsPrefix}u)`);
  const { hosts: netHosts } = createStandInHosts(o.netnsPrefix, DEV_LOCATIONS.length);
  say('edge-coordinator');
  const coordinator = startCoordinator({
    dir: path.join(o.dir, 'coordinator'),
    kubeconfig: kube.kubeconfigPath,
    nats: [nats.url],
    detached,
    ...(o.webhook ? { webhook: true } : {}),
    ...(env ? { env } : {}),
  });
  const agents = new Map<string, Proc>();
  for (const [i, l] of DEV_LOCATIONS.entries()) {
    const netHost = netHosts[i]!;
    const host = `${o.hostPrefix}${l.location}`;
    say(`edge-agent for ${l.location} (network host ${netHost.name}, overlay ${netHost.address})`);
    agents.set(
      host,
      startAgent({
        dir: path.join(o.dir, 'agents', host),
        host,
        ...l,
        nats: [nats.url],
        cpu: '64',
        memory: '256Gi',
        overlay: { namespace: netHost.name, address: netHost.address },
        detached,
        ...(env ? { env } : {}),
      }),
    );
  }
  return {
    nats,
    kube,
    coordinator,
    agents,
    hosts: [...agents.keys()],
    async stop() {
      for (const a of agents.values()) await a.stop().catch(() => undefined);
      await coordinator.stop().catch(() => undefined);
      await kube.stop().catch(() => undefined);
      await nats.stop().catch(() => undefined);
      removeNetnsWithPrefix(o.netnsPrefix);
    },
  };
}
