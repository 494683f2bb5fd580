/**
 * Runs a plan's operations: each becomes lines for `ip -batch`, `bridge -batch` or one `nft -f` transaction (in
 * the host's namespace) or `ip -batch` inside an instance's namespace; consecutive lines for the same tool and
 * namespace go in one process. A failure stops the run; the next plan starts from what the host then has.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import type { Commands } from './commands.js';
import { type HostOp, MARK_MASK, MARK_TAG, type RuleMaps, TABLE, VXLAN_PORT } from './host-model.js';
import { encodeMark, TAP_PREFIX, VETH_PREFIX } from './marks.js';

/** Where a line runs: a tool in the host's namespace, or `ip` in the namespace at `path`. */
type Runner = { tool: 'ip' | 'bridge' | 'nft' | 'iptables' } | { tool: 'ipIn'; path: string };
type Line = { runner: Runner; line: string };

const BR = `bridge ${TABLE}`;
const IP = `ip ${TABLE}`;

/** Each map: its table, nft name, and how a key and a value are written. */
const MAPS: Record<
  keyof RuleMaps,
  { table: string; name: string; key: (k: string) => string; value: (v: string | number) => string }
> = {
  fromPort: { table: BR, name: 'from_port', key: (k) => `"${k}"`, value: (v) => `jump ${v}` },
  portMark: { table: BR, name: 'port_mark', key: (k) => `"${k}"`, value: (v) => hex(Number(v)) },
  ingress: { table: IP, name: 'ingress', key: (k) => hex(Number(k)), value: (v) => `jump ${v}` },
  zones: { table: IP, name: 'zones', key: (k) => `"${k}"`, value: (v) => String(v) },
};
const hex = (n: number) => `0x${n.toString(16)}`;

/** Chains are named by family: `in_…` anti-spoofing in the bridge table, `out_…` ingress policy in the ip table. */
export const tableOfChain = (chain: string): string => (chain.startsWith('in_') ? BR : IP);

/** Both tables' fixed parts: maps, and the base chains that consult them. */
function tableLines(): string[] {
  const ours = (dir: 'iifname' | 'oifname', chain: string, rest: string) =>
    [VETH_PREFIX, TAP_PREFIX].map((p) => `add rule ${BR} ${chain} ${dir} "${p}*" ${rest}`);
  const tagged = `meta mark & ${hex(MARK_MASK)} == ${hex(MARK_TAG)}`;
  return [
    `add table ${BR}`,
    `add map ${BR} from_port { type ifname : verdict; }`,
    `add map ${BR} port_mark { type ifname : mark; }`,
    // Before br_netfilter hands IPv4 to conntrack (bridge priority 0): anti-spoofing.
    `add chain ${BR} prerouting { type filter hook prerouting priority -300; policy accept; }`,
    `add rule ${BR} prerouting iifname vmap @from_port`,
    // A port without its chain (ruleset flushed under us) sends nothing until it is attached again.
    ...ours('iifname', 'prerouting', 'drop'),
    // Before br_netfilter's forward hook (priority 0): mark the packet with the port it is delivered to, so the
    // ip table's forward chain, which only sees the bridge, applies that port's policy.
    `add chain ${BR} forward { type filter hook forward priority -10; policy accept; }`,
    `add rule ${BR} forward ether type arp accept`,
    ...ours('oifname', 'forward', 'ether type != ip drop'),
    `add rule ${BR} forward meta mark set oifname map @port_mark`,
    ...ours('oifname', 'forward', `${tagged.replace('==', '!=')} drop`),
    `add table ${IP}`,
    `add map ${IP} zones { typeof iifname : ct zone; }`,
    `add map ${IP} ingress { type mark : verdict; }`,
    // Through br_netfilter the input device is the bridge: one conntrack zone per segment.
    `add chain ${IP} prerouting { type filter hook prerouting priority -300; policy accept; }`,
    `add rule ${IP} prerouting ct zone set iifname map @zones`,
    `add chain ${IP} forward { type filter hook forward priority 0; policy accept; }`,
    `add rule ${IP} forward meta mark vmap @ingress`,
    // A marked port without its policy (flushed under us) is delivered nothing until attached again.
    `add rule ${IP} forward ${tagged} drop`,
  ];
}

/** Deletes both tables, whichever exist (`add` first makes `delete` safe). */
const dropTables = () => [BR, IP].flatMap((t) => [`add table ${t}`, `delete table ${t}`]);

const q = (s: string) => `'${s}'`;

/** Our rule in an iptables FORWARD chain whose policy drops: bridge-to-bridge on our bridges passes. */
export const FORWARD_RULE = '-i ep-br-+ -o ep-br-+ -m comment --comment edgeplane -j ACCEPT';

