/**
 * The agent process (dist/agent/main.js; run `npm run build` first) on real nats-server and dockerd + runsc:
 * adoption after `kill -9` (no second copy, no orphan, nothing unchanged restarted) and autonomy (NATS stopped,
 * agent restarted offline resumes from its disk copy; on reconnect nothing unchanged restarts).
 */
import crypto from 'node:crypto';
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../deploy/stack/edgeplane.js';
import { BUSYBOX_IMAGE, docker, REPO_DIR } from '../../deploy/stack/index.js';
import { run } from '../../deploy/stack/proc.js';
import type { InstanceTemplateSpec } from '../../shared/api/template.js';
import { type DeploymentIntent, decode, encode, HostReport } from '../../shared/nats/messages.js';
import { Subjects } from '../../shared/nats/subjects.js';
import { cleanup, tempDir, useDocker, useNats, waitFor } from '../harness/index.js';
import { testIntent, testMarker } from '../harness/objects.js';

const nats = useNats();
const dockerFixture = useDocker();
const subjects = new Subjects('edge');
const LOCATION = 'test-loc';

interface Running {
  id: string;
  instance: string;
  container: string;
  startedAt: string;
}

/** Containers the agent of `host` created, running or not. */
async function containers(host: string): Promise<Running[]> {
  const ps = await docker(['ps', '-aq', '--no-trunc', '--filter', `label=edgeplane.dev/host=${host}`]);
  const ids = ps.stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  const r = await docker([
    'inspect',
    '--format',
    '{{.Id}} {{index .Config.Labels "edgeplane.dev/instance"}} {{index .Config.Labels "edgeplane.dev/container"}} {{.State.StartedAt}} {{.State.Running}}',
    ...ids,
  ]);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .filter((f) => f[4] === 'true')
    .map(([id, instance, container, startedAt]) => ({
      id: id!,
      instance: instance!,
      container: container!,
      startedAt: startedAt!,
    }));
}

/** The intent of `workload` in this file's location: one instance, on `host`. */
const intent = (host: string, workload: string, template: InstanceTemplateSpec) =>
  testIntent({ location: LOCATION, workload, template, hosts: [host] });

const SLEEPER: InstanceTemplateSpec = { image: BUSYBOX_IMAGE, command: ['sleep', '3600'] };
const PAIR: InstanceTemplateSpec = {
  containers: [
    {
      name: 'app',
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      volumeMounts: [{ name: 'shared', mountPath: '/s' }],
    },
    {
      name: 'sidecar',
      image: BUSYBOX_IMAGE,
      command: ['sleep', '3600'],
      volumeMounts: [{ name: 'shared', mountPath: '/s' }],
    },
  ],
  volumes: [{ name: 'shared', emptyDir: {} }],
};

