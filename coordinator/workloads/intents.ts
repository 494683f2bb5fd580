/**
 * Building the intents, pure: one DeploymentIntent per location with instances. It carries the current
 * template, the instances placed there (each with the older template it still runs during a rolling update,
 * if any) and those older templates, with the Secret/ConfigMap values of each (sealed to the hosts by the
 * intent store). Older templates get today's values: an instance restarted on one gets what its references
 * hold now.
 */
import type { InstanceTemplate, ResourceAmounts } from '../../shared/api/index.js';
import { type DeploymentIntent, MESSAGE_VERSION, type ResolvedValues } from '../../shared/nats/messages.js';
import { instanceLimits } from '../../shared/resources.js';
import { type ReferenceLookup, resolveReferences } from './references.js';
import type { PlannedIntent } from './types.js';

/** One instance of a location as its intent lists it. */
export interface IntentMember {
  /** Instance name. */
  name: string;
  /** Host that runs it. */
  host: string;
  /** Ordinal in its location. */
  ordinal: number;
}

/** What {@link buildIntents} needs. */
export interface IntentInput {
  /** Namespace of the Workload. */
  namespace: string;
  /** Name of the Workload. */
  workload: string;
  /** UID of the Workload. */
  workloadUid: string;
  /** Hash of the current template. */
  hash: string;
  /** The current template. */
  template: InstanceTemplate;
  /** Per-instance limits of the current template. */
  limits: ResourceAmounts;
  /** Resolved values of the current template. */
  values: ResolvedValues;
  /** Labels every instance carries. */
  labels: Record<string, string>;
  /** Instances by location. */
  members: ReadonlyMap<string, readonly IntentMember[]>;
  /** The template hash each instance runs after this pass. */
  runsOf: (instance: string) => string;
  /** The older templates the instances of a location still run. */
  revisionsOf: (location: string) => Array<{ templateHash: string; template: InstanceTemplate }>;
  /** The namespace's Secrets and ConfigMaps, for the values of the older templates. */
  lookup: ReferenceLookup;
  /** Now (RFC 3339): the intents' updatedAt. */
  now: string;
}

/** The intents of every location with instances. */
export function buildIntents(t: IntentInput): PlannedIntent[] {
  const out: PlannedIntent[] = [];
  for (const [location, list] of t.members) {
    if (!list.length) continue;
    const older = t.revisionsOf(location);
    const revisions: NonNullable<DeploymentIntent['revisions']> = [];
    const olderValues: Record<string, ResolvedValues> = {};
    for (const { templateHash: h, template } of older) {
      let limits = t.limits;
      try {
        limits = instanceLimits(template.spec);
      } catch {
        // it was valid when it was published
      }
      revisions.push({ templateHash: h, template: template.spec, limits });
      olderValues[h] = resolveReferences({ template }, t.lookup).values;
    }
    const values: ResolvedValues = older.length ? { ...t.values, revisions: olderValues } : t.values;
    const intent: DeploymentIntent = {
      v: MESSAGE_VERSION,
      location,
      namespace: t.namespace,
      workload: t.workload,
      workloadUid: t.workloadUid,
      templateHash: t.hash,
      template: t.template.spec,
      limits: t.limits,
      instances: [...list]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((m) => {
          const runs = t.runsOf(m.name);
          return { ...m, labels: t.labels, ...(runs !== t.hash ? { templateHash: runs } : {}) };
        }),
      ...(revisions.length ? { revisions } : {}),
      updatedAt: t.now,
    };
    out.push({ intent, values });
  }
  return out;
}
