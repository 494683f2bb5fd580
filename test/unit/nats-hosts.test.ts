/**
 * Host states after Nomad's heartbeat rules (pure: reports and the clock are given), sealing round trips, and
 * the generated permissions.
 */
import { describe, expect, it, vi } from 'vitest';
import { type HostEntry, HostRegistry, type HostState } from '../../coordinator/hosts/registry.js';
import { HostSync } from '../../coordinator/hosts/sync.js';
import type { KubeClient } from '../../coordinator/kube/client.js';
import { HostKind, type HostStatus } from '../../shared/api/index.js';
import { createLogger } from '../../shared/log.js';
import { type HostReport, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { agentPermissions, nkeyUserConfig } from '../../shared/nats/permissions.js';
import { newSealKey, openValues, sealValues } from '../../shared/nats/seal.js';
import { Subjects } from '../../shared/nats/subjects.js';

const log = createLogger({ name: 'test', level: 'silent' });
const subjects = new Subjects('edge');

function report(host: string, seq: number, startedAt = 't0'): HostReport {
  return {
    v: MESSAGE_VERSION,
    host,
    location: 'loc',
    labels: {},
    capacity: { cpuMillis: 1000, memoryBytes: 1 },
    allocatable: { cpuMillis: 1000, memoryBytes: 1 },
    runtimes: ['gvisor'],
    agentVersion: 'x',
    startedAt,
    seq,
    heartbeatMs: 2000,
    instances: [],
    time: 'now',
  };
}

function registry(opts: { lostAfterMs?: number; graceMs?: number } = {}) {
  const r = new HostRegistry({ nc: undefined as never, subjects, log, ...opts });
  const transitions: Array<[string, HostState | undefined, HostState]> = [];
  r.on('state', (e: HostEntry, prev: HostState | undefined) =>
    transitions.push([e.report.host, prev, e.state]),
  );
  return { r, transitions };
}

describe('host registry (Nomad heartbeat rules)', () => {
  it('is Disconnected after TTL (3 heartbeats) + grace, Lost after lostAfter, and Ready again on the next report', () => {
    const { r, transitions } = registry({ lostAfterMs: 30_000, graceMs: 5000 });
    r.accept(report('h1', 1), 0);
    expect(r.disconnectAfterMs({ heartbeatMs: 2000 })).toBe(11_000);
    r.check(11_000);
    expect(r.get('h1')!.state).toBe('Ready');
    r.check(11_001);
    expect(r.get('h1')!.state).toBe('Disconnected');
    r.check(30_000);
    expect(r.get('h1')!.state).toBe('Disconnected');
    r.check(30_001);
    expect(r.get('h1')!.state).toBe('Lost');
    expect(r.counts()).toEqual({ Ready: 0, Disconnected: 0, Lost: 1 });
    r.accept(report('h1', 2), 31_000);
    expect(r.get('h1')!.state).toBe('Ready');
    expect(transitions).toEqual([
      ['h1', undefined, 'Ready'],
      ['h1', 'Ready', 'Disconnected'],
      ['h1', 'Disconnected', 'Lost'],
      ['h1', 'Lost', 'Ready'],
    ]);
  });

  it('never declares a host Lost before it is Disconnected, whatever lostAfter says', () => {
    const { r } = registry({ lostAfterMs: 1000, graceMs: 5000 });
    r.accept(report('h1', 1), 0);
    r.check(10_000);
    expect(r.get('h1')!.state).toBe('Ready');
    r.check(11_001);
    expect(r.get('h1')!.state).toBe('Lost');
  });

  it('ignores a stale report of the same agent process, but not one of a restarted agent', () => {
    const { r } = registry();
    r.accept(report('h1', 5), 0);
    r.accept(report('h1', 4), 100);
    expect(r.get('h1')!.report.seq).toBe(5);
    r.accept(report('h1', 1, 't1'), 200);
    expect(r.get('h1')!.report.seq).toBe(1);
  });
});

describe('sealing', () => {
  it('opens only with the recipient key and the right sender', () => {
    const coordinator = newSealKey();
    const host = newSealKey();
    const other = newSealKey();
    const values = { env: { main: { A: 'b' } }, files: { v: { 'a.txt': 'aGk=' } }, registryAuth: [] };
    const sealed = sealValues(coordinator, host.getPublicKey(), values);
    expect(sealed).not.toContain('aGk=');
    expect(openValues(host, coordinator.getPublicKey(), sealed)).toEqual(values);
    expect(() => openValues(other, coordinator.getPublicKey(), sealed)).toThrow(/do not open/);
    expect(() => openValues(host, other.getPublicKey(), sealed)).toThrow(/do not open/);
  });
});

describe('permissions', () => {
  it('scope an agent to its host and location', () => {
    const p = agentPermissions(subjects, 'h1', 'loc-a');
    expect(p.publish.allow).toContain('edge.hosts.h1.>');
    expect(p.publish.allow).toContain('$JS.API.CONSUMER.CREATE.KV_edge-intents.*.$KV.edge-intents.loc-a.>');
    expect(p.publish.allow).toContain('$JS.API.DIRECT.GET.KV_edge-intents.$KV.edge-intents.loc-a.>');
    expect(p.publish.allow.join(' ')).not.toMatch(/\$KV\.edge-intents\.>|edge\.hosts\.\*|edge\.>/);
    expect(p.subscribe.allow).not.toContain(subjects.allHostReports);
    const conf = nkeyUserConfig('UABC', p);
    expect(conf).toContain('nkey: "UABC"');
    expect(conf).toContain('allow_responses: true');
  });
});

describe('Host objects from reports', () => {
  it('carry disk size as capacity/allocatable ephemeralStorageBytes; free disk changing between heartbeats writes nothing', async () => {
    vi.useFakeTimers();
    try {
      const { r } = registry();
      const writes: HostStatus[] = [];
      const client = {
        patchStatus: async (ref: { kind: unknown }, _ns: unknown, _name: string, status: HostStatus) => {
          if (ref.kind === HostKind) writes.push(status);
        },
        create: async () => undefined,
      } as unknown as KubeClient;
      const sync = new HostSync(
        client,
        r,
        () => ({ allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0 }),
        log,
      );
      const disk = (seq: number, free: number): HostReport => {
        const base = report('h1', seq);
        return {
          ...base,
          capacity: { ...base.capacity, ephemeralStorageBytes: 100 * 2 ** 30 },
          allocatable: { ...base.allocatable, ephemeralStorageBytes: 100 * 2 ** 30 },
          ephemeralStorageFreeBytes: free,
        };
      };
      r.accept(disk(1, 40 * 2 ** 30));
      await vi.advanceTimersByTimeAsync(1100);
      expect(writes).toHaveLength(1);
      expect(writes[0]!.capacity?.ephemeralStorageBytes).toBe(100 * 2 ** 30);
      expect(writes[0]!.allocatable?.ephemeralStorageBytes).toBe(100 * 2 ** 30);
      r.accept(disk(2, 40 * 2 ** 30 - 4096));
      r.accept(disk(3, 39 * 2 ** 30));
      await vi.advanceTimersByTimeAsync(1100);
      expect(writes).toHaveLength(1);
      sync.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
