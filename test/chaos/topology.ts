/**
 * The chaos topology: N NATS members, K coordinators, L locations × M agents, every link that a fault may cut
 * going through a fault proxy the test owns (test/harness/fault-proxy.ts):
 *
 * - each client (agent or coordinator) reaches each NATS member through its own proxy, so one agent can be cut
 *   from one member without touching anyone else (`client.natsProxies[i]` → member i);
 * - each coordinator reaches kube-apiserver through its own proxy (`coordinator.kubeProxy`);
 * - NATS members route to each other through one proxy per ordered pair (`member.routeProxies.get(j)`: the routes
 *   member i opens to member j). Members advertise a route address that refuses connections and do not advertise
 *   client URLs, so neither gossip nor client discovery can bypass a proxy.
 *
 * Works inside vitest (everything is stopped after the test or file, through test/harness's cleanup) and in a
 * plain script (the soak: call {@link Topology.stop}, then test/harness's runFileCleanups).
 * The agents and coordinators are the built ones from dist/ (`npm run build` first).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  type AgentProcOptions,
  DEV_LOCATIONS,
  startAgent,
  startCoordinator,
} from '../../deploy/stack/edgeplane.js';
import {
  ensureDocker,
  ensureImage,
  freePorts,
  HTTPD_CMD,
  type KubeApiHandle,
  type KubectlResult,
  kubeconfigYaml,
  kubectl,
  type NatsServerHandle,
  REPO_DIR,
  removeContainersByLabel,
  startKubeApi,
  startNatsServer,
  waitFor,
} from '../../deploy/stack/index.js';
import { httpGet, type Proc } from '../../deploy/stack/proc.js';
import { type FaultProxy, startFaultProxy } from '../harness/fault-proxy.js';
import { cleanup, tempDir } from '../harness/index.js';
import { mountSmallFs, type SmallFs } from './disk/small-fs.js';

/** What {@link startTopology} builds. */
export interface TopologyOptions {
  /** Where data and logs go (default: a temp dir removed afterwards unless EDGE_KEEP_TMP is set). */
  dir?: string;
  /** NATS members (default 3; 1 runs a single server without routes). */
  natsMembers?: number;
  /** Coordinators (default 1); with more than one they elect a leader through a Lease. */
  coordinators?: number;
  /** Locations (default 3: the dev stack's, then `chaos-<i>`). */
  locations?: number;
  /** Agents per location (default 1). */
  agentsPerLocation?: number;
  /** The coordinators' --lost-after in seconds (default 30). */
  lostAfterSeconds?: number;
  /** The coordinators' --lease-duration in seconds (default: the coordinator's). */
  leaseSeconds?: number;
  /** The intents bucket's replicas (default: min(3, natsMembers)). */
  kvReplicas?: number;
  /** Agents' heartbeat (default 2000 ms). */
  heartbeatMs?: number;
  /** Extra coordinator flags. */
  coordinatorArgs?: string[];
  /** Extra agent flags. */
  agentArgs?: string[];
  /** Build the test images the Workloads of tests use (default true; needs Docker + runsc). */
  images?: boolean;
  /** Jitter draws of every proxy (default Math.random; the soak passes its seeded generator). */
  random?: () => number;
  /** Each agent's state directory on a tmpfs of this many MiB, so disk faults can fill it (default: none). */
  agentStateFsMiB?: number;
}

/** One NATS member. */
export interface NatsMember {
  /** 0-based index (its server_name is `n<index+1>`). */
  readonly index: number;
  /** The server (stop, kill, restart, pid, monitorUrl, storeDir…). */
  readonly server: NatsServerHandle;
  /** Its route listen port (behind the proxies). */
  readonly routePort: number;
  /** The proxies of the routes this member opens to each other member, by the other's index. */
  readonly routeProxies: Map<number, FaultProxy>;
}

