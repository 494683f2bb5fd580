/**
 * Building blocks shared by every Edgeplane API type: label selectors, conditions and references.
 * They follow the Kubernetes types of the same names, so that users can copy what they know.
 */
import { z } from 'zod';

/** A label selector requirement: a key, an operator, and values (Kubernetes `LabelSelectorRequirement`). */
export const LabelSelectorRequirement = z
  .object({
    key: z.string().min(1).describe('The label key that the selector applies to.'),
    operator: z
      .enum(['In', 'NotIn', 'Exists', 'DoesNotExist'])
      .describe('How the key relates to the values: In, NotIn, Exists or DoesNotExist.'),
    values: z
      .array(z.string())
      .optional()
      .describe('Values for In and NotIn (non-empty); must be empty for Exists and DoesNotExist.'),
  })
  .describe('A selector requirement: a key, an operator and values.');
export type LabelSelectorRequirement = z.infer<typeof LabelSelectorRequirement>;

/** A label query over a set of objects (Kubernetes `LabelSelector`); its terms are ANDed. */
export const LabelSelector = z
  .object({
    matchLabels: z
      .record(z.string().max(317), z.string().max(63))
      .meta({ maxProperties: 64 })
      .optional()
      .describe('Labels that must all be present with exactly these values.'),
    matchExpressions: z
      .array(LabelSelectorRequirement)
      .optional()
      .describe('Requirements that must all hold.'),
  })
  .describe(
    'A label query; matchLabels and matchExpressions are ANDed. An empty selector matches everything.',
  );
export type LabelSelector = z.infer<typeof LabelSelector>;

/** A reference to an object by name, in the same namespace. */
export const LocalObjectReference = z
  // At most 253 (a Kubernetes object name): the bound also keeps the CEL rules that compare names within the API
  // server's cost budget.
  .object({ name: z.string().min(1).max(253).describe('Name of the referenced object.') })
  .describe('A reference to an object in the same namespace.');
export type LocalObjectReference = z.infer<typeof LocalObjectReference>;

/** A status condition (Kubernetes `metav1.Condition`). */
export const Condition = z
  .object({
    type: z.string().describe('Type of condition, such as Available or Progressing.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
    reason: z.string().optional().describe('Machine-readable reason, in CamelCase.'),
    message: z.string().optional().describe('Human-readable message with details.'),
    lastTransitionTime: z.string().optional().describe('When the condition last changed status (RFC 3339).'),
    observedGeneration: z
      .number()
      .int()
      .optional()
      .describe('The .metadata.generation the condition was computed from.'),
  })
  .describe('A condition of an object, in the manner of Kubernetes.');
export type Condition = z.infer<typeof Condition>;

/**
 * A Kubernetes quantity such as `100m`, `2`, `4Gi` or `512Mi`. Integers are accepted too.
 * The generator turns this into `x-kubernetes-int-or-string`, as Kubernetes does for its own quantities.
 */
export const Quantity = z
  .union([
    z.string().regex(/^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|[MGTPE]i|[numkMGTPE])?$/),
    z.number().min(0),
  ])
  .meta({ 'x-kubernetes-int-or-string': true })
  .describe('A quantity such as 100m, 2, 512Mi or 4Gi.');
export type Quantity = z.infer<typeof Quantity>;

/** An integer or a percentage, such as `1` or `25%` (Kubernetes `IntOrString`). */
export const IntOrPercent = z
  .union([z.string().regex(/^[0-9]+%$/), z.number().int().min(0)])
  .meta({ 'x-kubernetes-int-or-string': true })
  .describe('An absolute number such as 1, or a percentage such as 25%.');
export type IntOrPercent = z.infer<typeof IntOrPercent>;

/** Object metadata that a template carries onto every instance made from it. */
export const TemplateMetadata = z
  .object({
    labels: z
      .record(z.string().max(317), z.string().max(63))
      .meta({ maxProperties: 64 })
      .optional()
      .describe('Labels given to every instance.'),
    annotations: z.record(z.string(), z.string()).optional().describe('Annotations given to every instance.'),
  })
  .describe('Labels and annotations for the instances made from the template.');
export type TemplateMetadata = z.infer<typeof TemplateMetadata>;

/** CPU (millicores) and memory (bytes) as plain integers, so they sort and sum. */
export const ResourceAmounts = z
  .object({
    cpuMillis: z.number().int().describe('CPU in millicores.'),
    memoryBytes: z.number().int().describe('Memory in bytes.'),
  })
  .describe('CPU and memory.');
export type ResourceAmounts = z.infer<typeof ResourceAmounts>;

/**
 * What a host has or offers: CPU and memory, and — like a Kubernetes node's `ephemeral-storage` — the size of
 * the filesystem holding the agent's state directory. Optional: agents before it did not report disk.
 */
export const HostResourceAmounts = ResourceAmounts.extend({
  ephemeralStorageBytes: z
    .number()
    .int()
    .optional()
    .describe("Disk in bytes: size of the filesystem holding the agent's state directory."),
}).describe('CPU, memory and disk.');
export type HostResourceAmounts = z.infer<typeof HostResourceAmounts>;
