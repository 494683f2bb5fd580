/**
 * The first step of a pass: whether the Workload can be acted on. A Workload is blocked (and only its status
 * is written) when another API group's Workload owns its instance names, when its spec is invalid, or while
 * a Secret, ConfigMap or Network it references does not exist, or while its network attachments cannot be
 * honoured (attachments.ts: the message names the field). Pure over the objects it is given.
 */
import { runtimeOf, UnknownImageError, WORKLOAD_GROUPS, WorkloadSpec } from '../../shared/api/index.js';
import { formatIssues } from '../../shared/nats/messages.js';
import { instanceLimits, instanceRequests } from '../../shared/resources.js';
import { DEFAULT_UNDERLAY_MTU, type NetworkSettings } from '../networks/config.js';
import { checkAttachments } from './attachments.js';
import { type ReferenceLookup, resolveReferences } from './references.js';
import type { ValidWorkload, WorkloadObject } from './types.js';

/** Why a Workload cannot be acted on: the event reason and message, also shown in its status. */
export interface Blocked {
  /** NameConflict, InvalidSpec, InvalidNetworkInterfaces or MissingReferences. */
  reason: string;
  /** What is wrong, naming the field or the missing objects. */
  message: string;
}

/**
 * Instances are named after the Workload, so one name may be used in one API group per namespace: the oldest
 * Workload of that name keeps it (ties: the group listed first in WORKLOAD_GROUPS). `sameNamed` are the live
 * Workloads of the same namespace and name in other groups. Returns the group that keeps it, when not this one.
 */
export function conflictingGroup(
  group: string,
  wl: WorkloadObject,
  sameNamed: Array<{ group: string; workload: WorkloadObject }>,
): string | undefined {
  const rank = (g: string, w: WorkloadObject) =>
    [w.metadata.creationTimestamp ?? '', WORKLOAD_GROUPS.indexOf(g as never)] as const;
  const mine = rank(group, wl);
  for (const { group: g, workload: other } of sameNamed) {
    if (g === group || other.metadata.deletionTimestamp) continue;
    const theirs = rank(g, other);
    if (theirs[0] < mine[0] || (theirs[0] === mine[0] && theirs[1] < mine[1])) return g;
  }
  return undefined;
}

/** The Workload ready to plan, or why it is blocked. */
export function validateWorkload(input: {
  /** The Workload. */
  workload: WorkloadObject;
  /** The group that owns its instance names, when another one does (see {@link conflictingGroup}). */
  conflict: string | undefined;
  /** The namespace's Secrets, ConfigMaps and Networks. */
  lookup: ReferenceLookup;
  /** Installation-wide network settings (the underlay MTU). */
  networkSettings?: NetworkSettings;
}): { valid: ValidWorkload } | { blocked: Blocked } {
  const { workload: wl, conflict } = input;
  const name = wl.metadata.name;
  if (conflict) {
    return {
      blocked: {
        reason: 'NameConflict',
        message: `a Workload ${name} in API group ${conflict} already owns the instance names ${name}-*; rename this one or delete that one`,
      },
    };
  }
  const parsed = WorkloadSpec.safeParse(wl.spec);
  if (!parsed.success)
    return { blocked: { reason: 'InvalidSpec', message: formatIssues(parsed.error, 'spec') } };
  const spec = parsed.data;
  let derived: Pick<ValidWorkload, 'requests' | 'limits' | 'runtime'>;
  try {
    derived = {
      requests: instanceRequests(spec.template.spec),
      limits: instanceLimits(spec.template.spec),
      runtime: runtimeOf(spec.template.spec),
    };
  } catch (err) {
    const message =
      err instanceof UnknownImageError
        ? `spec.${err.message}`
        : `spec.template.spec: ${(err as Error).message}`;
    return { blocked: { reason: 'InvalidSpec', message } };
  }
  const attachmentError = checkAttachments(
    spec,
    wl.metadata.namespace ?? '',
    (n) => input.lookup.network(n),
    input.networkSettings ?? { underlayMtu: DEFAULT_UNDERLAY_MTU },
  );
  if (attachmentError) return { blocked: { reason: 'InvalidNetworkInterfaces', message: attachmentError } };
  const refs = resolveReferences(spec, input.lookup);
  if (refs.missing.length) {
    return {
      blocked: {
        reason: 'MissingReferences',
        message: `waiting for ${refs.missing.join(', ')} in namespace ${wl.metadata.namespace}`,
      },
    };
  }
  return { valid: { spec, ...derived, values: refs.values } };
}
