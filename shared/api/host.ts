/** Host and Location: what the agents registered, so that available capacity has a kubectl answer. */
import { z } from 'zod';
import { Runtime } from './instance.js';
import { Condition, HostResourceAmounts, ResourceAmounts } from './meta.js';

/** The desired state of a Host: what operators may change with kubectl. */
export const HostSpec = z
  .object({
    location: z.string().describe('The location the host belongs to.'),
    unschedulable: z.boolean().optional().describe('Cordon: when true, nothing new is placed here.'),
  })
  .describe('The desired state of the Host.');
export type HostSpec = z.infer<typeof HostSpec>;

/**
 * The same amounts as Kubernetes quantities, under a Node's keys (`cpu: "64"`, `memory: "256Gi"`,
 * `ephemeral-storage: "100Gi"`), for people and `kubectl get hosts`; code reads the numbers beside them.
 */
const Quantities = {
  cpu: z.string().optional().describe("CPU as a Kubernetes quantity, e.g. 64 or 7500m (like a Node's)."),
  memory: z.string().optional().describe('Memory as a Kubernetes quantity, e.g. 256Gi.'),
  'ephemeral-storage': z.string().optional().describe('Disk as a Kubernetes quantity, e.g. 100Gi.'),
};
const HostStatusAmounts = HostResourceAmounts.extend(Quantities).describe(
  'CPU, memory and disk, as numbers and as Kubernetes quantities.',
);
const HostStatusAllocated = ResourceAmounts.extend({
  cpu: Quantities.cpu,
  memory: Quantities.memory,
}).describe('CPU and memory, as numbers and as Kubernetes quantities.');

/** The observed state of a Host, from its agent's reports. */
export const HostStatus = z
  .object({
    ready: z.boolean().optional().describe('Whether the agent is connected and heartbeating.'),
    state: z.enum(['Ready', 'Disconnected', 'Lost']).optional().describe('Ready, Disconnected or Lost.'),
    labels: z.record(z.string(), z.string()).optional().describe('Labels placement matches against.'),
    capacity: HostStatusAmounts.optional().describe('What the host has.'),
    allocatable: HostStatusAmounts.optional().describe('What may be placed on it.'),
    allocated: HostStatusAllocated.optional().describe('What instances placed on it request.'),
    runtimes: z.array(Runtime).optional().describe('Runtimes that work on this host.'),
    instances: z.number().int().optional().describe('Instances placed on it.'),
    agentVersion: z.string().optional().describe('Version of edge-agent.'),
    lastHeartbeatTime: z
      .string()
      .optional()
      .describe('When the agent was last heard of, written on state change.'),
    conditions: z
      .array(Condition)
      .optional()
      .describe(
        "The agent's conditions: DiskPressure (a write of its state directory or image cache fails).",
      ),
  })
  .describe('The observed state of the Host.');
export type HostStatus = z.infer<typeof HostStatus>;

/** The observed state of a Location. */
export const LocationSpec = z
  .object({
    provider: z.string().optional().describe('Provider, e.g. gcp.'),
    region: z.string().optional().describe('Region, e.g. us-central1.'),
    zone: z.string().optional().describe('Zone, e.g. us-central1-a.'),
    cityCode: z.string().optional().describe('IATA city code, e.g. DFW.'),
  })
  .describe('Where the location is.');
export type LocationSpec = z.infer<typeof LocationSpec>;

/** The observed state of a Location. */
export const LocationStatus = z
  .object({
    hosts: z.number().int().optional().describe('Hosts registered.'),
    readyHosts: z.number().int().optional().describe('Hosts ready.'),
    cityCode: z
      .string()
      .optional()
      .describe(
        "City code of its hosts (their topology.datum.net/city-code label, the agents' --city-code).",
      ),
    allocatable: ResourceAmounts.optional().describe('Sum of what the ready hosts may take.'),
    allocated: ResourceAmounts.optional().describe('Sum of what is placed on them.'),
  })
  .describe('The observed state of the Location.');
export type LocationStatus = z.infer<typeof LocationStatus>;
