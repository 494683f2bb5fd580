/**
 * The whole Edgeplane stack for end-to-end tests: nats-server, etcd + kube-apiserver with the CRDs, the
 * coordinator and one agent per location (built from dist/; `npm test` builds first). Host names carry a
 * random suffix, so the containers of a test run never mix with the dev stack's or another run's. Each agent is
 * a network host of its own, as in `npm run dev`: a stand-in host namespace on an underlay that exists only
 * inside namespaces the stack creates (deleted after the file).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll } from 'vitest';
import {
  type AgentProcOptions,
  DEV_LOCATIONS,
  startAgent,
  startCoordinator,
} from '../../deploy/stack/edgeplane.js';
import {
  ensureDocker,
  ensureImage,
  HTTPD_CMD,
  type KubeApiHandle,
  type KubeApiOptions,
  type KubectlResult,
  kubeconfigYaml,
  kubectl,
  type NatsServerHandle,
  REPO_DIR,
  removeContainersByLabel,
  type StandInHosts,
  startKubeApi,
  startNatsServer,
} from '../../deploy/stack/index.js';
import type { Proc } from '../../deploy/stack/proc.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { cleanup, type Lazy, tempDir, waitFor } from './index.js';
import { netnsPrefix, useStandInHosts } from './network.js';

/** A running stack. */
export interface EdgeStack {
  nats: NatsServerHandle;
  kube: KubeApiHandle;
  /** The running coordinator (replaced by {@link EdgeStack.restartCoordinator}). */
  coordinator: Proc;
  /** The fault proxy between the coordinator and NATS, when asked for. */
  coordinatorProxy?: FaultProxy;
  /** The fault proxy between the coordinator and kube-apiserver, when asked for (kubectl goes direct). */
  kubeProxy?: FaultProxy;
  /** Starts the coordinator again with the same options (after it was stopped or killed); returns it. */
  restartCoordinator(): Proc;
  /** Agents by host name. */
  agents: Map<string, Proc>;
  /** The fault proxy between each agent and NATS, by host name, when asked for. */
  agentProxies: Map<string, FaultProxy>;
  /** Host names, one per location, in DEV_LOCATIONS order. */
  hosts: string[];
  /** Each host's network namespace (stand-in host) and overlay address, by host name. */
  netHosts: Map<string, StandInHosts['hosts'][number]>;
  /** Runs kubectl against the stack; throws with stderr when it fails unless `allowFail`. */
  kubectl(
    args: string[],
    opts?: { input?: string; allowFail?: boolean; timeoutMs?: number },
  ): Promise<KubectlResult>;
  /** Polls `jsonpath` of an object until `accept` says yes (default timeout 120 s). */
  waitForJsonPath(
    resource: string,
    jsonpath: string,
    accept: (value: string) => boolean,
    timeoutMs?: number,
  ): Promise<string>;
}

/**
 * nats-server and kube-apiserver under `dir`, started together and stopped after the file. The kube-apiserver
 * gets the CRDs of deploy/crds unless `kube` says otherwise.
 */
export async function startNatsAndKube(
  dir: string,
  o: { natsConfigExtra?: string; kube?: Omit<KubeApiOptions, 'dir'> } = {},
): Promise<{ nats: NatsServerHandle; kube: KubeApiHandle }> {
  // Each daemon's cleanup is registered as soon as it is up, so one failing to start never leaks the other.
  const [nats, kube] = await Promise.all([
    startNatsServer({
      dir: path.join(dir, 'nats'),
      ...(o.natsConfigExtra ? { configExtra: o.natsConfigExtra } : {}),
    }).then((n) => {
      cleanup(() => n.stop());
      return n;
    }),
    startKubeApi({
      dir: path.join(dir, 'kube'),
      ...(o.kube ?? { crdDir: path.join(REPO_DIR, 'deploy/crds') }),
    }).then((k) => {
      cleanup(() => k.stop());
      return k;
    }),
  ]);
  return { nats, kube };
}

/** The agent process for `opts.host`; after the file it is stopped and its containers are removed. */
export function startAgentForTest(opts: AgentProcOptions): Proc {
  const agent = startAgent(opts);
  cleanup(async () => {
    await agent.stop();
    await removeContainersByLabel(`edgeplane.dev/host=${opts.host}`);
  });
  return agent;
}

