/**
 * Reads the host's network as the planner sees it: three read-only commands (`ip -json -details link show`,
 * `bridge -json fdb show`, `nft -j list ruleset`) and the port state files, parsed into plain data.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Commands } from './commands.js';
import {
  BASE_CHAINS,
  type ForwardDrop,
  type ObservedHost,
  type ObservedLink,
  type ObservedRules,
  type PortState,
  TABLE,
} from './host-model.js';
import { decodeMark } from './marks.js';

interface IpLink {
  ifname: string;
  flags?: string[];
  mtu: number;
  master?: string;
  ifalias?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; local?: string; port?: number; link?: string; nf_call_iptables?: number };
  };
}

/** Parses `ip -json -details link show`. */
export function parseLinks(json: string): ObservedLink[] {
  return (JSON.parse(json) as IpLink[]).map((l) => {
    const kind = l.linkinfo?.info_kind ?? '';
    const data = l.linkinfo?.info_data;
    const mark = decodeMark(l.ifalias);
    const link: ObservedLink = { name: l.ifname, kind, up: l.flags?.includes('UP') ?? false, mtu: l.mtu };
    if (mark) link.mark = mark;
    if (l.master) link.master = l.master;
    if (kind === 'vxlan' && data) {
      link.vxlan = {
        id: data.id ?? 0,
        port: data.port ?? 0,
        ...(data.local ? { local: data.local } : {}),
        ...(data.link ? { device: data.link } : {}),
      };
    }
    if (kind === 'bridge') link.nfCallIptables = data?.nf_call_iptables === 1;
    return link;
  });
}

/** Parses `bridge -json fdb show` into the flood lists (all-zero entries with a destination) of `devices`. */
export function parseFlood(json: string, devices: ReadonlySet<string>): Record<string, string[]> {
  const flood: Record<string, string[]> = {};
  for (const e of JSON.parse(json) as { mac: string; ifname?: string; dst?: string }[]) {
    if (e.mac !== '00:00:00:00:00:00' || !e.dst || !e.ifname || !devices.has(e.ifname)) continue;
    flood[e.ifname] = [...(flood[e.ifname] ?? []), e.dst];
  }
  return flood;
}

type NftItem = {
  table?: { family: string; name: string };
  chain?: { family: string; table: string; name: string; policy?: string };
  rule?: { family: string; table: string; chain: string; expr: unknown[] };
  map?: { family: string; table: string; name: string; elem?: [unknown, unknown][] };
};

/** Parses `nft -j list ruleset`: the two tables named `edgeplane` (null when neither exists). */
export function parseRules(json: string): ObservedRules | null {
  const items = (JSON.parse(json) as { nftables: NftItem[] }).nftables;
  const ours = (x: { family: string; table?: string; name: string } | undefined, family: string) =>
    x !== undefined && x.family === family && (x.table ?? x.name) === TABLE;
  const tables = items.filter((i) => ours(i.table, 'bridge') || ours(i.table, 'ip')).length;
  if (tables === 0) return null;
  const chainsOf = (family: string) => items.flatMap((i) => (ours(i.chain, family) ? [i.chain!.name] : []));
  const mapOf = (family: string, name: string) =>
    items.find((i) => ours(i.map, family) && i.map!.name === name)?.map;
  const target = (v: unknown) => {
    const verdict = v as { jump?: { target: string }; goto?: { target: string } };
    return verdict.jump?.target ?? verdict.goto?.target;
  };
  const entries = <T>(
    family: string,
    name: string,
    value: (v: unknown) => T | undefined,
  ): Record<string, T> =>
    Object.fromEntries(
      (mapOf(family, name)?.elem ?? []).flatMap(([k, v]) => {
        const val = value(v);
        return val === undefined ? [] : [[String(k), val]];
      }),
    );
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const bridgeChains = chainsOf('bridge');
  const ipChains = chainsOf('ip');
  const complete =
    tables === 2 &&
    BASE_CHAINS.every((c) => bridgeChains.includes(c) && ipChains.includes(c)) &&
    ['from_port', 'port_mark'].every((m) => mapOf('bridge', m)) &&
    ['zones', 'ingress'].every((m) => mapOf('ip', m));
  return {
    complete,
    chains: [...bridgeChains, ...ipChains].filter((c) => !BASE_CHAINS.includes(c)),
    fromPort: entries('bridge', 'from_port', target),
    portMark: entries('bridge', 'port_mark', num),
    ingress: entries('ip', 'ingress', target),
    zones: entries('ip', 'zones', num),
  };
}

/** The iptables-nft FORWARD chain of `nft -j list ruleset` when its policy drops, with our rule's presence. */
export function parseForwardDrop(json: string): ForwardDrop | undefined {
  const items = (JSON.parse(json) as { nftables: NftItem[] }).nftables;
  const inFilter = (x: { family: string; table: string } | undefined) =>
    x?.family === 'ip' && x.table === 'filter';
  const forward = items.find((i) => inFilter(i.chain) && i.chain!.name === 'FORWARD')?.chain;
  if (forward?.policy !== 'drop') return undefined;
  const chain = items.some((i) => inFilter(i.chain) && i.chain!.name === 'DOCKER-USER')
    ? 'DOCKER-USER'
    : 'FORWARD';
  const ours = (expr: unknown[]) => {
    const text = JSON.stringify(expr);
    return (
      ['iifname', 'oifname'].every((k) => text.includes(`{"meta":{"key":"${k}"}},"right":"ep-br-*"`)) &&
      text.includes('{"accept":null}')
    );
  };
  const allowed = items.some((i) => inFilter(i.rule) && i.rule!.chain === chain && ours(i.rule!.expr));
  return { chain, allowed };
}

/** The port state files in `stateDir` (an unreadable one has an empty alias: it matches no port and goes). */
export function readStates(stateDir: string): Record<string, PortState> {
  let names: string[];
  try {
    names = fs.readdirSync(stateDir).filter((n) => n.endsWith('.json'));
  } catch {
    return {};
  }
  return Object.fromEntries(
    names.map((n) => {
      let state: PortState = { alias: '' };
      try {
        const v = JSON.parse(fs.readFileSync(path.join(stateDir, n), 'utf8')) as PortState;
        if (typeof v.alias === 'string' && (v.ingress === undefined || Array.isArray(v.ingress))) state = v;
      } catch {}
      return [n.slice(0, -'.json'.length), state];
    }),
  );
}

/** Observes the host (its port state files in `stateDir`). */
export async function observeHost(cmd: Commands, stateDir: string): Promise<ObservedHost> {
  const [linksJson, fdbJson, rules] = await Promise.all([
    cmd.ip(['-json', '-details', 'link', 'show']),
    cmd.bridge(['-json', 'fdb', 'show']),
    cmd.nft(['-j', 'list', 'ruleset']),
  ]);
  const links = parseLinks(linksJson);
  const vxlans = new Set(links.filter((l) => l.mark?.edgeplane === 'overlay').map((l) => l.name));
  const forwardDrop = parseForwardDrop(rules);
  return {
    links,
    flood: parseFlood(fdbJson || '[]', vxlans),
    rules: parseRules(rules),
    states: readStates(stateDir),
    ...(forwardDrop ? { forwardDrop } : {}),
  };
}
