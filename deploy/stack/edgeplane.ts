/**
 * Edgeplane's own daemons as child processes, built from dist/ (run `npm run build` first): the coordinator
 * and agents. Used by the dev script and the end-to-end tests, so both start them the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_NODE_ENV, AGENT_NODE_FLAGS } from '../../agent/runtime-flags.js';
import { type DaemonOptions, type Proc, REPO_DIR, startProc, waitFor } from './proc.js';

/** Options of {@link startCoordinator}. */
export interface CoordinatorProcOptions extends DaemonOptions {
  /** kubeconfig of the API server. */
  kubeconfig: string;
  /** NATS URLs. */
  nats: string[];
  /** Seconds before a silent host is lost (default 30). */
  lostAfterSeconds?: number;
  /** Where it serves metrics, health and the dashboard (default 127.0.0.1:0: a free loopback port). */
  metricsAddress?: string;
  /** Extra flags. */
  args?: string[];
  /** Extra environment, e.g. EDGE_NATS_CREDS. */
  env?: Record<string, string>;
  /**
   * Serve the conversion webhook of compute.datumapis.com/v1alpha on a free loopback port, its certificate in
   * `<dir>/webhook`, and point the CRDs at it (the dev stack does; tests that use v1alpha ask for it).
   */
  webhook?: boolean;
}

/** Starts `edge-coordinator`. */
export function startCoordinator(opts: CoordinatorProcOptions): Proc {
  return startProc({
    ...opts,
    name: 'coordinator',
    command: process.execPath,
    args: [
      path.join(REPO_DIR, 'dist/coordinator/main.js'),
      '--kubeconfig',
      opts.kubeconfig,
      '--nats',
      opts.nats.join(','),
      '--lost-after',
      String(opts.lostAfterSeconds ?? 30),
      '--metrics-address',
      opts.metricsAddress ?? '127.0.0.1:0',
      ...(opts.webhook
        ? ['--webhook-address', '127.0.0.1:0', '--webhook-cert-dir', path.join(opts.dir, 'webhook')]
        : []),
      ...(opts.args ?? []),
    ],
    env: { LOG_FORMAT: 'json', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...opts.env },
  });
}

/** Options of {@link startAgent}. */
export interface AgentProcOptions extends DaemonOptions {
  /** Host name. */
  host: string;
  /** Location. */
  location: string;
  /** Labels: provider, region, zone. */
  provider?: string;
  region?: string;
  zone?: string;
  /** City code (`--city-code`, label topology.datum.net/city-code), e.g. DFW. */
  cityCode?: string;
  /** NATS URLs. */
  nats: string[];
  /** Advertised allocatable CPU and memory (quantities). */
  cpu?: string;
  memory?: string;
  /** Heartbeat interval (default 2000 ms, faster than production so tests see changes quickly). */
  heartbeatMs?: number;
  /**
   * The agent as a network host of its own (issue 13): its Network devices live in `namespace` (a stand-in host
   * of deploy/stack/netns.ts) and other hosts reach its VXLAN endpoint on `address` (its underlay address there).
   * Absent: the host carries no Network attachments.
   */
  overlay?: { namespace: string; address: string };
  /** Extra flags. */
  args?: string[];
  /** Extra environment, e.g. EDGE_NATS_CA or LD_PRELOAD of libfaketime. */
  env?: Record<string, string>;
  /**
   * A command that execs its arguments (`['sh', '-c', '… exec "$@"', 'sh']`): the agent runs under it with the same
   * pid, e.g. to be born inside a memory cgroup.
   */
  execWrapper?: string[];
}

/** Starts `edge-agent`, publishing instance ports on 127.0.0.1 (the network rule of tests and dev). */
export function startAgent(opts: AgentProcOptions): Proc {
  const args = [
    ...AGENT_NODE_FLAGS,
    path.join(REPO_DIR, 'dist/agent/main.js'),
    'run',
    '--host',
    opts.host,
    '--location',
    opts.location,
    '--nats',
    opts.nats.join(','),
    '--state-dir',
    path.join(opts.dir, 'state'),
    '--publish-address',
    '127.0.0.1',
    '--heartbeat-ms',
    String(opts.heartbeatMs ?? 2000),
  ];
  if (opts.provider) args.push('--provider', opts.provider);
  if (opts.region) args.push('--region', opts.region);
  if (opts.zone) args.push('--zone', opts.zone);
  if (opts.cityCode) args.push('--city-code', opts.cityCode);
  if (opts.cpu) args.push('--cpu', opts.cpu);
  if (opts.memory) args.push('--memory', opts.memory);
  if (opts.overlay)
    args.push('--network-namespace', opts.overlay.namespace, '--overlay-address', opts.overlay.address);
  args.push(...(opts.args ?? []));
  const [wrapper, ...wrapperArgs] = opts.execWrapper ?? [];
  return startProc({
    ...opts,
    name: `agent-${opts.host}`,
    command: wrapper ?? process.execPath,
    args: wrapper ? [...wrapperArgs, process.execPath, ...args] : args,
    env: { ...AGENT_NODE_ENV, LOG_FORMAT: 'json', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...opts.env },
  });
}

/** The three locations of the dev stack and the end-to-end tests. */
export const DEV_LOCATIONS = [
  {
    location: 'us-central1-a',
    provider: 'gcp',
    region: 'us-central1',
    zone: 'us-central1-a',
    cityCode: 'DFW',
  },
  {
    location: 'us-central1-b',
    provider: 'gcp',
    region: 'us-central1',
    zone: 'us-central1-b',
    cityCode: 'DLS',
  },
  { location: 'eu-west-1a', provider: 'aws', region: 'eu-west-1', zone: 'eu-west-1a', cityCode: 'LHR' },
] as const;

/**
 * The base URL a daemon serves metrics (and, for the coordinator, the dashboard) on, read from the line it logs
 * when it listens (`metricsUrl`), so daemons started on port 0 can be found. Reads from `proc`'s log file,
 * newest line first (a restarted daemon appends).
 */
export function httpUrlOf(proc: Pick<Proc, 'logFile' | 'name'>, timeoutMs = 30_000): Promise<string> {
  return waitFor(
    `${proc.name} to log its metrics URL`,
    () => {
      const lines = fs.existsSync(proc.logFile) ? fs.readFileSync(proc.logFile, 'utf8').split('\n') : [];
      for (const line of lines.reverse()) {
        if (!line.includes('"metricsUrl"')) continue;
        try {
          const url = (JSON.parse(line) as { metricsUrl?: string }).metricsUrl;
          if (url) return url.replace(/\/metrics$/, '');
        } catch {
          // not a JSON line
        }
      }
      return undefined;
    },
    { timeoutMs },
  );
}
