/**
 * The host network planner, pure: what the host has (devices, flood entries, the nftables table, as observed)
 * and what it must have (segments, and the ports of the instances being attached or detached) in, the list of
 * operations that takes the one to the other out. The applier runs them; nothing here touches the host.
 *
 * Algorithm (one pass, level-triggered):
 * 1. Sort the observed devices by mark: segment bridges, overlay (VXLAN) devices, instance ports; everything
 *    unmarked is foreign and only ever stands in the way (a conflict), never changed.
 * 2. Ports: each instance in `instances` gets exactly its desired ports; a port that differs in anything the
 *    device carries (kind, segment, MAC, address, MTU, name, target namespace) or is not up on its bridge is
 *    deleted and created again. Ports of every other instance are kept as they are.
 * 3. Segments: the desired segments (or, when `segments` is absent, those observed) plus every segment a port
 *    needs. Each gets a bridge (its conntrack zone kept, or allocated) and a VXLAN device on it; when the segment
 *    was given, MTU and the flood list are made exact. Marked segments that are not wanted and have no port are
 *    removed.
 * 4. Rules: one table `bridge edgeplane`; per port an `in_` chain (anti-spoofing, sets the segment's zone) and,
 *    for the ports being attached, an `out_` chain (ingress policy), each named after the hash of its rules, so a
 *    chain that exists is a chain with the right rules; verdict maps send each device to its chains. Kept ports
 *    keep their `out_` chain; one without (e.g. after `nft flush ruleset`) is closed by the base chains' catch-all
 *    drop until its instance is attached again. With no segment and no port left, the table goes.
 *    Where an iptables FORWARD policy drops (Docker), one rule there accepts what goes bridge to bridge on
 *    our bridges (br_netfilter shows bridged IPv4 to iptables too); it comes and goes with the tables.
 * 5. Order: table and chain additions and map updates first (a port never carries traffic before its rules
 *    exist), then device deletions, creations and changes, then the removal of map entries and chains no longer
 *    referenced.
 *
 * Invariants (property-tested): planning again on the state the operations produce yields no operation; no
 * device without our mark is ever deleted or changed.
 */
import crypto from 'node:crypto';
import type { IngressRule, InterfaceAssignment } from '../../shared/nats/messages.js';
import {
  type DesiredHost,
  type DesiredTarget,
  type HostOp,
  type HostPlan,
  MARK_MASK,
  MARK_TAG,
  type ObservedHost,
  type PortState,
  type RuleMaps,
  VXLAN_PORT,
} from './host-model.js';
import {
  bridgeName,
  encodeMark,
  type Mark,
  type OverlayMark,
  type PortMark,
  portName,
  type SegmentMark,
  vxlanName,
} from './marks.js';
import { antiSpoofRules, checkAssignment, ingressRules, rulesHash } from './rules.js';

/** Conntrack zones are 16 bits; 0 is the default zone every other packet is in. */
const ZONES = 65_535;

/** A port's mark from its desired assignment. */
export function portMarkOf(
  instance: string,
  index: number,
  a: InterfaceAssignment,
  target: DesiredTarget,
): PortMark {
  const { mac } = checkAssignment(a, `interfaces[${index}]`);
  return {
    edgeplane: 'port',
    i: instance,
    x: index,
    k: target.kind === 'netns' ? 'veth' : 'tap',
    n: a.network,
    s: a.segment,
    f: a.name,
    m: mac,
    a: a.address,
    u: a.mtu,
    p: a.primary,
    ...(target.kind === 'netns' ? { t: target.id } : {}),
    ...(target.kind === 'netns' && target.dhcpServer ? { d: true as const } : {}),
  };
}

const sameMark = (x: Mark | undefined, y: Mark) => x !== undefined && encodeMark(x) === encodeMark(y);

/** Chain of what a port sends. */
export function inChain(mark: PortMark, device: string): { chain: string; rules: string[] } {
  const rules = antiSpoofRules(mark.k, { mac: mark.m, ip: mark.a.split('/')[0]! }, mark.d === true);
  return { chain: `in_${device}_${rulesHash(rules)}`, rules };
}

/** Chain of what is delivered to a port. */
export function outChain(
  kind: 'veth' | 'tap',
  ingress: readonly IngressRule[] | undefined,
  device: string,
  field: string,
): { chain: string; rules: string[] } {
  const rules = ingressRules(kind, ingress, field);
  return { chain: `out_${device}_${rulesHash(rules)}`, rules };
}

