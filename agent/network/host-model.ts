/**
 * The host network's model, as plain data: what the planner observes of the host (devices, flood entries, the
 * nftables tables, port state files), what the host must have (segments, instance ports), and the operations
 * that take the one to the other. The planner (plan.ts) reads and writes it, the observer (observe.ts) fills
 * it from the host, the applier (apply.ts) runs the operations, and simulate.ts states what each one does.
 */
import type { IngressRule, InterfaceAssignment } from '../../shared/nats/messages.js';
import type { Mark, OverlayMark, PortMark, SegmentMark } from './marks.js';

/** The standard VXLAN UDP port. */
export const VXLAN_PORT = 4789;

// ---------------------------------------------------------------------------------------------------------
// Observed
// ---------------------------------------------------------------------------------------------------------

/** A network device of the host as `ip -json -details link show` reports it. */
export interface ObservedLink {
  /** Interface name. */
  name: string;
  /** `linkinfo.info_kind`: bridge, vxlan, veth, tun, … ('' when none). */
  kind: string;
  /** Our mark, when the alias holds one. */
  mark?: Mark;
  /** Bridge it is a port of. */
  master?: string;
  /** Administratively up. */
  up: boolean;
  /** MTU. */
  mtu: number;
  /** VXLAN parameters, for vxlan devices. */
  vxlan?: { id: number; local?: string; port: number; device?: string };
  /** Whether a bridge passes its IPv4 traffic through the inet hooks (br_netfilter: conntrack). */
  nfCallIptables?: boolean;
}

/** The maps of the two tables, each as key → value. */
export interface RuleMaps {
  /** bridge `from_port`: device → the `in_` chain (anti-spoofing) of what it sends. */
  fromPort: Record<string, string>;
  /** bridge `port_mark`: device → the packet mark that stands for it when a packet is delivered to it. */
  portMark: Record<string, number>;
  /** ip `ingress`: port mark → the `out_` chain (ingress policy) of the port. */
  ingress: Record<string, string>;
  /** ip `zones`: bridge → its conntrack zone. */
  zones: Record<string, number>;
}

/** The tables `bridge edgeplane` and `ip edgeplane` as observed. */
export interface ObservedRules extends RuleMaps {
  /** Both tables exist with their base chains and maps. */
  complete: boolean;
  /** Names of the chains other than the base chains (`in_…` in the bridge table, `out_…` in the ip table). */
  chains: string[];
}

/** Everything the planner looks at. */
export interface ObservedHost {
  /** Every device in the host's network namespace. */
  links: ObservedLink[];
  /** Flood list (all-zero FDB entries) of each VXLAN device: device → peer addresses. */
  flood: Record<string, string[]>;
  /** The table, or null when it does not exist. */
  rules: ObservedRules | null;
  /**
   * The iptables (iptables-nft) FORWARD chain, when its policy is drop (Docker sets that): br_netfilter passes
   * bridged IPv4 through it too, so segments need an accept rule there. Absent: nothing to do.
   */
  forwardDrop?: ForwardDrop;
  /** Port state files (`<stateDir>/<device>.json`) by device: the policy each port was last attached with. */
  states: Record<string, PortState>;
}

/**
 * What a port was last attached with, beyond what its mark says: its ingress policy (compiled into rules, which
 * cannot be read back). Kept in a file per port, valid only while `alias` equals the device's mark.
 */
export interface PortState {
  /** The device's alias (encoded mark) when the state was written. */
  alias: string;
  /** The assignment's ingress policy; absent: every source and port is let in. */
  ingress?: IngressRule[];
}

