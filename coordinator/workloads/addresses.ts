/**
 * The one step of a pass that claims before it writes: for the address plan of a Workload (interfaces.ts),
 * release the addresses its slots no longer need (scale-down, a Network detached, a slot gone), then per
 * Network make sure of its segment id and claim every slot's address in the IPAM store. Releasing first lets
 * a static address move between the Workload's own slots in one pass.
 */
import type { IpamStore } from '../networks/store.js';
import type { AddressPlan, NetworkAnswer } from './interfaces.js';

/** Claims the addresses of an address plan; returns the answers per Network name. */
export async function claimAddresses(
  store: IpamStore,
  namespace: string,
  workload: string,
  ap: AddressPlan,
): Promise<Map<string, NetworkAnswer>> {
  const wanted = new Set<string>();
  for (const n of ap.networks.values()) for (const r of n.requests) wanted.add(`${n.key}|${r.owner}`);
  await store.releaseUnwanted(`${namespace}/${workload}`, wanted);
  const answers = new Map<string, NetworkAnswer>();
  for (const [name, n] of ap.networks) {
    const segment = await store.ensureSegment(n.key);
    const outcomes = await store.assign(n.key, n.effective, n.requests);
    answers.set(name, { segment, outcomes: new Map(outcomes.map((o) => [o.owner, o])) });
  }
  return answers;
}
