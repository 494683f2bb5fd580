/**
 * `compute.datumapis.com/v1alpha`: Datum's released compute API (github.com/datum-cloud/compute, api/v1alpha), served
 * beside Edgeplane's v1alpha1. Every field of Datum's Workload with its defaults; its webhook's rules as CEL and zod
 * rules here (field paths as Datum reports them). Objects are stored as v1alpha1: coordinator/conversion/ turns one
 * shape into the other. Differences from Datum, on purpose: any instance type of our catalog
 * (shared/instance-types.ts) and any image of the VM image catalog is accepted, not Datum's single product ones.
 */
import { z } from 'zod';
import { INSTANCE_TYPE_NAMES } from '../../instance-types.js';
import { cel, countPresent, unique } from '../cel.js';
import { Condition, LocalObjectReference, Quantity, TemplateMetadata } from '../meta.js';
import { EnvVar, NetworkPolicyIngressRule } from '../template.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A Kubernetes `ResourceList` (cpu, memory, storage, …). */
const ResourceList = z.record(z.string(), Quantity).describe('Amounts by resource name (cpu, memory, …).');

/** A port of a container or VM, with a name other platform features refer to. */
export const NamedPort = z
  .object({
    name: z.string().regex(DNS_LABEL).max(15).describe('Name of the port, unique in the instance.'),
    port: z.number().int().min(1).max(65535).describe('The port number, 1 to 65535.'),
    protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional().describe('TCP (default), UDP or SCTP.'),
  })
  .describe('A named port.');
export type NamedPort = z.infer<typeof NamedPort>;

/** A volume of the instance attached to a container or the VM. */
export const VolumeAttachment = z
  .object({
    name: z.string().min(1).max(63).describe('Name of a volume of spec.volumes.'),
    mountPath: z.string().startsWith('/').optional().describe('Where the volume is mounted in the guest.'),
  })
  .describe('A volume attached to a container or VM.');
export type VolumeAttachment = z.infer<typeof VolumeAttachment>;

/** One container of a sandbox. */
export const SandboxContainer = z
  .object({
    name: z.string().regex(DNS_LABEL).max(63).describe('Name of the container.'),
    image: z.string().min(1).describe('The fully qualified container image name.'),
    env: z.array(EnvVar).optional().describe('Environment variables of the container.'),
    resources: z
      .object({
        limits: ResourceList.optional().describe('The most the container may use.'),
        requests: ResourceList.optional().describe('What the container needs.'),
      })
      .optional()
      .describe('Resource requirements of the container.'),
    volumeAttachments: z
      .array(VolumeAttachment)
      .max(32)
      .optional()
      .describe('Volumes attached to the container.'),
    ports: z
      .array(NamedPort)
      .max(32)
      .apply(
        cel([
          {
            rule: 'self.all(p, self.exists_one(q, q.name == p.name))',
            message: 'port names must be unique',
            holds: (s) => unique(s, (p) => p.name),
          },
        ]),
      )
      .optional()
      .describe('Named ports of the container.'),
  })
  .describe('A container of the sandbox.');
export type SandboxContainer = z.infer<typeof SandboxContainer>;

/** The runtime of an instance: resources, and a sandbox or a virtual machine. */
export const InstanceRuntimeSpec = z
  .object({
    resources: z
      .object({
        instanceType: z
          .string()
          .min(1)
          .describe(`The instance type: ${INSTANCE_TYPE_NAMES.join(', ')} (shared/instance-types.ts).`),
        requests: ResourceList.optional().describe('Adjustments to the resources of the instance type.'),
      })
      .apply(
        cel([
          {
            rule: `self.instanceType in [${INSTANCE_TYPE_NAMES.map((n) => `'${n}'`).join(', ')}]`,
            message: `unknown instance type; supported: ${INSTANCE_TYPE_NAMES.join(', ')}`,
            fieldPath: '.instanceType',
            holds: (s) => INSTANCE_TYPE_NAMES.includes(s.instanceType),
          },
        ]),
      )
      .describe('Resources each instance is allocated.'),
    sandbox: z
      .object({
        containers: z
          .array(SandboxContainer)
          .min(1)
          .max(16)
          .apply(
            cel([
              {
                rule: 'self.all(c, self.exists_one(d, d.name == c.name))',
                message: 'container names must be unique',
                holds: (s) => unique(s, (c) => c.name),
              },
            ]),
          )
          .describe('Containers run within the sandbox.'),
        imagePullSecrets: z
          .array(LocalObjectReference)
          .optional()
          .describe('Secrets in the same namespace used to pull the images.'),
      })
      .optional()
      .describe('A managed isolated environment running containers (gVisor here).'),
    virtualMachine: z
      .object({
        volumeAttachments: z.array(VolumeAttachment).min(1).max(32).describe('Volumes attached to the VM.'),
        ports: z.array(NamedPort).max(32).optional().describe('Named ports of the VM.'),
      })
      .optional()
      .describe('A virtual machine booting a full OS from an image (QEMU here).'),
  })
  .apply(
    cel([
      {
        rule: '(has(self.sandbox) ? 1 : 0) + (has(self.virtualMachine) ? 1 : 0) == 1',
        message: 'a runtime needs exactly one of sandbox or virtualMachine',
        holds: (s) => countPresent(s, ['sandbox', 'virtualMachine']) === 1,
      },
    ]),
  )
  .describe('The runtime of the instance.');
