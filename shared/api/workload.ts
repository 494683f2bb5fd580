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

/** A scaling policy: how much may change within a period (HPA `HPAScalingPolicy`). */
export const ScalingPolicy = z
  .object({
    type: z
      .enum(['Pods', 'Percent'])
      .describe('Pods (a number of instances) or Percent (of the count at the start of the period).'),
    value: z
      .number()
      .int()
      .min(1)
      .max(2_147_483_647)
      .describe('How many instances, or what percentage, per period.'),
    periodSeconds: z
      .number()
      .int()
      .min(1)
      .max(1800)
      .describe('The window the change is counted over (1 to 1800 seconds).'),
  })
  .describe('A limit on the change of the replica count within a period.');
export type ScalingPolicy = z.infer<typeof ScalingPolicy>;

/** Scaling rules of one direction (HPA `HPAScalingRules`). */
export const ScalingRules = z
  .object({
    stabilizationWindowSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .optional()
      .describe(
        'Recommendations of the last this many seconds are considered: scaling down takes their maximum, scaling up their minimum. Default: 300 down, 0 up.',
      ),
    selectPolicy: z
      .enum(['Max', 'Min', 'Disabled'])
      .optional()
      .describe(
        'Which policy wins: Max (the largest change, default), Min (the smallest), or Disabled (no scaling in this direction).',
      ),
    policies: z
      .array(ScalingPolicy)
      .min(1)
      .max(10)
      .optional()
      .describe(
        'Rate limits. Default up: 4 instances or 100 % per 15 s, whichever is more; default down: 100 % per 15 s.',
      ),
  })
  .describe('How fast the autoscaler may scale in one direction.');
export type ScalingRules = z.infer<typeof ScalingRules>;

/** A metric the autoscaler scales on: the CPU utilisation of the instances, as HPA's Resource metric. */
export const AutoscalingMetric = z
  .object({
    type: z.literal('Resource').describe('Resource: a resource of the instances, averaged over them.'),
    resource: z
      .object({
        name: z.literal('cpu').describe('cpu (the only resource measured).'),
        target: z
          .object({
            type: z.literal('Utilization').describe('Utilization: usage as a percentage of the CPU request.'),
            averageUtilization: z
              .number()
              .int()
              .min(1)
              .max(1000)
              .describe("The target average utilisation, in percent of each instance's CPU request."),
          })
          .describe('The target value.'),
      })
      .describe('The resource and its target.'),
  })
  .describe("A metric to scale on (only the CPU utilisation of the instances, as HPA's Resource metric).");
export type AutoscalingMetric = z.infer<typeof AutoscalingMetric>;

/** Automatic scaling of a Workload, after the HorizontalPodAutoscaler (autoscaling/v2) and Datum's scaleSettings. */
export const WorkloadAutoscaling = z
  .object({
    minReplicas: z
      .number()
      .int()
      .min(1)
      .max(2_147_483_647)
      .default(1)
      .describe('The fewest instances the autoscaler scales down to (default 1).'),
    maxReplicas: z
      .number()
      .int()
      .min(1)
      .max(2_147_483_647)
      .describe('The most instances the autoscaler scales up to.'),
    metrics: z
      .array(AutoscalingMetric)
      .max(1)
      .optional()
      .describe('What to scale on; default: an average CPU utilisation of 80 %.'),
    behavior: z
      .object({
        scaleUp: ScalingRules.optional().describe('Scaling up.'),
        scaleDown: ScalingRules.optional().describe('Scaling down.'),
      })
      .optional()
      .describe('Stabilisation windows and rate limits per direction.'),
  })
  .apply(
    cel([
      {
        rule: '!has(self.minReplicas) || self.minReplicas <= self.maxReplicas',
        message: 'minReplicas must not exceed maxReplicas',
        fieldPath: '.minReplicas',
        holds: (a) => a.minReplicas <= a.maxReplicas,
      },
    ]),
  )
  .describe(
    'Automatic scaling on CPU utilisation (the HorizontalPodAutoscaler algorithm); the autoscaler then owns spec.replicas.',
  );
export type WorkloadAutoscaling = z.infer<typeof WorkloadAutoscaling>;

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
    autoscaling: WorkloadAutoscaling.optional().describe(
      'Scale the instance count automatically on CPU utilisation; spec.replicas is then set by the autoscaler (see docs/autoscaling.md).',
    ),
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

/** What the autoscaler last saw and decided (status.autoscaling). */
export const WorkloadAutoscalingStatus = z
  .object({
    currentReplicas: z.number().int().optional().describe('spec.replicas when the autoscaler last looked.'),
    desiredReplicas: z.number().int().optional().describe('The count the autoscaler last decided on.'),
    currentCPUUtilizationPercentage: z
      .number()
      .int()
      .optional()
      .describe('The average CPU utilisation of the ready instances measured, in percent of their request.'),
    targetCPUUtilizationPercentage: z
      .number()
      .int()
      .optional()
      .describe('The target utilisation, in percent.'),
    currentAverageCPUMillis: z
      .number()
      .int()
      .optional()
      .describe('The average CPU usage of the ready instances measured, in millicores.'),
    measuredInstances: z.number().int().optional().describe('Instances with a CPU measurement.'),
    lastScaleTime: z
      .string()
      .optional()
      .describe('When the autoscaler last changed spec.replicas (RFC 3339).'),
    conditions: z
      .array(Condition)
      .optional()
      .describe('AbleToScale, ScalingActive and ScalingLimited, as HPA has them.'),
  })
  .describe('The state of the autoscaler.');
export type WorkloadAutoscalingStatus = z.infer<typeof WorkloadAutoscalingStatus>;

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
    conditions: z
      .array(Condition)
      .optional()
      .describe('Available and Progressing, with reasons; QuotaGranted when a ResourceQuota applies.'),
    autoscaling: WorkloadAutoscalingStatus.optional().describe(
      'The autoscaler: current and target utilisation, its conditions (only with spec.autoscaling).',
    ),
  })
  .describe('The observed state of the Workload.');
export type WorkloadStatus = z.infer<typeof WorkloadStatus>;