async function setup() {
  dockerFixture();
  const host = `agent-ad-${crypto.randomBytes(4).toString('hex')}`;
  cleanup(async () => {
    const ps = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/host=${host}`]);
    const ids = ps.stdout.split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
  });
  const nc: NatsConnection = await connect({
    servers: nats().url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  });
  cleanup(() => nc.close());
  const kv: KV = await new Kvm(nc).create(subjects.intentsBucket, { history: 1 });
  // The coordinator's word that the location's intents are complete: without it the agent removes nothing.
  await kv.put(subjects.intentMarkerKey(LOCATION), encode(testMarker()));
  const reports: HostReport[] = [];
  const sub = nc.subscribe(subjects.hostReport(host));
  void (async () => {
    for await (const m of sub) reports.push(decode(HostReport, m.data));
  })();
  const dir = tempDir('edgeplane-agent-proc-');
  const start = () => {
    const p = startAgent({
      host,
      location: LOCATION,
      nats: [nats().url],
      dir,
      heartbeatMs: 500,
      args: ['--cpu', '2', '--memory', '2Gi'],
    });
    cleanup(() => p.stop());
    return p;
  };
  const put = (i: DeploymentIntent) =>
    kv.put(subjects.intentKey(LOCATION, i.namespace, i.workload), encode(i));
  const lastReport = () => reports.at(-1);
  return { host, kv, put, start, reports, lastReport, dir };
}

const byInstance = (list: Running[]) => {
  const out: Record<string, string[]> = {};
  for (const c of list) {
    out[c.instance] ??= [];
    out[c.instance]!.push(`${c.container}:${c.id}:${c.startedAt}`);
  }
  for (const v of Object.values(out)) v.sort();
  return out;
};

describe('agent adoption and autonomy', () => {
  it('adopts its instances after kill -9: no second copy, no orphan, nothing unchanged restarted', async () => {
    const s = await setup();
    await s.put(intent(s.host, 'keep', SLEEPER));
    await s.put(intent(s.host, 'pair', PAIR));
    await s.put(intent(s.host, 'gone', SLEEPER));
    await s.put(intent(s.host, 'created', SLEEPER));
    let agent = s.start();
    const before = await waitFor(
      'four instances running',
      async () => {
        const now = byInstance(await containers(s.host));
        return Object.keys(now).length === 4 && now[`pair-${LOCATION}-0`]?.length === 2 ? now : undefined;
      },
      { timeoutMs: 60_000 },
    );
    // Disk, as a node's ephemeral-storage: the size of the filesystem holding the state directory as capacity
    // and allocatable, its free space in the report.
    const fsOfState = statfsSync(s.dir);
    const report = s.lastReport()!;
    expect(report.capacity.ephemeralStorageBytes).toBe(fsOfState.blocks * fsOfState.bsize);
    expect(report.allocatable.ephemeralStorageBytes).toBe(report.capacity.ephemeralStorageBytes);
    expect(report.ephemeralStorageFreeBytes).toBeGreaterThan(0);
    expect(report.ephemeralStorageFreeBytes).toBeLessThanOrEqual(report.capacity.ephemeralStorageBytes!);

    await agent.kill();
    // While the agent is down: one workload is withdrawn, a stray container claims to be ours, and the
    // sidecar of the pair disappears (as if the agent died half-way through starting it).
    await s.kv.delete(subjects.intentKey(LOCATION, 'ns', 'gone'));
    const stray = await docker([
      'run',
      '-d',
      '--runtime',
      'runsc',
      '--label',
      `edgeplane.dev/host=${s.host}`,
      '--label',
      'edgeplane.dev/namespace=ns',
      '--label',
      'edgeplane.dev/instance=stray-0',
      '--label',
      'edgeplane.dev/container=main',
      '--label',
      'edgeplane.dev/container-index=0',
      '--label',
      'edgeplane.dev/template-hash=x',
      BUSYBOX_IMAGE,
      'sleep',
      '3600',
    ]);
    expect(stray.code).toBe(0);
    const sidecar = (await containers(s.host)).find((c) => c.container === 'sidecar');
    await docker(['rm', '-f', sidecar!.id]);
    // And one container was created but never started: same name, labels and template hash.
    const keepId = (await containers(s.host)).find((c) => c.instance === `created-${LOCATION}-0`)!.id;
    const info = JSON.parse((await docker(['inspect', keepId])).stdout)[0] as {
      Name: string;
      Config: { Labels: Record<string, string> };
    };
    await docker(['rm', '-f', keepId]);
    const created = await docker([
      'create',
      '--name',
      info.Name.replace(/^\//, ''),
      '--runtime',
      'runsc',
      ...Object.entries(info.Config.Labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
      BUSYBOX_IMAGE,
      'sleep',
      '3600',
    ]);
    expect(created.code).toBe(0);

    agent = s.start();
    const after = await waitFor(
      'converged after restart',
      async () => {
        const now = byInstance(await containers(s.host));
        const done =
          Object.keys(now).sort().join() ===
            [`created-${LOCATION}-0`, `keep-${LOCATION}-0`, `pair-${LOCATION}-0`].join() &&
          now[`pair-${LOCATION}-0`]?.length === 2;
        return done ? now : undefined;
      },
      { timeoutMs: 60_000 },
    );
    // The untouched instance is the very same container, never restarted.
    expect(after[`keep-${LOCATION}-0`]).toEqual(before[`keep-${LOCATION}-0`]);
    await waitFor(
      'report of the adopted instances',
      () => {
        const r = s.lastReport();
        return r?.instances.length === 3 && r.instances.every((i) => i.phase === 'Running' && i.ready);
      },
      { timeoutMs: 30_000 },
    );
    expect(agent.exit).toBeUndefined();
  });

  it('keeps running without NATS, resumes from disk when restarted offline, and restarts nothing unchanged on reconnect', async () => {
    const s = await setup();
    await s.put(intent(s.host, 'steady', SLEEPER));
    await s.put(
      intent(s.host, 'crashy', {
        image: BUSYBOX_IMAGE,
        command: ['/bin/sh', '-c', 'while [ ! -f /tmp/die ]; do sleep 0.2; done; rm /tmp/die; exit 1'],
      }),
    );
    await s.put(intent(s.host, 'lost', SLEEPER));
    let agent = s.start();
    await waitFor(
      'instances running',
      async () => Object.keys(byInstance(await containers(s.host))).length === 3,
      {
        timeoutMs: 60_000,
      },
    );
    const before = byInstance(await containers(s.host));

    await nats().stop();
    await agent.kill();
    agent = s.start();
    // Offline and freshly started, the agent recreates an instance that vanished, from its disk copy.
    const lost = (await containers(s.host)).find((c) => c.instance === `lost-${LOCATION}-0`);
    await docker(['rm', '-f', lost!.id]);
    await waitFor(
      'lost instance recreated offline',
      async () =>
        (await containers(s.host)).some((c) => c.instance === `lost-${LOCATION}-0` && c.id !== lost!.id),
      { timeoutMs: 60_000 },
    );
    // A crash is still restarted while offline.
    const crashy = (await containers(s.host)).find((c) => c.instance === `crashy-${LOCATION}-0`)!;
    await docker(['exec', crashy.id, 'touch', '/tmp/die']);
    await waitFor(
      'crashed container restarted',
      async () => {
        const r = await docker(['inspect', '--format', '{{.RestartCount}} {{.State.Running}}', crashy.id]);
        return r.stdout.trim() === '1 true';
      },
      { timeoutMs: 30_000 },
    );

    const reportsBefore = s.reports.length;
    await nats().restart();
    await waitFor('agent reports again after reconnect', () => s.reports.length > reportsBefore + 2, {
      timeoutMs: 60_000,
    });
    // Let the agent resync with the bucket, then check nothing it already ran was replaced.
    await new Promise((r) => setTimeout(r, 3000));
    const after = byInstance(await containers(s.host));
    expect(after[`steady-${LOCATION}-0`]).toEqual(before[`steady-${LOCATION}-0`]);
    expect(after[`crashy-${LOCATION}-0`]?.[0]?.split(':')[1]).toBe(crashy.id);
    expect(Object.keys(after).sort()).toEqual([
      `crashy-${LOCATION}-0`,
      `lost-${LOCATION}-0`,
      `steady-${LOCATION}-0`,
    ]);
    expect(agent.exit).toBeUndefined();
  });

  it('reports malformed intents on their instances, keeps what runs, and serves the rest', async () => {
    const s = await setup();
    const good = intent(s.host, 'good', SLEEPER);
    await s.put(good);
    await s.put(intent(s.host, 'changed', SLEEPER));
    const agent = s.start();
    await waitFor(
      'instances running',
      async () => Object.keys(byInstance(await containers(s.host))).length === 2,
      {
        timeoutMs: 60_000,
      },
    );
    const before = byInstance(await containers(s.host));
    const bad = { ...intent(s.host, 'bad', SLEEPER), template: { image: 42 } };
    await s.kv.put(subjects.intentKey(LOCATION, 'ns', 'bad'), encode(bad));
    // A valid intent turned invalid: what runs is kept, and the instance says why nothing changes.
    await s.kv.put(
      subjects.intentKey(LOCATION, 'ns', 'changed'),
      encode({ ...intent(s.host, 'changed', SLEEPER), limits: 'lots' }),
    );
    await s.kv.put(subjects.intentKey(LOCATION, 'ns', 'garbage'), new TextEncoder().encode('{not json'));
    await s.put(intent(s.host, 'after', SLEEPER));
    const report = await waitFor(
      'the bad instance reported',
      () => {
        const r = s.lastReport();
        const b = r?.instances.find((i) => i.name === `bad-${LOCATION}-0`);
        return b && r?.instances.find((i) => i.name === `after-${LOCATION}-0`)?.phase === 'Running'
          ? r
          : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const b = report.instances.find((i) => i.name === `bad-${LOCATION}-0`);
    expect(b).toMatchObject({ phase: 'Failed', ready: false });
    expect(b?.message).toMatch(/malformed intent test-loc\.ns\.bad: malformed message: template\.image: .*/);
    const changed = report.instances.find((i) => i.name === `changed-${LOCATION}-0`);
    expect(changed?.message).toMatch(/malformed intent test-loc\.ns\.changed: .*limits/);
    const now = byInstance(await containers(s.host));
    expect(now[`good-${LOCATION}-0`]).toEqual(before[`good-${LOCATION}-0`]);
    expect(now[`changed-${LOCATION}-0`]).toEqual(before[`changed-${LOCATION}-0`]);
    expect(now[`bad-${LOCATION}-0`]).toBeUndefined();
    expect(agent.exit).toBeUndefined();
  });

  it('leaves instances running on SIGTERM; `edge-agent drain` stops and removes them', async () => {
    const s = await setup();
    await s.put(intent(s.host, 'stays', SLEEPER));
    const agent = s.start();
    const before = await waitFor(
      'instance running',
      async () => {
        const now = byInstance(await containers(s.host));
        return now[`stays-${LOCATION}-0`] ? now : undefined;
      },
      { timeoutMs: 60_000 },
    );
    await agent.stop();
    expect(agent.exit).toMatchObject({ code: 0 });
    expect(byInstance(await containers(s.host))).toEqual(before);

    const drain = await run(
      process.execPath,
      [
        path.join(REPO_DIR, 'dist/agent/main.js'),
        'drain',
        '--host',
        s.host,
        '--state-dir',
        path.join(s.dir, 'state'),
      ],
      { timeoutMs: 60_000 },
    );
    expect(drain.code).toBe(0);
    const left = await docker(['ps', '-aq', '--filter', `label=edgeplane.dev/host=${s.host}`]);
    expect(left.stdout.trim()).toBe('');
  });
});