export type InstanceRuntimeSpec = z.infer<typeof InstanceRuntimeSpec>;

/** A network interface: the Network it attaches to and its ingress policy. */
export const InstanceNetworkInterface = z
  .object({
    network: z
      .object({
        name: z.string().regex(DNS_LABEL).max(63).describe('Name of the Network.'),
        namespace: z.string().optional().describe("Namespace of the Network: the Workload's."),
      })
      .describe('The Network to attach to.'),
    networkPolicy: z
      .object({ ingress: z.array(NetworkPolicyIngressRule).optional().describe('Ingress rules.') })
      .optional()
      .describe('Interface-specific network policy, enforced on the host.'),
  })
  .describe('A network interface of the instance.');
export type InstanceNetworkInterface = z.infer<typeof InstanceNetworkInterface>;

const KeyToPath = z
  .object({
    key: z.string().min(1).describe('Key to project.'),
    path: z.string().min(1).describe('Relative path to write it to.'),
    mode: z.number().int().min(0).max(511).optional().describe('File mode bits.'),
  })
  .describe('Projects one key to a file.');

/** A volume: a disk made from a template, or the keys of a ConfigMap or Secret. */
export const InstanceVolume = z
  .object({
    name: z
      .string()
      .regex(DNS_LABEL)
      .max(63)
      .describe('Name of the volume, referred to by volumeAttachments.'),
    disk: z
      .object({
        deviceName: z
          .string()
          .optional()
          .describe('Device name in /dev/disk/by-id/datumcloud-*; default persistent-disk-<n>.'),
        template: z
          .object({
            metadata: TemplateMetadata.optional().describe('Labels and annotations of the disk.'),
            spec: z
              .object({
                type: z.string().default('pd-standard').describe('Type of the disk (default pd-standard).'),
                resources: z
                  .object({ requests: ResourceList.optional().describe('storage: the size of the disk.') })
                  .optional()
                  .describe('Resource requirements of the disk.'),
                populator: z
                  .object({
                    image: z
                      .object({ name: z.string().min(1).describe('Image to fill the disk from.') })
                      .optional()
                      .describe('Fill the disk from an image.'),
                    filesystem: z
                      .object({ type: z.enum(['ext4']).describe('Filesystem type: ext4.') })
                      .optional()
                      .describe('Format the disk with a filesystem.'),
                  })
                  .apply(
                    cel([
                      {
                        rule: '(has(self.image) ? 1 : 0) + (has(self.filesystem) ? 1 : 0) <= 1',
                        message: 'may not specify more than 1 disk populator',
                        holds: (s) => countPresent(s, ['image', 'filesystem']) <= 1,
                      },
                    ]),
                  )
                  .optional()
                  .describe('How the disk is initialised.'),
              })
              .describe('The desired disk.'),
          })
          .describe('Settings of the disk created for each instance.'),
      })
      .optional()
      .describe('A persistent disk created for each instance.'),
    configMap: z
      .object({
        name: z.string().min(1).describe('Name of the ConfigMap.'),
        items: z.array(KeyToPath).optional().describe('Keys to project; all when absent.'),
        defaultMode: z.number().int().min(0).max(511).optional().describe('File mode bits.'),
        optional: z.boolean().optional().describe('Whether the ConfigMap may be missing.'),
      })
      .optional()
      .describe('The keys of a ConfigMap as files.'),
    secret: z
      .object({
        secretName: z.string().min(1).describe('Name of the Secret.'),
        items: z.array(KeyToPath).optional().describe('Keys to project; all when absent.'),
        defaultMode: z.number().int().min(0).max(511).optional().describe('File mode bits.'),
        optional: z.boolean().optional().describe('Whether the Secret may be missing.'),
      })
      .optional()
      .describe('The keys of a Secret as files.'),
  })
  .apply(
    cel([
      {
        rule: '(has(self.disk) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) == 1',
        message: 'a volume needs exactly one of disk, configMap or secret',
        holds: (s) => countPresent(s, ['disk', 'configMap', 'secret']) === 1,
      },
    ]),
  )
  .describe('A volume of the instance.');
