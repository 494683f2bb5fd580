/**
 * A Workload's network attachments, pure: the list `networkInterfaces` makes (or `spec.networkRef` alone, as one
 * primary attachment), with the primary settled (the one marked, else the first), and the checks that refuse
 * what cannot be honoured, each naming the field: a Network in another namespace, both or neither of
 * `networkRef`/`network`, more than 8 interfaces, two primaries, one Network attached twice, a static
 * `ipAddress` that is IPv6, malformed, outside its pool, reserved, or given to more than one replica, a subnet
 * without a range, and a Network whose own spec cannot be honoured (IPv6, an MTU the overlay cannot carry).
 * Missing Networks and subnets are left to references.ts (MissingReferences).
 */
import {
  attachedNetwork,
  type InstanceTemplateSpec,
  MAX_NETWORK_INTERFACES,
  type NetworkSpec,
  type WorkloadSpec,
} from '../../shared/api/index.js';
import type { IngressRule } from '../../shared/nats/messages.js';
import { contains, formatCidr, looksLikeIPv6, parseIPv4 } from '../networks/cidr.js';
import { effectiveNetwork, type NetworkSettings } from '../networks/config.js';

/** One network attachment of every instance of a template. */
export interface Attachment {
  /** Position in `networkInterfaces` (0 for `spec.networkRef`); the interface is named `net<index>`. */
  index: number;
  /** The field it comes from, for messages (`spec.template.spec.networkInterfaces[1]`). */
  field: string;
  /** Name of the Network, in the Workload's namespace. */
  network: string;
  /** Subnet to allocate from; `''`: the Network-wide pool. */
  subnet: string;
  /** Whether it is the primary interface. */
  primary: boolean;
  /** Static address asked for. */
  ipAddress?: string;
  /** Ingress policy; absent: everything is let in. */
  ingress?: IngressRule[];
}

/** The attachments of a template (and the Workload's `networkRef`, when the template lists none). */
export function attachmentsOf(
  template: Pick<InstanceTemplateSpec, 'networkInterfaces'>,
  networkRef?: WorkloadSpec['networkRef'],
): Attachment[] {
  const list = template.networkInterfaces ?? [];
  if (!list.length) {
    return networkRef
      ? [{ index: 0, field: 'spec.networkRef', network: networkRef.name, subnet: '', primary: true }]
      : [];
  }
  const marked = list.findIndex((n) => n.primary);
  return list.map((n, index) => ({
    index,
    field: `spec.template.spec.networkInterfaces[${index}]`,
    network: attachedNetwork(n),
    subnet: n.subnetRef?.name ?? '',
    primary: marked < 0 ? index === 0 : index === marked,
    ...(n.ipAddress !== undefined ? { ipAddress: n.ipAddress } : {}),
    ...(n.networkPolicy?.ingress ? { ingress: n.networkPolicy.ingress as IngressRule[] } : {}),
  }));
}

/** Whether a template asks for a static address anywhere (no surge instance can share it). */
export function hasStaticAddress(template: Pick<InstanceTemplateSpec, 'networkInterfaces'>): boolean {
  return (template.networkInterfaces ?? []).some((n) => n.ipAddress !== undefined);
}

/** Why the Workload's attachments cannot be honoured (a message naming the field), or undefined. */
export function checkAttachments(
  spec: Pick<WorkloadSpec, 'template' | 'networkRef' | 'replicas'>,
  namespace: string,
  network: (name: string) => NetworkSpec | undefined,
  settings: NetworkSettings,
): string | undefined {
  const t = spec.template.spec;
  const list = t.networkInterfaces ?? [];
  if (list.length > MAX_NETWORK_INTERFACES)
    return `spec.template.spec.networkInterfaces: ${list.length} interfaces, at most ${MAX_NETWORK_INTERFACES}`;
  for (const [i, n] of list.entries()) {
    const field = `spec.template.spec.networkInterfaces[${i}]`;
    if (!!n.networkRef === !!n.network) return `${field}: set exactly one of networkRef or network`;
    if (n.network?.namespace && n.network.namespace !== namespace)
      return `${field}.network.namespace: Network ${n.network.namespace}/${n.network.name} is in another namespace; only the Workload's namespace (${namespace}) is supported`;
  }
  if (list.filter((n) => n.primary).length > 1) {
    const primaries = list.flatMap((n, i) => (n.primary ? [i] : []));
    return `spec.template.spec.networkInterfaces[${primaries[1]}].primary: only one interface may be primary (also [${primaries[0]}])`;
  }
  const attachments = attachmentsOf(t, spec.networkRef);
  const seen = new Map<string, number>();
  for (const a of attachments) {
    const first = seen.get(a.network);
    if (first !== undefined)
      return `${a.field}: Network ${a.network} is already attached by networkInterfaces[${first}]; attach each Network once`;
    seen.set(a.network, a.index);
  }
  for (const a of attachments) {
    const spec_ = network(a.network);
    if (a.ipAddress !== undefined) {
      const f = `${a.field}.ipAddress`;
      if (looksLikeIPv6(a.ipAddress)) return `${f}: ${a.ipAddress}: IPv6 is not supported yet`;
      if (parseIPv4(a.ipAddress) === undefined) return `${f}: ${a.ipAddress} is not an IPv4 address`;
      if ((spec.replicas ?? 1) > 1)
        return `${f}: a static address can be given to one instance only, and replicas is ${spec.replicas}`;
    }
    if (!spec_) continue; // missing: references.ts reports it
    const eff = effectiveNetwork(spec_, settings);
    if ('refused' in eff) return `${a.field}: Network ${a.network} cannot be used: ${eff.refused.message}`;
    if (a.subnet && eff.network.subnetsWithoutRange.has(a.subnet))
      return `${a.field}.subnetRef: subnet ${a.subnet} of Network ${a.network} has no ipv4Cidr to allocate from`;
    const pool = eff.network.pools.get(a.subnet);
    if (!pool || a.ipAddress === undefined) continue; // a missing subnet: references.ts reports it
    const ip = parseIPv4(a.ipAddress)!;
    const where = a.subnet ? `subnet ${a.subnet}` : `Network ${a.network}`;
    if (!contains(pool.block, ip))
      return `${a.field}.ipAddress: ${a.ipAddress} is not inside ${where} (${formatCidr(pool.block)})`;
    if (pool.reserved.has(ip))
      return `${a.field}.ipAddress: ${a.ipAddress} is reserved in ${formatCidr(pool.block)} (network, gateway and broadcast addresses)`;
  }
  return undefined;
}
