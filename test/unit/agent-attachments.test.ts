/** The reconciler's judgement of Network ports (agent/attachments.ts) and the VM DHCP helpers' subnet math. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assignmentsDigest,
  attachmentsDrifted,
  attachmentsPresent,
  portsByInstance,
  reportedInterfaces,
  unneededPorts,
} from '../../agent/attachments.js';
import { netmaskOf, subnetOf } from '../../agent/drivers/vm-dhcp.js';
import type { HostPort } from '../../agent/network/host-network.js';
import type { InterfaceAssignment } from '../../shared/nats/messages.js';

const assignment = (i: number, extra: Partial<InterfaceAssignment> = {}): InterfaceAssignment => ({
  network: `net-${i}`,
  segment: 100 + i,
  name: `net${i}`,
  mac: `02:00:00:00:00:0${i}`,
  address: `10.${i}.0.5/24`,
  mtu: 1400,
  primary: i === 0,
  ...extra,
});

const port = (instance: string, a: InterfaceAssignment): HostPort => ({
  instance,
  assignment: a,
  device: `d-${a.name}`,
});

describe('attachments', () => {
  it('reports each port as the instance sees it, address without prefix', () => {
    expect(reportedInterfaces([port('ns/a', assignment(0)), port('ns/a', assignment(1))])).toEqual([
      { network: 'net-0', name: 'net0', mac: '02:00:00:00:00:00', address: '10.0.0.5' },
      { network: 'net-1', name: 'net1', mac: '02:00:00:00:00:01', address: '10.1.0.5' },
    ]);
  });

  it('groups ports by instance', () => {
    const m = portsByInstance([
      port('ns/a', assignment(0)),
      port('ns/b', assignment(0)),
      port('ns/a', assignment(1)),
    ]);
    expect([...m.keys()]).toEqual(['ns/a', 'ns/b']);
    expect(m.get('ns/a')?.map((p) => p.assignment.name)).toEqual(['net0', 'net1']);
  });

  it('finds the ports present only when every assignment has one of its identity, and no more', () => {
    const want = [assignment(0), assignment(1)];
    expect(attachmentsPresent(want, [port('ns/a', want[1]!), port('ns/a', want[0]!)])).toBe(true);
    expect(attachmentsPresent(want, [port('ns/a', want[0]!)])).toBe(false);
    expect(attachmentsPresent([want[0]!], [port('ns/a', want[0]!), port('ns/a', want[1]!)])).toBe(false);
    expect(
      attachmentsPresent(want, [
        port('ns/a', want[0]!),
        port('ns/a', { ...want[1]!, address: '10.1.0.6/24' }),
      ]),
    ).toBe(false);
    expect(
      attachmentsPresent(want, [
        port('ns/a', want[0]!),
        port('ns/a', { ...want[1]!, mac: '02:00:00:00:00:09' }),
      ]),
    ).toBe(false);
    expect(attachmentsPresent(undefined, [])).toBe(true);
    expect(attachmentsPresent([], [port('ns/a', want[0]!)])).toBe(false);
    // Policy is no part of the identity: a changed rule is rewritten in place, never a replacement.
    expect(
      attachmentsPresent(want, [port('ns/a', { ...want[0]!, ingress: [] }), port('ns/a', want[1]!)]),
    ).toBe(true);
  });

  it('sees drift in what the host reads back (MTU, primary), none in key order or the unread policy', () => {
    const a = assignment(0, { ingress: [{ ports: [{ port: 80 }] }] });
    const { ingress: _, ...listed } = a;
    expect(attachmentsDrifted([a], [port('ns/a', listed)])).toBe(false);
    const reordered = Object.fromEntries(Object.entries(listed).reverse()) as InterfaceAssignment;
    expect(attachmentsDrifted([a], [port('ns/a', reordered)])).toBe(false);
    expect(attachmentsDrifted([a], [port('ns/a', { ...listed, mtu: 1300 })])).toBe(true);
    expect(attachmentsDrifted([a], [port('ns/a', { ...listed, primary: false })])).toBe(true);
    expect(attachmentsDrifted([a], [{ ...port('ns/a', listed), rulesInForce: true }])).toBe(false);
    expect(attachmentsDrifted([a], [{ ...port('ns/a', listed), rulesInForce: false }])).toBe(true);
  });

  it('digests assignments with their policy, independent of key order', () => {
    const a = assignment(0, { ingress: [{ ports: [{ port: 80 }] }] });
    const reordered = Object.fromEntries(Object.entries(a).reverse()) as InterfaceAssignment;
    expect(assignmentsDigest([a])).toBe(assignmentsDigest([reordered]));
    expect(assignmentsDigest([a])).not.toBe(
      assignmentsDigest([{ ...a, ingress: [{ ports: [{ port: 81 }] }] }]),
    );
    expect(assignmentsDigest([a])).not.toBe(assignmentsDigest([{ ...a, ingress: undefined }]));
    expect(assignmentsDigest(undefined)).toBe(assignmentsDigest([]));
  });

  it('removes only ports of instances not needed', () => {
    const ports = [
      port('ns/gone', assignment(0)),
      port('ns/runs', assignment(0)),
      port('ns/starting', assignment(0)),
    ];
    expect(unneededPorts(ports, new Set(['ns/runs', 'ns/starting']))).toEqual(['ns/gone']);
  });

  it('property: a removed port never belongs to a needed instance; every other instance goes, once', () => {
    const name = fc.constantFrom('ns/a', 'ns/b', 'ns/c', 'x/d');
    fc.assert(
      fc.property(fc.array(name), fc.uniqueArray(name), (instances, needed) => {
        const ports = instances.map((i, n) => port(i, assignment(n % 3)));
        const removed = unneededPorts(ports, new Set(needed));
        for (const r of removed) expect(needed).not.toContain(r);
        for (const i of instances) if (!needed.includes(i)) expect(removed).toContain(i);
        expect(new Set(removed).size).toBe(removed.length);
      }),
    );
  });
});

describe('VM DHCP subnets', () => {
  it('derives the network address and the netmask', () => {
    expect(subnetOf('10.0.1.5/24')).toEqual({ ip: '10.0.1.5', subnet: '10.0.1.0', prefix: 24 });
    expect(subnetOf('192.168.77.130/25')).toEqual({
      ip: '192.168.77.130',
      subnet: '192.168.77.128',
      prefix: 25,
    });
    expect(subnetOf('10.200.3.4/16').subnet).toBe('10.200.0.0');
    expect(netmaskOf(24)).toBe('255.255.255.0');
    expect(netmaskOf(20)).toBe('255.255.240.0');
    expect(netmaskOf(32)).toBe('255.255.255.255');
  });

  it('property: the address lies in its subnet, whose address is aligned to the prefix', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 8, max: 30 }), (ip, prefix) => {
        const { subnet } = subnetOf(`${ip}/${prefix}`);
        const n = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
        const size = 2 ** (32 - prefix);
        expect(n(subnet) % size).toBe(0);
        expect(n(ip) - n(subnet)).toBeGreaterThanOrEqual(0);
        expect(n(ip) - n(subnet)).toBeLessThan(size);
      }),
    );
  });
});
