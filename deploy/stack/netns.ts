/**
 * Stand-in hosts for network tests, the network benchmark and the dev stack: network namespaces that play the
 * hosts, joined by an underlay that exists only inside namespaces this module creates (a bridge in a hub
 * namespace, a veth from it to each host), and namespaces that play instances. Nothing is created in, and no
 * traffic is sent to, the machine's own namespace. Every namespace carries the caller's prefix, so
 * {@link removeNetnsWithPrefix} can clean up after a crashed run too.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';

/** The underlay: 198.18.0.0/24 (RFC 2544 benchmarking range), host i at 198.18.0.(i+1), on device `ul`. */
export const UNDERLAY_DEVICE = 'ul';
export const underlayAddress = (i: number): string => `198.18.0.${i + 1}`;

/** A network namespace this module created. */
export interface Netns {
  /** Its name (`ip netns`). */
  name: string;
  /** Its path, for `nsenter --net=` and a HostNetwork's netns target. */
  path: string;
}

/** Stand-in hosts on one underlay. */
export interface StandInHosts {
  /** The hosts, each with its underlay (overlay) address on device {@link UNDERLAY_DEVICE}. */
  hosts: (Netns & { address: string })[];
  /** The hub namespace holding the underlay bridge. */
  hub: Netns;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Creates a network namespace with its loopback up. */
export function createNetns(name: string): Netns {
  ip('netns', 'add', name);
  ip('-n', name, 'link', 'set', 'lo', 'up');
  return { name, path: `/run/netns/${name}` };
}

/** Deletes network namespaces (and with them every device inside); missing ones are skipped. */
export function removeNetns(names: readonly string[]): void {
  for (const n of names) {
    if (fs.existsSync(`/run/netns/${n}`)) ip('netns', 'del', n);
  }
}

/** Deletes every network namespace whose name starts with `prefix`. */
export function removeNetnsWithPrefix(prefix: string): void {
  const names = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : [];
  removeNetns(names.filter((n) => n.startsWith(prefix)));
}

/**
 * `count` hosts `<prefix>h<i>` and a hub `<prefix>u`, the hosts' `ul` devices on the hub's bridge with
 * addresses {@link underlayAddress}; `mtu` of the underlay (default 1500).
 */
export function createStandInHosts(prefix: string, count: number, mtu = 1500): StandInHosts {
  const hub = createNetns(`${prefix}u`);
  ip('-n', hub.name, 'link', 'add', 'ub', 'mtu', String(mtu), 'type', 'bridge');
  ip('-n', hub.name, 'link', 'set', 'ub', 'up');
  const hosts = Array.from({ length: count }, (_, i) => {
    const host = createNetns(`${prefix}h${i}`);
    const address = underlayAddress(i);
    ip(
      '-n',
      hub.name,
      'link',
      'add',
      `u${i}`,
      'mtu',
      String(mtu),
      'type',
      'veth',
      'peer',
      'name',
      UNDERLAY_DEVICE,
    );
    ip('-n', hub.name, 'link', 'set', UNDERLAY_DEVICE, 'netns', host.name);
    ip('-n', hub.name, 'link', 'set', `u${i}`, 'master', 'ub', 'up');
    ip('-n', host.name, 'addr', 'add', `${address}/24`, 'dev', UNDERLAY_DEVICE);
    ip('-n', host.name, 'link', 'set', UNDERLAY_DEVICE, 'mtu', String(mtu), 'up');
    return { ...host, address };
  });
  return { hosts, hub };
}

/** Runs a command inside a namespace; resolves with exit code and output (never rejects for a non-zero exit). */
export function runIn(
  ns: Netns,
  argv: readonly string[],
  { timeoutMs = 30_000, input }: { timeoutMs?: number; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${ns.path}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}
