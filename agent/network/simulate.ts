/**
 * The applier's model: what the host looks like after a plan's operations ran on it. The planner's property
 * tests plan against it (planning again on its result must yield nothing), and it states, operation by
 * operation, what the applier (apply.ts) does on the real host.
 */
import { type HostOp, type ObservedHost, type ObservedRules, VXLAN_PORT } from './host-model.js';

/**
 * What the host looks like after `ops` ran on `observed`: the model of the applier the property tests plan
 * against (and a statement of what each operation does).
 */
export function applyToObserved(observed: ObservedHost, ops: readonly HostOp[]): ObservedHost {
  const links = new Map(observed.links.map((l) => [l.name, { ...l }]));
  const flood: Record<string, string[]> = Object.fromEntries(
    Object.entries(observed.flood).map(([k, v]) => [k, [...v]]),
  );
  const r = observed.rules;
  let rules: ObservedRules | null = r
    ? {
        complete: r.complete,
        chains: [...r.chains],
        fromPort: { ...r.fromPort },
        portMark: { ...r.portMark },
        ingress: { ...r.ingress },
        zones: { ...r.zones },
      }
    : null;
  let forwardDrop = observed.forwardDrop && { ...observed.forwardDrop };
  const states = { ...observed.states };
  const table = () => {
    if (!rules) throw new Error('no table');
    return rules;
  };
  for (const o of ops) {
    switch (o.op) {
      case 'addTable':
        if (rules && !o.reset) throw new Error('table exists');
        rules = { complete: true, chains: [], fromPort: {}, portMark: {}, ingress: {}, zones: {} };
        break;
      case 'deleteTable':
        table();
        rules = null;
        break;
      case 'addChain':
        if (table().chains.includes(o.chain)) throw new Error(`chain ${o.chain} exists`);
        table().chains.push(o.chain);
        break;
      case 'deleteChain': {
        const t = table();
        if ([...Object.values(t.fromPort), ...Object.values(t.ingress)].includes(o.chain)) {
          throw new Error(`chain ${o.chain} in use`);
        }
        t.chains = t.chains.filter((c) => c !== o.chain);
        break;
      }
      case 'setEntry': {
        const t = table();
        if ((o.map === 'fromPort' || o.map === 'ingress') && !t.chains.includes(String(o.value))) {
          throw new Error(`no chain ${o.value}`);
        }
        if (o.key in t[o.map] !== o.replace) throw new Error(`entry ${o.map}[${o.key}]: replace is wrong`);
        (t[o.map] as Record<string, string | number>)[o.key] = o.value;
        break;
      }
      case 'deleteEntry':
        if (!(o.key in table()[o.map])) throw new Error(`no entry ${o.map}[${o.key}]`);
        delete table()[o.map][o.key];
        break;
      case 'addBridge':
        if (links.has(o.device)) throw new Error(`${o.device} exists`);
        links.set(o.device, {
          name: o.device,
          kind: 'bridge',
          mark: o.mark,
          up: true,
          mtu: o.mtu,
          nfCallIptables: true,
        });
        break;
      case 'addVxlan':
        if (links.has(o.device)) throw new Error(`${o.device} exists`);
        links.set(o.device, {
          name: o.device,
          kind: 'vxlan',
          mark: o.mark,
          master: o.bridge,
          up: true,
          mtu: o.mtu,
          vxlan: {
            id: o.mark.s,
            local: o.local,
            port: VXLAN_PORT,
            ...(o.underlay ? { device: o.underlay } : {}),
          },
        });
        flood[o.device] = [];
        break;
      case 'fixLink': {
        const l = links.get(o.device);
        if (!l?.mark) throw new Error(`fixLink on ${o.device}, not ours`);
        if (o.mtu !== undefined) l.mtu = o.mtu;
        if (o.up) l.up = true;
        if (o.nfCallIptables) l.nfCallIptables = true;
        if (o.master) l.master = o.master;
        break;
      }
      case 'addFlood':
        flood[o.device] = [...(flood[o.device] ?? []), o.peer];
        break;
      case 'deleteFlood':
        flood[o.device] = (flood[o.device] ?? []).filter((p) => p !== o.peer);
        break;
      case 'addPort':
        if (links.has(o.device)) throw new Error(`${o.device} exists`);
        if (!links.has(o.bridge)) throw new Error(`no bridge ${o.bridge}`);
        links.set(o.device, {
          name: o.device,
          kind: o.mark.k === 'veth' ? 'veth' : 'tun',
          mark: o.mark,
          master: o.bridge,
          up: true,
          mtu: o.mark.u,
        });
        break;
      case 'setState':
        if (o.state) states[o.device] = o.state;
        else delete states[o.device];
        break;
      case 'forwardRule':
        if (!forwardDrop || forwardDrop.allowed === o.allow) throw new Error('forwardRule: nothing to do');
        forwardDrop = { ...forwardDrop, allowed: o.allow };
        break;
      case 'deleteLink': {
        const l = links.get(o.device);
        if (!l?.mark) throw new Error(`deleteLink on ${o.device}, not ours`);
        links.delete(o.device);
        delete flood[o.device];
        for (const other of links.values()) if (other.master === o.device) delete other.master;
        break;
      }
    }
  }
  return { links: [...links.values()], flood, rules, states, ...(forwardDrop ? { forwardDrop } : {}) };
}
