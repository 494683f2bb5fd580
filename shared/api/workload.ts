/**
 * The Workload: a group of instances (gVisor containers or VMs) placed across locations and hosts.
 * Served under three API groups with one schema (see ./groups.ts), because the docs use all three.
 */
import { z } from 'zod';
import { cel, has } from './cel.js';
import { Condition, IntOrPercent, LabelSelector, LocalObjectReference } from './meta.js';
import { Placement } from './placement.js';
import { InstanceTemplate } from './template.js';

/** How a change of the template replaces running instances. */
export const WorkloadUpdateStrategy = z
  .object({
    type: z.enum(['RollingUpdate', 'Recreate']).optional().describe('RollingUpdate (default) or Recreate.'),
    rollingUpdate: z
      .object({
        maxSurge: IntOrPercent.optional().describe(
          'Instances above replicas allowed during an update (default 25%).',
        ),
        maxUnavailable: IntOrPercent.optional().describe(
          'Instances below replicas allowed during an update (default 25%).',
        ),
      })
      .optional()
      .describe('Parameters of a rolling update.'),
  })
  .describe('How instances are replaced when the template changes.');
export type WorkloadUpdateStrategy = z.infer<typeof WorkloadUpdateStrategy>;

/** The desired state of a Workload. */
export const WorkloadSpec = z
  .object({
    // An int32, as the scale subresource requires of spec.replicas (the API server refuses 2^31: found by fuzzing).
    replicas: z
      .number()
      .int()
      .min(0)
      .max(2_147_483_647)
      .default(1)
      .describe('The desired number of instances (default 1).'),
    selector: LabelSelector.optional().describe(
      "Label selector for the Workload's instances; it must match the template labels when given.",
    ),
    template: InstanceTemplate.describe('The template every instance is made from.'),
    placement: Placement.optional().describe('Where instances may and should run.'),
    strategy: WorkloadUpdateStrategy.optional().describe('How instances are replaced on template changes.'),
    networkRef: LocalObjectReference.optional().describe('The network every instance attaches to.'),
    provider: z
      .record(z.string(), z.unknown())
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .optional()
      .describe('Provider-specific configuration, passed through unchanged.'),
  })
  .apply(
    cel([
      {
        rule: '!has(self.selector) || !has(self.selector.matchLabels) || self.selector.matchLabels.all(k, has(self.template.metadata) && has(self.template.metadata.labels) && k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector.matchLabels[k])',
        message: 'selector.matchLabels must match template.metadata.labels',
        fieldPath: '.selector',
        holds: (s) =>
          Object.entries(s.selector?.matchLabels ?? {}).every(
            ([k, v]) =>
              Object.hasOwn(s.template.metadata?.labels ?? {}, k) && s.template.metadata?.labels?.[k] === v,
          ),
      },
      {
        rule: '!has(self.template.spec.networkInterfaces) || (has(self.replicas) ? self.replicas : 1) <= 1 || !self.template.spec.networkInterfaces.exists(n, has(n.ipAddress))',
        message: 'template.spec.networkInterfaces[].ipAddress: a static address needs replicas <= 1',
        fieldPath: '.template.spec.networkInterfaces',
        holds: (s) =>
          s.replicas <= 1 || !(s.template.spec.networkInterfaces ?? []).some((n) => has(n, 'ipAddress')),
      },
    ]),
  )
  .describe('The desired state of the Workload.');
export type WorkloadSpec = z.infer<typeof WorkloadSpec>;

/** The phases a Workload goes through (reference doc: status.phase). */
export const WorkloadPhase = z
  .enum(['Pending', 'Provisioning', 'Running', 'Failed', 'Deleting'])
  .describe('Pending, Provisioning, Running, Failed or Deleting.');
export type WorkloadPhase = z.infer<typeof WorkloadPhase>;

/** Per-location part of the Workload status. */
export const WorkloadLocationStatus = z
  .object({
    location: z.string().describe('Location name.'),
    replicas: z.number().int().describe('Instances placed in this location.'),
    readyReplicas: z.number().int().describe('Instances ready in this location.'),
  })
  .describe('Instances of the Workload in one location.');
export type WorkloadLocationStatus = z.infer<typeof WorkloadLocationStatus>;

/** The observed state of a Workload. */
export const WorkloadStatus = z
  .object({
    phase: WorkloadPhase.optional().describe('The current phase of the workload.'),
    replicas: z.number().int().optional().describe('Total number of instances.'),
    readyReplicas: z.number().int().optional().describe('Number of ready instances.'),
    availableReplicas: z
      .number()
      .int()
      .optional()
      .describe('Number of instances ready for at least minReadySeconds.'),
    updatedReplicas: z
      .number()
      .int()
      .optional()
      .describe('Number of instances running the current template.'),
    observedGeneration: z
      .number()
      .int()
      .optional()
      .describe('The .metadata.generation this status reflects.'),
    selector: z
      .string()
      .optional()
      .describe('Label selector of the instances, as a string (for the scale subresource).'),
    locations: z.array(WorkloadLocationStatus).optional().describe('Instances per location.'),
    conditions: z.array(Condition).optional().describe('Available and Progressing, with reasons.'),
  })
  .describe('The observed state of the Workload.');
export type WorkloadStatus = z.infer<typeof WorkloadStatus>;
