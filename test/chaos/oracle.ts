/**
 * The oracle: samples the whole system every second while a scenario or the soak runs, and counts (with the pure
 * counting of oracle-count.ts) lost replica-seconds, duplicates, orphans and needless restarts.
 *
 * Each sample reads, from the real parts and never through a fault proxy:
 * - the intents (the JetStream KV bucket; the intent keys from the stream's subject list — not the writers' fence
 *   nor the locations' markers, which share the bucket — each value by direct get);
 * - what runs on each of the topology's hosts: Docker containers labelled with the host (grouped per instance:
 *   their ids with each one's start time, so a restart in place shows; whether any runs) and qemu processes
 *   whose pid file lies in an agent's VM directory;
 * - leaked objects: runsc sandboxes of the watched dockerd whose container that dockerd no longer runs, and qemu
 *   processes in an agent's VM directory that no instance of the intents explains. A sandbox is the watched
 *   dockerd's when its `--root` is one that dockerd's own runsc containers run under: learned every sample from
 *   the running containers' pids (for runsc, a container's pid is its sandbox's), so it is the root of the dockerd
 *   actually used (`<exec-root>/runtime-runc/moby` for dockerd 20.10, whatever its exec root resolves to), never
 *   a guessed path;
 * - the Instances (kube-apiserver): counted, and those no intent owns reported as stale;
 * - the feed and events (NATS): messages counted, HostLost events kept with their time.
 * A part that cannot be read makes the sample blind for that part (the counting skips it), never a false count;
 * intents read less than 10 s ago stand in while NATS is briefly unreachable.
 *
 * Faults are declared with {@link Oracle.faultStarted} / {@link Oracle.faultHealed}, so the counting knows the
 * windows in which losses, duplicates and restarts on the touched hosts are allowed.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import Docker from 'dockerode';
import { sleep } from '../../deploy/stack/proc.js';
import { connectNats } from '../../shared/nats/connect.js';
import { DeploymentIntent, decode, EventFeed } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { safeName } from '../../shared/os.js';
import {
  countOracle,
  type FaultWindow,
  type IntendedSlot,
  type LeakedObject,
  type OracleCounts,
  type OracleOptions,
  type OracleSample,
  type RunningCopy,
} from './oracle-count.js';
import type { Topology } from './topology.js';

/** What the oracle watches: the parts of a topology it reads. */
export type OracleTarget = Pick<Topology, 'natsUrls' | 'kube'> & {
  /** The hosts whose instances count, each with the agent's directory (its VMs are under `<dir>/state/vms`). */
  agents: { host: string; dir: string }[];
};

/** Options of {@link startOracle}. */
export interface StartOracleOptions extends Partial<OracleOptions> {
  /** Sampling period (default 1000 ms). */
  intervalMs?: number;
  /** The dockerd the agents use (default: the local socket). */
  dockerSocket?: string;
  /** Subject prefix (default `edge`). */
  prefix?: string;
}

/** Figures beyond the four counts. */
export interface OracleFigures {
  /** Feed and event messages received. */
  feedMessages: number;
  /** HostLost events: host and time. */
  hostLost: { host: string; at: number }[];
  /** Rescheduled events. */
  rescheduled: number;
  /** Most Instances seen at once. */
  maxInstances: number;
  /** Instances seen that no intent owned, in more than 60 s of samples (name list, at most 20). */
  staleInstances: string[];
  /** Samples in which a part could not be read, by part. */
  blind: { intents: number; runtime: number; instances: number };
}

/** A running oracle. */
export interface Oracle {
  /** Every sample so far. */
  readonly samples: OracleSample[];
  /** Every fault declared so far. */
  readonly faults: FaultWindow[];
  /** Declares a fault in force from now. */
  faultStarted(name: string, touchedHosts: string[]): FaultWindow;
  /** Declares it healed now. */
  faultHealed(w: FaultWindow): void;
  /** The counts over the samples so far (optionally only those in [from, to]). */
  counts(range?: { from?: number; to?: number }): OracleCounts;
  /** Figures beyond the counts. */
  figures(): OracleFigures;
  /** The runsc `--root`s of the watched dockerd learned so far (from its running containers' sandboxes). */
  runscRoots(): string[];
  /** Stops sampling and closes its connections. */
  stop(): Promise<void>;
}