/** A coordinator or agent process, restartable with the same directory and links. */
export interface ChaosProcess {
  /** Coordinator name (`coordinator-<i>`) or host name. */
  readonly name: string;
  /** The running (or last) process; replaced by {@link ChaosProcess.restart}. */
  readonly proc: Proc;
  /** Its proxy to each NATS member, by member index. */
  readonly natsProxies: FaultProxy[];
  /** Its working directory (state, log). */
  readonly dir: string;
  /** Starts it again (after a kill or stop) with the same directory, flags and proxies. */
  restart(): Promise<void>;
}

/** A coordinator. */
export interface ChaosCoordinator extends ChaosProcess {
  readonly kind: 'coordinator';
  /** Its proxy to kube-apiserver. */
  readonly kubeProxy: FaultProxy;
}

/** An agent. */
export interface ChaosAgent extends ChaosProcess {
  readonly kind: 'agent';
  /** Host name (also `name`). */
  readonly host: string;
  /** Location. */
  readonly location: string;
  /** Its state directory's own small filesystem (topology option `agentStateFsMiB`). */
  readonly stateFs?: SmallFs;
}

/** A running topology. */
export interface Topology {
  /** Its directory. */
  readonly dir: string;
  /** Random suffix of this run's host names (so containers of runs never mix). */
  readonly run: string;
  readonly nats: NatsMember[];
  readonly kube: KubeApiHandle;
  readonly coordinators: ChaosCoordinator[];
  readonly agents: ChaosAgent[];
  /** Location names, in order. */
  readonly locations: string[];
  /** Every fault proxy of the topology (to heal them all at once). */
  readonly proxies: FaultProxy[];
  /** Client URLs of the members, direct (for test clients such as the oracle, which must not be cut off). */
  readonly natsUrls: string[];
  /** kubectl against the API server (directly, not through a proxy); throws unless `allowFail`. */
  kubectl(
    args: string[],
    opts?: { input?: string; allowFail?: boolean; timeoutMs?: number },
  ): Promise<KubectlResult>;
  /** The coordinator holding the Lease now, if any. */
  leader(): Promise<ChaosCoordinator | undefined>;
  /** Heals every proxy. */
  healAll(): void;
  /** Waits until every agent's host is Ready (default 180 s). */
  waitForHostsReady(timeoutMs?: number): Promise<void>;
  /** Stops everything and removes the agents' containers (idempotent; also registered with cleanup). */
  stop(): Promise<void>;
}