export type InstanceVolume = z.infer<typeof InstanceVolume>;

/** The specification of each instance. */
export const InstanceSpec = z
  .object({
    runtime: InstanceRuntimeSpec.describe('The runtime: a container sandbox or a virtual machine.'),
    networkInterfaces: z
      .array(InstanceNetworkInterface)
      .min(1)
      .max(8)
      .describe('Network interfaces (at least one).'),
    volumes: z
      .array(InstanceVolume)
      .max(32)
      .apply(
        cel([
          {
            rule: 'self.all(v, self.exists_one(w, w.name == v.name))',
            message: 'volume names must be unique',
            holds: (s) => unique(s, (v) => v.name),
          },
        ]),
      )
      .optional()
      .describe('Volumes available to attach to containers or the VM.'),
    location: z
      .object({ name: z.string().describe('Location name.'), namespace: z.string().optional() })
      .optional()
      .describe('The location the instance was scheduled to (set by the controller).'),
    controller: z
      .object({
        templateHash: z.string().describe('Hash of the template applied.'),
        schedulingGates: z
          .array(z.object({ name: z.string() }))
          .optional()
          .describe('Gates before scheduling.'),
      })
      .optional()
      .describe('Settings driven by the controller managing the instance.'),
  })
  .apply(
    cel([
      {
        rule: '!has(self.runtime.sandbox) || self.runtime.sandbox.containers.all(c, !has(c.volumeAttachments) || c.volumeAttachments.all(a, has(self.volumes) && self.volumes.exists(v, v.name == a.name)))',
        message: 'every volumeAttachments[].name must name one of volumes',
        fieldPath: '.runtime.sandbox.containers',
        holds: (s) =>
          (s.runtime.sandbox?.containers ?? []).every((c) =>
            (c.volumeAttachments ?? []).every((a) => s.volumes?.some((v) => v.name === a.name)),
          ),
      },
      {
        rule: '!has(self.runtime.virtualMachine) || self.runtime.virtualMachine.volumeAttachments.all(a, has(self.volumes) && self.volumes.exists(v, v.name == a.name))',
        message: 'every volumeAttachments[].name must name one of volumes',
        fieldPath: '.runtime.virtualMachine.volumeAttachments',
        holds: (s) =>
          (s.runtime.virtualMachine?.volumeAttachments ?? []).every((a) =>
            s.volumes?.some((v) => v.name === a.name),
          ),
      },
    ]),
  )
  .describe('The specification of each instance.');
export type InstanceSpec = z.infer<typeof InstanceSpec>;

/** The template of every instance. */
export const InstanceTemplateSpec = z
  .object({
    metadata: TemplateMetadata.optional().describe(
      'Labels and annotations of every instance (compute.datumapis.com/ssh-keys: SSH keys of VMs).',
    ),
    spec: InstanceSpec.describe('What each instance runs.'),
  })
  .describe('Settings of each instance.');
export type InstanceTemplateSpec = z.infer<typeof InstanceTemplateSpec>;

/** A target of a scaling metric: exactly one of value, averageValue, averageUtilization. */
export const MetricTarget = z
  .object({
    value: Quantity.optional().describe('The target value of the metric.'),
    averageValue: Quantity.optional().describe('The target average across instances.'),
    averageUtilization: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('The target average utilisation, in percent of the requested resource.'),
  })
  .apply(
    cel([
      {
        rule: '(has(self.value) ? 1 : 0) + (has(self.averageValue) ? 1 : 0) + (has(self.averageUtilization) ? 1 : 0) == 1',
        message: 'must specify exactly one target value',
        holds: (s) => countPresent(s, ['value', 'averageValue', 'averageUtilization']) === 1,
      },
    ]),
  )
  .describe('The target of a metric.');

