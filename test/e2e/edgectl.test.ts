/**
 * The monitoring feed end to end: the real coordinator publishes hosts, instances, Workloads and events over
 * NATS; `edgectl watch` (a child process, human-readable and `-o json`) shows a Workload being scaled live,
 * and `edgectl hosts` / `instances` / `workloads` / `status` read the current state.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { Svcm } from '@nats-io/services';
import { describe, expect, it } from 'vitest';
import { REPO_DIR } from '../../deploy/stack/index.js';
import { connectNats } from '../../shared/nats/connect.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { useEdgeStack } from '../harness/edge.js';
import { cleanup, waitFor } from '../harness/index.js';
import { nginxWorkload } from '../harness/objects.js';

const stack = useEdgeStack();
const EDGECTL = path.join(REPO_DIR, 'dist/edgectl/main.js');

/** Runs edgectl to completion. */
function edgectl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [EDGECTL, '--nats', stack().nats.url, ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `edgectl watch` and collects its lines until the test ends. */
async function watch(args: string[] = []): Promise<{ lines: string[]; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [EDGECTL, '--nats', stack().nats.url, 'watch', ...args]);
  cleanup(() => {
    proc.kill('SIGTERM');
  });
  const lines: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (d) => String(d).includes('watching') && resolve());
    proc.on('exit', (code) => reject(new Error(`edgectl watch exited (${code})`)));
  });
  return { lines, proc };
}

/** How long the waits of this file wait: the feed follows placements and starts. */
const WAIT = { timeoutMs: 120_000, intervalMs: 200 };

const workload = (replicas: number) => nginxWorkload({ name: 'feed-web', replicas });

