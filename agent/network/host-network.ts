/**
 * The agent's side of Networks: the contract between the drivers and the code that programs the host's
 * network. One bridge per segment (Network) on the host, with no host address on it, joined to the other
 * hosts of the segment by a VXLAN device (one VXLAN id per Network, peers from the segments bucket); one port
 * per instance attachment (a veth whose other end lives in the instance's network namespace, or a tap a VM
 * uses), with ingress policy and anti-spoofing enforced on the host side of that port.
 *
 * Everything a HostNetwork creates is named and marked so that {@link HostNetwork.list} finds it again after
 * an agent restart (adoption, as the drivers do with containers and VM directories), never by what this
 * process remembers. Every method is idempotent.
 */
import type { InterfaceAssignment, NetworkSegment } from '../../shared/nats/messages.js';

/** Where an instance's attachments go. */
export type AttachTarget =
  /**
   * A container's network namespace (e.g. `/proc/<pid>/ns/net` of the instance's holder container).
   * `dhcpServer`: the namespace serves DHCP to the segment's VMs, so its ports may send DHCP replies (udp from
   * port 67), which every other port is denied.
   */
  | { kind: 'netns'; path: string; dhcpServer?: boolean }
  /** A VM: the ports are tap devices the VM's QEMU opens by name. */
  | { kind: 'tap' };

/** One attachment as it exists on the host. */
export interface HostPort {
  /** `<namespace>/<instance>` the port belongs to. */
  instance: string;
  /** The assignment it was programmed from. */
  assignment: InterfaceAssignment;
  /** Name of the host-side device (veth end or tap). */
  device: string;
  /**
   * From {@link HostNetwork.list}: whether the port's rules (anti-spoofing and the assignment's ingress policy)
   * are in force; false after its rules were lost (e.g. a flushed ruleset) — attach it again.
   */
  rulesInForce?: boolean;
}

/** The host's network, as the drivers and the reconciler use it. */
export interface HostNetwork {
  /**
   * Brings the host's segments to `segments`: a bridge and a VXLAN device for each, the VXLAN's flood list set
   * to the peers (less this host). Segments not listed and with no port left are removed.
   */
  syncSegments(segments: readonly NetworkSegment[]): Promise<void>;
  /**
   * Programs one instance's attachments: for `netns`, a veth per assignment moved into that namespace, named,
   * addressed, with its MAC and MTU, up; for `tap`, a tap per assignment on its segment's bridge. Policy and
   * anti-spoofing rules of each port are (re)written. Returns the host-side devices in assignment order (the
   * tap names a VM must open). Creates a segment's bridge if `syncSegments` has not yet.
   */
  attach(
    instance: string,
    target: AttachTarget,
    assignments: readonly InterfaceAssignment[],
  ): Promise<HostPort[]>;
  /** Removes every port and rule of the instance; a no-op when it has none. */
  detach(instance: string): Promise<void>;
  /** Every port on the host, found from the devices themselves (for adoption and removing what no intent needs). */
  list(): Promise<HostPort[]>;
}
