/**
 * {@link HostNetwork} on Linux: iproute2 for devices, nftables for rules. Every call observes the host, plans
 * (plan.ts) and applies the plan (apply.ts), one call at a time. Nothing is remembered between calls but the
 * last segment list (so that attaching or detaching keeps the flood lists exact); a new object on a host with
 * ports adopts them from their marks.
 */
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { InterfaceAssignment, NetworkSegment } from '../../shared/nats/messages.js';
import { applyOps } from './apply.js';
import { type Argv, Commands } from './commands.js';
import type { DesiredHost, DesiredInstance, DesiredSegment, HostOp } from './host-model.js';
import type { AttachTarget, HostNetwork, HostPort } from './host-network.js';
import { encodeMark, portName } from './marks.js';
import { observeHost } from './observe.js';
import { inChain, outChain, planHost } from './plan.js';
import { parseIPv4 } from './rules.js';

/** How a {@link LinuxHostNetwork} is set up. */
export interface LinuxHostNetworkOptions {
  /** This host's overlay (VXLAN underlay) address: the agent's overlay address flag. */
  overlayAddress: string;
  /** Underlay device the VXLAN devices are bound to; absent: routed by the kernel. */
  underlayDevice?: string;
  /**
   * Named network namespace (`ip netns`) that stands for the host; absent: the agent's own. Lets tests, the
   * benchmark and the dev stack run several "hosts" on one machine.
   */
  netns?: string;
  /**
   * Directory of the port state files (each port's ingress policy, which rules cannot be read back from);
   * default `/run/edgeplane/network/<netns or "host">` — on tmpfs, gone at reboot like the devices.
   */
  stateDir?: string;
  /** Called with every command line before it runs (reads included). */
  onCommand?: (argv: Argv) => void;
  /** Where applied operations are logged. */
  logger?: Logger;
}

/** At most this many interfaces per instance (device names carry the index in one base-36 digit). */
const MAX_INTERFACES = 36;

export class LinuxHostNetwork implements HostNetwork {
  private readonly cmd: Commands;
  private readonly stateDir: string;
  /** The segments of the last syncSegments; undefined until then (observed ones are kept as they are). */
  private segments: DesiredSegment[] | undefined;
  /** Calls run one at a time: each plans from what the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: LinuxHostNetworkOptions) {
    if (parseIPv4(options.overlayAddress) === undefined) {
      throw new Error(`overlayAddress: "${options.overlayAddress}" is not an IPv4 address`);
    }
    this.cmd = new Commands(options.netns, options.onCommand);
    this.stateDir = options.stateDir ?? `/run/edgeplane/network/${options.netns ?? 'host'}`;
  }

  syncSegments(segments: readonly NetworkSegment[]): Promise<void> {
    const desired = segments.map((s) => ({
      segment: s.segment,
      network: s.network,
      mtu: s.mtu,
      peers: [...new Set(s.peers.map((p) => p.address))].filter((a) => a !== this.options.overlayAddress),
    }));
    return this.serial(async () => {
      this.segments = desired;
      await this.converge([]);
    });
  }

  attach(
    instance: string,
    target: AttachTarget,
    assignments: readonly InterfaceAssignment[],
  ): Promise<HostPort[]> {
    if (assignments.length > MAX_INTERFACES) {
      return Promise.reject(new Error(`interfaces: ${assignments.length} is more than ${MAX_INTERFACES}`));
    }
    return this.serial(async () => {
      let desiredTarget: DesiredInstance['target'] = { kind: 'tap' };
      if (target.kind === 'netns') {
        let id: string;
        try {
          id = String(fs.statSync(target.path).ino);
        } catch (e) {
          throw new Error(`target.path: ${target.path}: ${(e as Error).message}`);
        }
        desiredTarget = {
          kind: 'netns',
          path: target.path,
          id,
          ...(target.dhcpServer ? { dhcpServer: true } : {}),
        };
      }
      await this.converge([{ instance, target: desiredTarget, assignments }]);
      const kind = target.kind === 'netns' ? 'veth' : 'tap';
      return assignments.map((assignment, i) => ({
        instance,
        assignment,
        device: portName(kind, instance, i),
      }));
    });
  }

  detach(instance: string): Promise<void> {
    return this.serial(async () => {
      await this.converge([{ instance, target: { kind: 'tap' }, assignments: [] }]);
    });
  }

  /**
   * Every port on the host, from the devices' marks, each with the assignment it was attached with (its ingress
   * policy from the port's state file) and whether its rules are in force.
   */
  list(): Promise<HostPort[]> {
    return this.serial(async () => {
      const observed = await observeHost(this.cmd, this.stateDir);
      return observed.links
        .flatMap((l) => {
          const m = l.mark;
          if (m?.edgeplane !== 'port') return [];
          const state = observed.states[l.name];
          const known = state?.alias === encodeMark(m);
          const assignment: InterfaceAssignment = {
            network: m.n,
            segment: m.s,
            name: m.f,
            mac: m.m,
            address: m.a,
            mtu: m.u,
            primary: m.p,
            ...(known && state.ingress ? { ingress: state.ingress } : {}),
          };
          const r = observed.rules;
          const mark = r?.complete ? r.portMark[l.name] : undefined;
          const rulesInForce =
            known &&
            mark !== undefined &&
            r!.fromPort[l.name] === inChain(m, l.name).chain &&
            r!.ingress[String(mark)] === outChain(m.k, state.ingress, l.name, 'ingress').chain &&
            (observed.forwardDrop?.allowed ?? true);
          return [{ port: { instance: m.i, assignment, device: l.name, rulesInForce }, index: m.x }];
        })
        .sort((a, b) => a.port.instance.localeCompare(b.port.instance) || a.index - b.index)
        .map((p) => p.port);
    });
  }

  /** Observes, plans for `instances`, and applies; throws (running nothing) when a foreign device is in the way. */
  private async converge(instances: DesiredInstance[]): Promise<HostOp[]> {
    const observed = await observeHost(this.cmd, this.stateDir);
    const desired: DesiredHost = {
      overlayAddress: this.options.overlayAddress,
      instances,
      ...(this.options.underlayDevice ? { underlayDevice: this.options.underlayDevice } : {}),
      ...(this.segments ? { segments: this.segments } : {}),
    };
    const plan = planHost(observed, desired);
    if (plan.conflicts.length) {
      throw new Error(`devices not created by edgeplane are in the way: ${plan.conflicts.join(', ')}`);
    }
    if (plan.ops.length) {
      this.options.logger?.info(
        { netns: this.options.netns, ops: plan.ops.map(summary) },
        `host network: applying ${plan.ops.length} operation(s)`,
      );
      await applyOps(this.cmd, plan.ops, this.stateDir);
    }
    return plan.ops;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

/** One line per operation for the log. */
function summary(o: HostOp): string {
  switch (o.op) {
    case 'addChain':
    case 'deleteChain':
      return `${o.op} ${o.chain}`;
    case 'setEntry':
      return `${o.op} ${o.map}[${o.key}]=${o.value}`;
    case 'deleteEntry':
      return `${o.op} ${o.map}[${o.key}]`;
    case 'addTable':
    case 'deleteTable':
      return o.op;
    case 'addFlood':
    case 'deleteFlood':
      return `${o.op} ${o.device} ${o.peer}`;
    case 'forwardRule':
      return `${o.op} ${o.chain} ${o.allow ? 'allow' : 'remove'}`;
    default:
      return `${o.op} ${o.device}`;
  }
}
