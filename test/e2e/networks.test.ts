/**
 * Networks through kubectl on the real kube-apiserver, coordinator and nats-server (the control plane; the
 * hosts' data plane has its own tests): hosts are simulated by their reports over NATS, two with an overlay
 * address and one without. The Workload docs' network examples are accepted as written and get addresses
 * (NETWORK IP column); refusals name their fields at apply time and in status; two Workloads asking for one
 * static address: exactly one gets it, the other gets a condition naming the field and the holder and no
 * Instance; Network status shows the segment, MTU and blocks; the segments bucket lists the peers.
 */
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../../deploy/stack/edgeplane.js';
import { type KubeApiHandle, kubectl, REPO_DIR } from '../../deploy/stack/index.js';
import { connectNats } from '../../shared/nats/connect.js';
import { encode, type NetworkSegment } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { startNatsAndKube } from '../harness/edge.js';
import { cleanup, tempDir, waitFor } from '../harness/index.js';
import { testHostReport } from '../harness/objects.js';

const subjects = new Subjects('edge');
let kube: KubeApiHandle;
let natsUrl: string;

const HOSTS = [
  { host: 'net-us', location: 'us-central1-a', overlayAddress: '192.0.2.10' },
  { host: 'net-eu', location: 'eu-west-1a', overlayAddress: '192.0.2.20' },
  { host: 'net-ap', location: 'ap-south-1a' }, // no overlay address: nothing attached goes here
];

async function k(args: string[], input?: string) {
  const r = await kubectl(kube.kubeconfigPath, args, input !== undefined ? { input } : {});
  return r;
}

async function jsonpath(resource: string, path: string): Promise<string> {
  const r = await k(['get', ...resource.split(' '), '-o', `jsonpath=${path}`]);
  return r.code === 0 ? r.stdout : '';
}

const until = (what: string, f: () => Promise<boolean>) =>
  waitFor(what, f, { timeoutMs: 120_000, intervalMs: 500 });

function workload(name: string, replicas: number, interfaces: string, extra = ''): string {
  return `apiVersion: compute.datumapis.com/v1alpha1
kind: Workload
metadata:
  name: ${name}
spec:
  replicas: ${replicas}
${extra}  template:
    spec:
      image: nginx:latest
      networkInterfaces:
${interfaces}`;
}

beforeAll(async () => {
  const dir = tempDir('edgeplane-networks-');
  const { nats, kube: kubeApi } = await startNatsAndKube(dir);
  kube = kubeApi;
  natsUrl = nats.url;
  const coordinator = startCoordinator({
    dir: path.join(dir, 'coordinator'),
    kubeconfig: kube.kubeconfigPath,
    nats: [nats.url],
    args: ['--require-overlay'],
  });
  cleanup(() => coordinator.stop());
  // The simulated hosts report every second, as agents do.
  const nc = await connectNats({ servers: [nats.url], name: 'hosts' });
  cleanup(() => nc.close());
  const startedAt = new Date().toISOString();
  let seq = 0;
  const report = () => {
    seq++;
    for (const h of HOSTS)
      nc.publish(
        subjects.hostReport(h.host),
        encode(
          testHostReport(h.host, h.location, {
            runtimes: ['gvisor'],
            capacity: { cpuMillis: 64_000, memoryBytes: 256 * 2 ** 30 },
            allocatable: { cpuMillis: 64_000, memoryBytes: 256 * 2 ** 30 },
            startedAt,
            seq,
            ...(h.overlayAddress ? { overlayAddress: h.overlayAddress } : {}),
          }),
        ),
      );
  };
  report();
  const timer = setInterval(report, 1000);
  cleanup(() => clearInterval(timer));
  const prerequisites = path.join(REPO_DIR, 'examples/prerequisites');
  for (const f of ['namespaces.yaml', 'networks.yaml']) {
    const r = await k(['apply', '-f', path.join(prerequisites, f)]);
    expect(r.code, r.stderr).toBe(0);
  }
  await until(
    'hosts registered',
    async () =>
      (await jsonpath('hosts', '{.items[*].status.state}')).split(' ').filter((s) => s === 'Ready').length ===
      3,
  );
}, 600_000);

