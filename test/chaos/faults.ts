/**
 * The fault library of the chaos suite and the soak. Faults are made only through parts the tests own: signals
 * to our own processes, the fault proxies of the topology (test/chaos/topology.ts), our own files. Never the
 * machine's interfaces, never the machine's dockerd.
 *
 * Three layers, each built on the one before:
 * 1. primitives — a signal to a process, a proxy action ({@link cut}, {@link slow}, {@link closeAfter});
 * 2. topology faults — {@link isolateAgent}, {@link isolateNatsMember}, {@link killAgent}, … each returning a
 *    {@link Heal} that undoes it;
 * 3. soak faults — {@link SoakFault}: a named fault the soak (test/chaos/soak.ts) injects at random and a
 *    scenario test can run once. A scenario that should also run in the soak adds its SoakFault to
 *    {@link SOAK_FAULTS} (see test/chaos/README.md).
 */
import { pidAlive } from '../../deploy/stack/index.js';
import { sleep } from '../../deploy/stack/proc.js';
import type { FaultProxy } from '../harness/fault-proxy.js';
import { stateDiskFull } from './disk/soak-faults.js';
import { agentMemorySqueeze } from './process/soak-faults.js';
import type { Heal, SoakFault } from './soak-fault.js';

export type { Heal, InjectedFault, SoakFault } from './soak-fault.js';

import type { ChaosAgent, ChaosCoordinator, ChaosProcess, NatsMember, Topology } from './topology.js';

/** Wraps `fn` so that only its first call runs. */
function once(fn: () => Promise<void> | void): Heal {
  let done: Promise<void> | undefined;
  return () => {
    done ??= Promise.resolve(fn());
    return done;
  };
}

// ---- 1. Primitives ----

/** Sends `sig` to `pid` (no-op when it is gone). */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/** SIGSTOPs `pid`; the heal SIGCONTs it. */
export function stop(pid: number): Heal {
  signal(pid, 'SIGSTOP');
  return once(() => signal(pid, 'SIGCONT'));
}

/** SIGKILLs `pid` and waits until it is gone. */
export async function sigkill(pid: number): Promise<void> {
  signal(pid, 'SIGKILL');
  while (pidAlive(pid)) await sleep(20);
}

/** How a link is cut. */
export type CutMode =
  /** Both directions dropped, sockets left open: a half-open link only pings notice. */
  | 'blackhole'
  /** Open connections reset, new ones refused: a link that is down and known to be. */
  | 'reset';

/** Cuts every connection through `proxies`; the heal restores them (clients then reconnect by themselves). */
export function cut(proxies: FaultProxy[], mode: CutMode): Heal {
  for (const p of proxies) {
    if (mode === 'blackhole') p.set('both', { mode: 'blackhole' });
    else {
      p.refuse(true);
      p.reset();
    }
  }
  return once(() => {
    for (const p of proxies) p.heal();
  });
}

/** Adds latency with jitter (ms) to both directions of `proxies`. */
export function slow(proxies: FaultProxy[], latencyMs: number, jitterMs = 0): Heal {
  for (const p of proxies) p.set('both', { latencyMs, jitterMs });
  return once(() => {
    for (const p of proxies) p.heal();
  });
}

/** Closes each connection through `proxies` after `bytes` more bytes in `direction`. */
export function closeAfter(proxies: FaultProxy[], direction: 'up' | 'down' | 'both', bytes: number): Heal {
  for (const p of proxies) p.set(direction, { closeAfterBytes: bytes });
  return once(() => {
    for (const p of proxies) p.heal();
  });
}

// ---- 2. Topology faults ----

/** Cuts an agent from every NATS member. */
export function isolateAgent(agent: ChaosAgent, mode: CutMode): Heal {
  return cut(agent.natsProxies, mode);
}

/** Cuts a coordinator from every NATS member (its kube-apiserver link stays up). */
export function cutCoordinatorFromNats(c: ChaosCoordinator, mode: CutMode): Heal {
  return cut(c.natsProxies, mode);
}

/** Cuts a coordinator from kube-apiserver (its NATS links stay up). */
export function cutCoordinatorFromKube(c: ChaosCoordinator, mode: CutMode): Heal {
  return cut([c.kubeProxy], mode);
}

