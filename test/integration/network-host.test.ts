/**
 * The host data plane on real iproute2 and nftables: two stand-in hosts (network namespaces on an underlay that
 * exists only inside namespaces this test creates), instances as namespaces, two Networks with the same CIDR.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Argv } from '../../agent/network/commands.js';
import { LinuxHostNetwork } from '../../agent/network/linux.js';
import type { Netns } from '../../deploy/stack/index.js';
import { runIn, UNDERLAY_DEVICE, waitFor } from '../../deploy/stack/index.js';
import type { IngressRule, InterfaceAssignment, NetworkSegment } from '../../shared/nats/messages.js';
import { tempDir } from '../harness/index.js';
import {
  instanceNetns,
  netnsPrefix,
  ping,
  startTcpServers,
  tcpHello,
  useStandInHosts,
} from '../harness/network.js';

const SEG_A = 4101;
const SEG_B = 4102;
const MTU = 1450;

interface TestInstance {
  name: string;
  host: 0 | 1;
  ns: Netns;
  assignment: InterfaceAssignment;
}

const prefix = netnsPrefix('h');
const { hosts } = useStandInHosts(prefix, 2);

const segments = (): NetworkSegment[] =>
  [
    [SEG_A, 'default/net-a'],
    [SEG_B, 'default/net-b'],
  ].map(([segment, network]) => ({
    v: 1,
    segment: segment as number,
    network: network as string,
    mtu: MTU,
    peers: hosts.map((h, i) => ({ host: `host-${i}`, address: h.address })),
    updatedAt: new Date(0).toISOString(),
  }));

let commands: Argv[][] = [[], []];
const stateDirs = [tempDir('edgeplane-net-'), tempDir('edgeplane-net-')];
const newHostNetwork = (i: 0 | 1) =>
  new LinuxHostNetwork({
    overlayAddress: hosts[i]!.address,
    underlayDevice: UNDERLAY_DEVICE,
    netns: hosts[i]!.name,
    stateDir: stateDirs[i]!,
    onCommand: (argv) => commands[i]!.push(argv),
  });
let hostNetworks = [newHostNetwork(0), newHostNetwork(1)];

function instance(
  name: string,
  host: 0 | 1,
  network: 'a' | 'b',
  n: number,
  ingress?: IngressRule[],
): TestInstance {
  return {
    name: `default/${name}`,
    host,
    ns: instanceNetns(prefix, name),
    assignment: {
      network: `net-${network}`,
      segment: network === 'a' ? SEG_A : SEG_B,
      name: 'net0',
      mac: `02:${network === 'a' ? 'aa' : 'bb'}:00:00:00:0${n}`,
      address: `10.77.0.${n}/24`,
      mtu: MTU,
      primary: true,
      ...(ingress ? { ingress } : {}),
    },
  };
}

let a1: TestInstance;
let a2: TestInstance;
let a3: TestInstance;
let b1: TestInstance;
let b2: TestInstance;
let guarded: TestInstance;
let closed: TestInstance;
let all: TestInstance[];
const addr = (i: TestInstance) => i.assignment.address.split('/')[0]!;

const attachAll = () =>
  Promise.all(
    [0, 1].map(async (h) => {
      for (const i of all.filter((x) => x.host === h)) {
        await hostNetworks[h]!.attach(i.name, { kind: 'netns', path: i.ns.path }, [i.assignment]);
      }
    }),
  );

/** Everything a host's namespace holds that the data plane programs: devices (with details) and rules. */
async function snapshot(h: 0 | 1): Promise<string> {
  const ns = hosts[h]!;
  const links = await runIn(ns, ['ip', '-json', '-details', 'link', 'show']);
  const fdb = await runIn(ns, ['bridge', '-json', 'fdb', 'show']);
  const rules = await runIn(ns, ['nft', 'list', 'ruleset']);
  // Counters of the kernel (e.g. a bridge's timers) move; the configuration is what must not.
  const stable = (JSON.parse(links.stdout) as Record<string, unknown>[]).map((l) => {
    const {
      operstate: _o,
      linkinfo,
      ...rest
    } = l as { operstate?: string; linkinfo?: Record<string, unknown> };
    const info = linkinfo?.info_data as Record<string, unknown> | undefined;
    const slave = linkinfo?.info_slave_data as Record<string, unknown> | undefined;
    const keep = (o: Record<string, unknown> | undefined) =>
      o &&
      Object.fromEntries(
        Object.entries(o).filter(([k]) => !/timer|topology_change|root_|designated|bridge_id|state$/.test(k)),
      );
    return {
      ...rest,
      linkinfo: linkinfo && { ...linkinfo, info_data: keep(info), info_slave_data: keep(slave) },
    };
  });
  const permanent = (JSON.parse(fdb.stdout || '[]') as { state?: string }[]).filter(
    (e) => e.state === 'permanent',
  );
  return JSON.stringify({
    stable,
    permanent,
    rules: rules.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter'),
  });
}

/** Whether a command line only reads. */
const isRead = (argv: Argv) => {
  const s = argv.join(' ');
  return (
    /\b(ip|bridge)( -n \S+)? -json (-details )?(link|fdb) show$/.test(s) || /\bnft -j list ruleset$/.test(s)
  );
};