/** The route address members advertise: accepts and closes at once, so gossiped direct routes never form. */
async function startRouteSink(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Starts the topology; everything is stopped after the test (or file) that started it. */
export async function startTopology(o: TopologyOptions = {}): Promise<Topology> {
  const members = o.natsMembers ?? 3;
  const dir = o.dir ?? tempDir('edgeplane-chaos-');
  fs.mkdirSync(dir, { recursive: true });
  const run = crypto.randomBytes(3).toString('hex');
  const proxyOpts = o.random ? { random: o.random } : {};
  const proxies: FaultProxy[] = [];
  const proxy = async (port: number) => {
    const p = await startFaultProxy(port, proxyOpts);
    proxies.push(p);
    return p;
  };
  if (o.images ?? true) {
    await ensureDocker();
    await ensureImage('nginx:latest', { cmd: HTTPD_CMD, exposedPorts: [80] });
  }

  // NATS: ports first, then the route proxies (they only need the target port), then the servers.
  const ports = await freePorts(members * 3);
  const routePorts = ports.slice(members, 2 * members);
  const sink = await startRouteSink();
  cleanup(() => sink.close());
  const routeProxies: Map<number, FaultProxy>[] = [];
  for (let i = 0; i < members; i++) {
    const m = new Map<number, FaultProxy>();
    for (let j = 0; j < members; j++) if (j !== i) m.set(j, await proxy(routePorts[j]!));
    routeProxies.push(m);
  }
  const kubeDir = path.join(dir, 'kube');
  const [kube, ...servers] = await Promise.all([
    startKubeApi({ dir: kubeDir, crdDir: path.join(REPO_DIR, 'deploy/crds') }),
    ...Array.from({ length: members }, (_, i) =>
      startNatsServer({
        dir: path.join(dir, `nats-n${i + 1}`),
        port: ports[i]!,
        httpPort: ports[2 * members + i]!,
        serverName: `n${i + 1}`,
        ...(members > 1
          ? {
              cluster: {
                name: `chaos-${run}`,
                port: routePorts[i]!,
                routes: [...routeProxies[i]!.values()].map((p) => `nats-route://127.0.0.1:${p.port}`),
                advertise: `127.0.0.1:${sink.port}`,
                noAdvertise: true,
              },
              waitJetStream: false,
            }
          : {}),
      }),
    ),
  ]);
  const nats: NatsMember[] = servers.map((server, index) => ({
    index,
    server,
    routePort: routePorts[index]!,
    routeProxies: routeProxies[index]!,
  }));
  for (const m of nats) cleanup(() => m.server.stop());
  cleanup(() => kube.stop());
  if (members > 1) await waitForNatsCluster(nats);

  const natsProxiesFor = async () => Promise.all(nats.map((m) => proxy(m.server.port)));
  const natsUrlsOf = (ps: FaultProxy[]) => ps.map((p) => `nats://127.0.0.1:${p.port}`);

  const coordinators: ChaosCoordinator[] = [];
  for (let i = 0; i < (o.coordinators ?? 1); i++) {
    const name = `coordinator-${i}`;
    const cdir = path.join(dir, name);
    const natsProxies = await natsProxiesFor();
    const kubeProxy = await proxy(Number(new URL(kube.server).port));
    const kubeconfig = path.join(cdir, 'kubeconfig');
    fs.mkdirSync(cdir, { recursive: true });
    fs.writeFileSync(
      kubeconfig,
      kubeconfigYaml(`https://127.0.0.1:${kubeProxy.port}`, kube.token, kube.caPem),
    );
    const start = () =>
      startCoordinator({
        dir: cdir,
        kubeconfig,
        nats: natsUrlsOf(natsProxies),
        lostAfterSeconds: o.lostAfterSeconds ?? 30,
        args: [
          '--kv-replicas',
          String(o.kvReplicas ?? Math.min(3, members)),
          ...(o.leaseSeconds ? ['--lease-duration', String(o.leaseSeconds)] : []),
          ...(o.coordinatorArgs ?? []),
        ],
      });
    let proc = start();
    const c: ChaosCoordinator = {
      kind: 'coordinator',
      name,
      dir: cdir,
      natsProxies,
      kubeProxy,
      get proc() {
        return proc;
      },
      restart: async () => {
        await proc.stop();
        proc = start();
      },
    };
    cleanup(() => c.proc.stop());
    coordinators.push(c);
  }

  const locations = Array.from(
    { length: o.locations ?? 3 },
    (_, i) => DEV_LOCATIONS[i]?.location ?? `chaos-${i}`,
  );
  const agents: ChaosAgent[] = [];
  for (const [li, location] of locations.entries()) {
    const labels = DEV_LOCATIONS[li] ?? { provider: 'chaos', region: 'chaos', zone: location };
    for (let a = 0; a < (o.agentsPerLocation ?? 1); a++) {
      const host = `chaos-${run}-${location}-${a}`;
      const adir = path.join(dir, 'agents', host);
      const natsProxies = await natsProxiesFor();
      // startAgent's --state-dir is <dir>/state.
      const stateFs = o.agentStateFsMiB
        ? mountSmallFs(o.agentStateFsMiB, path.join(adir, 'state'))
        : undefined;
      const opts: AgentProcOptions = {
        dir: adir,
        host,
        location,
        provider: labels.provider,
        region: labels.region,
        zone: labels.zone,
        nats: natsUrlsOf(natsProxies),
        cpu: '8',
        memory: '16Gi',
        ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
        ...(o.agentArgs ? { args: o.agentArgs } : {}),
      };
      let proc = startAgent(opts);
      const agent: ChaosAgent = {
        kind: 'agent',
        name: host,
        host,
        location,
        dir: adir,
        natsProxies,
        ...(stateFs ? { stateFs } : {}),
        get proc() {
          return proc;
        },
        restart: async () => {
          await proc.stop();
          proc = startAgent(opts);
        },
      };
      agents.push(agent);
    }
  }
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await Promise.all([...coordinators, ...agents].map((p) => p.proc.stop()));
      await Promise.all(agents.map((a) => removeContainersByLabel(`edgeplane.dev/host=${a.host}`)));
      for (const a of agents) a.stateFs?.unmount();
      await Promise.all(nats.map((m) => m.server.stop()));
      await kube.stop();
      await Promise.all(proxies.map((p) => p.close()));
    })();
    return stopped;
  };
  cleanup(stop);

  const k = async (args: string[], ko: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}) => {
    const r = await kubectl(kube.kubeconfigPath, args, ko);
    if (r.code !== 0 && !ko.allowFail)
      throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
    return r;
  };
  const topology: Topology = {
    dir,
    run,
    nats,
    kube,
    coordinators,
    agents,
    locations,
    proxies,
    natsUrls: nats.map((m) => m.server.url),
    kubectl: k,
    leader: async () => {
      const r = await k(
        ['get', 'lease', 'edge-coordinator', '-n', 'kube-system', '-o', 'jsonpath={.spec.holderIdentity}'],
        { allowFail: true },
      );
      if (r.code !== 0 || !r.stdout) return undefined;
      return coordinators.find((c) => r.stdout.startsWith(`${os.hostname()}_${c.proc.pid}_`));
    },
    healAll: () => {
      for (const p of proxies) p.heal();
    },
    waitForHostsReady: async (timeoutMs = 180_000) => {
      const hosts = new Set(agents.map((a) => a.host));
      await waitFor(
        `${hosts.size} hosts Ready`,
        async () => {
          const r = await k(['get', 'hosts', '-o', 'json'], { allowFail: true });
          if (r.code !== 0) return false;
          const items = (
            JSON.parse(r.stdout) as { items: { metadata: { name: string }; status?: { state?: string } }[] }
          ).items;
          return (
            items.filter((h) => hosts.has(h.metadata.name) && h.status?.state === 'Ready').length ===
            hosts.size
          );
        },
        { timeoutMs, intervalMs: 1000 },
      );
    },
    stop,
  };
  return topology;
}