/** The proxies that carry member `i`'s traffic: its routes both ways and every client's link to it. */
export function proxiesOfMember(t: Topology, i: number): FaultProxy[] {
  const routes = t.nats.flatMap((m) =>
    m.index === i ? [...m.routeProxies.values()] : [m.routeProxies.get(i)].filter((p) => p !== undefined),
  );
  const clients = [...t.coordinators, ...t.agents].map((c) => c.natsProxies[i]!);
  return [...routes, ...clients];
}

/** Cuts member `i` from the other members and from every client: the member itself keeps running. */
export function isolateNatsMember(t: Topology, i: number, mode: CutMode): Heal {
  return cut(proxiesOfMember(t, i), mode);
}

/** Cuts only the routes between members `i` and `j` (both directions). */
export function cutRoute(t: Topology, i: number, j: number, mode: CutMode): Heal {
  return cut([t.nats[i]!.routeProxies.get(j)!, t.nats[j]!.routeProxies.get(i)!], mode);
}

/** SIGKILLs a coordinator or agent; the heal starts it again with the same state directory. */
export async function killProcess(p: ChaosProcess): Promise<Heal> {
  await p.proc.kill();
  return once(() => p.restart());
}

/** SIGSTOPs a coordinator or agent; the heal SIGCONTs it. */
export function pauseProcess(p: ChaosProcess): Heal {
  return stop(p.proc.pid);
}

/** SIGKILLs a NATS member; the heal restarts it with its store. */
export async function killNatsMember(m: NatsMember): Promise<Heal> {
  await m.server.kill();
  return once(() => m.server.restart());
}

/** SIGSTOPs a NATS member; the heal SIGCONTs it. */
export function pauseNatsMember(m: NatsMember): Heal {
  return stop(m.server.pid);
}

/** The coordinator holding the Lease, or the first one when none does. */
export async function leaderOrFirst(t: Topology): Promise<ChaosCoordinator> {
  return (await t.leader()) ?? t.coordinators[0]!;
}

// ---- 3. Soak faults ----

const agentKill: SoakFault = {
  name: 'process/agent-kill',
  holdMs: [5_000, 20_000],
  inject: async (t, rng) => {
    const a = rng.pick(t.agents);
    return { detail: `SIGKILL agent ${a.host}`, touchedHosts: [a.host], heal: await killProcess(a) };
  },
};

const coordinatorKill: SoakFault = {
  name: 'process/coordinator-kill',
  holdMs: [2_000, 15_000],
  inject: async (t) => {
    const c = await leaderOrFirst(t);
    return { detail: `SIGKILL ${c.name} (leader)`, touchedHosts: [], heal: await killProcess(c) };
  },
};

const natsMemberKill: SoakFault = {
  name: 'nats/member-kill',
  holdMs: [5_000, 30_000],
  applies: (t) => t.nats.length >= 3,
  inject: async (t, rng) => {
    const m = rng.pick(t.nats);
    return { detail: `SIGKILL nats member n${m.index + 1}`, touchedHosts: [], heal: await killNatsMember(m) };
  },
};

const natsMemberPause: SoakFault = {
  name: 'nats/member-pause',
  holdMs: [5_000, 30_000],
  applies: (t) => t.nats.length >= 3,
  inject: async (t, rng) => {
    const m = rng.pick(t.nats);
    return { detail: `SIGSTOP nats member n${m.index + 1}`, touchedHosts: [], heal: pauseNatsMember(m) };
  },
};

const natsMemberPartition: SoakFault = {
  name: 'nats/member-partition',
  holdMs: [10_000, 40_000],
  applies: (t) => t.nats.length >= 3,
  inject: async (t, rng) => {
    const m = rng.pick(t.nats);
    const mode = rng.pick<CutMode>(['blackhole', 'reset']);
    return {
      detail: `${mode} nats member n${m.index + 1} (routes and clients)`,
      touchedHosts: [],
      heal: isolateNatsMember(t, m.index, mode),
    };
  },
};

const agentPartition: SoakFault = {
  name: 'partition/agent',
  holdMs: [10_000, 60_000],
  inject: async (t, rng) => {
    const a = rng.pick(t.agents);
    const mode = rng.pick<CutMode>(['blackhole', 'reset']);
    return {
      detail: `${mode} agent ${a.host} from NATS`,
      touchedHosts: [a.host],
      heal: isolateAgent(a, mode),
    };
  },
};

