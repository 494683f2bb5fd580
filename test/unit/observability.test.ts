/**
 * The coordinator's metrics over a registry fed plain reports (no daemons): every series the fleet asks for is
 * there with the right value, counters survive a replaced source, `promtool check metrics` (Debian's
 * prometheus package) accepts the exposition, and health/readiness and listen addresses follow their rules.
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HostRegistry } from '../../coordinator/hosts/registry.js';
import { liveness, readiness } from '../../coordinator/observability/health.js';
import { createCoordinatorMetrics } from '../../coordinator/observability/metrics.js';
import type { FleetSource } from '../../coordinator/observability/source.js';
import { parseListenAddress } from '../../shared/listen.js';
import { createLogger } from '../../shared/log.js';
import { type HostReport, MESSAGE_VERSION } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';

const log = createLogger({ name: 'test', level: 'silent' });
const subjects = new Subjects('edge');

function report(host: string, location: string, extra: Partial<HostReport> = {}): HostReport {
  return {
    v: MESSAGE_VERSION,
    host,
    location,
    labels: {},
    capacity: { cpuMillis: 8000, memoryBytes: 16 * 2 ** 30, ephemeralStorageBytes: 100 * 2 ** 30 },
    allocatable: { cpuMillis: 7000, memoryBytes: 15 * 2 ** 30, ephemeralStorageBytes: 100 * 2 ** 30 },
    runtimes: ['gvisor'],
    agentVersion: '0.1.0',
    startedAt: 't0',
    seq: 1,
    heartbeatMs: 2000,
    instances: [],
    time: 'now',
    ...extra,
  };
}

function source(now: number): FleetSource & { registry: HostRegistry } {
  const registry = new HostRegistry({ nc: undefined as never, subjects, log, lostAfterMs: 30_000 });
  registry.accept(report('h1', 'us-a'), now);
  registry.accept(report('h2', 'us-a', { agentVersion: '0.2.0' }), now);
  registry.accept(
    report('h3', 'eu-b', {
      credentialsExpireAt: new Date(now + 86_400_000).toISOString(),
    } as Partial<HostReport>),
    now - 60_000,
  );
  registry.check(now);
  registry.lossesSuppressed = 2;
  registry.graceRestarts = 1;
  const inst = (name: string, host: string, location: string, phase: string) => ({
    metadata: { name, namespace: 'ns' },
    spec: { host, location, workloadRef: { name: 'web' } },
    status: { phase, ready: phase === 'Running' },
  });
  return {
    registry,
    hosts: registry,
    allocatedOf: (host) =>
      host === 'h1'
        ? { allocated: { cpuMillis: 500, memoryBytes: 2 ** 30 }, instances: 2 }
        : { allocated: { cpuMillis: 0, memoryBytes: 0 }, instances: 0 },
    instances: () => [inst('web-1', 'h1', 'us-a', 'Running'), inst('web-2', 'h1', 'us-a', 'Starting')],
    workloads: () => [
      {
        group: 'compute.miloapis.com',
        object: {
          metadata: { name: 'web', namespace: 'ns' },
          spec: { replicas: 3 },
          status: { readyReplicas: 1 },
        },
      },
    ],
    queue: { length: 4, onPass: undefined },
    intents: { writes: 7, conflicts: 1 },
    feedPublished: () => 12,
    nc: undefined as never,
    subjects,
    cachesSynced: () => true,
  };
}

/** `name{labels} value` lines of an exposition, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('coordinator metrics', () => {
  it('exports the fleet from the source at scrape time, and promtool accepts it', async () => {
    const now = Date.now();
    const m = createCoordinatorMetrics({ version: '9.9.9' });
    const s = source(now);
    m.setSource(s);
    m.setLeader(true);
    s.queue.onPass?.(0.02, true);
    s.queue.onPass?.(3, false);
    const text = await m.registry.metrics();
    const v = samples(text);
    expect(v.get('edgeplane_hosts{state="Ready"}')).toBe(2);
    expect(v.get('edgeplane_hosts{state="Lost"}')).toBe(1);
    expect(v.get('edgeplane_hosts{state="Disconnected"}')).toBe(0);
    expect(v.get('edgeplane_host_state{host="h3",location="eu-b",state="Lost"}')).toBe(1);
    expect(v.get('edgeplane_host_info{host="h2",location="us-a",agent_version="0.2.0"}')).toBe(1);
    expect(v.get('edgeplane_host_last_heartbeat_timestamp_seconds{host="h1",location="us-a"}')).toBe(
      now / 1000,
    );
    expect(v.get('edgeplane_host_capacity{host="h1",location="us-a",resource="cpu",unit="core"}')).toBe(8);
    expect(v.get('edgeplane_host_allocatable{host="h1",location="us-a",resource="memory",unit="byte"}')).toBe(
      15 * 2 ** 30,
    );
    expect(v.get('edgeplane_host_allocated{host="h1",location="us-a",resource="cpu",unit="core"}')).toBe(0.5);
    expect(v.get('edgeplane_host_instances{host="h1",location="us-a"}')).toBe(2);
    const expiry = v.get('edgeplane_host_credentials_expiry_timestamp_seconds{host="h3",location="eu-b"}');
    expect(expiry).toBe((now + 86_400_000) / 1000);
    expect(v.get('edgeplane_instances{phase="Running",location="us-a"}')).toBe(1);
    expect(v.get('edgeplane_instances{phase="Failed",location="us-a"}')).toBe(0);
    const wl = 'namespace="ns",workload="web",group="compute.miloapis.com"';
    expect(v.get(`edgeplane_workload_desired_replicas{${wl}}`)).toBe(3);
    expect(v.get(`edgeplane_workload_ready_replicas{${wl}}`)).toBe(1);
    expect(v.get('edgeplane_workqueue_depth{queue="workloads"}')).toBe(4);
    expect(v.get('edgeplane_intent_writes_total')).toBe(7);
    expect(v.get('edgeplane_intent_conflicts_total')).toBe(1);
    expect(v.get('edgeplane_host_reports_total')).toBe(3);
    expect(v.get('edgeplane_host_reports_rejected_total{reason="malformed"}')).toBe(0);
    expect(v.get('edgeplane_feed_messages_total')).toBe(12);
    expect(v.get('edgeplane_host_losses_suppressed_total')).toBe(2);
    expect(v.get('edgeplane_host_silence_resets_total')).toBe(1);
    expect(v.get('edgeplane_coordinator_leader')).toBe(1);
    expect(v.get('edgeplane_reconcile_duration_seconds_count{controller="workloads",result="error"}')).toBe(
      1,
    );
    expect(
      v.get(
        'edgeplane_reconcile_duration_seconds_bucket{le="0.025",controller="workloads",result="success"}',
      ),
    ).toBe(1);
    expect(
      [...v.keys()].some((k) => k.startsWith('edgeplane_build_info{component="coordinator",version="9.9.9"')),
    ).toBe(true);

    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stderr + check.stdout).toBe('');
    expect(check.status).toBe(0);
  });

  it('keeps counters monotonic when the source is replaced, and exports only its own figures on a standby', async () => {
    const m = createCoordinatorMetrics({ version: '1', processMetrics: false });
    const a = source(Date.now());
    m.setSource(a);
    m.setLeader(true);
    expect(samples(await m.registry.metrics()).get('edgeplane_intent_writes_total')).toBe(7);
    // Leadership lost: a standby has no fleet series at all (two coordinators never both count the fleet).
    m.setSource(undefined);
    m.setLeader(false);
    const standby = samples(await m.registry.metrics());
    expect(standby.get('edgeplane_coordinator_leader')).toBe(0);
    expect([...standby.keys()].filter((k) => k.startsWith('edgeplane_host'))).toEqual([
      'edgeplane_host_reports_total',
      'edgeplane_host_reports_rejected_total{reason="malformed"}',
      'edgeplane_host_losses_suppressed_total',
      'edgeplane_host_silence_resets_total',
    ]);
    // A new coordinator object starts its counts at 0: they add, the exported counter never goes down.
    const b = source(Date.now());
    (b.intents as { writes: number }).writes = 2;
    Object.assign(b.registry.refused, { 'not-enrolled': 3 });
    m.setSource(b);
    const after = samples(await m.registry.metrics());
    expect(after.get('edgeplane_intent_writes_total')).toBe(9);
    expect(after.get('edgeplane_host_reports_rejected_total{reason="not-enrolled"}')).toBe(3);
    expect(after.get('edgeplane_host_reports_rejected_total{reason="malformed"}')).toBe(0);
    expect(a.queue.onPass).toBeUndefined();
  });
});

describe('health', () => {
  const base = { role: 'leader' as const, natsConnected: true, cachesSynced: true, loopStallMs: 5 };
  it('is live unless the event loop stalls; never depends on NATS, the API server or the Lease', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('starting', 'standby', 'leader', 'stopping' as const),
        fc.boolean(),
        fc.boolean(),
        fc.nat(20_000),
        (role, natsConnected, cachesSynced, loopStallMs) =>
          liveness({ role, natsConnected, cachesSynced, loopStallMs }).ok === loopStallMs <= 10_000,
      ),
    );
  });
  it('is ready as a synced, connected leader or as a standby; names what is missing otherwise', () => {
    expect(readiness(base)).toEqual({ ok: true, detail: 'ok' });
    expect(readiness({ ...base, role: 'standby', natsConnected: false, cachesSynced: false }).ok).toBe(true);
    expect(readiness({ ...base, role: 'starting' }).ok).toBe(false);
    expect(readiness({ ...base, natsConnected: false })).toEqual({ ok: false, detail: 'NATS not connected' });
    expect(readiness({ ...base, cachesSynced: false }).detail).toBe('Kubernetes caches not synced');
  });
});

describe('listen addresses', () => {
  it('parses host:port, [v6]:port and :port, and names the flag otherwise', () => {
    expect(parseListenAddress('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListenAddress(':9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    for (const bad of ['9464', 'localhost', 'a:b', '1.2.3.4:70000', '::1:80'])
      expect(() => parseListenAddress(bad, '--metrics-address')).toThrow(
        /--metrics-address: expected host:port/,
      );
  });
});