/** The lines of one operation (none for a state file). */
export function linesOf(o: HostOp): Line[] {
  const ip = (line: string): Line => ({ runner: { tool: 'ip' }, line });
  const nft = (line: string): Line => ({ runner: { tool: 'nft' }, line });
  const fdb = (line: string): Line => ({ runner: { tool: 'bridge' }, line });
  switch (o.op) {
    case 'addTable':
      return [...(o.reset ? dropTables() : []), ...tableLines()].map(nft);
    case 'deleteTable':
      return dropTables().map(nft);
    case 'addChain': {
      const t = tableOfChain(o.chain);
      return [nft(`add chain ${t} ${o.chain}`), ...o.rules.map((r) => nft(`add rule ${t} ${o.chain} ${r}`))];
    }
    case 'deleteChain':
      return [nft(`delete chain ${tableOfChain(o.chain)} ${o.chain}`)];
    case 'setEntry': {
      const m = MAPS[o.map];
      return [
        ...(o.replace ? [nft(`delete element ${m.table} ${m.name} { ${m.key(o.key)} }`)] : []),
        nft(`add element ${m.table} ${m.name} { ${m.key(o.key)} : ${m.value(o.value)} }`),
      ];
    }
    case 'deleteEntry': {
      const m = MAPS[o.map];
      return [nft(`delete element ${m.table} ${m.name} { ${m.key(o.key)} }`)];
    }
    case 'addBridge':
      return [
        ip(`link add ${o.device} mtu ${o.mtu} type bridge stp_state 0 mcast_snooping 0 nf_call_iptables 1`),
        ip(`link set dev ${o.device} alias ${q(encodeMark(o.mark))} addrgenmode none up`),
      ];
    case 'addVxlan':
      return [
        ip(
          `link add ${o.device} mtu ${o.mtu} type vxlan id ${o.mark.s} dstport ${VXLAN_PORT} local ${o.local}` +
            (o.underlay ? ` dev ${o.underlay}` : ''),
        ),
        ip(`link set dev ${o.device} alias ${q(encodeMark(o.mark))} addrgenmode none master ${o.bridge} up`),
      ];
    case 'fixLink':
      return [
        ...(o.nfCallIptables ? [ip(`link set dev ${o.device} type bridge nf_call_iptables 1`)] : []),
        ...(o.mtu !== undefined || o.master || o.up
          ? [
              ip(
                `link set dev ${o.device}` +
                  (o.mtu !== undefined ? ` mtu ${o.mtu}` : '') +
                  (o.master ? ` master ${o.master}` : '') +
                  (o.up ? ' up' : ''),
              ),
            ]
          : []),
      ];
    case 'addFlood':
      return [fdb(`fdb append 00:00:00:00:00:00 dev ${o.device} dst ${o.peer}`)];
    case 'deleteFlood':
      return [fdb(`fdb del 00:00:00:00:00:00 dev ${o.device} dst ${o.peer}`)];
    case 'addPort': {
      const m = o.mark;
      const alias = q(encodeMark(m));
      if (m.k === 'tap') {
        return [
          ip(`tuntap add dev ${o.device} mode tap`),
          ip(`link set dev ${o.device} alias ${alias} addrgenmode none mtu ${m.u} master ${o.bridge} up`),
        ];
      }
      const inside = (line: string): Line => ({ runner: { tool: 'ipIn', path: o.netns! }, line });
      // Marked at once, enslaved and up last: a port left half-made by a crash is down, and planned again.
      return [
        ip(
          `link add ${o.device} mtu ${m.u} type veth peer name ${m.f} address ${m.m} mtu ${m.u} netns ${o.netns}`,
        ),
        ip(`link set dev ${o.device} alias ${alias} addrgenmode none`),
        inside(`addr add ${m.a} dev ${m.f}`),
        inside(`link set dev ${m.f} up`),
        ip(`link set dev ${o.device} master ${o.bridge} up`),
      ];
    }
    case 'deleteLink':
      return [ip(`link del dev ${o.device}`)];
    case 'forwardRule':
      return [{ runner: { tool: 'iptables' }, line: `${o.allow ? '-I' : '-D'} ${o.chain} ${FORWARD_RULE}` }];
    case 'setState':
      return [];
  }
}

const sameRunner = (a: Runner, b: Runner) =>
  a.tool === b.tool && (a.tool !== 'ipIn' || (b.tool === 'ipIn' && a.path === b.path));

/** The state file of a port. */
export const stateFile = (stateDir: string, device: string): string => path.join(stateDir, `${device}.json`);

/** Runs the operations in order (state files in `stateDir`), batching consecutive lines of one runner. */
export async function applyOps(cmd: Commands, ops: readonly HostOp[], stateDir: string): Promise<void> {
  let pending: HostOp[] = [];
  for (const o of [...ops, undefined]) {
    if (o && o.op !== 'setState') {
      pending.push(o);
      continue;
    }
    await runLines(cmd, pending.flatMap(linesOf));
    pending = [];
    if (o?.op !== 'setState') continue;
    if (o.state) {
      fs.mkdirSync(stateDir, { recursive: true });
      writeFileAtomic(stateFile(stateDir, o.device), JSON.stringify(o.state));
    } else fs.rmSync(stateFile(stateDir, o.device), { force: true });
  }
}

async function runLines(cmd: Commands, lines: Line[]): Promise<void> {
  let i = 0;
  while (i < lines.length) {
    const runner = lines[i]!.runner;
    let j = i;
    while (j < lines.length && sameRunner(lines[j]!.runner, runner)) j++;
    const input = `${lines
      .slice(i, j)
      .map((l) => l.line)
      .join('\n')}\n`;
    if (runner.tool === 'nft') await cmd.nft(['-f', '-'], input);
    else if (runner.tool === 'ip') await cmd.ip(['-batch', '-'], input);
    else if (runner.tool === 'bridge') await cmd.bridge(['-batch', '-'], input);
    else if (runner.tool === 'ipIn') await cmd.ipIn(runner.path, ['-batch', '-'], input);
    else for (const l of lines.slice(i, j)) await cmd.iptables(['-w', ...l.line.split(' ')]);
    i = j;
  }
}