beforeAll(async () => {
  a1 = instance('a1', 0, 'a', 1);
  a2 = instance('a2', 1, 'a', 2);
  a3 = instance('a3', 1, 'a', 3);
  b1 = instance('b1', 0, 'b', 1);
  b2 = instance('b2', 1, 'b', 2);
  guarded = instance('guarded', 1, 'a', 4, [
    { ports: [{ port: 8080 }] },
    {
      ports: [{ protocol: 'TCP', port: 9090 }],
      from: [{ ipBlock: { cidr: '10.77.0.0/24', except: ['10.77.0.1/32'] } }],
    },
  ]);
  closed = instance('closed', 0, 'a', 5, []);
  all = [a1, a2, a3, b1, b2, guarded, closed];
  // Host 1 has Docker's firewall: FORWARD policy drop, a DOCKER-USER chain (br_netfilter shows bridged IPv4 to it).
  for (const rule of [
    ['-N', 'DOCKER-USER'],
    ['-A', 'FORWARD', '-j', 'DOCKER-USER'],
    ['-P', 'FORWARD', 'DROP'],
  ]) {
    expect((await runIn(hosts[1]!, ['iptables', '-w', ...rule])).code).toBe(0);
  }
  await Promise.all(hostNetworks.map((hn) => hn.syncSegments(segments())));
  await attachAll();
  for (const i of all) await startTcpServers(i.ns, i.name, [7000, 8080, 8081, 9090]);
});

afterAll(async () => {
  // Namespaces (and everything in them) go with the prefix's cleanup, even when a test failed.
});

