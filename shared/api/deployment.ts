/** WorkloadDeployment: the part of a Workload that runs in one location (one per Workload and location). */
import { z } from 'zod';
import { Condition } from './meta.js';
import { InstanceTemplate } from './template.js';

/** The desired state of a WorkloadDeployment. */
export const WorkloadDeploymentSpec = z
  .object({
    workloadRef: z
      .object({
        name: z.string().describe('Name of the Workload.'),
        uid: z.string().optional().describe('UID of the Workload.'),
      })
      .describe('The Workload this deployment belongs to.'),
    location: z.string().describe('The location it runs in.'),
    placementName: z
      .string()
      .optional()
      .describe("The placement of a v1alpha Workload's spec.placements this deployment serves."),
    cityCode: z
      .string()
      .optional()
      .describe('The city code of that placement it serves (its Location has it).'),
    replicas: z.number().int().min(0).describe('Instances in this location.'),
    template: InstanceTemplate.describe('The instance template, copied from the Workload.'),
    templateHash: z.string().optional().describe('Hash of the template, to tell updated instances.'),
    revisions: z
      .array(
        z.object({
          templateHash: z.string().describe('Hash of that template.'),
          // A copy of a template validated when it was the Workload's; unchecked here, so that the schema's CEL
          // rules are not counted once more per revision (the apiserver's cost budget would refuse the CRD).
          template: z
            .custom<InstanceTemplate>((v) => typeof v === 'object' && v !== null)
            .meta({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true })
            .describe('The older template, as the Workload had it.'),
        }),
      )
      .optional()
      .describe(
        'Older templates that some instances of this location still run while a rolling update replaces them.',
      ),
  })
  .describe('The desired state of the WorkloadDeployment.');
export type WorkloadDeploymentSpec = z.infer<typeof WorkloadDeploymentSpec>;

/** The observed state of a WorkloadDeployment. */
export const WorkloadDeploymentStatus = z
  .object({
    replicas: z.number().int().optional().describe('Instances that exist.'),
    readyReplicas: z.number().int().optional().describe('Instances that are ready.'),
    intentRevision: z
      .number()
      .int()
      .optional()
      .describe('Revision of the deployment intent published to the location.'),
    conditions: z.array(Condition).optional().describe('Conditions of the deployment.'),
  })
  .describe('The observed state of the WorkloadDeployment.');
export type WorkloadDeploymentStatus = z.infer<typeof WorkloadDeploymentStatus>;
