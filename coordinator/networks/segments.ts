/**
 * The segments bucket's contents, pure: for every Network with instances, for every location that has some,
 * key `<location>.<segment>` → the Network's peer list: every host, in any location, with an instance on it,
 * with the overlay address it reports. Hosts that report none are left out (placement puts no attached
 * instance there). Invariant: a host is a peer of a segment exactly when one of its instances is attached.
 */
import type { NetworkSegment } from '../../shared/nats/messages.js';
import type { Subjects } from '../../shared/nats/subjects.js';

/** One interface of one instance, where it runs. */
export interface SegmentMember {
  /** The Network, `<namespace>/<name>`. */
  network: string;
  /** Its segment id. */
  segment: number;
  /** Its effective MTU. */
  mtu: number;
  /** Location of the instance. */
  location: string;
  /** Host of the instance. */
  host: string;
}

/** A segment entry without its version and time (NetworkSegment's other fields): what decides a change. */
export interface SegmentEntry {
  /** Segment id. */
  segment: number;
  /** The Network, `<namespace>/<name>`. */
  network: string;
  /** Effective MTU. */
  mtu: number;
  /** Hosts with an instance on the segment and their overlay addresses, by host name. */
  peers: NetworkSegment['peers'];
}

/** The entries the bucket should hold, by key. */
export function desiredSegments(
  members: Iterable<SegmentMember>,
  overlayOf: (host: string) => string | undefined,
  subjects: Subjects,
): Map<string, SegmentEntry> {
  const bySegment = new Map<
    number,
    { network: string; mtu: number; locations: Set<string>; hosts: Set<string> }
  >();
  for (const m of members) {
    const s = bySegment.get(m.segment) ?? {
      network: m.network,
      mtu: m.mtu,
      locations: new Set(),
      hosts: new Set(),
    };
    s.locations.add(m.location);
    s.hosts.add(m.host);
    bySegment.set(m.segment, s);
  }
  const out = new Map<string, SegmentEntry>();
  for (const [segment, s] of [...bySegment].sort((a, b) => a[0] - b[0])) {
    const peers = [...s.hosts].sort().flatMap((host) => {
      const address = overlayOf(host);
      return address ? [{ host, address }] : [];
    });
    for (const location of [...s.locations].sort())
      out.set(subjects.segmentKey(location, segment), { segment, network: s.network, mtu: s.mtu, peers });
  }
  return out;
}