describe('Networks through kubectl', () => {
  it('gives every Network a segment id, its effective MTU and range, Ready and IPAMAllocated', async () => {
    await until(
      'network status',
      async () => (await jsonpath('network backend-network', '{.status.segment}')) !== '',
    );
    const status = JSON.parse(await jsonpath('network backend-network', '{.status}'));
    expect(status).toMatchObject({ mtu: 1450, ipv4Range: '10.2.0.0/16' });
    expect(
      status.conditions.map((c: { type: string; status: string }) => `${c.type}=${c.status}`).sort(),
    ).toEqual(['IPAMAllocated=True', 'Ready=True']);
    const segments = new Set<string>();
    for (const n of ['production-network', 'public-network', 'backend-network', 'data-network'])
      segments.add(await jsonpath(`network ${n}`, '{.status.segment}'));
    expect(segments.size).toBe(4);
  });

  it("accepts the docs' multiple-network example as written and shows each instance's primary address", async () => {
    const interfaces = `        # Primary network (internet access)
        - networkRef:
            name: public-network
          primary: true
        # Backend network
        - networkRef:
            name: backend-network
          subnetRef:
            name: backend-subnet
        # Data network
        - networkRef:
            name: data-network
`;
    const r = await k(['apply', '-f', '-'], workload('multi', 2, interfaces));
    expect(r.code, r.stderr).toBe(0);
    await until('both instances have addresses', async () => {
      const ips = await jsonpath(
        'instances -l workload=multi',
        '{.items[*].status.networkInterfaces[0].assignments.networkIP}',
      );
      return ips.split(' ').filter(Boolean).length === 2;
    });
    const table = await k(['get', 'instances', '-l', 'workload=multi']);
    expect(table.stdout.split('\n')[0]).toMatch(/NETWORK IP/);
    const rows = table.stdout.trim().split('\n').slice(1);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toMatch(/ 10\.1\.\d+\.\d+ /); // public-network is the primary
    const items = JSON.parse(
      (await k(['get', 'instances', '-l', 'workload=multi', '-o', 'json'])).stdout,
    ).items;
    for (const i of items) {
      // Attached instances go only to hosts with an overlay address.
      expect(['net-us', 'net-eu']).toContain(i.spec.host);
      const byNet = Object.fromEntries(
        i.status.networkInterfaces.map(
          (n: { network: string; name: string; mac: string; assignments: { networkIP: string } }) => [
            n.network,
            `${n.name} ${n.assignments.networkIP}`,
          ],
        ),
      );
      expect(byNet['public-network']).toMatch(/^net0 10\.1\./);
      expect(byNet['backend-network']).toMatch(/^net1 10\.2\.1\./); // from the subnet
      expect(byNet['data-network']).toMatch(/^net2 10\.3\./);
      for (const n of i.status.networkInterfaces) expect(n.mac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    }
    // The segments bucket: every location with an instance has the peer list of every host with one.
    const nc = await connectNats({ servers: [natsUrl], name: 'test' });
    cleanup(() => nc.close());
    const kv = await new Kvm(nc).open(subjects.segmentsBucket);
    const segment = Number(await jsonpath('network data-network', '{.status.segment}'));
    const locations = [
      ...new Set(items.map((i: { spec: { location: string } }) => i.spec.location)),
    ] as string[];
    const hosts = [...new Set(items.map((i: { spec: { host: string } }) => i.spec.host))].sort();
    await until('segments written', async () => {
      for (const l of locations) {
        const e = await kv.get(subjects.segmentKey(l, segment));
        if (e?.operation !== 'PUT') return false;
        const s = e.json<NetworkSegment>();
        if (JSON.stringify(s.peers.map((p) => p.host)) !== JSON.stringify(hosts)) return false;
        expect(s).toMatchObject({ network: 'default/data-network', mtu: 1450 });
      }
      return true;
    });
    // The Network's status lists the blocks its locations use.
    await until('blocks in status', async () =>
      (await jsonpath('network data-network', '{.status.locations[*].blocks[*]}')).includes('10.3.'),
    );
  });

  it('gives a static address to exactly one of two Workloads; the other gets a condition naming the field and the holder, and no Instance', async () => {
    const staticIp = `        - networkRef:
            name: production-network
          ipAddress: 10.0.1.100 # Static IP
`;
    expect((await k(['apply', '-f', '-'], workload('static-a', 1, staticIp))).code).toBe(0);
    await until(
      'static-a has it',
      async () =>
        (await jsonpath(
          'instances -l workload=static-a',
          '{.items[*].status.networkInterfaces[0].assignments.networkIP}',
        )) === '10.0.1.100',
    );
    expect((await k(['apply', '-f', '-'], workload('static-b', 1, staticIp))).code).toBe(0);
    await until(
      'static-b is refused',
      async () =>
        (await jsonpath(
          'workload static-b',
          '{.status.conditions[?(@.type=="AddressesAssigned")].reason}',
        )) === 'AddressConflict',
    );
    const message = await jsonpath(
      'workload static-b',
      '{.status.conditions[?(@.type=="AddressesAssigned")].message}',
    );
    expect(message).toMatch(
      /^spec\.template\.spec\.networkInterfaces\[0\]\.ipAddress: 10\.0\.1\.100 is held by instance default\/static-a-[a-z0-9-]+-0 of Workload default\/static-a/,
    );
    expect(await jsonpath('instances -l workload=static-b', '{.items[*].metadata.name}')).toBe('');
    // Once the holder goes (its address released), the other gets it.
    expect((await k(['delete', 'workload.compute.datumapis.com', 'static-a', '--wait=false'])).code).toBe(0);
    await until(
      'static-b takes it over',
      async () =>
        (await jsonpath(
          'instances -l workload=static-b',
          '{.items[*].status.networkInterfaces[0].assignments.networkIP}',
        )) === '10.0.1.100',
    );
    expect(
      await jsonpath('workload static-b', '{.status.conditions[?(@.type=="AddressesAssigned")].status}'),
    ).toBe('True');
  });

  it('refuses, naming the field: two primaries, a static address with two replicas, nine interfaces, IPv6 at apply time; a Network twice in status', async () => {
    const two = `        - networkRef: { name: public-network }
          primary: true
        - networkRef: { name: data-network }
          primary: true
`;
    let r = await k(['apply', '-f', '-'], workload('bad-primary', 1, two));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /spec\.template\.spec\.networkInterfaces: Invalid value.*at most one network interface may be primary/,
    );
    // One Network twice passes the CRD (a CEL rule for it would exceed the cost budget); the controller refuses it.
    r = await k(
      ['apply', '-f', '-'],
      workload(
        'bad-twice',
        1,
        '        - networkRef: { name: data-network }\n        - network: { name: data-network }\n',
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    await until('bad-twice refused', async () =>
      /^spec\.template\.spec\.networkInterfaces\[1\]: Network data-network is already attached/.test(
        await jsonpath('workload bad-twice', '{.status.conditions[?(@.type=="Available")].message}'),
      ),
    );
    expect(await jsonpath('instances -l workload=bad-twice', '{.items[*].metadata.name}')).toBe('');
    r = await k(
      ['apply', '-f', '-'],
      workload(
        'bad-static',
        2,
        '        - networkRef: { name: data-network }\n          ipAddress: 10.3.0.10\n',
      ),
    );
    expect(r.stderr).toMatch(
      /spec\.template\.spec\.networkInterfaces: Invalid value.*a static address needs replicas <= 1/,
    );
    const nine = Array.from({ length: 9 }, (_, i) => `        - networkRef: { name: n${i} }\n`).join('');
    r = await k(['apply', '-f', '-'], workload('bad-nine', 1, nine));
    expect(r.stderr).toMatch(
      /spec\.template\.spec\.networkInterfaces: Too many: 9: must have at most 8 items/,
    );
    r = await k(
      ['apply', '-f', '-'],
      'apiVersion: compute.datumapis.com/v1alpha1\nkind: Network\nmetadata:\n  name: v6\nspec:\n  ipFamilies: [IPv4, IPv6]\n',
    );
    expect(r.stderr).toMatch(/spec\.ipFamilies: Invalid value.*IPv6 is not supported yet/);
  });

  it('refuses an MTU the overlay cannot carry in the Network status and the Workload that attaches to it', async () => {
    const r = await k(
      ['apply', '-f', '-'],
      'apiVersion: compute.datumapis.com/v1alpha1\nkind: Network\nmetadata:\n  name: jumbo\nspec:\n  ipv4Cidr: 10.9.0.0/16\n  mtu: 9000\n',
    );
    expect(r.code, r.stderr).toBe(0);
    await until(
      'jumbo not ready',
      async () =>
        (await jsonpath('network jumbo', '{.status.conditions[?(@.type=="Ready")].reason}')) ===
        'MTUTooLarge',
    );
    expect(await jsonpath('network jumbo', '{.status.conditions[?(@.type=="Ready")].message}')).toBe(
      'spec.mtu: 9000 exceeds 1450, the most the overlay carries (underlay MTU 1500 less 50 bytes of VXLAN)',
    );
    expect(
      (await k(['apply', '-f', '-'], workload('on-jumbo', 1, '        - networkRef: { name: jumbo }\n')))
        .code,
    ).toBe(0);
    await until(
      'on-jumbo blocked',
      async () =>
        (await jsonpath('workload on-jumbo', '{.status.conditions[?(@.type=="Available")].reason}')) ===
        'InvalidNetworkInterfaces',
    );
    expect(
      await jsonpath('workload on-jumbo', '{.status.conditions[?(@.type=="Available")].message}'),
    ).toMatch(
      /^spec\.template\.spec\.networkInterfaces\[0\]: Network jumbo cannot be used: spec\.mtu: 9000 exceeds 1450/,
    );
  });
});