/** Starts the stack in beforeAll; everything (processes, containers, temp dirs) is removed after the file. */
export function useEdgeStack(
  opts: {
    lostAfterSeconds?: number;
    /** Extra coordinator flags. */
    coordinatorArgs?: string[];
    /** Connect the coordinator to NATS through a fault proxy (`coordinatorProxy`). */
    coordinatorThroughProxy?: boolean;
    /** Connect the coordinator to kube-apiserver through a fault proxy (`kubeProxy`; its own kubeconfig). */
    kubeThroughProxy?: boolean;
    /** Connect every agent to NATS through its own fault proxy (`agentProxies`). */
    agentsThroughProxy?: boolean;
    /** Extra environment of the coordinator (e.g. LD_PRELOAD of libfaketime). */
    coordinatorEnv?: Record<string, string>;
    /** Extra environment of the agent of each host (by host name and DEV_LOCATIONS index). */
    agentEnv?: (host: string, index: number) => Record<string, string>;
    /**
     * NATS with TLS that verifies client certificates (test/harness/certs.ts `makeCerts`): the server gets the
     * server certificate, the coordinator and every agent the CA and the client certificate (EDGE_NATS_CA/CERT/KEY).
     */
    natsTls?: { ca: string; cert: string; key: string; clientCert: string; clientKey: string };
    /** Serve compute.datumapis.com/v1alpha: the coordinator's conversion webhook on loopback. */
    webhook?: boolean;
  } = {},
): Lazy<EdgeStack> {
  let stack: EdgeStack | undefined;
  beforeAll(async () => {
    await ensureDocker();
    await ensureImage('nginx:latest', { cmd: HTTPD_CMD, exposedPorts: [80] });
    const dir = tempDir('edgeplane-e2e-');
    const run = crypto.randomBytes(3).toString('hex');
    const tls = opts.natsTls;
    const { nats, kube } = await startNatsAndKube(
      dir,
      tls
        ? {
            natsConfigExtra: `tls {\n  cert_file: "${tls.cert}"\n  key_file: "${tls.key}"\n  ca_file: "${tls.ca}"\n  verify: true\n  timeout: 5\n}`,
          }
        : {},
    );
    const tlsEnv: Record<string, string> = tls
      ? { EDGE_NATS_CA: tls.ca, EDGE_NATS_CERT: tls.clientCert, EDGE_NATS_KEY: tls.clientKey }
      : {};
    const coordinatorProxy = opts.coordinatorThroughProxy ? await startFaultProxy(nats.port) : undefined;
    const kubeProxy = opts.kubeThroughProxy
      ? await startFaultProxy(Number(new URL(kube.server).port))
      : undefined;
    let coordinatorKubeconfig = kube.kubeconfigPath;
    if (kubeProxy) {
      coordinatorKubeconfig = path.join(dir, 'coordinator-kubeconfig');
      fs.writeFileSync(
        coordinatorKubeconfig,
        kubeconfigYaml(`https://127.0.0.1:${kubeProxy.port}`, kube.token, kube.caPem),
        { mode: 0o600 },
      );
    }
    const startTheCoordinator = () => {
      const c = startCoordinator({
        dir: path.join(dir, 'coordinator'),
        kubeconfig: coordinatorKubeconfig,
        nats: [coordinatorProxy ? `nats://127.0.0.1:${coordinatorProxy.port}` : nats.url],
        ...(opts.lostAfterSeconds ? { lostAfterSeconds: opts.lostAfterSeconds } : {}),
        ...(opts.coordinatorArgs ? { args: opts.coordinatorArgs } : {}),
        env: { ...tlsEnv, ...opts.coordinatorEnv },
        ...(opts.webhook ? { webhook: true } : {}),
      });
      cleanup(() => c.stop());
      return c;
    };
    const coordinator = startTheCoordinator();
    // Registered before the agents, so deleted after them (cleanups run last first).
    const standIn = useStandInHosts(netnsPrefix('e'), DEV_LOCATIONS.length).hosts;
    const netHosts = new Map<string, StandInHosts['hosts'][number]>();
    const agents = new Map<string, Proc>();
    const agentProxies = new Map<string, FaultProxy>();
    const hosts: string[] = [];
    for (const [i, l] of DEV_LOCATIONS.entries()) {
      const host = `e2e-${run}-${l.location}`;
      const netHost = standIn[i]!;
      hosts.push(host);
      netHosts.set(host, netHost);
      const proxy = opts.agentsThroughProxy ? await startFaultProxy(nats.port) : undefined;
      if (proxy) agentProxies.set(host, proxy);
      agents.set(
        host,
        startAgentForTest({
          dir: path.join(dir, 'agents', host),
          host,
          ...l,
          nats: [proxy ? `nats://127.0.0.1:${proxy.port}` : nats.url],
          cpu: '64',
          memory: '256Gi',
          overlay: { namespace: netHost.name, address: netHost.address },
          env: { ...tlsEnv, ...opts.agentEnv?.(host, i) },
        }),
      );
    }
    const k = async (args: string[], o: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}) => {
      const r = await kubectl(kube.kubeconfigPath, args, o);
      if (r.code !== 0 && !o.allowFail)
        throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
      return r;
    };
    const waitForJsonPath = async (
      resource: string,
      jsonpath: string,
      accept: (v: string) => boolean,
      timeoutMs = 120_000,
    ) => {
      let last = '';
      const found = await waitFor(
        `${resource} ${jsonpath}`,
        async () => {
          const r = await kubectl(kube.kubeconfigPath, [
            'get',
            ...resource.split(' '),
            '-o',
            `jsonpath=${jsonpath}`,
          ]);
          last = r.code === 0 ? r.stdout : `(error) ${r.stderr}`;
          // Wrapped: an accepted value may be empty.
          return r.code === 0 && accept(r.stdout) ? { value: r.stdout } : undefined;
        },
        { timeoutMs, intervalMs: 500 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last: ${last}`);
      });
      return found.value;
    };
    stack = {
      nats,
      kube,
      coordinator,
      ...(coordinatorProxy ? { coordinatorProxy } : {}),
      ...(kubeProxy ? { kubeProxy } : {}),
      restartCoordinator() {
        const c = startTheCoordinator();
        if (stack) stack.coordinator = c;
        return c;
      },
      agents,
      agentProxies,
      hosts,
      netHosts,
      kubectl: k,
      waitForJsonPath,
    };
    // Every host registered before any test places anything.
    await waitForJsonPath(
      'hosts',
      '{.items[*].status.state}',
      (v) => v.split(' ').filter((s) => s === 'Ready').length >= hosts.length,
    );
  }, 600_000);
  return () => {
    if (!stack) throw new Error('useEdgeStack() is not started (use it inside tests)');
    return stack;
  };
}
