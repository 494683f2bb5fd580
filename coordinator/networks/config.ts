/**
 * What a Network's spec means for IPAM and the overlay, pure: its effective range (`ipv4Cidr`, Datum's
 * `ipam.ipv4Range`, or Datum's default), the address pools (the whole range, and each subnet), the effective
 * MTU, or the refusal that names the field. The MTU must fit in the overlay: VXLAN costs 50 bytes of the
 * underlay's MTU; a Network that sets none gets min(1460, that maximum), so a default Network is never refused.
 * Each pool reserves its network address, its first address (the gateway, kept for a router) and its broadcast.
 */
import { DEFAULT_IPV4_RANGE, DEFAULT_NETWORK_MTU, type NetworkSpec } from '../../shared/api/index.js';
import { type Block, formatCidr, lastOf, overlaps, parseCidr, within } from './cidr.js';

/** Bytes of each packet the VXLAN overlay takes: outer IPv4, UDP and VXLAN headers and the inner Ethernet header. */
export const VXLAN_OVERHEAD = 50;
/** Underlay MTU when the installation sets none. */
export const DEFAULT_UNDERLAY_MTU = 1500;

/** Installation-wide network settings (coordinator flags). */
export interface NetworkSettings {
  /** MTU of the links between hosts (`--underlay-mtu`, default 1500). */
  underlayMtu: number;
}

/** One pool addresses are allocated from. */
export interface Pool {
  /** The pool's block: the Network's range, or a subnet's. */
  block: Block;
  /** Addresses never handed out: network, gateway (first) and broadcast of the block. */
  reserved: ReadonlySet<number>;
  /** Blocks inside `block` left to other pools (the subnets, for the Network-wide pool). */
  exclude: readonly Block[];
}

/** A Network as IPAM and the overlay use it. */
export interface EffectiveNetwork {
  /** The whole range. */
  range: Block;
  /** Effective MTU. */
  mtu: number;
  /** Pools by subnet name; `''` is the Network-wide pool (the range less the subnets). */
  pools: ReadonlyMap<string, Pool>;
  /** Subnets declared without a range: an attachment naming one is refused. */
  subnetsWithoutRange: ReadonlySet<string>;
}

/** Why a Network cannot be honoured. */
export interface NetworkRefusal {
  /** CamelCase reason for the Ready condition. */
  reason: string;
  /** Message naming the field (`spec.mtu: ...`). */
  message: string;
}

/** The most a Network's MTU may be over the overlay. */
export function maxNetworkMtu(settings: NetworkSettings): number {
  return settings.underlayMtu - VXLAN_OVERHEAD;
}

/** Reserved addresses of a pool block. */
function reservedOf(b: Block): Set<number> {
  return b.prefix >= 31 ? new Set() : new Set([b.base, b.base + 1, lastOf(b)]);
}

/** The Network as IPAM and the overlay use it, or why it cannot be honoured. */
export function effectiveNetwork(
  spec: NetworkSpec | undefined,
  settings: NetworkSettings,
): { network: EffectiveNetwork } | { refused: NetworkRefusal } {
  const s = spec ?? {};
  const refuse = (reason: string, message: string) => ({ refused: { reason, message } });
  if (s.ipFamilies?.includes('IPv6'))
    return refuse('IPv6Unsupported', 'spec.ipFamilies: IPv6 is not supported yet');
  if (s.ipam?.ipv6Range) return refuse('IPv6Unsupported', 'spec.ipam.ipv6Range: IPv6 is not supported yet');
  if (s.ipv4Cidr && s.ipam?.ipv4Range && s.ipv4Cidr !== s.ipam.ipv4Range)
    return refuse(
      'InvalidRange',
      `spec.ipam.ipv4Range: ${s.ipam.ipv4Range} differs from spec.ipv4Cidr ${s.ipv4Cidr}; set one`,
    );
  const field = s.ipv4Cidr ? 'spec.ipv4Cidr' : 'spec.ipam.ipv4Range';
  const rangeText = s.ipv4Cidr ?? s.ipam?.ipv4Range ?? DEFAULT_IPV4_RANGE;
  const range = parseCidr(rangeText);
  if (!range) return refuse('InvalidRange', `${field}: ${rangeText} is not an IPv4 CIDR without host bits`);
  if (range.prefix > 30) return refuse('InvalidRange', `${field}: ${rangeText} is too small (at most /30)`);
  const max = maxNetworkMtu(settings);
  if (s.mtu !== undefined && s.mtu > max)
    return refuse(
      'MTUTooLarge',
      `spec.mtu: ${s.mtu} exceeds ${max}, the most the overlay carries (underlay MTU ${settings.underlayMtu} less ${VXLAN_OVERHEAD} bytes of VXLAN)`,
    );
  const mtu = s.mtu ?? Math.min(DEFAULT_NETWORK_MTU, max);
  const pools = new Map<string, Pool>();
  const subnetBlocks: Block[] = [];
  const subnetsWithoutRange = new Set<string>();
  for (const [i, sub] of (s.subnets ?? []).entries()) {
    if (!sub.ipv4Cidr) {
      subnetsWithoutRange.add(sub.name);
      continue;
    }
    const b = parseCidr(sub.ipv4Cidr);
    const f = `spec.subnets[${i}].ipv4Cidr`;
    if (!b) return refuse('InvalidRange', `${f}: ${sub.ipv4Cidr} is not an IPv4 CIDR without host bits`);
    if (!within(b, range))
      return refuse('InvalidRange', `${f}: ${sub.ipv4Cidr} is not inside ${formatCidr(range)}`);
    if (b.prefix > 30) return refuse('InvalidRange', `${f}: ${sub.ipv4Cidr} is too small (at most /30)`);
    const clash = subnetBlocks.find((o) => overlaps(o, b));
    if (clash) return refuse('InvalidRange', `${f}: ${sub.ipv4Cidr} overlaps ${formatCidr(clash)}`);
    subnetBlocks.push(b);
    pools.set(sub.name, { block: b, reserved: reservedOf(b), exclude: [] });
  }
  pools.set('', { block: range, reserved: reservedOf(range), exclude: subnetBlocks });
  return { network: { range, mtu, pools, subnetsWithoutRange } };
}
