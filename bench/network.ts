/**
 * Host network benchmark on real iproute2, nftables and iperf3, on two stand-in hosts (network namespaces on an
 * underlay that exists only inside namespaces this benchmark creates; nothing else is touched).
 * `npm run bench:network` prints a summary; `-- --json` prints one JSON object:
 * - `attachP50Ms` / `attachP99Ms`: time for `LinuxHostNetwork.attach()` to program a new instance's port (veth
 *   into its namespace, address, rules with an ingress policy) on a host that already has the segment, over
 *   `--instances` (default 30) instances attached one after another (`attachRunsMs`: every one);
 * - `overlayBitsPerSecond`: iperf3 TCP throughput (receiver side, `--seconds`, default 5) between two instances
 *   on the two hosts, over the VXLAN overlay (MTU 1450 on a 1500 underlay);
 * - `underlayBitsPerSecond`: the same between the two hosts' namespaces directly, for comparison.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LinuxHostNetwork } from '../agent/network/linux.js';
import {
  createNetns,
  createStandInHosts,
  type Netns,
  removeNetnsWithPrefix,
  runIn,
  UNDERLAY_DEVICE,
  waitFor,
} from '../deploy/stack/index.js';
import type { InterfaceAssignment, NetworkSegment } from '../shared/nats/messages.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const numArg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const instances = numArg('--instances', 30);
const seconds = numArg('--seconds', 5);
const say = (s: string) => {
  if (!json) process.stderr.write(`${s}\n`);
};

const SEGMENT = 9001;
const MTU = 1450;

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

const assignment = (n: number): InterfaceAssignment => ({
  network: 'bench',
  segment: SEGMENT,
  name: 'net0',
  mac: `02:be:00:00:${Math.floor(n / 256)
    .toString(16)
    .padStart(2, '0')}:${(n % 256).toString(16).padStart(2, '0')}`,
  address: `10.99.${Math.floor(n / 250)}.${(n % 250) + 1}/16`,
  mtu: MTU,
  primary: true,
  ingress: [{ ports: [{ port: 5201 }] }],
});

/** iperf3 from `client` to `server` (at `address`): received bits per second. */
async function iperf(server: Netns, client: Netns, address: string): Promise<number> {
  const s = runIn(server, ['iperf3', '-s', '-1', '-B', address], { timeoutMs: (seconds + 60) * 1000 });
  await waitFor(
    `iperf3 server in ${server.name}`,
    async () => (await runIn(server, ['ss', '-ltn'])).stdout.includes(`${address}:5201`),
    { timeoutMs: 30_000 },
  );
  const c = await runIn(client, ['iperf3', '-c', address, '-t', String(seconds), '-J'], {
    timeoutMs: (seconds + 60) * 1000,
  });
  await s;
  if (c.code !== 0) throw new Error(`iperf3 -c ${address}: ${c.stdout.slice(-500)} ${c.stderr}`);
  return (JSON.parse(c.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
    .bits_per_second;
}

async function main(): Promise<void> {
  const prefix = `epbench${crypto.randomBytes(2).toString('hex')}-`;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeplane-bench-network-'));
  const stop = () => {
    removeNetnsWithPrefix(prefix);
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    const { hosts } = createStandInHosts(prefix, 2);
    const nets = hosts.map(
      (h) =>
        new LinuxHostNetwork({
          overlayAddress: h.address,
          underlayDevice: UNDERLAY_DEVICE,
          netns: h.name,
          stateDir: path.join(stateDir, h.name),
        }),
    );
    const segment: NetworkSegment = {
      v: 1,
      segment: SEGMENT,
      network: 'bench/bench',
      mtu: MTU,
      peers: hosts.map((h, i) => ({ host: `h${i}`, address: h.address })),
      updatedAt: new Date().toISOString(),
    };
    await Promise.all(nets.map((n) => n.syncSegments([segment])));

    say(`attaching ${instances} instances to host 0, one after another…`);
    const runs: number[] = [];
    const namespaces: Netns[] = [];
    for (let i = 0; i < instances; i++) {
      const ns = createNetns(`${prefix}i${i}`);
      namespaces.push(ns);
      const t0 = performance.now();
      await nets[0]!.attach(`bench/i${i}`, { kind: 'netns', path: ns.path }, [assignment(i)]);
      runs.push(performance.now() - t0);
    }
    const remote = createNetns(`${prefix}r`);
    // No policy on the receiver, so that the sender's ping (and its replies) can tell when the overlay is up.
    const { ingress: _none, ...remoteAssignment } = assignment(instances + 1);
    await nets[1]!.attach('bench/remote', { kind: 'netns', path: remote.path }, [remoteAssignment]);
    const remoteAddress = remoteAssignment.address.split('/')[0]!;

    say(`iperf3 ${seconds} s over the overlay (instance on host 0 → instance on host 1)…`);
    await waitFor(
      'overlay reachable',
      async () => (await runIn(namespaces[0]!, ['busybox', 'ping', '-c1', '-W1', remoteAddress])).code === 0,
      {
        timeoutMs: 30_000,
      },
    );
    const overlay = await iperf(remote, namespaces[0]!, remoteAddress);
    say(`iperf3 ${seconds} s over the underlay (host 0 → host 1)…`);
    const underlay = await iperf(hosts[1]!, hosts[0]!, hosts[1]!.address);

    const result = {
      attachP50Ms: Math.round(percentile(runs, 50) * 10) / 10,
      attachP99Ms: Math.round(percentile(runs, 99) * 10) / 10,
      attachRunsMs: runs.map((r) => Math.round(r * 10) / 10),
      instances,
      overlayBitsPerSecond: Math.round(overlay),
      underlayBitsPerSecond: Math.round(underlay),
      mtu: MTU,
      seconds,
    };
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      say(`attach: p50 ${result.attachP50Ms} ms, p99 ${result.attachP99Ms} ms over ${instances} instances`);
      say(`overlay:  ${(overlay / 1e9).toFixed(2)} Gbit/s (MTU ${MTU})`);
      say(`underlay: ${(underlay / 1e9).toFixed(2)} Gbit/s`);
    }
  } finally {
    stop();
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