async function httpGetJson<T>(url: string): Promise<T> {
  return JSON.parse((await httpGet(url)).body) as T;
}

/** Waits until every member routes to every other and JetStream has one meta leader. */
async function waitForNatsCluster(nats: NatsMember[], timeoutMs = 90_000): Promise<void> {
  await waitFor(
    'NATS routes between every pair of members (through the proxies)',
    async () => {
      for (const m of nats) {
        const r = await httpGetJson<{ num_routes?: number }>(`${m.server.monitorUrl}/routez`);
        if ((r.num_routes ?? 0) < nats.length - 1) return false;
      }
      return true;
    },
    { timeoutMs, intervalMs: 250 },
  );
  await waitForMetaLeader(nats, timeoutMs);
}

/** The JetStream meta leader's server_name once every running member of `nats` agrees on one of them. */
export async function waitForMetaLeader(nats: NatsMember[], timeoutMs = 90_000): Promise<string> {
  return waitFor(
    'a JetStream meta leader',
    async () => {
      const leaders = new Set<string>();
      for (const m of nats.filter((x) => x.server.running)) {
        const jsz = await httpGetJson<{ meta_cluster?: { leader?: string } }>(`${m.server.monitorUrl}/jsz`);
        leaders.add(jsz.meta_cluster?.leader ?? '');
      }
      const [leader] = [...leaders];
      // Members cut from the old leader still name it until their election timeout: only a leader among the
      // members asked counts.
      const among = leader !== undefined && nats.some((m) => `n${m.index + 1}` === leader);
      return leaders.size === 1 && among ? leader : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}
