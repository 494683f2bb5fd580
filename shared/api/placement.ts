/**
 * `spec.placement` of a Workload: where its instances may run and how they are spread.
 *
 * The field names are those of Kubernetes (`nodeSelector`, `affinity`, `topologySpreadConstraints`) so that
 * manifests written for kube-scheduler read the same here; a "node" is an edge host and a "pod" is an instance.
 * Edgeplane adds the shorthand `providers` and `regions`, the all-or-nothing `gang` policy of the Kubernetes
 * gang-scheduling Workload API, and a `scoring` strategy.
 *
 * These schemas are plain objects (no transforms, no lazy schemas) because the CRD's structural OpenAPI schema is
 * generated from them; rules that JSON Schema cannot express are CEL `x-kubernetes-validations`.
 */
import { z } from 'zod';
import { cel } from './cel.js';
import { LabelSelector } from './meta.js';

/** Label of a host that names its infrastructure provider (`placement.providers` selects on it). */
export const PROVIDER_LABEL = 'provider';
/** Label of a host that names its region (`placement.regions` selects on it). */
export const REGION_LABEL = 'topology.kubernetes.io/region';
/** Label of a host that names its zone. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** Label of a host that names its city (IATA code, e.g. DFW), as Datum's Locations carry it; `--city-code`. */
export const CITY_CODE_LABEL = 'topology.datum.net/city-code';
/** Label of a host that carries its name. */
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/** A requirement on a host label (Kubernetes `NodeSelectorRequirement`). */
export const NodeSelectorRequirement = z
  .object({
    key: z.string().min(1).describe('The host label key the requirement applies to, e.g. `provider`.'),
    operator: z
      .enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'])
      .describe(
        "How the label relates to the values. `In` / `NotIn`: the label's value is / is not one of `values` " +
          '(`NotIn` also matches hosts without the label). `Exists` / `DoesNotExist`: the label is / is not set. ' +
          "`Gt` / `Lt`: the label's value, read as an integer, is greater / less than the single integer in `values`.",
      ),
    values: z
      .array(z.string().max(63))
      .max(64)
      .optional()
      .describe(
        'Values to compare with: at least one for `In` and `NotIn`, exactly one integer for `Gt` and `Lt`, ' +
          'none for `Exists` and `DoesNotExist`.',
      ),
  })
  .apply(
    cel(
      [
        {
          rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
          message: 'values must be non-empty when operator is In or NotIn',
          holds: (s) => !['In', 'NotIn'].includes(s.operator) || (s.values?.length ?? 0) > 0,
        },
        {
          rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
          message: 'values must be empty when operator is Exists or DoesNotExist',
          holds: (s) => !['Exists', 'DoesNotExist'].includes(s.operator) || (s.values?.length ?? 0) === 0,
        },
        {
          rule:
            "!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1 && " +
            "self.values[0].matches('^-?[0-9]+$'))",
          message: 'values must be a single integer when operator is Gt or Lt',
          holds: (s) =>
            !['Gt', 'Lt'].includes(s.operator) || (s.values?.length === 1 && /^-?[0-9]+$/.test(s.values[0]!)),
        },
      ],
      { description: 'A requirement on a host label: a key, an operator and values.' },
    ),
  );
export type NodeSelectorRequirement = z.infer<typeof NodeSelectorRequirement>;

/** A host selector term (Kubernetes `NodeSelectorTerm`): its requirements are ANDed. */
export const NodeSelectorTerm = z
  .object({
    matchExpressions: z
      .array(NodeSelectorRequirement)
      .max(32)
      .optional()
      .describe('Requirements on host labels; all must hold.'),
    matchFields: z
      .array(NodeSelectorRequirement)
      .max(32)
      .optional()
      .describe(
        'Requirements on host fields; all must hold. The only field is `metadata.name`, the host name ' +
          '(operators In and NotIn).',
      ),
  })
  .describe(
    'A host selector term: matchExpressions and matchFields are ANDed. A term with no requirements matches no host.',
  );
export type NodeSelectorTerm = z.infer<typeof NodeSelectorTerm>;

/** A required host selector (Kubernetes `NodeSelector`): its terms are ORed. */
export const NodeSelector = z
  .object({
    nodeSelectorTerms: z
      .array(NodeSelectorTerm)
      .min(1)
      .max(16)
      .describe('Host selector terms; a host matches if it matches at least one of them.'),
  })
  .describe('A host selector: a host must match one of the terms.');
export type NodeSelector = z.infer<typeof NodeSelector>;

/** A weighted host preference (Kubernetes `PreferredSchedulingTerm`). */
export const PreferredSchedulingTerm = z
  .object({
    weight: z
      .number()
      .int()
      .min(1)
      .max(100)
      .describe('Weight, 1 to 100, added to the score of every host that matches `preference`.'),
    preference: NodeSelectorTerm.describe('The host selector term that hosts are preferred for matching.'),
  })
  .describe('A preference for hosts that match a term, with a weight.');
