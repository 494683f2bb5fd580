/** Port rules (pure): anti-spoofing and ingress policy as nft rule text, and their validation. */
import { describe, expect, it } from 'vitest';
import { decodeMark, encodeMark, portName } from '../../agent/network/marks.js';
import { antiSpoofRules, ingressRules, parsePrefix } from '../../agent/network/rules.js';

describe('ingressRules', () => {
  it('absent: everything; present and empty: replies only', () => {
    expect(ingressRules('veth', undefined, 'ingress')).toEqual(['accept']);
    expect(ingressRules('veth', [], 'ingress')).toEqual(['ct state established,related accept', 'drop']);
  });

  it('ports and address blocks (less exceptions), TCP by default, ranges', () => {
    const rules = ingressRules(
      'veth',
      [
        { ports: [{ port: 80 }, { protocol: 'UDP', port: 5000, endPort: 5010 }, { protocol: 'SCTP' }] },
        {
          from: [{ ipBlock: { cidr: '10.1.2.3/16', except: ['10.1.5.0/24', '10.1.0.0/17', '10.1.5.0/24'] } }],
        },
      ],
      'ingress',
    );
    expect(rules).toEqual([
      'ct state established,related accept',
      'tcp dport 80 accept',
      'udp dport 5000-5010 accept',
      'ip protocol sctp accept',
      // Host bits cleared; the nested /24 exception dropped (the /17 covers it).
      'ip saddr 10.1.0.0/16 ip saddr != { 10.1.0.0/17 } accept',
      'drop',
    ]);
  });

  it('taps let the DHCP server answer', () => {
    expect(ingressRules('tap', [], 'ingress')).toContain('udp sport 67 udp dport 68 accept');
  });

  it('names the field of what it cannot honour', () => {
    expect(() =>
      ingressRules('veth', [{ from: [{ ipBlock: { cidr: '2001:db8::/32' } }] }], 'x.ingress'),
    ).toThrow(/x\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr/);
    expect(() => ingressRules('veth', [{ ports: [{ port: 90, endPort: 80 }] }], 'ingress')).toThrow(
      /ingress\[0\]\.ports\[0\]\.endPort/,
    );
    expect(() =>
      ingressRules('veth', [{ from: [{ ipBlock: { cidr: '10.0.0.0/8; drop' } }] }], 'ingress'),
    ).toThrow(/cidr/);
  });
});

describe('antiSpoofRules', () => {
  it('pins MAC, ARP sender and IPv4 source; nothing but ARP and IPv4', () => {
    const rules = antiSpoofRules('veth', { mac: '02:00:00:00:00:01', ip: '10.0.0.1' });
    expect(rules).toContain('ether saddr != 02:00:00:00:00:01 drop');
    expect(rules).toContain('ether type arp arp saddr ip != { 10.0.0.1, 0.0.0.0 } drop');
    expect(rules).toContain('ether type != ip drop');
    expect(rules).toContain('ip saddr != 10.0.0.1 drop');
    expect(rules).toContain('ip protocol udp udp sport 67 drop');
  });

  it('only a DHCP helper may answer DHCP; a tap may ask before it has an address', () => {
    const port = { mac: '02:00:00:00:00:01', ip: '10.0.0.0' };
    expect(antiSpoofRules('veth', port, true)).not.toContain('ip protocol udp udp sport 67 drop');
    expect(antiSpoofRules('tap', port)).toContain('ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept');
  });
});

describe('marks and names', () => {
  it('device names are deterministic and fit IFNAMSIZ', () => {
    const n = portName('veth', 'a-very-long-namespace/a-very-long-workload-name-us-central1-a-12', 7);
    expect(n).toHaveLength(15);
    expect(portName('veth', 'a-very-long-namespace/a-very-long-workload-name-us-central1-a-12', 7)).toBe(n);
    expect(portName('tap', 'x', 0)).not.toBe(portName('veth', 'x', 0));
  });

  it('a mark survives its alias; foreign or damaged aliases are not marks', () => {
    const mark = { edgeplane: 'segment' as const, s: 5, n: 'default/net', z: 6 };
    expect(decodeMark(encodeMark(mark))).toEqual(mark);
    expect(decodeMark('uplink to rack 3')).toBeUndefined();
    expect(decodeMark('{"edgeplane":"port","i":1}')).toBeUndefined();
    expect(() => encodeMark({ ...mark, n: 'x'.repeat(300) })).toThrow(/over 255/);
  });

  it('parsePrefix', () => {
    expect(parsePrefix('192.168.1.77/24', 'f')).toEqual({ base: 0xc0a80100, length: 24 });
    expect(() => parsePrefix('300.0.0.0/8', 'f')).toThrow(/f:/);
  });
});