/** An iptables FORWARD chain with policy drop, and whether our accept rule is in place. */
export interface ForwardDrop {
  /** Where the accept rule goes: `DOCKER-USER` when it exists (Docker's place for it), else `FORWARD`. */
  chain: 'DOCKER-USER' | 'FORWARD';
  /** Whether the rule accepting bridge-to-bridge traffic of our bridges (`ep-br-*`) is there. */
  allowed: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Desired
// ---------------------------------------------------------------------------------------------------------

/** A segment as the coordinator published it, reduced to what this host programs. */
export interface DesiredSegment {
  /** Segment id (VXLAN id). */
  segment: number;
  /** The Network, for the bridge's mark. */
  network: string;
  /** MTU of the bridge and the VXLAN device. */
  mtu: number;
  /** Overlay addresses of the other hosts (flood list), this host's own already left out. */
  peers: string[];
}

/** Where an instance's ports go. */
export type DesiredTarget =
  /**
   * A network namespace: a veth each, the other end moved there. `id` is the namespace's inode; `dhcpServer`
   * lets its ports send DHCP replies.
   */
  | { kind: 'netns'; path: string; id: string; dhcpServer?: boolean }
  /** A VM: a tap each. */
  | { kind: 'tap' };

/** The desired ports of one instance; no assignment means detach. */
export interface DesiredInstance {
  /** `<namespace>/<instance>`. */
  instance: string;
  /** Where the ports go (irrelevant when `assignments` is empty). */
  target: DesiredTarget;
  /** Its attachments, in order. */
  assignments: readonly InterfaceAssignment[];
}

/** What the host must have. */
export interface DesiredHost {
  /** VXLAN local (underlay) address of this host. */
  overlayAddress: string;
  /** Underlay device the VXLAN devices are bound to, if any. */
  underlayDevice?: string;
  /** Segments of the host; absent: the observed ones stay as they are (plus what ports need). */
  segments?: DesiredSegment[];
  /** Instances whose ports are set by this pass; every other instance's ports stay. */
  instances: DesiredInstance[];
}

// ---------------------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------------------

/** One step of a plan. Device operations name the device; rule operations the chain or map entry. */
export type HostOp =
  /** Create the table with its base chains and maps; `reset` deletes an incomplete one first. */
  | { op: 'addTable'; reset: boolean }
  | { op: 'deleteTable' }
  | { op: 'addChain'; chain: string; rules: string[] }
  | { op: 'deleteChain'; chain: string }
  /** Set a map entry (`replace`: one with this key exists and goes first). */
  | { op: 'setEntry'; map: keyof RuleMaps; key: string; value: string | number; replace: boolean }
  | { op: 'deleteEntry'; map: keyof RuleMaps; key: string }
  | { op: 'addBridge'; device: string; mark: SegmentMark; mtu: number }
  | {
      op: 'addVxlan';
      device: string;
      mark: OverlayMark;
      bridge: string;
      mtu: number;
      local: string;
      underlay?: string;
    }
  /** Bring a marked device to its MTU, up state, bridge option. */
  | { op: 'fixLink'; device: string; mtu?: number; up?: true; nfCallIptables?: true; master?: string }
  | { op: 'addFlood'; device: string; peer: string }
  | { op: 'deleteFlood'; device: string; peer: string }
  | {
      op: 'addPort';
      device: string;
      mark: PortMark;
      bridge: string;
      /** The network namespace the veth's other end goes to; absent for a tap. */
      netns?: string;
    }
  | { op: 'deleteLink'; device: string; kind: string }
  /** Write (or remove, `state` absent) a port's state file. */
  | { op: 'setState'; device: string; state?: PortState }
  /** Add (`allow`) or remove our accept rule in the iptables chain. */
  | { op: 'forwardRule'; chain: ForwardDrop['chain']; allow: boolean };

/** A plan: operations in order, and what could not be planned (a foreign device in the way). */
export interface HostPlan {
  ops: HostOp[];
  /** Devices that must be created but whose name an unmarked device holds; nothing of the plan should run. */
  conflicts: string[];
}

/** Name of both tables, and of their base chains. */
export const TABLE = 'edgeplane';
export const BASE_CHAINS = ['prerouting', 'forward'];

/** Port marks: this tag in the high 16 bits, a per-host port number in the low 16. */
export const MARK_TAG = 0xe5ed0000;
export const MARK_MASK = 0xffff0000;
