/**
 * Network interfaces of a pass, pure, in two steps around the IPAM store (the one step of a pass that claims
 * something before the writes):
 *   1. `addressPlan`: from the planned intents, every instance's attachments (from the template it runs) and,
 *      per Network, the address requests of its slots;
 *   2. `withInterfaces`: the plan with each intent instance's `interfaces` filled in (name net<i>, a MAC
 *      derived from the slot, address/prefix, MTU, primary, ingress). A new instance that lacks an address is
 *      not created this pass (no Instance without its address); a static address held by another slot puts
 *      a condition on the Workload naming the field and the holder.
 * Invariant: an instance in the intents either has every attachment's address or existed before this pass.
 */
import { createHash } from 'node:crypto';
import type { NetworkSpec, WorkloadSpec } from '../../shared/api/index.js';
import type { InterfaceAssignment } from '../../shared/nats/messages.js';
import { formatIPv4, parseIPv4 } from '../networks/cidr.js';
import { type EffectiveNetwork, effectiveNetwork, type NetworkSettings } from '../networks/config.js';
import type { AddressRequest } from '../networks/ipam.js';
import type { SegmentMember } from '../networks/segments.js';
import type { AddressOutcome } from '../networks/store.js';
import { type Attachment, attachmentsOf } from './attachments.js';
import type { PlannedEvent, WorkloadPlan } from './types.js';

/** The addresses one pass needs. */
export interface AddressPlan {
  /** Per Network name: the Network as IPAM sees it and the requests of every slot attached to it. */
  networks: Map<string, { key: string; effective: EffectiveNetwork; requests: AddressRequest[] }>;
  /** Per instance name: its attachments, in interface order. */
  slots: Map<string, Attachment[]>;
}

/** What the IPAM store answered for one Network. */
export interface NetworkAnswer {
  /** Segment id of the Network. */
  segment: number;
  /** Outcome per slot (`<namespace>/<instance>`). */
  outcomes: Map<string, AddressOutcome>;
}

/** The slot key of an instance: `<namespace>/<instance>`. */
const slotOf = (namespace: string, instance: string) => `${namespace}/${instance}`;

/** Step 1: the attachments of every instance of the intents and the requests per Network. */
export function addressPlan(
  plan: Pick<WorkloadPlan, 'intents'>,
  namespace: string,
  workload: string,
  network: (name: string) => NetworkSpec | undefined,
  settings: NetworkSettings,
  networkRef?: WorkloadSpec['networkRef'],
): AddressPlan {
  const networks: AddressPlan['networks'] = new Map();
  const slots: AddressPlan['slots'] = new Map();
  for (const { intent } of plan.intents ?? []) {
    for (const i of intent.instances) {
      const template =
        i.templateHash && i.templateHash !== intent.templateHash
          ? intent.revisions?.find((r) => r.templateHash === i.templateHash)?.template
          : intent.template;
      const attachments = attachmentsOf(template ?? intent.template, networkRef);
      slots.set(i.name, attachments);
      for (const a of attachments) {
        let n = networks.get(a.network);
        if (!n) {
          const eff = effectiveNetwork(network(a.network), settings);
          if (!('network' in eff)) continue; // validate.ts refuses such a Workload before it is planned
          n = { key: `${namespace}/${a.network}`, effective: eff.network, requests: [] };
          networks.set(a.network, n);
        }
        const ip = a.ipAddress !== undefined ? parseIPv4(a.ipAddress) : undefined;
        n.requests.push({
          owner: slotOf(namespace, i.name),
          workload: `${namespace}/${workload}`,
          location: intent.location,
          pool: a.subnet,
          ...(ip !== undefined ? { static: ip } : {}),
        });
      }
    }
  }
  return { networks, slots };
}

