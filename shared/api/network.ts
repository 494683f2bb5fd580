/**
 * Network: a private L2/L3 segment instances attach to (`networkInterfaces[].networkRef` or Datum's `network`,
 * `spec.networkRef`), spanning every host where its instances run, with its subnets (`networkInterfaces[].subnetRef`).
 * Two spellings of the address range are accepted: Edgeplane's `ipv4Cidr` and Datum's `ipam.ipv4Range`
 * (network-services-operator); a Network with neither gets Datum's default, 10.128.0.0/9. IPv6 is refused for now.
 * A Workload that names a Network (or subnet) that does not exist is not placed; its status names what is missing.
 */
import { z } from 'zod';
import { Condition } from './meta.js';

const CIDR = /^([0-9]{1,3}\.){3}[0-9]{1,3}\/[0-9]{1,2}$/;

/** Datum's default range of an Auto-mode Network without one. */
export const DEFAULT_IPV4_RANGE = '10.128.0.0/9';
/** MTU of a Network that sets none (Datum's default); capped at what the overlay carries. */
export const DEFAULT_NETWORK_MTU = 1460;

/** A subnet of a Network, referred to by `networkInterfaces[].subnetRef.name`. */
export const Subnet = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .max(63)
      .describe('Name of the subnet, unique in the network.'),
    ipv4Cidr: z
      .string()
      .regex(CIDR)
      .optional()
      .describe('IPv4 range of the subnet, e.g. 10.0.1.0/24; inside the network range.'),
  })
  .describe('A subnet of the network.');
export type Subnet = z.infer<typeof Subnet>;

/** Datum's IPAM settings of a Network. */
export const NetworkIPAM = z
  .object({
    mode: z
      .enum(['Auto', 'Policy'])
      .describe(
        'Auto: addresses come from ipv4Range (default 10.128.0.0/9). Policy: from the subnets instances name; both are served by the coordinator.',
      ),
    ipv4Range: z
      .string()
      .regex(CIDR)
      .optional()
      .describe('IPv4 range of the network (Datum spelling of ipv4Cidr).'),
    ipv6Range: z.string().optional().describe('IPv6 range: not supported yet, refused.'),
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '!has(self.ipv6Range)',
        message: 'ipv6Range: IPv6 is not supported yet',
        fieldPath: '.ipv6Range',
      },
    ],
  })
  .describe('IPAM settings (Datum shape).');
export type NetworkIPAM = z.infer<typeof NetworkIPAM>;

/** The desired state of a Network. */
export const NetworkSpec = z
  .object({
    ipv4Cidr: z.string().regex(CIDR).optional().describe('IPv4 range of the network, e.g. 10.0.0.0/16.'),
    ipam: NetworkIPAM.optional().describe(
      'IPAM settings, Datum shape; ipam.ipv4Range is another spelling of ipv4Cidr.',
    ),
    ipFamilies: z
      .array(z.enum(['IPv4', 'IPv6']))
      .max(2)
      .meta({
        'x-kubernetes-validations': [
          { rule: "!self.exists(f, f == 'IPv6')", message: 'IPv6 is not supported yet' },
        ],
      })
      .optional()
      .describe('IP families of the network: IPv4 only, for now (default IPv4).'),
    subnets: z
      .array(Subnet)
      .max(64)
      .meta({
        'x-kubernetes-validations': [
          {
            rule: 'self.all(s, self.exists_one(t, t.name == s.name))',
            message: 'subnet names must be unique',
          },
        ],
      })
      .optional()
      .describe('Subnets instances may attach to with subnetRef.'),
    mtu: z
      .number()
      .int()
      .min(1280)
      .max(9000)
      .optional()
      .describe(
        'MTU of the network (default 1460, capped at what the overlay carries: the underlay MTU less 50 bytes of VXLAN). A larger one is refused in status.',
      ),
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '!has(self.ipv4Cidr) || !has(self.ipam) || !has(self.ipam.ipv4Range) || self.ipam.ipv4Range == self.ipv4Cidr',
        message: 'ipv4Cidr and ipam.ipv4Range name the same range: set one, or both equal',
        fieldPath: '.ipam.ipv4Range',
      },
    ],
  })
  .describe('The desired state of the Network.');
export type NetworkSpec = z.infer<typeof NetworkSpec>;

/** Addresses of a Network in use in one location: the blocks claimed there. */
export const NetworkLocationBlocks = z
  .object({
    location: z.string().describe('Location name.'),
    blocks: z.array(z.string()).describe('Address blocks (CIDRs) claimed by the location.'),
    addresses: z.number().int().describe('Addresses allocated in the location.'),
  })
  .describe('The address blocks of one location.');
export type NetworkLocationBlocks = z.infer<typeof NetworkLocationBlocks>;

/** The observed state of a Network. */
export const NetworkStatus = z
  .object({
    workloads: z.number().int().optional().describe('Workloads attached to this network.'),
    segment: z
      .number()
      .int()
      .optional()
      .describe('Segment id of the network: its VXLAN id, unique in the installation.'),
    mtu: z.number().int().optional().describe('Effective MTU of the network.'),
    ipv4Range: z.string().optional().describe('Effective IPv4 range.'),
    locations: z.array(NetworkLocationBlocks).optional().describe('Per-location address blocks in use.'),
    conditions: z
      .array(Condition)
      .optional()
      .describe(
        'Ready (the spec can be honoured) and IPAMAllocated (a segment id is claimed), with reasons.',
      ),
  })
  .describe('The observed state of the Network.');
export type NetworkStatus = z.infer<typeof NetworkStatus>;
