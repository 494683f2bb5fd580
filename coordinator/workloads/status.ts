/**
 * Status rollup, pure: from the instances of a Workload and what their hosts report, the Instance status
 * and the Workload status (phase, counts, Available/Progressing conditions, per-location breakdown).
 */
import type { Condition, InstanceStatus, WorkloadPhase, WorkloadStatus } from '../../shared/api/index.js';
import type { InterfaceAssignment, ReportedInstance } from '../../shared/nats/messages.js';
import type { HostState } from '../hosts/registry.js';

/** One Instance object with what its host says of it. */
export interface ObservedInstance {
  /** Instance name. */
  name: string;
  /** Location. */
  location: string;
  /** Host it is placed on. */
  host: string;
  /** Template hash the Instance object wants. */
  templateHash: string;
  /** The host's last word on it, if the host reported it. */
  reported?: ReportedInstance;
  /** State of the host; undefined when the host never reported. */
  hostState?: HostState;
  /** Its network interfaces as assigned (interfaces.ts); absent: no Network attached. */
  interfaces?: InterfaceAssignment[];
}

/** Sets a condition, keeping lastTransitionTime when its status did not change. */
export function setCondition(previous: Condition[] | undefined, next: Condition, now: string): Condition[] {
  const list = (previous ?? []).filter((c) => c.type !== next.type);
  const old = previous?.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : now;
  return [...list, { ...next, lastTransitionTime }].sort((a, b) => a.type.localeCompare(b.type));
}

/** Whether an observed instance counts as ready: its host is Ready and it runs the wanted template, ready. */
export function isReady(o: ObservedInstance): boolean {
  return o.hostState === 'Ready' && !!o.reported?.ready && o.reported.templateHash === o.templateHash;
}

/** The status of one Instance object. */
export function instanceStatus(
  o: ObservedInstance,
  previous: InstanceStatus | undefined,
  now: string,
): InstanceStatus {
  const r = o.reported;
  let phase: InstanceStatus['phase'];
  let message: string | undefined;
  if (o.hostState === 'Disconnected' || o.hostState === 'Lost') {
    phase = 'Unknown';
    message = `host ${o.host} is ${o.hostState.toLowerCase()}`;
  } else if (!r) {
    phase = 'Pending';
    message = o.hostState ? `waiting for host ${o.host} to start it` : `host ${o.host} has not reported`;
  } else {
    phase = r.phase;
    message = r.message;
  }
  const ready = isReady(o);
  let conditions = setCondition(
    previous?.conditions,
    { type: 'Scheduled', status: 'True', reason: 'Placed', message: `placed on host ${o.host}` },
    now,
  );
  conditions = setCondition(
    conditions,
    ready
      ? { type: 'Ready', status: 'True', reason: 'InstanceReady' }
      : {
          type: 'Ready',
          status: phase === 'Unknown' ? 'Unknown' : 'False',
          reason: `Instance${phase}`,
          ...(message ? { message } : {}),
        },
    now,
  );
  return {
    phase,
    ready,
    host: o.host,
    ...(r?.runtime ? { runtime: r.runtime } : {}),
    ...(r?.providerID ? { providerID: r.providerID } : {}),
    ...(r?.ips?.length ? { ips: r.ips } : {}),
    ...(r?.ports?.length ? { ports: r.ports } : {}),
    ...(r?.containers?.length ? { containers: r.containers } : {}),
    ...(o.interfaces?.length ? { networkInterfaces: networkInterfacesStatus(o.interfaces, r) } : {}),
    ...(message ? { message } : {}),
    ...(r?.startedAt ? { startedAt: r.startedAt } : {}),
    conditions,
  };
}

/**
 * Datum's `status.networkInterfaces[]` from the assigned interfaces, the primary first (the NETWORK IP column
 * shows the first); the MAC the host reports wins over the assigned one.
 */
function networkInterfacesStatus(
  list: InterfaceAssignment[],
  reported: ReportedInstance | undefined,
): NonNullable<InstanceStatus['networkInterfaces']> {
  return [...list]
    .sort((a, b) => Number(b.primary) - Number(a.primary))
    .map((i) => {
      const seen = reported?.interfaces?.find((r) => r.name === i.name);
      return {
        name: i.name,
        network: i.network,
        mac: seen?.mac ?? i.mac,
        primary: i.primary,
        assignments: { networkIP: i.address.split('/')[0]! },
      };
    });
}

/** Input of {@link workloadStatus}. */
export interface WorkloadStatusInput {
  /** spec.replicas. */
  desired: number;
  /** metadata.generation. */
  generation: number;
  /** Label selector of the instances, as a string. */
  selector: string;
  /** Every Instance object of the Workload. */
  instances: ObservedInstance[];
  /** Hash of the Workload's current template; instances reporting it count as updated (default: their own). */
  currentHash?: string;
  /** Replicas the placement engine could not place. */
  unplaced: number;
  /** The placement engine's explanation when unplaced > 0. */
  unschedulableReason?: string;
  /**
   * When the Workload cannot be acted on: an invalid spec (phase Failed), or references that do not exist yet
   * (reason MissingReferences: phase Pending until something runs) or a name conflict.
   */
  invalid?: { reason: string; message: string };
  /**
   * Network addresses of its interfaces (interfaces.ts), when it attaches to Networks: reason AddressesAssigned,
   * AddressPending, or AddressConflict (a static address held by another slot; the message names the field).
   */
  addressing?: { reason: string; message: string };
  /**
   * Why an intent of this Workload could not be published (e.g. `IntentTooLarge`: larger than NATS's
   * max_payload): Progressing False with that reason, until it can be.
   */
  publishError?: { reason: string; message: string };
  /**
   * The namespace's ResourceQuotas' verdict, when one tracks compute resources: condition QuotaGranted (False
   * names the quota, what is used and what is asked) and Progressing False (QuotaExceeded). Absent: no condition.
   */
  quota?: { granted: boolean; message: string };
  /** Whether the Workload is being deleted. */
  deleting: boolean;
  /** Instances that may be unavailable while Available stays True (maxUnavailable, resolved). */
  maxUnavailable: number;
  /** The current status, to keep transition times. */
  previous?: WorkloadStatus;
  /** Now (RFC 3339). */
  now: string;
}