/** A stable, locally administered unicast MAC for a slot's interface on a Network. */
export function slotMac(slot: string, network: string): string {
  const h = createHash('sha256').update(`${slot}|${network}`).digest();
  const bytes = [0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Step 2: the plan with interfaces in its intents, and what could not be assigned in its status and events. */
export function withInterfaces(
  plan: WorkloadPlan,
  ap: AddressPlan,
  answers: ReadonlyMap<string, NetworkAnswer>,
  namespace: string,
): WorkloadPlan {
  if (!plan.intents || !ap.slots.size) return plan;
  const isNew = new Set(plan.create.map((c) => c.name));
  const dropped = new Set<string>();
  const conflicts: string[] = [];
  const pending: string[] = [];
  const interfacesOf = new Map<string, InterfaceAssignment[]>();
  for (const [instance, attachments] of ap.slots) {
    const list: InterfaceAssignment[] = [];
    let complete = true;
    for (const a of attachments) {
      const n = ap.networks.get(a.network);
      const answer = answers.get(a.network);
      const outcome = answer?.outcomes.get(slotOf(namespace, instance));
      if (!n || !answer || !outcome || !('address' in outcome)) {
        complete = false;
        if (outcome && 'conflict' in outcome) {
          const c = outcome.conflict;
          conflicts.push(
            `${a.field}.ipAddress: ${formatIPv4(c.address)} is held by instance ${c.owner} of Workload ${c.workload}`,
          );
        } else
          pending.push(
            `${instance} on ${a.network}: ${outcome && 'pending' in outcome ? outcome.pending : 'no address yet'}`,
          );
        continue;
      }
      const pool = n.effective.pools.get(a.subnet)!;
      list.push({
        network: a.network,
        segment: answer.segment,
        name: `net${a.index}`,
        mac: slotMac(slotOf(namespace, instance), a.network),
        address: `${formatIPv4(outcome.address)}/${pool.block.prefix}`,
        mtu: n.effective.mtu,
        primary: a.primary,
        ...(a.ingress ? { ingress: a.ingress } : {}),
      });
    }
    if (!complete && isNew.has(instance)) dropped.add(instance);
    interfacesOf.set(instance, list);
  }
  const intents = plan.intents
    .map((p) => ({
      ...p,
      intent: {
        ...p.intent,
        instances: p.intent.instances
          .filter((i) => !dropped.has(i.name))
          .map((i) => {
            const interfaces = interfacesOf.get(i.name);
            return interfaces?.length ? { ...i, interfaces } : i;
          }),
      },
    }))
    .filter((p) => p.intent.instances.length > 0);
  const observed = plan.instanceStatus
    .filter((o) => !dropped.has(o.name))
    .map((o) => {
      const interfaces = interfacesOf.get(o.name);
      return interfaces?.length ? { ...o, interfaces } : o;
    });
  const unique = [...new Set(conflicts)];
  const events: PlannedEvent[] = [...plan.events];
  const addressing = unique.length
    ? { reason: 'AddressConflict', message: unique.join('; ') }
    : pending.length
      ? { reason: 'AddressPending', message: `waiting for addresses: ${pending.join('; ')}` }
      : undefined;
  if (addressing) events.push({ type: 'Warning', reason: addressing.reason, message: addressing.message });
  return {
    ...plan,
    create: plan.create.filter((c) => !dropped.has(c.name)),
    intents,
    instanceStatus: observed,
    status: {
      ...plan.status,
      instances: observed,
      addressing: addressing ?? { reason: 'AddressesAssigned', message: 'every interface has its address' },
    },
    events,
    ...(addressing ? { requeueAfterMs: Math.min(plan.requeueAfterMs ?? 10_000, 10_000) } : {}),
  };
}

/** Where the plan's interfaces are: one member per interface, for the segments bucket. */
export function segmentMembers(plan: Pick<WorkloadPlan, 'intents'>, namespace: string): SegmentMember[] {
  const out: SegmentMember[] = [];
  for (const { intent } of plan.intents ?? []) {
    for (const i of intent.instances) {
      for (const n of i.interfaces ?? []) {
        out.push({
          network: `${namespace}/${n.network}`,
          segment: n.segment,
          mtu: n.mtu,
          location: intent.location,
          host: i.host,
        });
      }
    }
  }
  return out;
}
