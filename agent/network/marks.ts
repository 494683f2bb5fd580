/**
 * Names and marks of what the host network creates. Every device is named deterministically (≤ 15 characters,
 * the kernel's IFNAMSIZ) from what it stands for, and marked with a JSON alias (`ip link set … alias`) that says
 * what it is. The alias, not this process's memory, is how {@link HostNetwork.list} and the planner recognise
 * their own devices after a restart; a device without a valid mark is never changed or removed.
 */
import crypto from 'node:crypto';

/** The kernel's limit on an interface alias (IFALIASZ less the terminating NUL). */
export const ALIAS_MAX = 255;

/** Mark of a segment's bridge. */
export interface SegmentMark {
  edgeplane: 'segment';
  /** Segment id (VXLAN id). */
  s: number;
  /** The Network, `<namespace>/<name>` (or its name), for people reading `ip link`. */
  n: string;
  /** Conntrack zone of the segment on this host (1..65535), so overlapping CIDRs of two Networks never mix. */
  z: number;
}

/** Mark of a segment's VXLAN device. */
export interface OverlayMark {
  edgeplane: 'overlay';
  /** Segment id (VXLAN id). */
  s: number;
}

/** Mark of an instance's port: the host end of its veth, or its tap. */
export interface PortMark {
  edgeplane: 'port';
  /** `<namespace>/<instance>`. */
  i: string;
  /** Index of the assignment in the instance's interfaces. */
  x: number;
  /** veth (a network namespace) or tap (a VM). */
  k: 'veth' | 'tap';
  /** Network name. */
  n: string;
  /** Segment id. */
  s: number;
  /** Interface name inside the instance. */
  f: string;
  /** MAC of the instance's interface. */
  m: string;
  /** Address with prefix length. */
  a: string;
  /** MTU. */
  u: number;
  /** Primary interface. */
  p: boolean;
  /** Inode of the network namespace the veth's other end was moved into (veth only). */
  t?: string;
  /** The namespace serves DHCP to the segment's VMs (its port may send from udp port 67). */
  d?: true;
}

export type Mark = SegmentMark | OverlayMark | PortMark;

/** The bridge of a segment. */
export const bridgeName = (segment: number): string => `ep-br-${segment}`;
/** The VXLAN device of a segment. */
export const vxlanName = (segment: number): string => `ep-vx-${segment}`;

/** Prefix of the host end of veth ports and of tap ports (the base chains drop what these carry without rules). */
export const VETH_PREFIX = 'epv';
export const TAP_PREFIX = 'ept';

/**
 * The host-side device of an instance's port: prefix, 11 hex digits of the instance name's SHA-256, the index in
 * base 36 — 15 characters, the same on every host and after every restart.
 */
export function portName(kind: 'veth' | 'tap', instance: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 35)
    throw new Error(`interface index ${index} out of range`);
  const hash = crypto.createHash('sha256').update(instance).digest('hex').slice(0, 11);
  return `${kind === 'veth' ? VETH_PREFIX : TAP_PREFIX}${hash}${index.toString(36)}`;
}

/** The alias text of a mark; throws when it would not fit the kernel's alias or the `ip -batch` quoting. */
export function encodeMark(mark: Mark): string {
  const text = JSON.stringify(mark);
  if (Buffer.byteLength(text) > ALIAS_MAX) {
    throw new Error(
      `device mark of ${describe(mark)} is ${Buffer.byteLength(text)} bytes, over ${ALIAS_MAX}`,
    );
  }
  if (/['\n\r]/.test(text))
    throw new Error(`device mark of ${describe(mark)} contains a quote or line break`);
  return text;
}

const describe = (mark: Mark) =>
  mark.edgeplane === 'port' ? `${mark.i} interface ${mark.x}` : `segment ${mark.s} (${mark.edgeplane})`;

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

/** The mark in an alias, or undefined when the alias is not one of ours (absent, foreign or damaged). */
export function decodeMark(alias: string | undefined): Mark | undefined {
  if (!alias?.startsWith('{"edgeplane":')) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(alias) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (v.edgeplane === 'segment' && isInt(v.s) && isStr(v.n) && isInt(v.z)) {
    return { edgeplane: 'segment', s: v.s, n: v.n, z: v.z };
  }
  if (v.edgeplane === 'overlay' && isInt(v.s)) return { edgeplane: 'overlay', s: v.s };
  if (
    v.edgeplane === 'port' &&
    isStr(v.i) &&
    isInt(v.x) &&
    (v.k === 'veth' || v.k === 'tap') &&
    isStr(v.n) &&
    isInt(v.s) &&
    isStr(v.f) &&
    isStr(v.m) &&
    isStr(v.a) &&
    isInt(v.u) &&
    typeof v.p === 'boolean' &&
    (v.t === undefined || isStr(v.t)) &&
    (v.d === undefined || v.d === true)
  ) {
    const mark: PortMark = {
      edgeplane: 'port',
      i: v.i,
      x: v.x,
      k: v.k,
      n: v.n,
      s: v.s,
      f: v.f,
      m: v.m,
      a: v.a,
      u: v.u,
      p: v.p,
    };
    if (isStr(v.t)) mark.t = v.t;
    if (v.d === true) mark.d = true;
    return mark;
  }
  return undefined;
}
