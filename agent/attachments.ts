/**
 * How the reconciler judges an instance's Network attachments against the host's ports (HostNetwork.list), as
 * plain data: what each instance reports, whether its ports are the ones its intent assigned, whether their
 * policy needs rewriting, and which ports no instance needs any more.
 *
 * Invariants: a port is removed only when no instance of it runs or is being started or removed on this host
 * (an instance's own removal takes its ports along); an
 * instance whose ports are not exactly the assigned ones (device gone with its namespace, another address or MAC)
 * is incomplete and replaced, whereas a port that differs only in policy or MTU is rewritten in place.
 */
import type { InterfaceAssignment, ReportedInterface } from '../shared/nats/messages.js';
import type { HostPort } from './network/host-network.js';

/** The host's ports by instance (`<namespace>/<name>`), in assignment order as listed. */
export function portsByInstance(ports: readonly HostPort[]): Map<string, HostPort[]> {
  const out = new Map<string, HostPort[]>();
  for (const p of ports) out.set(p.instance, [...(out.get(p.instance) ?? []), p]);
  return out;
}

/** What a host reports of an instance's ports. */
export function reportedInterfaces(ports: readonly HostPort[]): ReportedInterface[] {
  return ports.map((p) => ({
    network: p.assignment.network,
    name: p.assignment.name,
    mac: p.assignment.mac,
    address: p.assignment.address.split('/')[0] ?? p.assignment.address,
  }));
}

/** What makes a port the same interface: replacing the instance is the only way to change it. */
const identity = (a: InterfaceAssignment) => `${a.name} ${a.network} ${a.segment} ${a.mac} ${a.address}`;

/** Whether the instance has exactly one port for each assignment, with its identity (name, network, MAC, address). */
export function attachmentsPresent(
  wanted: readonly InterfaceAssignment[] | undefined,
  ports: readonly HostPort[],
): boolean {
  const want = (wanted ?? []).map(identity).sort();
  const have = ports.map((p) => identity(p.assignment)).sort();
  return want.length === have.length && want.every((w, i) => w === have[i]);
}

/** Stable JSON: keys sorted at every level, so two equal assignments compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/**
 * Whether present ports differ from their assignments in what the host reads back (MTU, primary), or lost their
 * rules (`rulesInForce: false`): rewrite them.
 * Ingress policy is compiled into rules and not read back (HostNetwork.list), so it is not compared here: the
 * reconciler rewrites ports whose policy it has not itself programmed since it started ({@link assignmentsDigest}).
 */
export function attachmentsDrifted(
  wanted: readonly InterfaceAssignment[] | undefined,
  ports: readonly HostPort[],
): boolean {
  // A port whose rules were lost (a flushed ruleset) is rewritten too.
  if (ports.some((p) => p.rulesInForce === false)) return true;
  const byName = new Map(ports.map((p) => [p.assignment.name, withoutIngress(p.assignment)]));
  return (wanted ?? []).some((a) => canonical(byName.get(a.name)) !== canonical(withoutIngress(a)));
}

function withoutIngress(a: InterfaceAssignment | undefined): InterfaceAssignment | undefined {
  if (!a) return a;
  const { ingress: _, ...rest } = a;
  return rest;
}

/** One string for a set of assignments, policy included: equal exactly when they program the same ports. */
export function assignmentsDigest(wanted: readonly InterfaceAssignment[] | undefined): string {
  return canonical(wanted ?? []);
}

/**
 * Instances whose ports are to be removed: every instance with ports that is not `needed` (listed by a driver and
 * attached by its intent, or being started or removed).
 */
export function unneededPorts(ports: readonly HostPort[], needed: ReadonlySet<string>): string[] {
  return [...new Set(ports.map((p) => p.instance).filter((i) => !needed.has(i)))];
}