export type PreferredSchedulingTerm = z.infer<typeof PreferredSchedulingTerm>;

/** Host affinity (Kubernetes `NodeAffinity`). */
export const NodeAffinity = z
  .object({
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector.optional().describe(
      'Hosts an instance may be placed on. Checked when an instance is placed; an instance already running ' +
        'stays if the host labels change later.',
    ),
    preferredDuringSchedulingIgnoredDuringExecution: z
      .array(PreferredSchedulingTerm)
      .max(16)
      .optional()
      .describe(
        'Hosts to prefer: among the hosts that fit, those whose matching preferences have the highest total ' +
          'weight are chosen first.',
      ),
  })
  .describe('Rules on host labels: required (a filter) and preferred (a score).');
export type NodeAffinity = z.infer<typeof NodeAffinity>;

/** A set of instances, and the topology domain they are counted in (Kubernetes `PodAffinityTerm`). */
export const PodAffinityTerm = z
  .object({
    labelSelector: LabelSelector.optional().describe(
      'Which instances the term is about, by their labels. Without it the term matches no instance.',
    ),
    namespaces: z
      .array(z.string())
      .optional()
      .describe(
        'Namespaces whose instances the term is about, in addition to those chosen by `namespaceSelector`. ' +
          "When both are empty, the Workload's own namespace.",
      ),
    namespaceSelector: LabelSelector.optional().describe(
      'Namespaces whose instances the term is about, by namespace labels. `{}` means every namespace.',
    ),
    topologyKey: z
      .string()
      .min(1)
      .describe(
        'Host label that defines the domain: hosts with the same value of this label are in the same domain ' +
          '(`kubernetes.io/hostname`: the same host; `topology.kubernetes.io/zone`: the same zone).',
      ),
    matchLabelKeys: z
      .array(z.string())
      .optional()
      .describe(
        'Label keys whose values are taken from the instance being placed and added to `labelSelector` as `key In (value)`.',
      ),
    mismatchLabelKeys: z
      .array(z.string())
      .optional()
      .describe(
        'Label keys whose values are taken from the instance being placed and added to `labelSelector` as ' +
          '`key NotIn (value)`.',
      ),
  })
  .describe(
    'A group of instances (chosen by labels and namespaces) and the topology key of the domain in which they count.',
  );
export type PodAffinityTerm = z.infer<typeof PodAffinityTerm>;

/** A weighted instance (anti-)affinity preference (Kubernetes `WeightedPodAffinityTerm`). */
export const WeightedPodAffinityTerm = z
  .object({
    weight: z.number().int().min(1).max(100).describe('Weight, 1 to 100, of this preference.'),
    podAffinityTerm: PodAffinityTerm.describe('The instances and domain the preference is about.'),
  })
  .describe('A preference about other instances, with a weight.');
export type WeightedPodAffinityTerm = z.infer<typeof WeightedPodAffinityTerm>;

const podAffinityFields = (verb: string) => ({
  requiredDuringSchedulingIgnoredDuringExecution: z
    .array(PodAffinityTerm)
    .optional()
    .describe(
      `Terms that must all hold: an instance is only placed ${verb}. Checked when an instance is placed; ` +
        'running instances are not moved later.',
    ),
  preferredDuringSchedulingIgnoredDuringExecution: z
    .array(WeightedPodAffinityTerm)
    .optional()
    .describe(`Preferences: hosts ${verb} score the weight of each term.`),
});

/** Co-location with other instances (Kubernetes `PodAffinity`). */
export const PodAffinity = z
  .object(podAffinityFields('in a domain that already runs a matching instance'))
  .describe('Rules to place instances in the same domain as other instances (of any Workload).');
export type PodAffinity = z.infer<typeof PodAffinity>;

/** Separation from other instances (Kubernetes `PodAntiAffinity`). */
export const PodAntiAffinity = z
  .object(podAffinityFields('in a domain that runs no matching instance'))
  .describe('Rules to keep instances out of domains that run other instances (of any Workload).');
export type PodAntiAffinity = z.infer<typeof PodAntiAffinity>;

/** Affinity rules (Kubernetes `Affinity`). */
export const Affinity = z
  .object({
    nodeAffinity: NodeAffinity.optional().describe('Rules on the labels of hosts.'),
    podAffinity: PodAffinity.optional().describe('Rules to run near other instances.'),
    podAntiAffinity: PodAntiAffinity.optional().describe('Rules to run away from other instances.'),
  })
  .describe('Host affinity, instance affinity and instance anti-affinity.');
export type Affinity = z.infer<typeof Affinity>;