describe('host network (real ip/nft, stand-in hosts)', () => {
  it('instances of one Network on two hosts reach each other by address (ping and TCP)', async () => {
    await waitFor('a1 → a2 TCP', async () => (await tcpHello(a1.ns, addr(a2), 7000)) === a2.name, {
      timeoutMs: 60_000,
    });
    expect(await tcpHello(a2.ns, addr(a1), 7000)).toBe(a1.name);
    expect(await ping(a1.ns, addr(a2))).toBe(true);
    expect(await ping(a2.ns, addr(a1))).toBe(true);
    // Inside the interface: its name, MAC, address and MTU.
    const shown = JSON.parse((await runIn(a1.ns, ['ip', '-json', 'addr', 'show', 'net0'])).stdout)[0];
    expect(shown).toMatchObject({ ifname: 'net0', address: a1.assignment.mac, mtu: MTU });
    expect(shown.addr_info.map((x: { local: string }) => x.local)).toContain(addr(a1));
  });

  it('another Network with the same CIDR is isolated: its instances reach their own peers only', async () => {
    await waitFor('b1 → b2 TCP', async () => (await tcpHello(b1.ns, addr(b2), 7000)) === b2.name, {
      timeoutMs: 60_000,
    });
    // Same addresses, other Network: b1 reaches b2, never a2; a1 reaches a2, never b2.
    expect(await tcpHello(a1.ns, addr(a2), 7000)).toBe(a2.name);
    // 10.77.0.3 exists only on Network a.
    expect(await tcpHello(a1.ns, addr(a3), 7000)).toBe(a3.name);
    expect(await tcpHello(b1.ns, addr(a3), 7000)).toBeUndefined();
    expect(await ping(b1.ns, addr(a3))).toBe(false);
  });

  it('ingress policy: allowed ports pass, others are dropped, replies to own connections pass', async () => {
    await waitFor(
      'a1 → guarded:8080',
      async () => (await tcpHello(a1.ns, addr(guarded), 8080)) === guarded.name,
      {
        timeoutMs: 60_000,
      },
    );
    expect(await tcpHello(a1.ns, addr(guarded), 8081)).toBeUndefined();
    expect(await tcpHello(a1.ns, addr(guarded), 7000)).toBeUndefined();
    expect(await ping(a1.ns, addr(guarded))).toBe(false);
    // 9090 only from 10.77.0.0/24 except 10.77.0.1: a2 (same host) passes, a1 does not.
    expect(await tcpHello(a2.ns, addr(guarded), 9090)).toBe(guarded.name);
    expect(await tcpHello(a1.ns, addr(guarded), 9090)).toBeUndefined();
    // Established: guarded's own connections and pings get their replies.
    expect(await tcpHello(guarded.ns, addr(a1), 7000)).toBe(a1.name);
    expect(await ping(guarded.ns, addr(a1))).toBe(true);
    // ingress: [] lets nothing in but replies.
    expect(await tcpHello(a1.ns, addr(closed), 8080)).toBeUndefined();
    expect(await tcpHello(closed.ns, addr(a2), 7000)).toBe(a2.name);
  });

  it('anti-spoofing: another source address or MAC gets nowhere', async () => {
    expect(await tcpHello(a1.ns, addr(a2), 7000)).toBe(a2.name);
    await runIn(a1.ns, ['ip', 'addr', 'add', '10.77.0.99/24', 'dev', 'net0']);
    try {
      expect(await tcpHello(a1.ns, addr(a2), 7000, { localAddress: '10.77.0.99' })).toBeUndefined();
    } finally {
      await runIn(a1.ns, ['ip', 'addr', 'del', '10.77.0.99/24', 'dev', 'net0']);
    }
    await runIn(b1.ns, ['ip', 'link', 'set', 'net0', 'address', '02:bb:00:00:00:99']);
    try {
      expect(await ping(b1.ns, addr(b2))).toBe(false);
    } finally {
      await runIn(b1.ns, ['ip', 'link', 'set', 'net0', 'address', b1.assignment.mac]);
    }
    await waitFor('b1 → b2 again', () => ping(b1.ns, addr(b2)), { timeoutMs: 30_000 });
  });

  it('re-syncing an unchanged host runs no command that changes anything and changes nothing', async () => {
    const before = await Promise.all([snapshot(0), snapshot(1)]);
    commands = [[], []];
    await Promise.all(hostNetworks.map((hn) => hn.syncSegments(segments())));
    await attachAll();
    expect(commands.flat().length).toBeGreaterThan(0);
    expect(commands.flat().filter((c) => !isRead(c))).toEqual([]);
    expect(await Promise.all([snapshot(0), snapshot(1)])).toEqual(before);
  });

  it('a new HostNetwork (agent restart) adopts every port from list() and changes nothing', async () => {
    const before = await Promise.all([snapshot(0), snapshot(1)]);
    commands = [[], []];
    hostNetworks = [newHostNetwork(0), newHostNetwork(1)];
    const listed = await Promise.all(hostNetworks.map((hn) => hn.list()));
    for (const h of [0, 1] as const) {
      const mine = all.filter((i) => i.host === h);
      expect(listed[h]!.map((p) => p.instance).sort()).toEqual(mine.map((i) => i.name).sort());
      for (const p of listed[h]!) {
        const i = mine.find((x) => x.name === p.instance)!;
        expect(p.assignment).toEqual(i.assignment);
        expect(p.rulesInForce).toBe(true);
      }
    }
    // The reconciler re-attaches what intents still want, and then syncs the segments.
    await attachAll();
    await Promise.all(hostNetworks.map((hn) => hn.syncSegments(segments())));
    expect(commands.flat().filter((c) => !isRead(c))).toEqual([]);
    expect(await Promise.all([snapshot(0), snapshot(1)])).toEqual(before);
    expect(await tcpHello(a1.ns, addr(a2), 7000)).toBe(a2.name);
  });

  it('rules lost under the agent are reported by list() and restored by the next call (policies from the state files)', async () => {
    for (const t of ['bridge', 'ip']) await runIn(hosts[0]!, ['nft', 'delete', 'table', t, 'edgeplane']);
    const lost = await newHostNetwork(0).list();
    expect(lost.map((p) => p.rulesInForce)).toEqual(lost.map(() => false));
    // Any call restores every port's rules, those of instances it was not asked about included.
    await newHostNetwork(0).syncSegments(segments());
    expect((await hostNetworks[0]!.list()).every((p) => p.rulesInForce)).toBe(true);
    await waitFor('a2 → a1 again', async () => (await tcpHello(a2.ns, addr(a1), 7000)) === a1.name, {
      timeoutMs: 30_000,
    });
    expect(await tcpHello(a2.ns, addr(closed), 8080)).toBeUndefined();
    expect(await tcpHello(closed.ns, addr(a2), 7000)).toBe(a2.name);
  });

  it('detach and removing the segments leave no device and no rule', async () => {
    await hostNetworks[1]!.detach(a3.name);
    expect((await hostNetworks[1]!.list()).map((p) => p.instance)).not.toContain(a3.name);
    expect(await tcpHello(a1.ns, addr(a3), 7000, { timeoutMs: 1500 })).toBeUndefined();
    expect(await tcpHello(a1.ns, addr(a2), 7000)).toBe(a2.name);
    for (const h of [0, 1] as const) {
      for (const i of all.filter((x) => x.host === h)) await hostNetworks[h]!.detach(i.name);
      await hostNetworks[h]!.syncSegments([]);
      const links = JSON.parse((await runIn(hosts[h]!, ['ip', '-json', 'link', 'show'])).stdout) as {
        ifname: string;
      }[];
      expect(links.map((l) => l.ifname).sort()).toEqual(['lo', UNDERLAY_DEVICE]);
      const ruleset = (await runIn(hosts[h]!, ['nft', 'list', 'ruleset'])).stdout;
      if (h === 0) expect(ruleset.trim()).toBe('');
      else {
        // Docker's chains stay as they were; only our accept rule went.
        expect(ruleset).toContain('chain DOCKER-USER');
        expect(ruleset).not.toMatch(/edgeplane|ep-br/);
      }
    }
    expect(stateDirs.flatMap((d) => fs.readdirSync(d))).toEqual([]);
    for (const i of all) {
      const inside = JSON.parse((await runIn(i.ns, ['ip', '-json', 'link', 'show'])).stdout) as {
        ifname: string;
      }[];
      expect(inside.map((l) => l.ifname)).toEqual(['lo']);
    }
  });
});