/** Scale settings of a placement. */
export const HorizontalScaleSettings = z
  .object({
    minReplicas: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .describe('The minimum number of replicas per city (1 to 1000).'),
    maxReplicas: z.number().int().min(1).optional().describe('The maximum number of replicas per city.'),
    metrics: z
      .array(
        z
          .object({
            resource: z
              .object({
                name: z.enum(['cpu']).describe('The resource: cpu.'),
                target: MetricTarget.describe('The target value.'),
              })
              .describe('A resource metric.'),
          })
          .describe('A metric driving scaling.'),
      )
      .optional()
      .describe('Metrics that determine scaling.'),
    instanceManagementPolicy: z
      .enum(['OrderedReady'])
      .default('OrderedReady')
      .describe('How instances are managed during scaling and maintenance (default OrderedReady).'),
  })
  .apply(
    cel([
      {
        rule: '!has(self.maxReplicas) || (has(self.metrics) && size(self.metrics) > 0)',
        message: 'must provide scaling metrics when maxReplicas is provided',
        fieldPath: '.metrics',
        holds: (s) => s.maxReplicas === undefined || (s.metrics?.length ?? 0) > 0,
      },
      {
        rule: '!has(self.maxReplicas) || self.maxReplicas >= self.minReplicas',
        message: 'maxReplicas must be greater than or equal to minReplicas',
        fieldPath: '.maxReplicas',
        holds: (s) => s.maxReplicas === undefined || s.maxReplicas >= s.minReplicas,
      },
    ]),
  )
  .describe('Scale settings such as minimum and maximum replica counts.');
export type HorizontalScaleSettings = z.infer<typeof HorizontalScaleSettings>;

/** A placement: a name, its city codes and scale settings. One WorkloadDeployment per placement × city. */
export const WorkloadPlacement = z
  .object({
    name: z.string().regex(DNS_LABEL).max(63).describe('Name of the placement (a DNS label).'),
    cityCodes: z
      .array(z.string().regex(/^[A-Z]{3}$/))
      .min(1)
      .max(32)
      .describe('IATA city codes to deploy in, e.g. DFW (Locations carry topology.datum.net/city-code).'),
    scaleSettings: HorizontalScaleSettings.describe('Replica counts per city.'),
  })
  .describe('Where instances run, and how many.');
export type WorkloadPlacement = z.infer<typeof WorkloadPlacement>;

/** The desired state of a v1alpha Workload. */
export const WorkloadSpec = z
  .object({
    template: InstanceTemplateSpec.describe('Settings of each instance.'),
    placements: z
      .array(WorkloadPlacement)
      .min(1)
      .max(16)
      .apply(
        cel([
          {
            rule: 'self.all(p, self.exists_one(q, q.name == p.name))',
            message: 'placement names must be unique',
            holds: (s) => unique(s, (p) => p.name),
          },
        ]),
      )
      .describe('Where instances are deployed, per city.'),
  })
  .describe('The desired state of the Workload.');
export type WorkloadSpec = z.infer<typeof WorkloadSpec>;

/** The status of one placement. */
export const WorkloadPlacementStatus = z
  .object({
    name: z.string().describe('Name of the placement.'),
    conditions: z.array(Condition).optional().describe('Available, with reasons.'),
    replicas: z.number().int().optional().describe('Instances that exist.'),
    currentReplicas: z.number().int().optional().describe('Instances with the latest settings.'),
    desiredReplicas: z.number().int().optional().describe('Instances desired.'),
    readyReplicas: z.number().int().optional().describe('Instances ready.'),
  })
  .describe('The status of a placement.');
export type WorkloadPlacementStatus = z.infer<typeof WorkloadPlacementStatus>;

/** The observed state of a v1alpha Workload. */
export const WorkloadStatus = z
  .object({
    conditions: z
      .array(Condition)
      .optional()
      .describe('Available (reasons AvailablePlacementFound, NoAvailablePlacements).'),
    deployments: z.number().int().optional().describe('WorkloadDeployments that exist.'),
    replicas: z.number().int().optional().describe('Instances that exist.'),
    currentReplicas: z.number().int().optional().describe('Instances with the latest settings.'),
    desiredReplicas: z.number().int().optional().describe('Instances desired.'),
    readyReplicas: z.number().int().optional().describe('Instances ready.'),
    placements: z.array(WorkloadPlacementStatus).optional().describe('Status per placement.'),
  })
  .describe('The observed state of the Workload.');
export type WorkloadStatus = z.infer<typeof WorkloadStatus>;
