/**
 * One agent process (dist/agent/main.js) on a dedicated dockerd and a real nats-server, its intents written
 * straight into the KV bucket (no coordinator: these scenarios are about the agent), its host reports collected,
 * and an oracle over what really runs: containers by instance, runsc sandboxes and shims without a container,
 * containers of instances no intent wants.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type KV, Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { startAgent } from '../../deploy/stack/edgeplane.js';
import type { NatsServerHandle } from '../../deploy/stack/index.js';
import type { Proc } from '../../deploy/stack/proc.js';
import type { InstanceTemplateSpec } from '../../shared/api/template.js';
import { type DeploymentIntent, decode, encode, HostReport } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';
import type { DedicatedDockerd } from '../harness/dockerd.js';
import { cleanup, tempDir } from '../harness/index.js';
import { testIntent, testMarker } from '../harness/objects.js';

export const LOCATION = 'chaos-loc';
const subjects = new Subjects('edge');

/** A container of the agent's host, as the dedicated dockerd reports it. */
export interface SeenContainer {
  id: string;
  /** Instance label. */
  instance: string;
  /** Container label (app, sidecar, …). */
  container: string;
  running: boolean;
  startedAt: string;
  /** Docker's own restarts (restart policy). */
  restartCount: number;
}

/** The world of one scenario. */
export interface AgentWorld {
  host: string;
  /** The agent's state directory. */
  stateDir: string;
  kv: KV;
  /** Writes the intent of `workload` (one instance on this host). */
  put(workload: string, template: InstanceTemplateSpec): Promise<void>;
  /** Deletes the intent of `workload`. */
  remove(workload: string): Promise<void>;
  /** Instance name of `workload` (`<workload>-<location>-0`). */
  instance(workload: string): string;
  /** Host reports received, oldest first. */
  reports: HostReport[];
  /** Starts the agent process (again); `args` are extra flags. */
  start(args?: string[]): Proc;
  /** The agent process last started. */
  agent(): Proc;
  /** Containers of this host on the dedicated dockerd. */
  containers(): Promise<SeenContainer[]>;
  /** The agent's JSON log lines (every run of it) whose `msg` matches, with their time. */
  logLines(msg: RegExp): Array<{ time: number; line: Record<string, unknown> }>;
}

/** Starts nothing yet: `start()` runs the agent. Everything is removed after the test. */
export async function agentWorld(opts: {
  nats: NatsServerHandle;
  dockerd: DedicatedDockerd;
  /** State directory (default: under a temp dir). */
  stateDir?: string;
  heartbeatMs?: number;
}): Promise<AgentWorld> {
  const host = `chaos-${crypto.randomBytes(3).toString('hex')}`;
  const dir = tempDir('edgeplane-chaos-agent-');
  const stateDir = opts.stateDir ?? path.join(dir, 'state');
  const nc = await connect({ servers: opts.nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  cleanup(() => nc.close());
  const kv = await new Kvm(nc).create(subjects.intentsBucket, { history: 1 });
  // The coordinator's marker: without one the agent removes nothing (agent/intent-view.ts).
  await kv.put(subjects.intentMarkerKey(LOCATION), encode(testMarker()));
  const reports: HostReport[] = [];
  const sub = nc.subscribe(subjects.hostReport(host));
  void (async () => {
    for await (const m of sub) reports.push(decode(HostReport, m.data));
  })();
  let agent: Proc | undefined;
  const logFile = path.join(dir, 'agent.log');
  const instance = (w: string) => `${w}-${LOCATION}-0`;
  return {
    host,
    stateDir,
    kv,
    reports,
    instance,
    put: async (workload, template) => {
      const i: DeploymentIntent = testIntent({ location: LOCATION, workload, template, hosts: [host] });
      await kv.put(subjects.intentKey(LOCATION, i.namespace, i.workload), encode(i));
    },
    remove: async (workload) => {
      await kv.delete(subjects.intentKey(LOCATION, 'ns', workload));
    },
    start: (args = []) => {
      const p = startAgent({
        host,
        location: LOCATION,
        nats: [opts.nats.url],
        dir,
        logFile,
        heartbeatMs: opts.heartbeatMs ?? 500,
        args: [
          '--cpu',
          '4',
          '--memory',
          '4Gi',
          '--state-dir',
          stateDir,
          '--docker-socket',
          opts.dockerd.socket,
          ...args,
        ],
      });
      agent = p;
      cleanup(() => p.stop());
      return p;
    },
    agent: () => {
      if (!agent) throw new Error('agent not started');
      return agent;
    },
    containers: async () => {
      const ps = await opts.dockerd.docker([
        'ps',
        '-aq',
        '--no-trunc',
        '--filter',
        `label=edgeplane.dev/host=${host}`,
      ]);
      if (ps.code !== 0) throw new Error(`docker ps: ${ps.stderr}`);
      const ids = ps.stdout.split('\n').filter(Boolean);
      if (!ids.length) return [];
      const r = await opts.dockerd.docker([
        'inspect',
        '--format',
        '{{.Id}} {{index .Config.Labels "edgeplane.dev/instance"}} {{index .Config.Labels "edgeplane.dev/container"}} {{.State.Running}} {{.State.StartedAt}} {{.RestartCount}}',
        ...ids,
      ]);
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' '))
        .map(([id, inst, container, running, startedAt, restarts]) => ({
          id: id!,
          instance: inst!,
          container: container!,
          running: running === 'true',
          startedAt: startedAt!,
          restartCount: Number(restarts),
        }));
    },
    logLines: (msg) => {
      if (!fs.existsSync(logFile)) return [];
      const out: Array<{ time: number; line: Record<string, unknown> }> = [];
      for (const text of fs.readFileSync(logFile, 'utf8').split('\n')) {
        if (!text.startsWith('{')) continue;
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (typeof line.msg === 'string' && msg.test(line.msg)) out.push({ time: Number(line.time), line });
        } catch {
          // a torn last line of a killed agent
        }
      }
      return out;
    },
  };
}

/**
 * What leaked on the dedicated dockerd: containers of `host` whose instance is not in `wanted`, more than one
 * container set per instance (copies), and runsc sandboxes / shims whose container no longer runs.
 */
export async function leaks(
  world: Pick<AgentWorld, 'containers'>,
  dockerd: DedicatedDockerd,
  wanted: Record<string, number>,
): Promise<{ orphans: string[]; duplicates: string[]; missing: string[]; strayProcesses: string[] }> {
  const list = await world.containers();
  const by = new Map<string, SeenContainer[]>();
  for (const c of list) by.set(c.instance, [...(by.get(c.instance) ?? []), c]);
  const orphans = [...by.keys()].filter((i) => !(i in wanted));
  const duplicates = [...by.entries()]
    .filter(([i, cs]) => i in wanted && cs.length > wanted[i]!)
    .map(([i, cs]) => `${i}: ${cs.length} containers`);
  const missing = Object.entries(wanted)
    .filter(([i, n]) => (by.get(i) ?? []).filter((c) => c.running).length !== n)
    .map(([i, n]) => `${i}: ${(by.get(i) ?? []).filter((c) => c.running).length}/${n} running`);
  const ps = await dockerd.docker(['ps', '-q', '--no-trunc']);
  const running = new Set(ps.stdout.split('\n').filter(Boolean));
  const strayProcesses = dockerd
    .processes()
    .filter((p) => p.container && !running.has(p.container))
    .map((p) => `${p.kind} ${p.pid} of ${p.container!.slice(0, 12)}`);
  return { orphans, duplicates, missing, strayProcesses };
}
