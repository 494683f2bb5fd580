/**
 * DHCP for VMs on Networks: a guest learns the address its attachment was assigned from a static lease, as a
 * cloud VM does. A Network's bridge has no host address (the host is not on the Network), so the server cannot
 * live on the host: each (segment, subnet) in use by this host's VMs gets a helper — a network namespace of its
 * own with one dnsmasq (Debian's dnsmasq-base) inside, on a veth (`dhcp0`, holding the subnet's network address,
 * which IPAM never hands out) whose other end is a member of the segment's bridge. It is the host side of the
 * segment, not an instance port: the host network's anti-spoofing drops DHCP replies from ports and lets
 * `udp 67 -> 68` into taps (agent/network/rules.ts).
 *
 * dnsmasq answers only the MACs it has a lease for (`dhcp-ignore=tag:!known`: the helpers of other hosts on the
 * segment see the same broadcasts and stay silent for VMs not theirs), leases are infinite (nothing renews, so
 * nothing depends on which helper a unicast reaches), and it offers no router and no DNS server (a VM's default
 * route and resolver stay on its user network). Its leases come from `hosts.d/`, one file per VM, which dnsmasq
 * re-reads by itself when files appear; a removal is followed by SIGHUP.
 *
 * Everything is found again from the directory (`<dir>/<key>/`: `helper.json`, `hosts.d/`, `dnsmasq.pid`), the
 * namespace name and the port's instance name are derived from the host and the key: a restarted agent adopts
 * the helpers, and a helper whose last VM is gone is removed (process, port, namespace, directory).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../../shared/log.js';
import type { InterfaceAssignment } from '../../shared/nats/messages.js';
import { pidAlive } from '../../shared/os.js';
import { bridgeName } from '../network/marks.js';

const run = promisify(execFile);

/** Options of {@link VmDhcp}. */
export interface VmDhcpOptions {
  /** This host (namespace names and MACs are derived from it, so several agents on a machine never clash). */
  host: string;
  /** Directory of the helpers' own directories. */
  dir: string;
  /** Network namespace (path) the host's network, and so the segments' bridges, live in; absent: the agent's. */
  networkNamespace?: string;
  /** Logger. */
  log: Logger;
}

/** What a helper serves, as `helper.json` records it. */
interface HelperRecord {
  /** The Network and its segment. */
  network: string;
  segment: number;
  /** The subnet's network address and prefix length. */
  subnet: string;
  prefix: number;
  /** MTU of the segment. */
  mtu: number;
}

/** `a.b.c.d` → 32-bit number. */
function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** 32-bit number → `a.b.c.d`. */
function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The subnet of an assignment's `address` (`10.0.1.5/24` → `10.0.1.0`, 24), and the address alone. */
export function subnetOf(address: string): { ip: string; subnet: string; prefix: number } {
  const [ip = '', bits = '32'] = address.split('/');
  const prefix = Number(bits);
  const size = 2 ** (32 - prefix);
  return { ip, subnet: intToIp(Math.floor(ipToInt(ip) / size) * size), prefix };
}

/** Dotted netmask of a prefix length. */
export function netmaskOf(prefix: number): string {
  return intToIp(2 ** 32 - 2 ** (32 - prefix));
}

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

/** The DHCP helpers of this host's VMs. */
export class VmDhcp {
  /** Work on one helper at a time (two VMs of one subnet starting at once). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: VmDhcpOptions) {}

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Helper key of an assignment: `<segment>-<subnet>-<prefix>`. */
  private keyOf(a: InterfaceAssignment): string {
    const { subnet, prefix } = subnetOf(a.address);
    return `${a.segment}-${subnet}-${prefix}`;
  }

  /** Name of a helper's network namespace (/run/netns). */
  netnsOf(key: string): string {
    return `edge-dhcp-${hash(`${this.opts.host}/${key}`).slice(0, 12)}`;
  }

  /** The helper's device on the segment's bridge (no prefix of the host network's own devices). */
  private deviceOf(key: string): string {
    return `epd${hash(`${this.opts.host}/${key}`).slice(0, 10)}`;
  }

  /** Runs `ip` in the host network's namespace. */
  private hostIp(args: string[]): Promise<unknown> {
    const ns = this.opts.networkNamespace;
    return ns ? run('nsenter', [`--net=${ns}`, 'ip', ...args]) : run('ip', args);
  }

  /**
   * Serves `vm` (its file name in `hosts.d`) the leases of `assignments`: writes them, then makes sure each
   * subnet's helper exists and runs. Idempotent.
   */
  ensure(vm: string, assignments: readonly InterfaceAssignment[]): Promise<void> {
    return this.serial(async () => {
      const byKey = new Map<string, InterfaceAssignment[]>();
      for (const a of assignments) byKey.set(this.keyOf(a), [...(byKey.get(this.keyOf(a)) ?? []), a]);
      for (const [key, list] of byKey) {
        const dir = join(this.opts.dir, key);
        mkdirSync(join(dir, 'hosts.d'), { recursive: true });
        const first = list[0]!;
        const { subnet, prefix } = subnetOf(first.address);
        const record: HelperRecord = {
          network: first.network,
          segment: first.segment,
          subnet,
          prefix,
          mtu: first.mtu,
        };
        writeFileSync(join(dir, 'helper.json'), JSON.stringify(record));
        writeFileSync(
          join(dir, 'hosts.d', vm),
          list.map((a) => `${a.mac},${subnetOf(a.address).ip},infinite\n`).join(''),
        );
        await this.up(key, dir, record);
      }
    });
  }

