/** Instance: one replica of a Workload on one host. */
import { z } from 'zod';
import { Condition, ResourceAmounts } from './meta.js';

/** Which runtime runs an instance. */
export const Runtime = z.enum(['gvisor', 'vm']).describe('gvisor (sandboxed OCI containers) or vm (QEMU).');
export type Runtime = z.infer<typeof Runtime>;

/** The desired state of an Instance. */
export const InstanceSpec = z
  .object({
    workloadRef: z.object({ name: z.string().describe('Name of the Workload.') }).describe('The Workload.'),
    location: z.string().describe('The location the instance runs in.'),
    host: z.string().describe('The host the instance is placed on.'),
    ordinal: z.number().int().min(0).describe('The ordinal of the instance within its location.'),
    runtime: Runtime.describe('The runtime that runs it.'),
    templateHash: z.string().optional().describe('Hash of the template it was made from.'),
    resources: ResourceAmounts.optional().describe('What the instance reserves on its host.'),
  })
  .describe('The desired state of the Instance.');
export type InstanceSpec = z.infer<typeof InstanceSpec>;

/** The lifecycle phases of an Instance. */
export const InstancePhase = z
  .enum(['Pending', 'Starting', 'Running', 'Stopping', 'Stopped', 'Failed', 'Unknown'])
  .describe('Pending, Starting, Running, Stopping, Stopped, Failed or Unknown.');
export type InstancePhase = z.infer<typeof InstancePhase>;

/** The state of one container (or the VM) of an instance. */
export const ContainerState = z
  .object({
    name: z.string().describe('Container name (the VM: "vm").'),
    state: z.enum(['waiting', 'running', 'exited']).describe('waiting, running or exited.'),
    ready: z.boolean().describe('Whether its readiness probe passes (true when it has none and runs).'),
    restartCount: z.number().int().describe('Times it was restarted.'),
    exitCode: z.number().int().optional().describe('Exit code of the last run.'),
    reason: z.string().optional().describe('Why it is waiting or exited.'),
    message: z.string().optional().describe('Details.'),
  })
  .describe('The state of one container.');
export type ContainerState = z.infer<typeof ContainerState>;

/** One interface of an Instance on a Network, as Datum's compute API reports it, with what Edgeplane adds. */
export const InstanceNetworkInterfaceStatus = z
  .object({
    name: z.string().describe('Interface name inside the instance (net0, net1, ...).'),
    network: z.string().describe('Name of the Network.'),
    mac: z.string().optional().describe('MAC address of the interface.'),
    primary: z.boolean().optional().describe('Whether it is the primary interface.'),
    assignments: z
      .object({
        networkIP: z.string().optional().describe('The address assigned on the Network.'),
      })
      .describe('Addresses assigned to the interface.'),
  })
  .describe('An interface of the instance on a Network.');
export type InstanceNetworkInterfaceStatus = z.infer<typeof InstanceNetworkInterfaceStatus>;

/** The observed state of an Instance. */
export const InstanceStatus = z
  .object({
    phase: InstancePhase.optional().describe('The lifecycle phase.'),
    ready: z.boolean().optional().describe('Whether the instance is ready to serve.'),
    host: z.string().optional().describe('The host it runs on.'),
    runtime: z.string().optional().describe('The runtime detail (runsc, qemu-kvm, qemu-tcg).'),
    providerID: z.string().optional().describe('The runtime identifier (container ID or VM id).'),
    ips: z.array(z.string()).optional().describe('IP addresses of the instance.'),
    ports: z
      .array(
        z.object({
          name: z.string().optional().describe('Port name.'),
          containerPort: z.number().int().describe('Port in the instance.'),
          hostIP: z.string().optional().describe('Host address it is published on.'),
          hostPort: z.number().int().optional().describe('Host port it is published on.'),
        }),
      )
      .optional()
      .describe('Published ports.'),
    containers: z.array(ContainerState).optional().describe('State of each container.'),
    networkInterfaces: z
      .array(InstanceNetworkInterfaceStatus)
      .optional()
      .describe("Its interfaces on Networks, the primary first (Datum's compute API shape)."),
    message: z.string().optional().describe('Human-readable detail, e.g. why it failed.'),
    startedAt: z.string().optional().describe('When it last started (RFC 3339).'),
    conditions: z.array(Condition).optional().describe('Scheduled, Ready.'),
  })
  .describe('The observed state of the Instance.');
export type InstanceStatus = z.infer<typeof InstanceStatus>;