describe('edgectl reads the monitoring feed', () => {
  it('edgectl watch shows a Workload being scaled, live, human-readable and as JSON', async () => {
    const s = stack();
    const human = await watch();
    const json = await watch(['-o', 'json']);
    await s.kubectl(['create', 'namespace', 'feed']);
    await s.kubectl(['apply', '-n', 'feed', '-f', '-'], { input: workload(1) });
    await waitFor(
      'one ready replica in the human output',
      () => human.lines.some((l) => /workload\s+feed\/feed-web\s+replicas 1\/1\s+ready 1/.test(l)),
      WAIT,
    );
    await s.kubectl([
      'patch',
      'workload.compute.miloapis.com',
      'feed-web',
      '-n',
      'feed',
      '--type',
      'merge',
      '-p',
      '{"spec":{"replicas":3}}',
    ]);
    await waitFor(
      'three ready replicas in the human output',
      () => human.lines.some((l) => /workload\s+feed\/feed-web\s+replicas 3\/3\s+ready 3/.test(l)),
      WAIT,
    );
    // The scale-up as it happened: desired 3 seen before all three were ready, Placed event, instances Running.
    const firstDesired3 = human.lines.findIndex((l) => /feed\/feed-web\s+replicas \d\/3/.test(l));
    const allReady = human.lines.findIndex((l) => /feed\/feed-web\s+replicas 3\/3\s+ready 3/.test(l));
    expect(firstDesired3).toBeGreaterThanOrEqual(0);
    expect(firstDesired3).toBeLessThanOrEqual(allReady);
    expect(
      human.lines.some((l) => /event\s+Normal Placed\s+Workload feed\/feed-web: placed 2 instance/.test(l)),
    ).toBe(true);
    expect(
      human.lines.filter((l) => /instance\s+feed\/feed-web-\S+\s+Running ready/.test(l)).length,
    ).toBeGreaterThanOrEqual(3);

    await waitFor(
      'three ready replicas in the JSON output',
      () =>
        json.lines.some((l) => {
          const m = JSON.parse(l);
          return m.kind === 'workload' && m.name === 'feed-web' && m.desired === 3 && m.readyReplicas === 3;
        }),
      WAIT,
    );
    for (const l of json.lines)
      expect(JSON.parse(l)).toMatchObject({
        v: 1,
        kind: expect.stringMatching(/^(host|instance|workload|event)$/),
      });

    // Scale down is seen too.
    await s.kubectl([
      'patch',
      'workload.compute.miloapis.com',
      'feed-web',
      '-n',
      'feed',
      '--type',
      'merge',
      '-p',
      '{"spec":{"replicas":1}}',
    ]);
    await waitFor(
      'scaled down to one',
      () =>
        human.lines.some(
          (l) => /feed\/feed-web\s+replicas 1\/1\s+ready 1/.test(l) && human.lines.indexOf(l) > allReady,
        ),
      WAIT,
    );
    await waitFor(
      'a removed instance',
      () => human.lines.some((l) => /instance\s+feed\/feed-web-\S+\s+Deleted/.test(l)),
      WAIT,
    );
  });

  it('edgectl hosts, instances, workloads and status show the current state', async () => {
    const s = stack();
    // Every host Ready in the feed (polled: a heartbeat may be late on a loaded machine).
    let hosts = await edgectl(['hosts']);
    const allReady = () =>
      s.hosts.every((h) => new RegExp(`${h}\\s+\\S+\\s+Ready\\s+gvisor`).test(hosts.stdout));
    for (let i = 0; i < 30 && !allReady(); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      hosts = await edgectl(['hosts']);
    }
    expect(hosts.stderr).toBe('');
    expect(hosts.code).toBe(0);
    expect(hosts.stdout).toMatch(/^HOST\s+LOCATION\s+STATE\s+RUNTIMES\s+CPU\s+MEMORY\s+DISK\s+INSTANCES/);
    expect(allReady()).toBe(true);

    const hostsJson = JSON.parse((await edgectl(['hosts', '-o', 'json'])).stdout);
    expect(hostsJson.map((h: { host: string }) => h.host).sort()).toEqual([...s.hosts].sort());
    for (const h of hostsJson) expect(h.allocatable.ephemeralStorageBytes).toBeGreaterThan(0);

    const instances = await edgectl(['instances', '-n', 'feed']);
    expect(instances.code).toBe(0);
    const rows = instances.stdout.trim().split('\n').slice(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^feed\s+feed-web-\S+\s+feed-web\s+\S+\s+\S+\s+Running\s+true$/);

    const workloads = await edgectl(['workloads']);
    expect(workloads.stdout).toMatch(/feed\s+feed-web\s+1\s+1\s+1\s+1\s+Running/);

    const status = JSON.parse((await edgectl(['status'])).stdout);
    expect(status.hosts).toMatchObject({ Ready: 3 });
    expect(status.counters.intentWrites).toBeGreaterThan(0);
    expect(status.queue).toBeTypeOf('number');

    // The real coordinator and agents answer the services API and their status endpoints.
    const nc = await connectNats({ servers: [s.nats.url], name: 'test', reconnectForever: false });
    cleanup(() => nc.close());
    const infos: Array<{ name: string; metadata?: Record<string, string> }> = [];
    for await (const i of await new Svcm(nc as never).client().info()) infos.push(i);
    expect(infos.filter((i) => i.name === 'edge-coordinator')).toHaveLength(1);
    expect(
      infos
        .filter((i) => i.name === 'edge-agent')
        .map((i) => i.metadata?.host)
        .sort(),
    ).toEqual([...s.hosts].sort());
    const agentStatus = (
      await nc.request(new Subjects().agentStatus(s.hosts[0]!), '', { timeout: 5000 })
    ).json<{
      host: string;
      sealKey: string;
      intents: { synced: boolean };
    }>();
    expect(agentStatus).toMatchObject({ host: s.hosts[0], intents: { synced: true } });
    expect(agentStatus.sealKey).toMatch(/^X/);

    const bad = await edgectl(['hosts', '-o', 'yaml']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--output: expected table or json, got yaml/);
  });
});