  /** Namespace, port and dnsmasq of one helper, each made only when missing. */
  private async up(key: string, dir: string, r: HelperRecord): Promise<void> {
    const ns = this.netnsOf(key);
    if (!existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'add', ns]);
    const mac = `02:ed:${hash(`${this.opts.host}/${key}`).slice(0, 8).match(/../g)!.join(':')}`;
    const dev = this.deviceOf(key);
    const bridge = bridgeName(r.segment);
    // Made again whenever it is not whole (a restarted agent adopts a helper that is).
    const linked = await run('nsenter', [
      `--net=/run/netns/${ns}`,
      'ip',
      '-o',
      'addr',
      'show',
      'dev',
      'dhcp0',
    ])
      .then((o) => o.stdout.includes(` ${r.subnet}/${r.prefix} `))
      .catch(() => false);
    const onBridge = await this.hostIp(['-o', 'link', 'show', 'dev', dev])
      .then((o) => (o as { stdout: string }).stdout.includes(` master ${bridge} `))
      .catch(() => false);
    if (!linked || !onBridge) {
      await this.hostIp(['link', 'del', dev]).catch(() => undefined);
      await this.hostIp([
        'link',
        'add',
        dev,
        'mtu',
        String(r.mtu),
        'type',
        'veth',
        'peer',
        'name',
        'dhcp0',
        'netns',
        `/run/netns/${ns}`,
      ]);
      await this.hostIp(['link', 'set', dev, 'master', bridge, 'up']);
      const inside = ['nsenter', `--net=/run/netns/${ns}`, 'ip'];
      await run(inside[0]!, [
        ...inside.slice(1),
        'link',
        'set',
        'dhcp0',
        'address',
        mac,
        'mtu',
        String(r.mtu),
      ]);
      await run(inside[0]!, [...inside.slice(1), 'addr', 'add', `${r.subnet}/${r.prefix}`, 'dev', 'dhcp0']);
      await run(inside[0]!, [...inside.slice(1), 'link', 'set', 'dhcp0', 'up']);
    }
    if (this.pidOf(dir)) return;
    await run('nsenter', [
      `--net=/run/netns/${ns}`,
      'dnsmasq',
      '--conf-file=/dev/null',
      '--port=0',
      '--interface=dhcp0',
      '--bind-interfaces',
      `--dhcp-range=${r.subnet},static,${netmaskOf(r.prefix)},infinite`,
      `--dhcp-hostsdir=${join(dir, 'hosts.d')}`,
      '--dhcp-ignore=tag:!known',
      '--dhcp-option=3',
      '--dhcp-option=6',
      '--leasefile-ro',
      '--user=nobody',
      '--group=nogroup',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      '--log-dhcp',
      `--log-facility=${join(dir, 'dnsmasq.log')}`,
    ]).catch((err: Error & { stderr?: string }) => {
      throw new Error(
        `dnsmasq for segment ${r.segment} (${r.subnet}/${r.prefix}) did not start: ${(err.stderr ?? err.message).trim()}`,
      );
    });
    this.opts.log.info(
      { segment: r.segment, subnet: `${r.subnet}/${r.prefix}`, netns: ns },
      'DHCP helper started',
    );
  }

  /** The helper's dnsmasq pid, when that process still runs this helper. */
  private pidOf(dir: string): number | undefined {
    try {
      const pid = Number(readFileSync(join(dir, 'dnsmasq.pid'), 'utf8').trim());
      if (!pid || !pidAlive(pid)) return undefined;
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Stops serving `vm`, and every VM `alive` says is gone; removes each helper left without a lease. Idempotent.
   */
  release(vm: string, alive: (vm: string) => boolean): Promise<void> {
    return this.serial(async () => {
      let keys: string[] = [];
      try {
        keys = readdirSync(this.opts.dir);
      } catch {
        return;
      }
      for (const key of keys) {
        const dir = join(this.opts.dir, key);
        let files: string[] = [];
        try {
          files = readdirSync(join(dir, 'hosts.d'));
        } catch {
          // A helper directory without leases: removed below.
        }
        let changed = false;
        for (const f of files) {
          if (f !== vm && alive(f)) continue;
          rmSync(join(dir, 'hosts.d', f), { force: true });
          changed = true;
        }
        const left = files.filter((f) => f !== vm && alive(f));
        const pid = this.pidOf(dir);
        if (left.length) {
          if (changed && pid) process.kill(pid, 'SIGHUP');
          continue;
        }
        await this.down(key, dir, pid);
      }
    });
  }

  /** Removes a helper: its dnsmasq, port, namespace and directory. */
  private async down(key: string, dir: string, pid: number | undefined): Promise<void> {
    if (pid) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 50 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await this.hostIp(['link', 'del', this.deviceOf(key)]).catch(() => undefined);
    const ns = this.netnsOf(key);
    if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
    this.opts.log.info({ helper: key }, 'DHCP helper removed');
  }
}
