/**
 * The nftables rules of one port, pure: anti-spoofing for what the instance sends (its frames must carry its
 * MAC, its ARP and IPv4 packets its address; nothing but ARP and IPv4) and ingress policy for what is delivered
 * to it (stateful: replies to the instance's own connections always pass). Everything that ends up in nft text
 * is validated here first, so a bad value is an error naming its field, never a broken or widened rule set.
 */
import crypto from 'node:crypto';
import type { IngressRule, InterfaceAssignment } from '../../shared/nats/messages.js';

/** An IPv4 prefix. */
export interface Prefix {
  /** Network address as an unsigned 32-bit number (host bits cleared). */
  base: number;
  /** Prefix length 0..32. */
  length: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The address as a number, or undefined when `text` is not a dotted-quad IPv4 address. */
export function parseIPv4(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

export const formatIPv4 = (n: number): string =>
  [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

const maskOf = (length: number) => (length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0);

/** Parses `a.b.c.d/len` (or a bare address, /32); host bits are cleared. Throws naming `field`. */
export function parsePrefix(text: string, field: string): Prefix {
  const [addr, len, extra] = text.split('/');
  const n = parseIPv4(addr ?? '');
  const length = len === undefined ? 32 : /^\d{1,2}$/.test(len) ? Number(len) : Number.NaN;
  if (n === undefined || extra !== undefined || !(length >= 0 && length <= 32)) {
    throw new Error(`${field}: "${text}" is not an IPv4 CIDR (IPv6 is not supported yet)`);
  }
  return { base: (n & maskOf(length)) >>> 0, length };
}

export const formatPrefix = (p: Prefix): string => `${formatIPv4(p.base)}/${p.length}`;

const contains = (outer: Prefix, inner: Prefix) =>
  outer.length <= inner.length && (inner.base & maskOf(outer.length)) >>> 0 === outer.base;

/** The port's own values as the rules need them, validated. */
export interface PortAddressing {
  /** MAC, lower case. */
  mac: string;
  /** IPv4 address, without prefix length. */
  ip: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Validates the device-level fields of an assignment (name, MAC, address, MTU); throws naming the field. */
export function checkAssignment(a: InterfaceAssignment, field: string): PortAddressing {
  const mac = a.mac.toLowerCase();
  if (!MAC.test(mac) || (Number.parseInt(mac.slice(0, 2), 16) & 1) !== 0) {
    throw new Error(`${field}.mac: "${a.mac}" is not a unicast MAC address`);
  }
  const [ip, len] = a.address.split('/');
  if (parseIPv4(ip ?? '') === undefined || len === undefined || !/^\d{1,2}$/.test(len) || Number(len) > 32) {
    throw new Error(`${field}.address: "${a.address}" is not an IPv4 address with prefix length`);
  }
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(a.name)) {
    throw new Error(`${field}.name: "${a.name}" is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  }
  if (!Number.isInteger(a.mtu) || a.mtu < 576 || a.mtu > 65_000) {
    throw new Error(`${field}.mtu: ${a.mtu} is outside 576..65000`);
  }
  return { mac, ip: ip! };
}

/**
 * Rules of the chain (bridge family, prerouting) every frame the instance sends passes through: its MAC on every
 * frame, its MAC and address as ARP sender, its address as IPv4 source; nothing but ARP and IPv4.
 */
export function antiSpoofRules(kind: 'veth' | 'tap', port: PortAddressing, dhcpServer = false): string[] {
  return [
    `ether saddr != ${port.mac} drop`,
    `ether type arp arp saddr ether != ${port.mac} drop`,
    // 0.0.0.0: ARP probes (RFC 5227), which DHCP clients send before using an address.
    `ether type arp arp saddr ip != { ${port.ip}, 0.0.0.0 } drop`,
    'ether type arp accept',
    'ether type != ip drop',
    // No instance serves DHCP on a segment: only the agent's own DHCP helpers do (VMs' static leases).
    ...(dhcpServer ? [] : ['ip protocol udp udp sport 67 drop']),
    // A VM's DHCP client asks before it has an address.
    ...(kind === 'tap' ? ['ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept'] : []),
    `ip saddr != ${port.ip} drop`,
    'accept',
  ];
}

/**
 * Rules of the chain (ip family, forward, reached through br_netfilter) every IPv4 packet delivered to the
 * instance passes through: its ingress policy. Stateful: packets of connections conntrack already knows (replies
 * to the instance's own, and what a rule let in before) pass first.
 */
export function ingressRules(
  kind: 'veth' | 'tap',
  ingress: readonly IngressRule[] | undefined,
  field: string,
): string[] {
  if (ingress === undefined) return ['accept'];
  const allowed = ingress.flatMap((rule, r) => compileRule(rule, `${field}[${r}]`));
  return [
    'ct state established,related accept',
    ...(kind === 'tap' ? ['udp sport 67 udp dport 68 accept'] : []),
    ...new Set(allowed),
    'drop',
  ];
}

function compileRule(rule: IngressRule, field: string): string[] {
  const sources = rule.from?.length
    ? rule.from.map((peer, j) => {
        const f = `${field}.from[${j}].ipBlock`;
        if (!peer.ipBlock) throw new Error(`${f}: missing (only ipBlock peers are supported)`);
        const cidr = parsePrefix(peer.ipBlock.cidr, `${f}.cidr`);
        const except = (peer.ipBlock.except ?? []).map((e, k) => parsePrefix(e, `${f}.except[${k}]`));
        // A set must not hold overlapping intervals: keep only the widest of nested exceptions.
        const widest = except.filter(
          (e, k) => !except.some((o, l) => l !== k && contains(o, e) && (o.length < e.length || l < k)),
        );
        const text = widest.map(formatPrefix).sort();
        return `ip saddr ${formatPrefix(cidr)}${text.length ? ` ip saddr != { ${text.join(', ')} }` : ''}`;
      })
    : [''];
  const ports = rule.ports?.length
    ? rule.ports.map((p, k) => {
        const f = `${field}.ports[${k}]`;
        const proto = (p.protocol ?? 'TCP').toLowerCase();
        if (!['tcp', 'udp', 'sctp'].includes(proto))
          throw new Error(`${f}.protocol: "${p.protocol}" unsupported`);
        if (p.port === undefined) {
          if (p.endPort !== undefined) throw new Error(`${f}.endPort: needs port`);
          return `ip protocol ${proto}`;
        }
        if (p.endPort === undefined || p.endPort === p.port) return `${proto} dport ${p.port}`;
        if (p.endPort < p.port) throw new Error(`${f}.endPort: ${p.endPort} is below port ${p.port}`);
        return `${proto} dport ${p.port}-${p.endPort}`;
      })
    : [''];
  return sources.flatMap((s) => ports.map((p) => [s, p, 'accept'].filter(Boolean).join(' ')));
}

/** A short content hash: chains are named after their rules, so a chain that exists has the right rules. */
export const rulesHash = (rules: readonly string[]): string =>
  crypto.createHash('sha256').update(rules.join('\n')).digest('hex').slice(0, 8);
