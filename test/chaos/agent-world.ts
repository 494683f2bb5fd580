/**
 * One agent process (dist/agent/main.js) on a dedicated dockerd and a real nats-server, its intents written
 * straight into the KV bucket (no coordinator: these scenarios are about the agent), its host reports collected,
 * and an oracle over what really runs: containers by instance, runsc sandboxes and shims without a container,
 * containers of instances no intent wants; for VMs (an image catalog given), the qemu processes of its VM
 * directories, those directories, and partial downloads left in its image cache.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type KV, Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import type { Catalog } from '../../agent/images/catalog.js';
import { startAgent } from '../../deploy/stack/edgeplane.js';
import type { NatsServerHandle } from '../../deploy/stack/index.js';
import type { Proc } from '../../deploy/stack/proc.js';
import { pidCmdline } from '../../deploy/stack/proc.js';
import type { ResourceAmounts } from '../../shared/api/meta.js';
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
  /** The VM image cache (`--image-cache-dir`). */
  imageCacheDir: string;
  kv: KV;
  /** Writes the intent of `workload` (one instance on this host); `limits` default to 200m / 64Mi. */
  put(workload: string, template: InstanceTemplateSpec, limits?: ResourceAmounts): Promise<void>;
  /** Deletes the intent of `workload`. */
  remove(workload: string): Promise<void>;
  /** Instance name of `workload` (`<workload>-<location>-0`). */
  instance(workload: string): string;
  /** Host reports received, oldest first. */
  reports: HostReport[];
  /** Starts the agent process (again); `args` are extra flags, `execWrapper` a command it runs under (same pid). */
  start(args?: string[], opts?: { execWrapper?: string[] }): Proc;
  /** The agent process last started. */
  agent(): Proc;
  /** Containers of this host on the dedicated dockerd (none without one). */
  containers(): Promise<SeenContainer[]>;
  /** qemu processes running in this agent's VM directories, by directory name (`ns_<instance>`). */
  vms(): Array<{ pid: number; dir: string }>;
  /** The agent's JSON log lines (every run of it) whose `msg` matches, with their time. */
  logLines(msg: RegExp): Array<{ time: number; line: Record<string, unknown> }>;
}

/** Starts nothing yet: `start()` runs the agent. Everything is removed after the test. */
export async function agentWorld(opts: {
  nats: NatsServerHandle;
  /** The dedicated dockerd; without one the gvisor runtime is down (VM scenarios). */
  dockerd?: DedicatedDockerd;
  /** State directory (default: under a temp dir). */
  stateDir?: string;
  /** VM image catalog: given, the agent runs VMs under TCG (`--vm-accel tcg`). */
  imageCatalog?: Catalog;
  /** VM image cache directory (default `<stateDir>/images`). */
  imageCacheDir?: string;
  heartbeatMs?: number;
}): Promise<AgentWorld> {
  const host = `chaos-${crypto.randomBytes(3).toString('hex')}`;
  const dir = tempDir('edgeplane-chaos-agent-');
  const stateDir = opts.stateDir ?? path.join(dir, 'state');
  const imageCacheDir = opts.imageCacheDir ?? path.join(stateDir, 'images');
  const vmArgs: string[] = [];
  if (opts.imageCatalog) {
    const file = path.join(dir, 'catalog.json');
    fs.writeFileSync(file, JSON.stringify(opts.imageCatalog));
    vmArgs.push('--image-catalog', file, '--vm-accel', 'tcg');
  }
  const vmDir = path.join(stateDir, 'vms');
  let agent: Proc | undefined;
  const vms = () => {
    const out: Array<{ pid: number; dir: string }> = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmd = pidCmdline(Number(entry));
      if (!cmd?.includes('qemu-system') || !cmd.includes(`${vmDir}/`)) continue;
      const rest = cmd.slice(cmd.indexOf(`${vmDir}/`) + vmDir.length + 1);
      out.push({ pid: Number(entry), dir: rest.slice(0, rest.search(/[/ ]|$/)) });
    }
    return out;
  };
  // Whatever VM a failed run leaves: the agent first (it would start them again), then its qemu processes.
  cleanup(async () => {
    await agent?.stop();
    for (const v of vms()) process.kill(v.pid, 'SIGKILL');
  });
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
  const logFile = path.join(dir, 'agent.log');
  const instance = (w: string) => `${w}-${LOCATION}-0`;
  return {
    host,
    stateDir,
    imageCacheDir,
    kv,
    reports,
    instance,
    put: async (workload, template, limits) => {
      const i: DeploymentIntent = testIntent({
        location: LOCATION,
        workload,
        template,
        hosts: [host],
        ...(limits ? { limits } : {}),
      });
      await kv.put(subjects.intentKey(LOCATION, i.namespace, i.workload), encode(i));
    },
    remove: async (workload) => {
      await kv.delete(subjects.intentKey(LOCATION, 'ns', workload));
    },
    start: (args = [], so = {}) => {
      const p = startAgent({
        ...(so.execWrapper ? { execWrapper: so.execWrapper } : {}),
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
          opts.dockerd?.socket ?? path.join(dir, 'no-docker.sock'),
          '--image-cache-dir',
          imageCacheDir,
          ...vmArgs,
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
    vms,
    containers: async () => {
      if (!opts.dockerd) return [];
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

/**
 * What leaked of the agent's VMs: instances (`wanted`, instance names) with more than one qemu, qemu processes or
 * VM directories of instances not wanted, wanted instances without a qemu, and partial downloads (`*.part`) in
 * the image cache.
 */
export function vmLeaks(
  world: Pick<AgentWorld, 'vms' | 'stateDir' | 'imageCacheDir'>,
  wanted: string[],
): { orphans: string[]; duplicates: string[]; missing: string[]; strayDirs: string[]; partials: string[] } {
  const want = new Set(wanted.map((i) => `ns_${i}`));
  const by = new Map<string, number[]>();
  for (const v of world.vms()) by.set(v.dir, [...(by.get(v.dir) ?? []), v.pid]);
  const vmDir = path.join(world.stateDir, 'vms');
  const dirs = fs.existsSync(vmDir)
    ? fs.readdirSync(vmDir).filter((d) => fs.statSync(path.join(vmDir, d)).isDirectory())
    : [];
  const partials = fs.existsSync(world.imageCacheDir)
    ? fs.readdirSync(world.imageCacheDir).filter((f) => f.endsWith('.part'))
    : [];
  return {
    orphans: [...by.keys()].filter((d) => !want.has(d)).map((d) => `qemu ${by.get(d)!.join(',')} in ${d}`),
    duplicates: [...by.entries()]
      .filter(([, pids]) => pids.length > 1)
      .map(([d, p]) => `${d}: ${p.length} qemu`),
    missing: [...want].filter((d) => !by.has(d)),
    strayDirs: dirs.filter((d) => !want.has(d)),
    partials,
  };
}
