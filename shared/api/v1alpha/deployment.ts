/**
 * `compute.datumapis.com/v1alpha` WorkloadDeployment: the part of a Workload that runs in one city of one placement
 * (`<workload>-<placement>-<city in lower case>`), as Datum's released API defines it. Stored as v1alpha1
 * (coordinator/conversion/deployment.ts).
 */
import { z } from 'zod';
import { Condition } from '../meta.js';
import { HorizontalScaleSettings } from './workload.js';

/** The desired state of a v1alpha WorkloadDeployment. */
export const WorkloadDeploymentSpec = z
  .object({
    workloadRef: z
      .object({
        name: z.string().describe('Name of the Workload.'),
        uid: z.string().optional().describe('UID of the Workload.'),
      })
      .describe('The Workload this deployment belongs to.'),
    placementName: z
      .string()
      .optional()
      .describe('The placement of the Workload that drives this deployment.'),
    cityCode: z.string().optional().describe('The city code it is deployed in.'),
    // A copy of the Workload's template, validated there; unchecked here (as in v1alpha1), so the CEL rules are not
    // counted twice against the API server's cost budget.
    template: z
      .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null)
      .meta({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true })
      .describe("Settings of each instance, copied from the Workload's template."),
    scaleSettings: HorizontalScaleSettings.optional().describe('Scale settings of the placement.'),
  })
  .describe('The desired state of the WorkloadDeployment.');
export type WorkloadDeploymentSpec = z.infer<typeof WorkloadDeploymentSpec>;

/** The observed state of a v1alpha WorkloadDeployment. */
export const WorkloadDeploymentStatus = z
  .object({
    location: z
      .object({
        name: z.string().describe('Name of the Location.'),
        namespace: z.string().optional().describe('Namespace of the Location (empty: cluster-scoped here).'),
      })
      .optional()
      .describe('The Location the deployment was scheduled to.'),
    conditions: z.array(Condition).optional().describe('Available, with reasons.'),
    replicas: z.number().int().optional().describe('Instances created.'),
    currentReplicas: z.number().int().optional().describe('Instances with the latest settings.'),
    desiredReplicas: z.number().int().optional().describe('Instances desired.'),
    readyReplicas: z.number().int().optional().describe('Instances ready.'),
  })
  .describe('The observed state of the WorkloadDeployment.');
export type WorkloadDeploymentStatus = z.infer<typeof WorkloadDeploymentStatus>;