const coordinatorNatsCut: SoakFault = {
  name: 'partition/coordinator-nats',
  holdMs: [10_000, 45_000],
  inject: async (t, rng) => {
    const c = await leaderOrFirst(t);
    const mode = rng.pick<CutMode>(['blackhole', 'reset']);
    return {
      detail: `${mode} ${c.name} (leader) from NATS`,
      touchedHosts: [],
      heal: cutCoordinatorFromNats(c, mode),
    };
  },
};

const coordinatorPause: SoakFault = {
  name: 'pause/coordinator',
  holdMs: [10_000, 45_000],
  inject: async (t) => {
    const c = await leaderOrFirst(t);
    return { detail: `SIGSTOP ${c.name} (leader)`, touchedHosts: [], heal: pauseProcess(c) };
  },
};

const coordinatorKubeCut: SoakFault = {
  name: 'partition/coordinator-kube',
  holdMs: [10_000, 40_000],
  inject: async (t, rng) => {
    const c = await leaderOrFirst(t);
    const mode = rng.pick<CutMode>(['blackhole', 'reset']);
    return {
      detail: `${mode} ${c.name} (leader) from kube-apiserver`,
      touchedHosts: [],
      heal: cutCoordinatorFromKube(c, mode),
    };
  },
};

const natsRouteCut: SoakFault = {
  name: 'nats/route-cut',
  holdMs: [10_000, 40_000],
  applies: (t) => t.nats.length >= 3,
  inject: async (t, rng) => {
    const [i, j] = rng.sample(
      t.nats.map((m) => m.index),
      2,
    ) as [number, number];
    const mode = rng.pick<CutMode>(['blackhole', 'reset']);
    return {
      detail: `${mode} the routes n${i + 1}-n${j + 1}`,
      touchedHosts: [],
      heal: cutRoute(t, i, j, mode),
    };
  },
};

const agentHalfOpenToMember: SoakFault = {
  name: 'partition/agent-half-open-member',
  holdMs: [20_000, 60_000],
  applies: (t) => t.nats.length >= 3,
  // The agent must notice by its pings and move to another member: its host stays Ready, nothing moves.
  inject: async (t, rng) => {
    const a = rng.pick(t.agents);
    const i = rng.int(0, t.nats.length - 1);
    return {
      detail: `blackhole agent ${a.host}'s link to n${i + 1}`,
      touchedHosts: [],
      heal: cut([a.natsProxies[i]!], 'blackhole'),
    };
  },
};

const agentSlowLink: SoakFault = {
  name: 'partition/agent-slow',
  holdMs: [20_000, 60_000],
  inject: async (t, rng) => {
    const a = rng.pick(t.agents);
    const latency = rng.int(100, 800);
    const jitter = rng.int(0, latency);
    return {
      detail: `agent ${a.host}'s NATS links ${latency} ± ${jitter} ms`,
      touchedHosts: [a.host],
      heal: slow(a.natsProxies, latency, jitter),
    };
  },
};

const agentFlappingLink: SoakFault = {
  name: 'partition/agent-flap',
  holdMs: [20_000, 60_000],
  // Every connection (and every reconnect) dies after a few KiB: a link that keeps breaking mid-message.
  inject: async (t, rng) => {
    const a = rng.pick(t.agents);
    const bytes = rng.int(2_000, 64_000);
    return {
      detail: `agent ${a.host}'s NATS links close after ${bytes} bytes each way`,
      touchedHosts: [a.host],
      heal: closeAfter(a.natsProxies, 'both', bytes),
    };
  },
};

/**
 * Every fault the soak picks from. Scenario authors: add yours here (one entry, defined in your scenario's
 * vitest-free module or above), so the soak injects it too.
 */
export const SOAK_FAULTS: SoakFault[] = [
  agentKill,
  coordinatorKill,
  natsMemberKill,
  natsMemberPause,
  natsMemberPartition,
  agentPartition,
  coordinatorNatsCut,
  coordinatorPause,
  coordinatorKubeCut,
  natsRouteCut,
  agentHalfOpenToMember,
  agentSlowLink,
  agentFlappingLink,
  stateDiskFull,
  agentMemorySqueeze,
];