/** How instances are spread over topology domains (Kubernetes `TopologySpreadConstraint`). */
export const TopologySpreadConstraint = z
  .object({
    maxSkew: z
      .number()
      .int()
      .min(1)
      .describe(
        'The largest allowed difference between the number of matching instances in a domain and the ' +
          'smallest number in any eligible domain (taken as 0 while fewer than `minDomains` domains exist).',
      ),
    topologyKey: z
      .string()
      .min(1)
      .describe(
        'Host label whose values are the domains, e.g. `topology.kubernetes.io/zone`. Hosts without the label ' +
          'are not used when `whenUnsatisfiable` is DoNotSchedule.',
      ),
    whenUnsatisfiable: z
      .enum(['DoNotSchedule', 'ScheduleAnyway'])
      .describe(
        'DoNotSchedule: a hard rule, an instance stays unplaced rather than exceed maxSkew. ' +
          'ScheduleAnyway: a preference, hosts that reduce the skew score higher.',
      ),
    labelSelector: LabelSelector.optional().describe(
      "Which instances are counted, among those in the Workload's namespace. Defaults to the Workload's own instances.",
    ),
    minDomains: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Minimum number of eligible domains. While fewer exist, the smallest count is taken as 0, so at most ' +
          'maxSkew instances go to each domain. Only with DoNotSchedule.',
      ),
    nodeAffinityPolicy: z
      .enum(['Honor', 'Ignore'])
      .optional()
      .describe(
        'Honor (default): only hosts that pass nodeSelector, nodeAffinity, providers and regions count as ' +
          'domains. Ignore: every host with the topology key counts.',
      ),
    nodeTaintsPolicy: z
      .enum(['Honor', 'Ignore'])
      .optional()
      .describe(
        'Ignore (default): every host counts as a domain. Honor: hosts that are cordoned or not ready do not count.',
      ),
    matchLabelKeys: z
      .array(z.string())
      .optional()
      .describe(
        'Label keys whose values are taken from the instance being placed and added to `labelSelector`, so ' +
          'that only instances with the same values are counted.',
      ),
  })
  .apply(
    cel(
      [
        {
          rule: "!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
          message: 'minDomains is only allowed with whenUnsatisfiable: DoNotSchedule',
          holds: (s) => s.minDomains === undefined || s.whenUnsatisfiable === 'DoNotSchedule',
        },
      ],
      { description: 'Spread instances evenly over the domains of a host label.' },
    ),
  );
export type TopologySpreadConstraint = z.infer<typeof TopologySpreadConstraint>;

/** All-or-nothing placement (the `gang` policy of the Kubernetes gang-scheduling Workload API). */
export const GangPolicy = z
  .object({
    minCount: z
      .number()
      .int()
      .min(1)
      .describe(
        'The Workload is placed only if at least this many instances can run at once; until then none is ' +
          'placed and the reason is reported.',
      ),
  })
  .describe('Gang placement: place at least minCount instances together, or none.');
export type GangPolicy = z.infer<typeof GangPolicy>;

/** How feasible hosts are ranked (besides preferences). */
export const PlacementScoring = z
  .enum(['Spread', 'BinPack'])
  .describe(
    'How hosts that fit are ranked. Spread (default; kube-scheduler LeastAllocated, Nomad "spread"): prefer ' +
      'the least allocated host, so instances spread over many hosts. BinPack (kube-scheduler MostAllocated, ' +
      'Nomad "binpack"): prefer the most allocated host that still fits, so fewer hosts are used.',
  );
export type PlacementScoring = z.infer<typeof PlacementScoring>;

/** `spec.placement` of a Workload. */
export const Placement = z
  .object({
    nodeSelector: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        'Host labels that must all be present with exactly these values, e.g. ' +
          '`topology.kubernetes.io/region: us-central1`.',
      ),
    affinity: Affinity.optional().describe('Affinity and anti-affinity rules, as in Kubernetes.'),
    topologySpreadConstraints: z
      .array(TopologySpreadConstraint)
      .optional()
      .describe('How to spread instances over zones, regions, providers or hosts. All constraints apply.'),
    providers: z
      .array(z.string())
      .optional()
      .describe(
        'Shorthand: instances run only on hosts whose `provider` label is one of these, e.g. `gcp`. ' +
          'Combined with every other rule.',
      ),
    regions: z
      .array(z.string())
      .optional()
      .describe(
        'Shorthand: instances run only on hosts whose `topology.kubernetes.io/region` label is one of these, ' +
          'e.g. `us-central1`. Combined with every other rule.',
      ),
    gang: GangPolicy.optional().describe(
      'Place the Workload all-or-nothing: nothing runs until at least minCount instances can be placed at once.',
    ),
    scoring: PlacementScoring.optional(),
  })
  .describe(
    'Where instances may run and how they are spread. Without placement, instances go to the least ' +
      'allocated hosts that fit.',
  );
export type Placement = z.infer<typeof Placement>;
