/** The host network planner (pure): invariants over random hosts and desires, and a few exact plans. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DesiredHost, DesiredInstance, HostOp, ObservedHost } from '../../agent/network/host-model.js';
import { bridgeName, encodeMark, portName, vxlanName } from '../../agent/network/marks.js';
import { planHost } from '../../agent/network/plan.js';
import { applyToObserved } from '../../agent/network/simulate.js';
import type { InterfaceAssignment } from '../../shared/nats/messages.js';

const LOCAL = '198.18.0.1';
const empty: ObservedHost = { links: [], flood: {}, rules: null, states: {} };

// 1 and 65536 prefer the same conntrack zone.
const segmentArb = fc.constantFrom(1, 2, 65536);
const instanceArb = fc.constantFrom('ns/a', 'ns/b', 'ns/c');

const assignmentArb: fc.Arbitrary<InterfaceAssignment> = fc.record(
  {
    network: fc.constantFrom('net-x', 'net-y'),
    segment: segmentArb,
    name: fc.constantFrom('net0', 'net1'),
    mac: fc.constantFrom('02:00:00:00:00:01', '02:00:00:00:00:02'),
    address: fc.constantFrom('10.0.0.1/24', '10.0.0.2/24'),
    mtu: fc.constantFrom(1400, 1450),
    primary: fc.boolean(),
    ingress: fc.constantFrom(undefined, [], [{ ports: [{ port: 80 }] }]),
  },
  { requiredKeys: ['network', 'segment', 'name', 'mac', 'address', 'mtu', 'primary'] },
);

const instancesArb: fc.Arbitrary<DesiredInstance[]> = fc.uniqueArray(
  fc.record({
    instance: instanceArb,
    target: fc.oneof(
      fc.record({
        kind: fc.constant('netns' as const),
        path: fc.constant('/run/netns/x'),
        id: fc.constantFrom('1', '2'),
      }),
      fc.constant({ kind: 'tap' as const }),
    ),
    assignments: fc.array(assignmentArb, { maxLength: 3 }),
  }),
  { selector: (d) => d.instance, maxLength: 3 },
);

const desiredArb: fc.Arbitrary<DesiredHost> = fc.record(
  {
    overlayAddress: fc.constantFrom(LOCAL, '198.18.0.9'),
    segments: fc.uniqueArray(
      fc.record({
        segment: segmentArb,
        network: fc.constantFrom('default/net-x', 'default/net-y'),
        mtu: fc.constantFrom(1400, 1450),
        peers: fc.uniqueArray(fc.constantFrom(LOCAL, '198.18.0.2', '198.18.0.3')),
      }),
      { selector: (s) => s.segment, maxLength: 3 },
    ),
    instances: instancesArb,
  },
  { requiredKeys: ['overlayAddress', 'instances'] },
);

/** Things that happen to a host behind the planner's back. */
const perturbationArb = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('foreign' as const),
      name: fc.constantFrom('eth0', 'docker0', bridgeName(2), 'ep-vx-1'),
    }),
    fc.record({ kind: fc.constant('down' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('mtu' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('unflood' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('flushRules' as const) }),
    fc.record({ kind: fc.constant('breakRules' as const) }),
    fc.record({ kind: fc.constant('dropEntry' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('dropState' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('strayState' as const), name: fc.constantFrom('eth0', 'epvdeadbeef0000') }),
    fc.record({
      kind: fc.constant('dockerForward' as const),
      chain: fc.constantFrom('DOCKER-USER' as const, 'FORWARD' as const),
      allowed: fc.boolean(),
    }),
  ),
  { maxLength: 4 },
);

type Perturbation = typeof perturbationArb extends fc.Arbitrary<(infer P)[]> ? P : never;

function perturb(host: ObservedHost, ps: Perturbation[]): ObservedHost {
  let links = host.links.map((l) => ({ ...l }));
  const flood = Object.fromEntries(Object.entries(host.flood).map(([k, v]) => [k, [...v]]));
  let rules = host.rules && {
    ...host.rules,
    chains: [...host.rules.chains],
    fromPort: { ...host.rules.fromPort },
    portMark: { ...host.rules.portMark },
    ingress: { ...host.rules.ingress },
    zones: { ...host.rules.zones },
  };
  const states = { ...host.states };
  for (const p of ps) {
    if (p.kind === 'dropState') {
      const keys = Object.keys(states);
      if (keys.length) delete states[keys[p.at % keys.length]!];
    } else if (p.kind === 'strayState') states[p.name] = { alias: '', ingress: [] };
    const l = 'at' in p && links.length ? links[p.at % links.length] : undefined;
    if (p.kind === 'foreign' && !links.some((x) => x.name === p.name)) {
      links.push({ name: p.name, kind: 'bridge', up: true, mtu: 1500 });
    } else if (p.kind === 'down' && l) l.up = false;
    else if (p.kind === 'mtu' && l) l.mtu = 1300;
    else if (p.kind === 'remove' && l) {
      links = links.filter((x) => x !== l);
      for (const x of links) if (x.master === l.name) delete x.master;
      delete flood[l.name];
    } else if (p.kind === 'unflood' && l && flood[l.name]?.length) flood[l.name]!.pop();
    else if (p.kind === 'flushRules') rules = null;
    else if (p.kind === 'breakRules' && rules) rules.complete = false;
    else if (p.kind === 'dropEntry' && rules) {
      const keys = Object.keys(rules.fromPort);
      if (keys.length) delete rules.fromPort[keys[p.at % keys.length]!];
    }
  }
  const forwardDrop = ps.reduce<ObservedHost['forwardDrop']>(
    (f, p) => (p.kind === 'dockerForward' ? { chain: p.chain, allowed: p.allowed } : f),
    host.forwardDrop,
  );
  return { links, flood, rules, states, ...(forwardDrop ? { forwardDrop } : {}) };
}

/** The host has what `desired` asks for (the planner's goal, stated independently of it). */
function expectSatisfies(host: ObservedHost, desired: DesiredHost): void {
  const link = (name: string) => host.links.find((l) => l.name === name);
  const scoped = new Set(desired.instances.map((d) => d.instance));
  const ports = host.links.filter((l) => l.mark?.edgeplane === 'port');
  const wantedSegments = new Set([
    ...(desired.segments ?? []).map((s) => s.segment),
    ...ports.map((l) => (l.mark as { s: number }).s),
    // Without a segment list, the segments the host has stay.
    ...(desired.segments
      ? []
      : host.links.flatMap((l) => (l.mark?.edgeplane === 'segment' ? [l.mark.s] : []))),
  ]);
  for (const s of wantedSegments) {
    const br = link(bridgeName(s));
    const vx = link(vxlanName(s));
    expect(br).toMatchObject({
      kind: 'bridge',
      up: true,
      nfCallIptables: true,
      mark: { edgeplane: 'segment', s },
    });
    expect(vx).toMatchObject({
      kind: 'vxlan',
      up: true,
      master: bridgeName(s),
      mark: { edgeplane: 'overlay', s },
    });
    expect(vx!.vxlan).toMatchObject({ id: s, local: desired.overlayAddress, port: 4789 });
    expect(host.rules!.zones[bridgeName(s)]).toBe((br!.mark as { z: number }).z);
    const spec = desired.segments?.find((x) => x.segment === s);
    if (spec) {
      expect([br!.mtu, vx!.mtu]).toEqual([spec.mtu, spec.mtu]);
      const peers = spec.peers.filter((p) => p !== desired.overlayAddress).sort();
      expect([...(host.flood[vxlanName(s)] ?? [])].sort()).toEqual(peers);
    }
  }
  if (desired.segments) {
    const segs = host.links
      .filter((l) => l.mark && l.mark.edgeplane !== 'port')
      .map((l) => (l.mark as { s: number }).s);
    expect(segs.every((s) => wantedSegments.has(s))).toBe(true);
  }
  for (const d of desired.instances) {
    const mine = ports.filter((l) => (l.mark as { i: string }).i === d.instance);
    expect(mine.map((l) => l.name).sort()).toEqual(
      d.assignments.map((_, i) => portName(d.target.kind === 'netns' ? 'veth' : 'tap', d.instance, i)).sort(),
    );
    d.assignments.forEach((a, i) => {
      const l = link(portName(d.target.kind === 'netns' ? 'veth' : 'tap', d.instance, i))!;
      expect(l).toMatchObject({
        up: true,
        master: bridgeName(a.segment),
        mtu: a.mtu,
        mark: { a: a.address, m: a.mac },
      });
    });
  }
  for (const l of ports) {
    const r = host.rules!;
    expect(r.chains).toContain(r.fromPort[l.name]);
    if (scoped.has((l.mark as { i: string }).i))
      expect(r.chains).toContain(r.ingress[String(r.portMark[l.name])]);
  }
  // State files: exactly one per port whose policy is known; attached ports' say what they were attached with.
  for (const device of Object.keys(host.states)) expect(ports.map((l) => l.name)).toContain(device);
  for (const d of desired.instances) {
    d.assignments.forEach((a, i) => {
      const device = portName(d.target.kind === 'netns' ? 'veth' : 'tap', d.instance, i);
      const l = link(device)!;
      expect(host.states[device]).toEqual({
        alias: encodeMark(l.mark!),
        ...(a.ingress ? { ingress: a.ingress } : {}),
      });
    });
  }
  for (const l of ports) {
    const st = host.states[l.name];
    if (st?.alias === encodeMark(l.mark!))
      expect(host.rules!.chains).toContain(host.rules!.ingress[String(host.rules!.portMark[l.name])]);
  }
  const anything = ports.length > 0 || wantedSegments.size > 0;
  if (!anything) expect(host.rules).toBeNull();
  if (host.forwardDrop) expect(host.forwardDrop.allowed).toBe(anything);
}

/** Devices an operation deletes or changes. */
const touched = (o: HostOp): string[] => (o.op === 'deleteLink' || o.op === 'fixLink' ? [o.device] : []);

describe('planHost invariants', () => {
  it('planning again after applying yields no operation; nothing unmarked is removed or changed', () => {
    fc.assert(
      fc.property(
        fc.array(desiredArb, { minLength: 1, maxLength: 3 }),
        perturbationArb,
        desiredArb,
        (history, ps, desired) => {
          // A host as earlier passes left it, then disturbed.
          let host = empty;
          for (const d of history) {
            const p = planHost(host, d);
            if (p.conflicts.length === 0) host = applyToObserved(host, p.ops);
          }
          host = perturb(host, ps);
          const plan = planHost(host, desired);
          const unmarked = new Set(host.links.filter((l) => !l.mark).map((l) => l.name));
          if (plan.conflicts.length) {
            expect(plan.ops).toEqual([]);
            expect(plan.conflicts.every((c) => unmarked.has(c))).toBe(true);
            return;
          }
          expect(plan.ops.flatMap(touched).filter((d) => unmarked.has(d))).toEqual([]);
          const after = applyToObserved(host, plan.ops);
          expectSatisfies(after, desired);
          expect(planHost(after, desired)).toEqual({ ops: [], conflicts: [] });
          // Every unmarked device is still there, as it was.
          for (const l of host.links.filter((x) => !x.mark)) expect(after.links).toContainEqual(l);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never deletes or recreates the ports of instances outside the pass', () => {
    fc.assert(
      fc.property(desiredArb, desiredArb, (first, second) => {
        const p1 = planHost(empty, first);
        fc.pre(p1.conflicts.length === 0);
        const host = applyToObserved(empty, p1.ops);
        const plan = planHost(host, second);
        const scoped = new Set(second.instances.map((d) => d.instance));
        const others = host.links
          .filter((l) => l.mark?.edgeplane === 'port' && !scoped.has(l.mark.i))
          .map((l) => l.name);
        expect(plan.ops.flatMap(touched).filter((d) => others.includes(d))).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('planHost', () => {
  const a: InterfaceAssignment = {
    network: 'net-x',
    segment: 7,
    name: 'net0',
    mac: '02:00:00:00:00:01',
    address: '10.0.0.1/24',
    mtu: 1450,
    primary: true,
    ingress: [{ ports: [{ port: 80 }] }],
  };
  const attach = (instances: DesiredInstance[]): DesiredHost => ({ overlayAddress: LOCAL, instances });
  const inst = (instance: string): DesiredInstance => ({
    instance,
    target: { kind: 'netns', path: '/run/netns/i', id: '42' },
    assignments: [a],
  });

  it('a first attach: rules before devices, the segment, the port', () => {
    const { ops } = planHost(empty, attach([inst('ns/a')]));
    const kinds = ops.map((o) => o.op);
    // The port's state (its policy) first, then the rules, then the devices.
    expect(kinds.slice(0, 2)).toEqual(['setState', 'addTable']);
    expect(kinds.indexOf('addPort')).toBeGreaterThan(kinds.lastIndexOf('setEntry'));
    expect(ops).toContainEqual(
      expect.objectContaining({ op: 'addBridge', device: bridgeName(7), mtu: 1450 }),
    );
    expect(ops).toContainEqual(
      expect.objectContaining({ op: 'addVxlan', device: vxlanName(7), local: LOCAL }),
    );
    expect(ops).toContainEqual(
      expect.objectContaining({ op: 'addPort', device: portName('veth', 'ns/a', 0), netns: '/run/netns/i' }),
    );
  });

  it('a changed policy rewrites rules only; a changed address recreates the port', () => {
    const host = applyToObserved(empty, planHost(empty, attach([inst('ns/a')])).ops);
    const policy = planHost(host, attach([{ ...inst('ns/a'), assignments: [{ ...a, ingress: [] }] }])).ops;
    expect(policy.map((o) => o.op).sort()).toEqual(['addChain', 'deleteChain', 'setEntry', 'setState']);
    const moved = planHost(
      host,
      attach([{ ...inst('ns/a'), assignments: [{ ...a, address: '10.0.0.9/24' }] }]),
    ).ops;
    expect(moved.map((o) => o.op)).toEqual(expect.arrayContaining(['deleteLink', 'addPort']));
  });

  it('detach removes the port and its rules, keeps the segment until the segments are synced', () => {
    const host = applyToObserved(empty, planHost(empty, attach([inst('ns/a')])).ops);
    const detached = applyToObserved(
      host,
      planHost(host, attach([{ ...inst('ns/a'), assignments: [] }])).ops,
    );
    expect(detached.links.map((l) => l.name).sort()).toEqual([bridgeName(7), vxlanName(7)]);
    const gone = applyToObserved(detached, planHost(detached, { ...attach([]), segments: [] }).ops);
    expect(gone).toEqual(empty);
  });

  it('a foreign device holding a needed name is a conflict, and nothing is planned', () => {
    const host: ObservedHost = {
      links: [{ name: bridgeName(7), kind: 'bridge', up: true, mtu: 1500 }],
      flood: {},
      rules: null,
      states: {},
    };
    expect(planHost(host, attach([inst('ns/a')]))).toEqual({ ops: [], conflicts: [bridgeName(7)] });
  });

  it('flood lists: peers less this host, exact', () => {
    const segments = [{ segment: 7, network: 'n', mtu: 1450, peers: [LOCAL, '198.18.0.2', '198.18.0.3'] }];
    const host = applyToObserved(empty, planHost(empty, { ...attach([]), segments }).ops);
    expect(host.flood[vxlanName(7)]).toEqual(['198.18.0.2', '198.18.0.3']);
    const next = planHost(host, {
      ...attach([]),
      segments: [{ ...segments[0]!, peers: ['198.18.0.3', '198.18.0.4'] }],
    });
    expect(next.ops).toEqual([
      { op: 'addFlood', device: vxlanName(7), peer: '198.18.0.4' },
      { op: 'deleteFlood', device: vxlanName(7), peer: '198.18.0.2' },
    ]);
  });

  it('segments with the same preferred conntrack zone get different zones', () => {
    const segments = [1, 65536].map((segment) => ({ segment, network: 'n', mtu: 1450, peers: [] }));
    const host = applyToObserved(empty, planHost(empty, { ...attach([]), segments }).ops);
    const zones = Object.values(host.rules!.zones);
    expect(new Set(zones).size).toBe(2);
  });

  it('refuses a bad assignment naming the field', () => {
    expect(() =>
      planHost(empty, attach([{ ...inst('ns/a'), assignments: [{ ...a, mac: '03:00:00:00:00:01' }] }])),
    ).toThrow(/interfaces\[0\]\.mac/);
    expect(() =>
      planHost(
        empty,
        attach([
          {
            ...inst('ns/a'),
            assignments: [{ ...a, ingress: [{ from: [{ ipBlock: { cidr: 'fd00::/8' } }] }] }],
          },
        ]),
      ),
    ).toThrow(/interfaces\[0\]\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr/);
  });
});