/** The default bounds' parameters (see oracle-count.ts): generous, for a loaded 2-core machine. */
export const DEFAULT_ORACLE_OPTIONS: OracleOptions = {
  startGraceMs: 90_000,
  healGraceMs: 90_000,
  duplicateGraceMs: 45_000,
  orphanGraceMs: 90_000,
};

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms),
    ),
  ]);

/** Process id → command-line arguments, for every process readable in /proc. */
export function processArgs(): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const args = argsOf(Number(e));
    if (args) out.set(Number(e), args);
  }
  return out;
}

/** A runsc sandbox: its state root and the container it runs (its bundle directory's name). */
export interface Sandbox {
  root: string;
  container: string;
}

/**
 * The runsc sandbox a process's command line is, or undefined: runsc starts it as `runsc-sandbox --root=<root>
 * … boot --bundle=<dir>/<container id> …`.
 */
export function sandboxOf(args: string[] | undefined): Sandbox | undefined {
  if (!args?.[0]?.endsWith('runsc-sandbox')) return undefined;
  const root = args.find((a) => a.startsWith('--root='))?.slice('--root='.length);
  const bundle = args.find((a) => a.startsWith('--bundle='))?.slice('--bundle='.length);
  return root && bundle ? { root, container: path.basename(bundle) } : undefined;
}

/** The command-line arguments of one process, or undefined when it is gone or unreadable. */
export function argsOf(pid: number): string[] | undefined {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return args.length ? args : undefined;
  } catch {
    return undefined;
  }
}

/** The VM directory of a qemu process (from its `-pidfile`), or undefined. */
export function qemuVmDir(args: string[]): string | undefined {
  if (!path.basename(args[0] ?? '').startsWith('qemu-system')) return undefined;
  const i = args.indexOf('-pidfile');
  return i >= 0 && args[i + 1] ? path.dirname(args[i + 1]!) : undefined;
}