interface WantedPort {
  device: string;
  mark: PortMark;
  /** Its out_ chain, when its ingress policy is known (attached now, or from its state file). */
  out?: { chain: string; rules: string[] };
  /** That policy. */
  ingress?: IngressRule[];
  netns?: string;
}

/** Plans the operations that take `observed` to `desired` (see the module comment). */
export function planHost(observed: ObservedHost, desired: DesiredHost): HostPlan {
  const ops: HostOp[] = [];
  const conflicts: string[] = [];
  const links = new Map(observed.links.map((l) => [l.name, l]));
  /** Whether `name` can be created: free, or ours (then it is deleted first). */
  const claim = (name: string): boolean => {
    const l = links.get(name);
    if (l && !l.mark) {
      conflicts.push(name);
      return false;
    }
    return true;
  };

  // 2. Ports.
  const scoped = new Set(desired.instances.map((d) => d.instance));
  const wanted = new Map<string, WantedPort>();
  for (const l of observed.links) {
    if (l.mark?.edgeplane !== 'port' || scoped.has(l.mark.i)) continue;
    // A kept port's policy comes from its state file, when that was written for this very port.
    const state = observed.states[l.name];
    const out =
      state && state.alias === encodeMark(l.mark) ? keptOut(l.mark.k, state.ingress, l.name) : undefined;
    wanted.set(l.name, { device: l.name, mark: l.mark, ...(out ? { out, ingress: state!.ingress } : {}) });
  }
  for (const d of desired.instances) {
    d.assignments.forEach((a, index) => {
      const mark = portMarkOf(d.instance, index, a, d.target);
      const device = portName(mark.k, d.instance, index);
      const field = `interfaces[${index}].ingress`;
      wanted.set(device, {
        device,
        mark,
        out: outChain(mark.k, a.ingress, device, field),
        ...(a.ingress ? { ingress: a.ingress } : {}),
        ...(d.target.kind === 'netns' ? { netns: d.target.path } : {}),
      });
    });
  }
  const portDeletes: HostOp[] = [];
  const portAdds: WantedPort[] = [];
  for (const l of observed.links) {
    if (l.mark?.edgeplane !== 'port') continue;
    const w = wanted.get(l.name);
    if (!w) portDeletes.push({ op: 'deleteLink', device: l.name, kind: l.kind });
  }
  for (const w of wanted.values()) {
    const l = links.get(w.device);
    const intact =
      l &&
      sameMark(l.mark, w.mark) &&
      l.kind === (w.mark.k === 'veth' ? 'veth' : 'tun') &&
      l.up &&
      l.master === bridgeName(w.mark.s) &&
      l.mtu === w.mark.u;
    if (intact) continue;
    if (!scoped.has(w.mark.i)) continue; // a kept port is never recreated: its target is not known here
    if (!claim(w.device)) continue;
    if (l) portDeletes.push({ op: 'deleteLink', device: l.name, kind: l.kind });
    portAdds.push(w);
  }

  // 3. Segments.
  const given = new Map((desired.segments ?? []).map((s) => [s.segment, s]));
  const segmentIds = new Set<number>(
    desired.segments
      ? given.keys()
      : observed.links.flatMap((l) => (l.mark?.edgeplane === 'segment' ? [l.mark.s] : [])),
  );
  const mtuOfPorts = new Map<number, { network: string; mtu: number }>();
  for (const w of wanted.values()) {
    segmentIds.add(w.mark.s);
    if (!mtuOfPorts.has(w.mark.s)) mtuOfPorts.set(w.mark.s, { network: w.mark.n, mtu: w.mark.u });
  }
  const zones = new Map<number, number>();
  for (const s of segmentIds) {
    const l = links.get(bridgeName(s));
    if (l?.mark?.edgeplane === 'segment' && l.kind === 'bridge') zones.set(s, l.mark.z);
  }
  const usedZones = new Set(zones.values());
  const segmentOps: HostOp[] = [];
  const segmentRemovals: Extract<HostOp, { op: 'deleteLink' }>[] = [];
  for (const s of [...segmentIds].sort((a, b) => a - b)) {
    const spec = given.get(s);
    const fallback = mtuOfPorts.get(s) ?? { network: '', mtu: 1500 };
    const mtu = spec?.mtu ?? fallback.mtu;
    const br = bridgeName(s);
    const vx = vxlanName(s);
    let zone = zones.get(s);
    const bridge = links.get(br);
    if (zone === undefined || bridge?.kind !== 'bridge') {
      if (zone === undefined) {
        zone = allocateZone(s, usedZones);
        usedZones.add(zone);
        zones.set(s, zone);
      }
      if (claim(br)) {
        if (bridge) segmentOps.push({ op: 'deleteLink', device: br, kind: bridge.kind });
        const mark: SegmentMark = { edgeplane: 'segment', s, n: spec?.network ?? fallback.network, z: zone };
        segmentOps.push({ op: 'addBridge', device: br, mark, mtu });
      }
    } else {
      const fix: Extract<HostOp, { op: 'fixLink' }> = { op: 'fixLink', device: br };
      if (spec && bridge.mtu !== mtu) fix.mtu = mtu;
      if (!bridge.up) fix.up = true;
      if (!bridge.nfCallIptables) fix.nfCallIptables = true;
      if (Object.keys(fix).length > 2) segmentOps.push(fix);
    }
    const vxlan = links.get(vx);
    const vxMark: OverlayMark = { edgeplane: 'overlay', s };
    const vxOk =
      vxlan &&
      vxlan.kind === 'vxlan' &&
      sameMark(vxlan.mark, vxMark) &&
      vxlan.vxlan?.id === s &&
      vxlan.vxlan.port === VXLAN_PORT &&
      vxlan.vxlan.local === desired.overlayAddress &&
      (desired.underlayDevice === undefined || vxlan.vxlan.device === desired.underlayDevice);
    let flood = vxOk ? (observed.flood[vx] ?? []) : [];
    if (!vxOk) {
      if (claim(vx)) {
        if (vxlan) segmentOps.push({ op: 'deleteLink', device: vx, kind: vxlan.kind });
        segmentOps.push({
          op: 'addVxlan',
          device: vx,
          mark: vxMark,
          bridge: br,
          mtu,
          local: desired.overlayAddress,
          ...(desired.underlayDevice ? { underlay: desired.underlayDevice } : {}),
        });
      }
      flood = [];
    } else {
      const fix: Extract<HostOp, { op: 'fixLink' }> = { op: 'fixLink', device: vx };
      if (spec && vxlan.mtu !== mtu) fix.mtu = mtu;
      if (!vxlan.up) fix.up = true;
      if (vxlan.master !== br) fix.master = br;
      if (Object.keys(fix).length > 2) segmentOps.push(fix);
    }
    if (spec) {
      const peers = new Set(spec.peers.filter((p) => p !== desired.overlayAddress));
      for (const p of [...peers].sort())
        if (!flood.includes(p)) segmentOps.push({ op: 'addFlood', device: vx, peer: p });
      for (const p of [...new Set(flood)].sort()) {
        if (!peers.has(p)) segmentOps.push({ op: 'deleteFlood', device: vx, peer: p });
      }
    }
  }
  for (const l of observed.links) {
    const m = l.mark;
    if (!m || m.edgeplane === 'port' || segmentIds.has(m.s)) continue;
    if (l.name !== (m.edgeplane === 'segment' ? bridgeName(m.s) : vxlanName(m.s))) continue;
    segmentRemovals.push({ op: 'deleteLink', device: l.name, kind: l.kind });
  }
  // The VXLAN device before its bridge.
  segmentRemovals.sort(
    (a, b) => (a.device.startsWith('ep-vx-') ? 0 : 1) - (b.device.startsWith('ep-vx-') ? 0 : 1),
  );

  // 4. Rules.
  const ruleAdds: HostOp[] = [];
  const ruleRemovals: HostOp[] = [];
  const needTable = segmentIds.size > 0 || wanted.size > 0;
  if (needTable) {
    const rules = observed.rules?.complete ? observed.rules : null;
    if (!rules) ruleAdds.push({ op: 'addTable', reset: observed.rules !== null });
    const chains = new Set(rules?.chains ?? []);
    const want: RuleMaps = { fromPort: {}, portMark: {}, ingress: {}, zones: {} };
    const chain = (c: { chain: string; rules: string[] }) => {
      if (!chains.has(c.chain)) {
        chains.add(c.chain);
        ruleAdds.push({ op: 'addChain', chain: c.chain, rules: c.rules });
      }
      return c.chain;
    };
    for (const s of segmentIds) want.zones[bridgeName(s)] = zones.get(s)!;
    // Port marks: an observed one stays when it is unique, the rest are allocated.
    const marks = new Map<string, number>();
    const usedMarks = new Set<number>();
    for (const device of [...wanted.keys()].sort()) {
      const m = rules?.portMark[device];
      if (m !== undefined && (m & MARK_MASK) >>> 0 === MARK_TAG && !usedMarks.has(m)) {
        marks.set(device, m);
        usedMarks.add(m);
      }
    }
    for (const device of [...wanted.keys()].sort()) {
      if (marks.has(device)) continue;
      const m = allocateMark(device, usedMarks);
      marks.set(device, m);
      usedMarks.add(m);
    }
    for (const w of wanted.values()) {
      const mark = marks.get(w.device)!;
      want.fromPort[w.device] = chain(inChain(w.mark, w.device));
      want.portMark[w.device] = mark;
      if (w.out) want.ingress[String(mark)] = chain(w.out);
      else {
        // A kept port keeps its policy, under its (possibly new) mark; without one it stays closed.
        const old = rules?.portMark[w.device];
        const kept = old === undefined ? undefined : rules?.ingress[String(old)];
        if (kept && chains.has(kept)) want.ingress[String(mark)] = kept;
      }
    }
    for (const map of ['zones', 'portMark', 'ingress', 'fromPort'] as const) {
      const have: Record<string, string | number> = rules?.[map] ?? {};
      const w: Record<string, string | number> = want[map];
      for (const [key, value] of Object.entries(w)) {
        if (have[key] !== value) ruleAdds.push({ op: 'setEntry', map, key, value, replace: key in have });
      }
      for (const key of Object.keys(have))
        if (!(key in w)) ruleRemovals.push({ op: 'deleteEntry', map, key });
    }
    const referenced = new Set([...Object.values(want.fromPort), ...Object.values(want.ingress)]);
    for (const c of rules?.chains ?? [])
      if (!referenced.has(c)) ruleRemovals.push({ op: 'deleteChain', chain: c });
  } else if (observed.rules) {
    ruleRemovals.push({ op: 'deleteTable' });
  }
  // State files: one per port whose policy is known, exactly; none for a device that is no port of ours.
  const stateOps: HostOp[] = [];
  const stateRemovals: HostOp[] = [];
  for (const w of wanted.values()) {
    if (!w.out) continue;
    const state: PortState = { alias: encodeMark(w.mark), ...(w.ingress ? { ingress: w.ingress } : {}) };
    if (JSON.stringify(observed.states[w.device]) !== JSON.stringify(state)) {
      stateOps.push({ op: 'setState', device: w.device, state });
    }
  }
  for (const device of Object.keys(observed.states).sort()) {
    if (!wanted.has(device)) stateRemovals.push({ op: 'setState', device });
  }
  const fwd = observed.forwardDrop;
  if (fwd && needTable && !fwd.allowed) ruleAdds.push({ op: 'forwardRule', chain: fwd.chain, allow: true });
  if (fwd && !needTable && fwd.allowed)
    ruleRemovals.push({ op: 'forwardRule', chain: fwd.chain, allow: false });

  // 5. Order.
  ops.push(
    ...stateOps,
    ...ruleAdds,
    ...portDeletes,
    ...segmentOps,
    ...portAdds.map(
      (w): HostOp => ({
        op: 'addPort',
        device: w.device,
        mark: w.mark,
        bridge: bridgeName(w.mark.s),
        ...(w.netns ? { netns: w.netns } : {}),
      }),
    ),
    ...segmentRemovals,
    ...ruleRemovals,
    ...stateRemovals,
  );
  if (conflicts.length) return { ops: [], conflicts: [...new Set(conflicts)] };
  return { ops, conflicts };
}

/** The out_ chain of a kept port from its stored policy; undefined when that no longer compiles. */
function keptOut(kind: 'veth' | 'tap', ingress: IngressRule[] | undefined, device: string) {
  try {
    return outChain(kind, ingress, device, 'ingress');
  } catch {
    return undefined;
  }
}

/** A port's mark: derived from its name when free, else the next free one. */
function allocateMark(device: string, used: ReadonlySet<number>): number {
  const preferred = Number.parseInt(crypto.createHash('sha256').update(device).digest('hex').slice(0, 4), 16);
  for (let i = 0; i < 0xffff; i++) {
    const m = (MARK_TAG | (((preferred + i) % 0xffff) + 1)) >>> 0;
    if (!used.has(m)) return m;
  }
  throw new Error('no free port mark on this host (65535 ports)');
}

/** The segment's preferred zone (derived from its id) when free, else the lowest free one. */
function allocateZone(segment: number, used: ReadonlySet<number>): number {
  const preferred = (segment % ZONES) + 1;
  if (!used.has(preferred)) return preferred;
  for (let z = 1; z <= ZONES; z++) if (!used.has(z)) return z;
  throw new Error('no free conntrack zone on this host (65535 segments)');
}
