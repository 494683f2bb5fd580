/**
 * Network: a named network instances attach to (`networkInterfaces[].networkRef`, `spec.networkRef`), with its
 * subnets (`networkInterfaces[].subnetRef`). A Workload that names a Network (or subnet) that does not exist
 * is not placed; its status names what is missing.
 */
import { z } from 'zod';
import { Condition } from './meta.js';

const CIDR = /^([0-9]{1,3}\.){3}[0-9]{1,3}\/[0-9]{1,2}$/;

/** A subnet of a Network, referred to by `networkInterfaces[].subnetRef.name`. */
export const Subnet = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .max(63)
      .describe('Name of the subnet, unique in the network.'),
    ipv4Cidr: z.string().regex(CIDR).optional().describe('IPv4 range of the subnet, e.g. 10.0.1.0/24.'),
  })
  .describe('A subnet of the network.');
export type Subnet = z.infer<typeof Subnet>;

/** The desired state of a Network. */
export const NetworkSpec = z
  .object({
    ipv4Cidr: z.string().regex(CIDR).optional().describe('IPv4 range of the network, e.g. 10.0.0.0/16.'),
    subnets: z.array(Subnet).max(64).optional().describe('Subnets instances may attach to with subnetRef.'),
    mtu: z.number().int().min(1280).max(9000).optional().describe('MTU of the network (default 1460).'),
  })
  .describe('The desired state of the Network.');
export type NetworkSpec = z.infer<typeof NetworkSpec>;

/** The observed state of a Network. */
export const NetworkStatus = z
  .object({
    workloads: z.number().int().optional().describe('Workloads attached to this network.'),
    conditions: z.array(Condition).optional().describe('Ready.'),
  })
  .describe('The observed state of the Network.');
export type NetworkStatus = z.infer<typeof NetworkStatus>;
