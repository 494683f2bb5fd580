/**
 * Network attachments through the agent's drivers and reconciler, on real dockerd + runsc, qemu, iproute2 and
 * nftables: two stand-in hosts (network namespaces on an underlay that exists only inside namespaces this test
 * creates), each with its own LinuxHostNetwork, gVisor driver and reconciler, as two agents would have. Instances
 * of one Network reach each other by their address from inside their containers (and a VM, which gets its
 * address by DHCP); published ports keep working; a restarted agent changes nothing; destroy leaves nothing.
 */
import crypto from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InstanceRequest } from '../../agent/drivers/driver.js';
import { GvisorDriver } from '../../agent/drivers/gvisor.js';
import type { HostNetwork } from '../../agent/network/host-network.js';
import { LinuxHostNetwork } from '../../agent/network/linux.js';
import { Reconciler, type ReconcilerOptions } from '../../agent/reconciler.js';
import { BUSYBOX_IMAGE, docker, UNDERLAY_DEVICE } from '../../deploy/stack/index.js';
import { httpGet } from '../../deploy/stack/proc.js';
import { createLogger } from '../../shared/log.js';
import type { InterfaceAssignment, NetworkSegment } from '../../shared/nats/messages.js';
import { cleanup, tempDir, useDocker, waitFor } from '../harness/index.js';
import { netnsPrefix, useStandInHosts } from '../harness/network.js';
import { testIntent } from '../harness/objects.js';
import {
  destroyVmsAfterTest,
  GUEST_IMAGE,
  guestKernelCatalog,
  testQemuDriver,
  vmRequest,
} from '../harness/vm.js';

const log = createLogger({ name: 'test', level: 'warn' });
const dockerFixture = useDocker();
const tag = crypto.randomBytes(3).toString('hex');
const hostName = (i: number) => `netdrv-${tag}-h${i}`;
const prefix = netnsPrefix('d');
const { hosts } = useStandInHosts(prefix, 2);
const SEGMENT = 4301;
const MTU = 1450;
const MiB = 1024 * 1024;