/** The status of a Workload. */
export function workloadStatus(input: WorkloadStatusInput): WorkloadStatus {
  const { desired, instances, now, previous } = input;
  const ready = instances.filter(isReady);
  const updated = instances.filter((o) => o.reported?.templateHash === (input.currentHash ?? o.templateHash));
  const failed = instances.filter((o) => o.reported?.phase === 'Failed');
  const byLocation = new Map<string, { replicas: number; readyReplicas: number }>();
  for (const o of instances) {
    const l = byLocation.get(o.location) ?? { replicas: 0, readyReplicas: 0 };
    l.replicas++;
    if (isReady(o)) l.readyReplicas++;
    byLocation.set(o.location, l);
  }
  let phase: WorkloadPhase;
  if (input.deleting) phase = 'Deleting';
  else if (input.invalid?.reason === 'MissingReferences')
    phase = ready.length ? 'Running' : instances.length ? 'Provisioning' : 'Pending';
  else if (input.invalid) phase = 'Failed';
  // More instances than desired while a rolling update's surge instances run is still Running.
  else if (ready.length >= desired && instances.length >= desired) phase = 'Running';
  else if (instances.length === 0 && desired > 0) phase = 'Pending';
  else if (failed.length > 0 && failed.length === instances.length) phase = 'Failed';
  else phase = 'Provisioning';

  const available = ready.length >= desired - input.maxUnavailable;
  let conditions = setCondition(
    previous?.conditions,
    input.invalid && !(available && input.invalid.reason === 'MissingReferences')
      ? { type: 'Available', status: 'False', reason: input.invalid.reason, message: input.invalid.message }
      : available
        ? {
            type: 'Available',
            status: 'True',
            reason: 'MinimumReplicasAvailable',
            message: `${ready.length} of ${desired} instances ready`,
          }
        : {
            type: 'Available',
            status: 'False',
            reason: 'MinimumReplicasUnavailable',
            message: `${ready.length} of ${desired} instances ready; at least ${desired - input.maxUnavailable} needed`,
          },
    now,
  );
  let progressing: Condition;
  if (input.invalid) {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: input.invalid.reason,
      message: input.invalid.message,
    };
  } else if (input.addressing?.reason === 'AddressConflict') {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: 'AddressConflict',
      message: input.addressing.message,
    };
  } else if (input.publishError) {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: input.publishError.reason,
      message: input.publishError.message,
    };
  } else if (input.quota && !input.quota.granted) {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: 'QuotaExceeded',
      message: input.quota.message,
    };
  } else if (input.unplaced > 0) {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: 'Unschedulable',
      message: `${input.unplaced} of ${desired} instances cannot be placed: ${input.unschedulableReason ?? 'no host fits'}`,
    };
  } else if (input.currentHash && updated.length < instances.length) {
    progressing = {
      type: 'Progressing',
      status: 'True',
      reason: 'RollingUpdate',
      message: `${updated.length} of ${instances.length} instances updated, ${ready.length} ready`,
    };
  } else if (phase === 'Running') {
    progressing = {
      type: 'Progressing',
      status: 'True',
      reason: 'ReplicasReady',
      message: `all ${desired} instances ready`,
    };
  } else if (failed.length) {
    progressing = {
      type: 'Progressing',
      status: 'True',
      reason: 'InstancesFailing',
      message: `${failed.length} instance(s) failing: ${failed[0]!.name}: ${failed[0]!.reported?.message ?? 'failed'}`,
    };
  } else {
    progressing = {
      type: 'Progressing',
      status: 'True',
      reason: 'ReplicasUpdating',
      message: `${ready.length} of ${desired} instances ready`,
    };
  }
  conditions = setCondition(conditions, progressing, now);
  conditions = input.quota
    ? setCondition(
        conditions,
        {
          type: 'QuotaGranted',
          status: input.quota.granted ? 'True' : 'False',
          reason: input.quota.granted ? 'QuotaGranted' : 'QuotaExceeded',
          message: input.quota.message,
        },
        now,
      )
    : conditions.filter((c) => c.type !== 'QuotaGranted');
  if (input.addressing) {
    const ok = input.addressing.reason === 'AddressesAssigned';
    conditions = setCondition(
      conditions,
      { type: 'AddressesAssigned', status: ok ? 'True' : 'False', ...input.addressing },
      now,
    );
  }
  return {
    phase,
    replicas: instances.length,
    readyReplicas: ready.length,
    availableReplicas: ready.length,
    updatedReplicas: updated.length,
    observedGeneration: input.generation,
    selector: input.selector,
    locations: [...byLocation.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([location, l]) => ({ location, ...l })),
    conditions,
  };
}