/** Starts sampling `t` now. */
export async function startOracle(t: OracleTarget, o: StartOracleOptions = {}): Promise<Oracle> {
  const opts: OracleOptions = {
    startGraceMs: o.startGraceMs ?? DEFAULT_ORACLE_OPTIONS.startGraceMs,
    healGraceMs: o.healGraceMs ?? DEFAULT_ORACLE_OPTIONS.healGraceMs,
    duplicateGraceMs: o.duplicateGraceMs ?? DEFAULT_ORACLE_OPTIONS.duplicateGraceMs,
    orphanGraceMs: o.orphanGraceMs ?? DEFAULT_ORACLE_OPTIONS.orphanGraceMs,
  };
  const intervalMs = o.intervalMs ?? 1000;
  /** The watched dockerd's runsc roots, learned from its running containers' sandboxes. */
  const runscRoots = new Set<string>();
  const subjects = new Subjects(o.prefix ?? 'edge');
  const docker = new Docker(o.dockerSocket ? { socketPath: o.dockerSocket } : {});
  const hosts = new Set(t.agents.map((a) => a.host));
  const vmDirs = t.agents.map((a) => ({ host: a.host, dir: path.join(a.dir, 'state', 'vms') }));

  const nc: NatsConnection = await connectNats({ servers: t.natsUrls, name: 'chaos-oracle' });
  const jsm = await jetstreamManager(nc);
  let kv: KV | undefined;
  const samples: OracleSample[] = [];
  const faults: FaultWindow[] = [];
  const figures: OracleFigures = {
    feedMessages: 0,
    hostLost: [],
    rescheduled: 0,
    maxInstances: 0,
    staleInstances: [],
    blind: { intents: 0, runtime: 0, instances: 0 },
  };
  const subs: Subscription[] = [];
  for (const subject of [subjects.allFeed, subjects.allEvents]) {
    const sub = nc.subscribe(subject);
    subs.push(sub);
    void (async () => {
      for await (const m of sub) {
        figures.feedMessages++;
        if (!m.subject.startsWith(`${subjects.prefix}.events.`)) continue;
        try {
          const e = decode(EventFeed, m.data);
          if (e.reason === 'HostLost') figures.hostLost.push({ host: e.object.name, at: Date.parse(e.time) });
          if (e.reason === 'Rescheduled') figures.rescheduled++;
        } catch {
          // not ours to judge here (the decoders' fuzzing does)
        }
      }
    })();
  }

  let lastIntents: { at: number; slots: IntendedSlot[] } | undefined;
  const readIntents = async (): Promise<IntendedSlot[]> => {
    const bucket = subjects.intentsBucket;
    kv ??= await new Kvm(nc).open(bucket);
    const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: '>' });
    const keyPrefix = `$KV.${bucket}.`;
    const slots: IntendedSlot[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const key = subject.slice(keyPrefix.length);
      if (!subjects.isIntentKey(key)) continue;
      const e = await kv.get(key);
      if (e?.operation !== 'PUT') continue;
      const intent = decode(DeploymentIntent, e.value);
      for (const i of intent.instances)
        slots.push({
          slot: `${intent.namespace}/${i.name}`,
          host: i.host,
          templateHash: i.templateHash ?? intent.templateHash,
          workloadUid: intent.workloadUid ?? '',
        });
    }
    return slots;
  };

  const readRuntime = async (intended: IntendedSlot[] | undefined) => {
    const containers = await docker.listContainers({ all: true });
    const copies = new Map<string, RunningCopy & { idList: string[] }>();
    const live = new Set<string>();
    const started: Promise<void>[] = [];
    for (const c of containers) {
      if (['running', 'created', 'restarting', 'paused'].includes(c.State)) live.add(c.Id);
      const host = c.Labels['edgeplane.dev/host'];
      const ns = c.Labels['edgeplane.dev/namespace'];
      const name = c.Labels['edgeplane.dev/instance'];
      if (!host || !hosts.has(host) || !ns || !name) continue;
      const key = `${ns}/${name}@${host}`;
      const copy = copies.get(key) ?? {
        slot: `${ns}/${name}`,
        host,
        ids: '',
        running: false,
        idList: [],
        templateHash: c.Labels['edgeplane.dev/template-hash'],
      };
      copy.running ||= c.State === 'running';
      copies.set(key, copy);
      // A container restarted in place keeps its id: its start time tells the runs apart.
      started.push(
        (c.State === 'running'
          ? docker
              .getContainer(c.Id)
              .inspect()
              .then((i) => {
                // For runsc, the container's pid is its sandbox's: whose --root is this dockerd's.
                const sandbox = i.State.Pid ? sandboxOf(argsOf(i.State.Pid)) : undefined;
                if (sandbox?.container === c.Id) runscRoots.add(sandbox.root);
                return i.State.StartedAt;
              })
          : Promise.resolve(c.State)
        ).then((at) => void copy.idList.push(`${c.Id.slice(0, 12)}@${at}`)),
      );
    }
    await Promise.all(started);
    const leaked: LeakedObject[] = [];
    const vmSlots = new Map<string, string>();
    for (const i of intended ?? []) {
      const [ns, name] = i.slot.split('/') as [string, string];
      vmSlots.set(`${i.host}/${safeName(`${ns}_${name}`)}`, i.slot);
    }
    for (const [pid, args] of processArgs()) {
      const sandbox = sandboxOf(args);
      if (sandbox && runscRoots.has(sandbox.root) && !live.has(sandbox.container))
        leaked.push({ id: `sandbox:${sandbox.container.slice(0, 12)}` });
      const vmDir = qemuVmDir(args);
      if (!vmDir) continue;
      const owner = vmDirs.find((v) => vmDir.startsWith(`${v.dir}/`));
      if (!owner) continue;
      const slot = vmSlots.get(`${owner.host}/${path.basename(vmDir)}`);
      if (!slot) {
        leaked.push({ id: `qemu:${pid}:${vmDir}`, host: owner.host });
        continue;
      }
      copies.set(`${slot}@${owner.host}`, {
        slot,
        host: owner.host,
        ids: `qemu:${pid}`,
        running: true,
        idList: [],
      });
    }
    return {
      copies: [...copies.values()].map(({ idList, ...c }) => ({
        ...c,
        ids: idList.length ? idList.sort().join(',') : c.ids,
      })),
      leaked,
    };
  };

  const kubeUrl = new URL(t.kube.server);
  const readInstances = () =>
    new Promise<{ namespace: string; name: string }[]>((resolve, reject) => {
      const req = https.request(
        {
          host: kubeUrl.hostname,
          port: kubeUrl.port,
          path: '/apis/compute.datumapis.com/v1alpha1/instances',
          ca: t.kube.caPem,
          headers: { authorization: `Bearer ${t.kube.token}` },
          timeout: 3000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => {
            body += d;
          });
          res.on('end', () => {
            if (res.statusCode !== 200) return reject(new Error(`instances: HTTP ${res.statusCode}`));
            const items = (JSON.parse(body) as { items: { metadata: { namespace: string; name: string } }[] })
              .items;
            resolve(items.map((i) => i.metadata));
          });
        },
      );
      req.on('error', reject).on('timeout', () => req.destroy(new Error('instances: timed out')));
      req.end();
    });

  const staleSince = new Map<string, number>();
  const sampleOnce = async (): Promise<OracleSample> => {
    const at = Date.now();
    let intended: IntendedSlot[] | undefined;
    try {
      intended = await withTimeout(readIntents(), 3000, 'intents');
      lastIntents = { at, slots: intended };
    } catch {
      figures.blind.intents++;
      if (lastIntents && at - lastIntents.at < 10_000) intended = lastIntents.slots;
    }
    const [runtime, instances] = await Promise.allSettled([
      withTimeout(readRuntime(intended), 5000, 'runtime'),
      withTimeout(readInstances(), 5000, 'instances'),
    ]);
    if (runtime.status === 'rejected') figures.blind.runtime++;
    if (instances.status === 'rejected') figures.blind.instances++;
    else {
      figures.maxInstances = Math.max(figures.maxInstances, instances.value.length);
      const owned = new Set((intended ?? []).map((i) => i.slot));
      for (const i of instances.value) {
        const slot = `${i.namespace}/${i.name}`;
        if (!intended || owned.has(slot)) staleSince.delete(slot);
        else if (!staleSince.has(slot)) staleSince.set(slot, at);
        else if (at - staleSince.get(slot)! > 60_000 && !figures.staleInstances.includes(slot))
          if (figures.staleInstances.length < 20) figures.staleInstances.push(slot);
      }
    }
    return {
      at,
      intended,
      copies: runtime.status === 'fulfilled' ? runtime.value.copies : undefined,
      leaked: runtime.status === 'fulfilled' ? runtime.value.leaked : [],
    };
  };

  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      samples.push(await sampleOnce());
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
  })();

  return {
    samples,
    faults,
    faultStarted: (name, touchedHosts) => {
      const w: FaultWindow = { name, start: Date.now(), end: undefined, touchedHosts };
      faults.push(w);
      return w;
    },
    faultHealed: (w) => {
      w.end = Date.now();
    },
    counts: (range = {}) =>
      countOracle(
        samples.filter((s) => s.at >= (range.from ?? 0) && s.at <= (range.to ?? Number.POSITIVE_INFINITY)),
        faults,
        opts,
      ),
    runscRoots: () => [...runscRoots],
    figures: () => ({
      ...figures,
      hostLost: [...figures.hostLost],
      staleInstances: [...figures.staleInstances],
    }),
    stop: async () => {
      running = false;
      await loop;
      for (const s of subs) s.unsubscribe();
      await nc.close();
    },
  };
}