cleanup(async () => {
  for (const i of [0, 1]) {
    const ps = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/host=${hostName(i)}`]);
    const ids = ps.stdout.split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
  }
});

const segments: NetworkSegment[] = [
  {
    v: 1,
    segment: SEGMENT,
    network: 'default/private',
    mtu: MTU,
    peers: hosts.map((h, i) => ({ host: hostName(i), address: h.address })),
    updatedAt: new Date(0).toISOString(),
  },
];

const assignment = (n: number): InterfaceAssignment => ({
  network: 'private',
  segment: SEGMENT,
  name: 'net0',
  mac: `02:00:0a:2a:00:${n.toString(16).padStart(2, '0')}`,
  address: `10.42.0.${n}/24`,
  mtu: MTU,
  primary: true,
});

/** Every command a host network ran that changes something (reads are `… -json … show` and `nft -j list`). */
const writes: string[][] = [[], []];
function hostNetwork(i: number): HostNetwork {
  return new LinuxHostNetwork({
    overlayAddress: hosts[i]!.address,
    underlayDevice: UNDERLAY_DEVICE,
    netns: hosts[i]!.name,
    onCommand: (argv) => {
      const s = argv.join(' ');
      if (!/ -json (-details )?(link|fdb) show$/.test(s) && !/nft -j list ruleset$/.test(s))
        writes[i]!.push(s);
    },
  });
}

const stateDirs = [tempDir('edgeplane-netdrv-0-'), tempDir('edgeplane-netdrv-1-')];
function gvisor(i: number, network: HostNetwork): GvisorDriver {
  dockerFixture();
  return new GvisorDriver({
    host: hostName(i),
    publishAddress: '127.0.0.1',
    stateDir: stateDirs[i]!,
    network,
    log,
  });
}

/** A busybox httpd on port 80 answering with the instance's name, published on 127.0.0.1, attached as `n`. */
function webRequest(name: string, n: number): InstanceRequest {
  return {
    namespace: 'default',
    name,
    workload: 'web',
    templateHash: 'h1',
    template: {
      containers: [
        {
          name: 'web',
          image: BUSYBOX_IMAGE,
          command: ['sh', '-c', `mkdir -p /w && echo ${name} >/w/index.html && exec httpd -f -p 80 -h /w`],
          ports: [{ name: 'http', containerPort: 80 }],
        },
      ],
    },
    limits: { cpuMillis: 250, memoryBytes: 64 * MiB },
    labels: {},
    interfaces: [assignment(n)],
  };
}

/** A reconciler of host `i` running `reqs` (its intents), as the agent wires it. */
function reconciler(
  i: number,
  drivers: ReconcilerOptions['drivers'],
  network: HostNetwork,
  reqs: InstanceRequest[],
): Reconciler {
  const intents = reqs.map((req) =>
    testIntent({
      namespace: req.namespace,
      workload: req.name,
      hosts: [hostName(i)],
      templateHash: req.templateHash,
      template: req.template,
      limits: req.limits,
      instances: [
        { name: req.name, host: hostName(i), ordinal: 0, labels: {}, interfaces: req.interfaces ?? [] },
      ],
    }),
  );
  const r = new Reconciler({
    host: hostName(i),
    drivers,
    intents: () => intents,
    synced: () => true,
    network,
    segments: () => segments,
    resyncMs: 500,
    log,
  });
  return r;
}

/**
 * `GET /` of `address` from inside container `container` (busybox nc: its wget is unreliable under runsc): the
 * body's last line. Throws with the exec's exit code and stderr when `docker exec` itself fails.
 */
async function fetchFrom(container: string, address: string, port = 80): Promise<string> {
  const r = await docker([
    'exec',
    container,
    'sh',
    '-c',
    `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${address} ${port} | tail -1`,
  ]);
  if (r.code !== 0) throw new Error(`docker exec ${container} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

const containerOf = (i: number, name: string) => `edge_${hostName(i)}_default_${name}_web`;

async function instanceContainers(i: number): Promise<Array<{ id: string; started: string; name: string }>> {
  const ps = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/host=${hostName(i)}`]);
  const ids = ps.stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  const out = await docker(['inspect', '-f', '{{.Id}} {{.State.StartedAt}} {{.Name}}', ...ids]);
  return out.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id = '', started = '', name = ''] = l.split(' ');
      return { id, started, name };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

describe('Network attachments through the agent', () => {
  it('gVisor instances on two hosts reach each other by address; a restarted agent changes nothing; removal leaves nothing', async () => {
    const nets = [hostNetwork(0), hostNetwork(1)];
    const a = webRequest('web-a', 10);
    const b = webRequest('web-b', 11);
    const r = [
      reconciler(0, { gvisor: gvisor(0, nets[0]!) }, nets[0]!, [a]),
      reconciler(1, { gvisor: gvisor(1, nets[1]!) }, nets[1]!, [b]),
    ];
    for (const x of r) x.start();
    try {
      const running = (x: Reconciler, name: string) =>
        x.observed().find((s) => s.name === name && s.phase === 'Running' && s.interfaces?.length);
      const sa = await waitFor('web-a running with its interface', () => running(r[0]!, 'web-a'), {
        timeoutMs: 180_000,
      });
      await waitFor('web-b running with its interface', () => running(r[1]!, 'web-b'), {
        timeoutMs: 180_000,
      });
      expect(sa.interfaces).toEqual([
        { network: 'private', name: 'net0', mac: '02:00:0a:2a:00:0a', address: '10.42.0.10' },
      ]);
      // Only the app container is an instance container; its holder owns the published port.
      expect(sa.containers.map((c) => c.name)).toEqual(['web']);
      // Across the two hosts, by address, from inside the sandboxes, both ways.
      expect(
        await waitFor(
          'web-b reaches web-a',
          async () => (await fetchFrom(containerOf(1, 'web-b'), '10.42.0.10')) === 'web-a' || undefined,
          { timeoutMs: 60_000 },
        ),
      ).toBe(true);
      expect(
        await waitFor(
          'web-a reaches web-b',
          async () => (await fetchFrom(containerOf(0, 'web-a'), '10.42.0.11')) === 'web-b' || undefined,
          { timeoutMs: 60_000 },
        ),
      ).toBe(true);
      // The published port (on 127.0.0.1, owned by the holder) still serves the instance.
      const port = sa.ports[0]!;
      expect(port).toMatchObject({ name: 'http', containerPort: 80, hostIP: '127.0.0.1' });
      await waitFor(
        'web-a through its published port',
        async () =>
          (await httpGet(`http://127.0.0.1:${port.hostPort}/`)).body.trim() === 'web-a' || undefined,
        { timeoutMs: 60_000 },
      );

      // An agent restart: a new host network and driver, a new reconciler. Nothing is created, restarted or rewritten.
      const before = await instanceContainers(0);
      const before1 = await instanceContainers(1);
      await r[0]!.stop();
      writes[0] = [];
      writes[1] = [];
      const net0 = hostNetwork(0);
      const restarted = reconciler(0, { gvisor: gvisor(0, net0) }, net0, [a]);
      r[0] = restarted;
      restarted.start();
      await waitFor('the restarted reconciler reports web-a running', () => running(restarted, 'web-a'), {
        timeoutMs: 60_000,
      });
      // A few passes, including the one that re-programs the adopted instance's policy.
      await new Promise((res) => setTimeout(res, 3000));
      expect(await instanceContainers(0)).toEqual(before);
      expect(writes[0]).toEqual([]);
      // Nothing changed on either host (no container, no write), so the path between them is the one that worked
      // above. One `docker exec … nc -w 5` into a sandbox is not a measure of it: on a loaded host a single try
      // comes back empty now and then (seen at load ~50), so it gets the same retries as the first reach.
      await waitFor(
        'web-b still reaches web-a',
        async () => (await fetchFrom(containerOf(1, 'web-b'), '10.42.0.10')) === 'web-a' || undefined,
        { timeoutMs: 60_000 },
      );
      expect(await instanceContainers(0)).toEqual(before);
      expect(await instanceContainers(1)).toEqual(before1);
      expect(writes[0]).toEqual([]);
      expect(writes[1]).toEqual([]);

      // A port no instance needs (its instance gone behind the agent's back) is removed by the next passes.
      await net0.attach('default/ghost', { kind: 'tap' }, [assignment(99)]);
      await waitFor(
        'the ghost port removed',
        async () => !(await net0.list()).some((p) => p.instance === 'default/ghost'),
        { timeoutMs: 30_000 },
      );
    } finally {
      for (const x of r) await x.stop();
    }
    // Removal: each driver destroys its instance; no container, holder or port is left.
    for (const i of [0, 1]) {
      const d = gvisor(i, nets[i]!);
      for (const s of await d.list()) await d.destroy(s.namespace, s.name);
      expect(await instanceContainers(i)).toEqual([]);
      expect(await nets[i]!.list()).toEqual([]);
    }
  }, 420_000);

  it('a VM gets its address by DHCP and is reached by address from a gVisor instance on the other host', async () => {
    const nets = [hostNetwork(0), hostNetwork(1)];
    for (const n of nets) await n.syncSegments(segments);
    const { catalog } = await guestKernelCatalog();
    const dir = tempDir('edgeplane-netdrv-vm-');
    // The helpers' default directory (/run/edgeplane/vm-dhcp/<host>): dnsmasq, as nobody, must read its leases.
    const dhcpDir = join('/run/edgeplane/vm-dhcp', hostName(1));
    const vms = testQemuDriver({
      dir,
      catalog,
      host: hostName(1),
      network: nets[1]!,
      networkNamespace: hosts[1]!.path,
      log,
    });
    destroyVmsAfterTest(vms);
    const gv = gvisor(0, nets[0]!);
    cleanup(async () => {
      for (const s of await gv.list()) await gv.destroy(s.namespace, s.name);
    });
    const vm = {
      ...vmRequest(GUEST_IMAGE, { ports: [{ name: 'http', containerPort: 8080 }] }),
      interfaces: [assignment(20)],
    };
    await vms.start(vm);
    await gv.start(webRequest('web-c', 12));
    const consoleLog = join(dir, 'vms', 'ns_vm-0', 'console.log');
    await waitFor(
      'the guest leases 10.42.0.20 on its second NIC',
      () =>
        existsSync(consoleLog) &&
        readFileSync(consoleLog, 'utf8').includes(
          `EDGEPLANE-GUEST-NET eth1 ${assignment(20).mac} 10.42.0.20/24`,
        ),
      { timeoutMs: 180_000 },
    );
    // Its user network (published ports, egress) still gets slirp's lease.
    await waitFor('the guest leases 10.0.2.15 on its user network', () =>
      /EDGEPLANE-GUEST-NET eth0 \S+ 10\.0\.2\.15\/24/.test(readFileSync(consoleLog, 'utf8')),
    );
    // From the container on the other host to the VM's httpd, by the leased address.
    await waitFor(
      'web-c reaches the VM',
      async () =>
        (await fetchFrom(containerOf(0, 'web-c'), '10.42.0.20', 8080)) === 'edgeplane-guest' || undefined,
      { timeoutMs: 90_000 },
    );
    // The user network still publishes the VM's port on 127.0.0.1.
    const state = await vms.inspect('ns', 'vm-0');
    await waitFor(
      'the VM through its published port',
      async () =>
        (await httpGet(`http://127.0.0.1:${state!.ports[0]!.hostPort}/`)).body.trim() === 'edgeplane-guest' ||
        undefined,
      { timeoutMs: 60_000 },
    );
    // Destroy: no tap, no DHCP helper (process, namespace, directory).
    const helperNetns = () =>
      (existsSync('/run/netns') ? readdirSync('/run/netns') : []).filter((n) => n.startsWith('edge-dhcp-'));
    const helpersBefore = helperNetns().length;
    await vms.destroy('ns', 'vm-0');
    expect((await nets[1]!.list()).filter((p) => p.instance === 'ns/vm-0')).toEqual([]);
    expect(existsSync(dhcpDir) ? readdirSync(dhcpDir) : []).toEqual([]);
    expect(helperNetns().length).toBe(helpersBefore - 1);
  }, 420_000);
});
